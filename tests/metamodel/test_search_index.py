"""The search index follows every change of an app, on the database under test.

SQLite: an FTS5 trigram table per entity and its triggers; PostgreSQL: a trigram
GIN index per searched column. After each change the index must cover exactly
the searched columns, and find exactly the records a scan of the rows finds.
"""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import create_engine, text, update

from metamodel import publish, store
from metamodel.db import make_engine
from metamodel.errors import PlanRefused

from ..conftest import POSTGRES_SERVER
from .builders import bump, document, entity, field, fields_of, insert_rows, live_tables

SEARCHED = ["code", "customer_name", "email", "note", "phone", "ref", "site", "title"]


def base_doc():
    return document(
        entity("customer", field("name"), title_field="name"),
        entity(
            "item",
            field("title", required=True),
            field("code"),
            field("note", "long_text"),
            field("email", "email"),
            field("phone", "phone"),
            field("site", "url"),
            field("ref", "autonumber", pattern="R-{seq:3}"),
            field("qty", "integer"),
            field("kind", "select", options=[{"value": "a"}, {"value": "b"}]),
            field("customer", "reference", target="customer"),
            field("customer_name", "lookup", via="customer", field="name"),
            field("lines", "child_table", target="line"),
            title_field="title",
        ),
        entity("line", field("product"), child=True),
    )


ROWS = [
    {"title": "Red Apple", "code": "AB-100", "note": "crisp and sweet", "qty": 5},
    {"title": "green apple", "code": "ab-200", "note": None, "qty": 7},
    {"title": "上海华东贸易有限公司", "code": "CN-1", "note": "华东 region", "qty": 9},
    {"title": "Pear 50% off", "code": "x_y", "note": "APPLE season", "qty": None},
]
# Three characters or more: what a trigram index is for.
NEEDLES = ["apple", "APP", "ab-", "华东贸", "50%", "x_y", "sweet", "nothing at all"]


def index_state(engine) -> dict[str, list[str]]:
    """The search index the database holds: table -> indexed columns (sorted)."""
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            tables = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND sql LIKE 'CREATE VIRTUAL TABLE%fts5%'"
            ).scalars()
            for name in list(tables):
                source = name.removeprefix("fts_")
                columns = conn.exec_driver_sql(f'PRAGMA table_info("{name}")').all()
                found[source] = sorted(c[1].removeprefix("f_") for c in columns)
                triggers = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                    (source,),
                ).scalars()
                assert sorted(triggers) == [f"{name}__{e}" for e in ("delete", "insert", "update")]
        else:
            rows = conn.execute(
                text(
                    "SELECT tablename, indexname, indexdef FROM pg_indexes "
                    "WHERE schemaname = current_schema() AND indexname LIKE 'trgm%'"
                )
            )
            for table, name, definition in rows:
                column = re.search(r"lower\(\(?(\w+)", definition).group(1)
                assert name == f"trgm_{table}__{column}"
                assert "USING gin" in definition and "gin_trgm_ops" in definition
                found.setdefault(table, []).append(column)
    return {table: sorted(columns) for table, columns in found.items()}


def like_query(table: str, columns: list[str], needle: str) -> tuple[str, dict]:
    likes = " OR ".join(f"lower(\"{c}\") LIKE :needle ESCAPE '\\'" for c in columns)
    escaped = needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f'SELECT id FROM "{table}" WHERE {likes}', {"needle": f"%{escaped}%"}


def found_by_index(engine, table: str, columns: list[str], needle: str) -> set[int]:
    """The ids the search index gives for ``needle`` (PostgreSQL: with the index preferred).

    (On PostgreSQL an index built over rows updated in place may stay unused until
    transactions older than it end, which other sessions on the server can hold
    open: this does not insist on the plan; ``test_postgresql_searches_use_...`` does.)
    """
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            query = "{" + " ".join(f"f_{c}" for c in columns) + '} : "' + needle + '"'
            return set(
                conn.exec_driver_sql(
                    f'SELECT rowid FROM "fts_{table}" WHERE "fts_{table}" MATCH ?', (query,)
                ).scalars()
            )
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        sql, pattern = like_query(table, columns, needle)
        return set(conn.execute(text(sql), pattern).scalars())


def found_by_reading(engine, table: str, columns: list[str], needle: str) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(text(f'SELECT * FROM "{table}"')).mappings().all()
    return {
        row["id"]
        for row in rows
        if any(needle.lower() in str(row[c] or "").lower() for c in columns)
    }


