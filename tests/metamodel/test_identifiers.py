"""No metadata name reaches SQL except as a validated, quoted identifier."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from metamodel import publish
from metamodel.identifiers import (
    IDENTIFIER,
    POSTGRESQL_RESERVED,
    SQLITE_KEYWORDS,
    identifier_problem,
    physical_name,
)

from .builders import bump, document, entity, field, fields_of, insert_rows


@given(st.text(max_size=40))
def test_anything_accepted_as_an_identifier_is_plain_lower_case_ascii(name):
    if identifier_problem(name) is None:
        assert IDENTIFIER.match(name)
        assert name.lower() not in POSTGRESQL_RESERVED | SQLITE_KEYWORDS
        assert not set(name) & set("\"'`;-. \t\n\\()")


def test_reserved_words_system_columns_and_long_names_are_refused():
    assert "reserved word in PostgreSQL" in identifier_problem("user")
    assert "reserved word in PostgreSQL" in identifier_problem("order")
    assert "key word in SQLite" in identifier_problem("plan")
    assert "system column" in identifier_problem("owner", field=True)
    assert "at most 30" in identifier_problem("a" * 31)
    assert "not a valid name" in identifier_problem("Name")
    assert "not a valid name" in identifier_problem('x"; drop table y; --')
    for fine in ("value", "date", "name", "customer_tier"):
        assert identifier_problem(fine, field=True) is None


def test_physical_names_fit_postgresql_and_stay_distinct():
    long_a = physical_name("a" * 30, "b" * 30, "c" * 30)
    long_b = physical_name("a" * 30, "b" * 30, "c" * 29 + "d")
    assert len(long_a) <= 63 and len(long_b) <= 63 and long_a != long_b
    assert long_a.quote is True


def lifecycle(engine):
    """Publish a document and change it in every way the planner knows."""
    doc = document(
        entity(
            "customer",
            field("full_name", required=True),
            field("code"),
            field("score", "integer", indexed=True),
            field("tags", "multi_reference", target="segment"),
            title_field="full_name",
        ),
        entity("segment", field("title")),
        entity(
            "visit",
            field("customer", "reference", target="customer"),
            field("lines", "child_table", target="visit_line"),
        ),
        entity("visit_line", field("product"), child=True),
    )
    publish.apply_document(engine, doc)
    insert_rows(
        engine, "customer", [{"full_name": "A", "code": "1"}, {"full_name": "B", "code": "2"}]
    )
    steps = []
    changed = bump(doc, "1.1.0")
    fields = fields_of(changed, "customer")
    fields[1].update(type="integer", unique=True)  # convert + unique
    fields[2].update(name="points", renamed_from="score")  # rename an indexed column
    fields[3].update(name="segments", renamed_from="tags")  # rename a link table
    fields.append(field("email", "email"))
    changed["entities"][2].update(name="meeting", renamed_from="visit")
    steps.append(changed)
    required = bump(changed, "1.2.0")
    fields_of(required, "customer")[1]["required"] = True  # batch mode on SQLite
    steps.append(required)
    archived = bump(required, "1.3.0")
    archived["entities"] = [e for e in archived["entities"] if e["name"] != "segment"]
    fields_of(archived, "customer")[:] = [
        f for f in fields_of(archived, "customer") if f["name"] not in ("segments", "email")
    ]
    steps.append(archived)
    for step in steps:
        publish.apply_document(engine, step)
    publish.purge(engine, "shop", "customer", "email", confirm=True)
    names = set()
    for version in [doc, *steps]:
        names.add(version["name"])
        for e in version["entities"]:
            names.add(e["name"])
            names.update(f["name"] for f in e["fields"])
    return names


def test_every_metadata_name_in_emitted_sql_is_quoted(engine):
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    names = lifecycle(engine)
    assert len(statements) > 50
    unquoted = []
    # Only statements about the app's tables carry metadata names.
    for sent in (s for s in statements if "shop" in s):
        # Named placeholders (%(code)s, :code) are replaced by values, never identifiers.
        statement = re.sub(r"%\(\w+\)s|(?<!:):\w+", "?", sent)
        for name in names:
            for match in re.finditer(rf"(?<![\w\"]){re.escape(name)}(?![\w\"])", statement):
                unquoted.append((name, statement[max(0, match.start() - 40) : match.end() + 40]))
        # Alembic composes the name of its batch-mode scratch table itself; it is
        # built only from validated identifiers and renamed away at once.
        for scratch in re.findall(r"_alembic_tmp_[^\s\"(]*", statement):
            assert re.fullmatch(r"_alembic_tmp_[a-z0-9_]+", scratch)
    assert unquoted == []