def assert_in_step(engine, app: str = "shop") -> None:
    """The index covers the searched columns and finds what reading the rows finds."""
    schema = live_tables(engine, app)
    expected = {}
    for (_, name), table in schema.tables.items():
        entity_model = schema.app.entities.get(name)
        if entity_model is None or entity_model.is_child:
            continue
        columns = sorted(
            f.name
            for f in entity_model.fields.values()
            if f.has_column and f.value_spec["type"] in SEARCHED_TYPES
        )
        if columns:
            expected[str(table.name)] = columns
    assert index_state(engine) == expected
    for table, columns in expected.items():
        for needle in NEEDLES:
            by_index = found_by_index(engine, table, columns, needle)
            assert by_index == found_by_reading(engine, table, columns, needle), (table, needle)


SEARCHED_TYPES = {"text", "long_text", "email", "phone", "url", "autonumber"}


@pytest.fixture
def shop(engine):
    publish.apply_document(engine, base_doc())
    customer = insert_rows(engine, "customer", [{"name": "ACME apple farm"}])[0]
    insert_rows(engine, "item", [dict(row, customer=customer) for row in ROWS])
    with engine.begin() as conn:
        item = live_tables(engine).table("item")
        conn.execute(update(item).values(customer_name="ACME apple farm"))
    return engine


def test_a_new_app_indexes_its_searched_columns_only(engine):
    publish.apply_document(engine, base_doc())
    assert index_state(engine) == {"shop__customer": ["name"], "shop__item": SEARCHED}
    # An app with nothing to search (or no entities at all) has no index.
    publish.apply_document(engine, document(entity("n", field("x", "integer")), name="numbers"))
    publish.apply_document(engine, document(name="empty"))
    assert set(index_state(engine)) == {"shop__customer", "shop__item"}


def test_searches_use_the_index(engine):
    publish.apply_document(engine, base_doc())
    insert_rows(engine, "item", ROWS)
    if engine.dialect.name == "sqlite":
        query = (
            "EXPLAIN QUERY PLAN SELECT rowid FROM fts_shop__item "
            """WHERE fts_shop__item MATCH '"apple"'"""
        )
        with engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(query))
        assert "VIRTUAL TABLE INDEX" in plan and "fts_shop__item" in plan, plan
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        sql, pattern = like_query("shop__item", SEARCHED, "apple")
        plan = "\n".join(conn.execute(text("EXPLAIN " + sql), pattern).scalars())
    for column in SEARCHED:
        assert f"Bitmap Index Scan on trgm_shop__item__{column}" in plan, plan


def test_rows_written_directly_stay_found(shop):
    assert_in_step(shop)
    item = live_tables(shop).table("item")
    with shop.begin() as conn:
        conn.execute(update(item).where(item.c.title == "Red Apple").values(title="Blue plum"))
        conn.execute(update(item).values(qty=1))  # no searched column: no index work
        conn.execute(item.delete().where(item.c.code == "x_y"))
    insert_rows(shop, "item", [{"title": "Apple pie", "code": "ab-300"}])
    assert found_by_index(shop, "shop__item", SEARCHED, "apple") == found_by_reading(
        shop, "shop__item", SEARCHED, "apple"
    )
    assert_in_step(shop)


def test_the_plan_says_what_it_does_to_the_index_and_shows_its_sql(shop):
    doc = bump(base_doc(), "1.1.0")
    fields_of(doc, "item").append(field("colour"))
    outcome = publish.plan_document(shop, doc, sql=True)
    sql = "\n".join(outcome.sql)
    if shop.dialect.name == "sqlite":
        assert outcome.plan.words()[0] == "drop search index fts_shop__item"
        assert outcome.plan.words()[-1] == (
            "create search index fts_shop__item on 'item' (title, code, note, email, phone, "
            "site, ref, customer_name, colour) and fill it from every record"
        )
        assert "USING fts5(" in sql and "tokenize='trigram'" in sql
        assert 'AFTER UPDATE OF "title", "code"' in sql and 'SELECT id, "title"' in sql
    else:
        assert outcome.plan.words()[-1] == (
            "create search index trgm_shop__item__colour on shop__item (trigrams of 'item.colour')"
        )
        assert re.search(r'USING gin \(lower\("colour"\) "\w+"\.gin_trgm_ops\)', sql)
    assert index_state(shop)["shop__item"] == SEARCHED  # a preview changes nothing


def test_the_index_follows_fields_through_their_life(shop):
    doc = bump(base_doc(), "1.1.0")
    fields_of(doc, "item").append(field("colour"))
    publish.apply_document(shop, doc)
    insert_rows(shop, "item", [{"title": "t", "code": "c-5", "colour": "Apple red"}])
    assert_in_step(shop)
    # Renamed: the index follows the new name, and keeps finding the values.
    doc = bump(doc, "1.2.0")
    fields_of(doc, "item")[-1] = field("shade", renamed_from="colour")
    publish.apply_document(shop, doc)
    assert "shade" in index_state(shop)["shop__item"]
    assert_in_step(shop)
    # Archived: unindexed, like every archived column; restored: indexed again.
    doc = bump(doc, "1.3.0")
    fields_of(doc, "item").pop()
    publish.apply_document(shop, doc)
    assert index_state(shop)["shop__item"] == SEARCHED
    assert_in_step(shop)
    doc = bump(doc, "1.4.0")
    fields_of(doc, "item").append(field("shade"))
    publish.apply_document(shop, doc)
    assert_in_step(shop)
    # Type changes: to a number leaves the index, to text joins it, text to long text
    # rebuilds the column (and so its index).
    doc = bump(doc, "1.5.0")
    fields = fields_of(doc, "item")
    fields[[f["name"] for f in fields].index("qty")] = field("qty", "text")
    fields[[f["name"] for f in fields].index("title")] = field("title", "long_text")
    publish.apply_document(shop, doc)
    assert "qty" in index_state(shop)["shop__item"]
    assert_in_step(shop)
    doc = bump(doc, "1.6.0")
    fields = fields_of(doc, "item")
    fields[[f["name"] for f in fields].index("qty")] = field("qty", "integer")
    # Required: on SQLite the table is rebuilt (batch mode), which drops triggers.
    fields[[f["name"] for f in fields].index("code")] = field("code", required=True)
    publish.apply_document(shop, doc)
    assert "qty" not in index_state(shop)["shop__item"]
    assert_in_step(shop)
    insert_rows(shop, "item", [{"title": "after the rebuild: apple", "code": "AB-900"}])
    assert_in_step(shop)


def test_the_index_follows_entities_renamed_archived_restored_and_reverted(engine):
    first = document(
        entity("item", field("title"), field("note", "long_text"), field("qty", "integer")),
        entity("tag", field("label")),
    )
    publish.apply_document(engine, first)
    insert_rows(engine, "item", [{k: r[k] for k in ("title", "note", "qty")} for r in ROWS])
    insert_rows(engine, "tag", [{"label": "apple"}, {"label": "pear"}])
    doc = bump(first, "1.1.0")
    doc["entities"][0].update(name="article", renamed_from="item")
    publish.apply_document(engine, doc)
    assert set(index_state(engine)) == {"shop__article", "shop__tag"}
    assert_in_step(engine)
    # Archived: unindexed; declared again: indexed again, with its records.
    doc = bump(doc, "1.2.0")
    archived = doc["entities"].pop(0)
    publish.apply_document(engine, doc)
    assert set(index_state(engine)) == {"shop__tag"}
    doc = bump(doc, "1.3.0")
    doc["entities"].append(archived)
    publish.apply_document(engine, doc)
    assert_in_step(engine)
    publish.revert(engine, "shop", "1.0.0")
    assert set(index_state(engine)) == {"shop__item", "shop__tag"}
    assert_in_step(engine)


def drop_the_index(engine) -> None:
    """What a database applied before search indexes existed looks like."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for kind, name in conn.exec_driver_sql(
                "SELECT type, name FROM sqlite_master WHERE name LIKE 'fts\\_%' ESCAPE '\\' "
                "AND type IN ('trigger', 'table') ORDER BY type DESC"
            ).all():
                if kind == "trigger" or not name.endswith(("_data", "_idx", "_config")):
                    conn.exec_driver_sql(f'DROP {kind.upper()} IF EXISTS "{name}"')
        else:
            for name in conn.execute(
                text(
                    "SELECT indexname FROM pg_indexes "
                    "WHERE schemaname = current_schema() AND indexname LIKE 'trgm%'"
                )
            ).scalars():
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
    assert index_state(engine) == {}


def test_an_existing_database_gets_its_index_on_its_next_apply(shop):
    drop_the_index(shop)
    preview = publish.plan_document(shop, base_doc())
    assert preview.changed and preview.plan.words()
    assert all(word.startswith(("create search index", "drop")) for word in preview.plan.words())
    # Applying the same document again repairs the database, as a version of its own.
    outcome = publish.apply_document(shop, base_doc())
    assert outcome.changed and outcome.seq == 2
    with shop.connect() as conn:
        assert [v.action for v in store.history(conn, "shop")] == ["repair", "apply"]
    assert_in_step(shop)
    assert not publish.apply_document(shop, base_doc()).changed
    # A changed document builds it as well.
    drop_the_index(shop)
    doc = bump(base_doc(), "1.1.0")
    doc["label"] = "Shop"
    publish.apply_document(shop, doc)
    assert_in_step(shop)


def test_fields_named_as_fts5_reserves_are_indexed(engine):
    doc = document(entity("item", field("rank"), field("rowid"), field("title")))
    publish.apply_document(engine, doc)
    insert_rows(engine, "item", [{"rank": "first apple", "rowid": "x", "title": "t"}])
    assert index_state(engine) == {"shop__item": ["rank", "rowid", "title"]}
    assert found_by_index(engine, "shop__item", ["rank"], "apple") == {1}


def test_a_table_in_the_way_of_the_index_refuses_the_plan(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "fts_shop__item" (x INTEGER)')
    if engine.dialect.name == "postgresql":
        # PostgreSQL's search index is indexes on the entity's own table: a table of
        # that name is in nobody's way, and is left as it is.
        publish.apply_document(engine, base_doc())
        assert index_state(engine)["shop__item"] == SEARCHED
        with engine.connect() as conn:
            assert conn.exec_driver_sql('SELECT count(*) FROM "fts_shop__item"').scalar() == 0
        return
    with pytest.raises(PlanRefused) as caught:
        publish.apply_document(engine, base_doc())
    assert "already has a table named fts_shop__item" in caught.value.problems[0].message


def test_purging_archived_fields_and_entities_with_an_index(shop):
    doc = bump(base_doc(), "1.1.0")
    fields_of(doc, "item").pop(1)  # code
    doc["entities"].pop(0)  # customer (the lookup goes with it)
    item = doc["entities"][0]
    item["fields"] = [f for f in item["fields"] if f["name"] not in ("customer", "customer_name")]
    publish.apply_document(shop, doc)
    publish.purge(shop, "shop", "item", "code", confirm=True)
    publish.purge(shop, "shop", "customer", confirm=True)
    assert index_state(shop) == {"shop__item": ["email", "note", "phone", "ref", "site", "title"]}
    assert_in_step(shop)


# --- PostgreSQL: the extension ----------------------------------------------------------


@pytest.fixture
def fresh_database_url(db_kind, tmp_path):
    """A new database of its own (pg_trgm is installed once per database)."""
    if db_kind != "postgresql":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_fresh_postgresql_database_gets_pg_trgm(fresh_database_url):
    engine = make_engine(fresh_database_url)
    try:
        preview = publish.plan_document(engine, base_doc())
        install = "install the PostgreSQL extension pg_trgm in public (trigram indexes for search)"
        # SQLite's FTS5 is built in: nothing to install there.
        assert (install in preview.plan.words()) == (engine.dialect.name == "postgresql")
        publish.apply_document(engine, base_doc())
        assert index_state(engine)["shop__item"] == SEARCHED
    finally:
        engine.dispose()


def test_without_leave_to_install_pg_trgm_the_plan_applies_unindexed(fresh_database_url):
    url = fresh_database_url
    if url.startswith("sqlite"):
        # Nothing to be refused on SQLite: the same plan builds the index, unwarned.
        engine = make_engine(url)
        try:
            outcome = publish.apply_document(engine, base_doc())
            assert not outcome.plan.warnings
            assert index_state(engine)["shop__item"] == SEARCHED
        finally:
            engine.dispose()
        return
    role = "r_" + uuid.uuid4().hex[:12]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"')
    engine = make_engine(
        url.replace("://127.0.0.1", f"://{role}@127.0.0.1") + f"?options=-csearch_path%3D{role}"
    )
    try:
        doc = base_doc()
        outcome = publish.apply_document(engine, doc)
        assert outcome.changed
        assert not any("search index" in word for word in outcome.plan.words())
        assert any(
            "search is not indexed" in w and "may not install it" in w
            for w in outcome.plan.warnings
        )
        assert index_state(engine) == {}
        # Nothing to repair while it cannot be built: the same document is a no-op.
        assert not publish.apply_document(engine, doc).changed
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{role}" CASCADE')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()
