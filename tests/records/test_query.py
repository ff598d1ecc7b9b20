"""Listing: search through the search index, exactly as a scan would find, and cheap counts."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event, select, text

from app.accounts import create_user
from metamodel import publish
from metamodel.system_tables import users as users_table
from records.actor import Actor
from records.importing import import_file
from records.query import ListQuery, search_condition
from records.service import Records

from .conftest import FAST_HASH

APP = "finder"
STAGES = [
    {"value": "won", "label": {"en": "Won", "zh": "赢单"}},
    {"value": "lost", "label": {"en": "Lost", "zh": "输单"}},
    {"value": "lead", "label": "Lead"},
]
TAGS = [
    {"value": "vip", "label": {"en": "Key account", "zh": "重点客户"}},
    {"value": "new", "label": {"en": "New", "zh": "新客户"}},
]
DOC = {
    "format": "crm-app/1",
    "name": APP,
    "version": "1.0.0",
    "roles": [{"name": "sales"}, {"name": "manager"}],
    "entities": [
        {
            "name": "company",
            "title_field": "name",
            "permissions": {
                "sales": ["read", "create", "update", "delete", "import"],
                "manager": ["read", "create", "update", "delete", "import"],
            },
            "fields": [
                {"name": "name", "type": "text"},
                {"name": "notes", "type": "long_text"},
                {"name": "email", "type": "email"},
                {"name": "secret", "type": "text", "read_roles": ["manager"]},
                {"name": "stage", "type": "select", "options": STAGES},
                {"name": "tags", "type": "multiselect", "options": TAGS},
                {"name": "size", "type": "integer"},
            ],
        }
    ],
}
TEXTS = ("name", "notes", "email", "secret")


@pytest.fixture
def records(engine):
    publish.apply_document(engine, DOC)
    return Records(engine)


@pytest.fixture
def actors(engine, records):
    with engine.begin() as conn:
        for name, roles in [("admin", ["admin"]), ("rep", ["sales"]), ("boss", ["manager"])]:
            create_user(conn, name, roles, password="pw", method=FAST_HASH)
    with engine.connect() as conn:
        rows = conn.execute(select(users_table.c.id, users_table.c.username, users_table.c.roles))
        return {r.username: Actor(r.id, r.username, frozenset(r.roles)) for r in rows}


def found(records, actor, q, **kwargs) -> set[str]:
    page = records.list(actor, APP, "company", ListQuery(q=q, per_page=200, **kwargs))
    return {item["name"] for item in page["items"]}


def add(records, actor, *names, **values) -> list[int]:
    return [records.create(actor, APP, "company", {"name": n, **values})["id"] for n in names]


def test_substrings_in_ascii_and_chinese_case_insensitively(records, actors):
    admin = actors["admin"]
    add(records, admin, "Acme Trading", "ACME east", "上海华东贸易有限公司", "Northwind")
    add(records, admin, "Pear 50% off", "500 off", "x_y corp", "xay corp", 'say "hi" AND *')
    assert (
        found(records, admin, "acme")
        == found(records, admin, "ACME")
        == {
            "Acme Trading",
            "ACME east",
        }
    )
    assert found(records, admin, "me tr") == {"Acme Trading"}
    assert (
        found(records, admin, "华东贸") == found(records, admin, "华东") == {"上海华东贸易有限公司"}
    )
    # % and _ are what they are, not wildcards.
    assert found(records, admin, "50%") == {"Pear 50% off"}
    assert found(records, admin, "x_y") == {"x_y corp"}
    # Quotes and FTS5 syntax are text too.
    assert found(records, admin, '"hi" AND *') == {'say "hi" AND *'}
    assert found(records, admin, 'y "h') == {'say "hi" AND *'}
    # One or two characters: no trigram to look up, found by reading every row.
    assert found(records, admin, "W") == {"Northwind"}
    assert found(records, admin, "50") == {"Pear 50% off", "500 off"}
    assert found(records, admin, "no such thing") == set()


def test_unreadable_fields_are_not_searched(records, actors):
    add(records, actors["admin"], "Plain", secret="zebra stripes")
    assert found(records, actors["boss"], "zebra") == {"Plain"}
    assert found(records, actors["rep"], "zebra") == set()
    assert found(records, actors["rep"], "ze") == set()


def test_choices_are_found_by_value_and_by_label_in_every_language(records, actors):
    admin = actors["admin"]
    add(records, admin, "A", stage="won", tags=["vip"])
    add(records, admin, "B", stage="lost", tags=["new", "vip"])
    add(records, admin, "C", stage="lead")
    assert found(records, admin, "赢单") == found(records, admin, "WON") == {"A"}
    assert found(records, admin, "输") == {"B"}
    assert found(records, admin, "ead") == {"C"}  # a label that is plain text
    assert found(records, admin, "重点") == found(records, admin, "key acc") == {"A", "B"}
    assert found(records, admin, "新客户") == {"B"}


# --- the same as reading every record ---------------------------------------------------

ALPHABET = "aAbBcC华东贸易 %_-x"


def reference(items: list[dict], needle: str, readable: tuple[str, ...]) -> set[int]:
    """What search means, in Python: the text anywhere in a readable text field
    (any case), or an option's value or label holding it."""
    lowered, folded = needle.lower(), needle.casefold()
    hits = set()
    for item in items:
        texts = any(lowered in (item.get(f) or "").lower() for f in readable)
        options = [o for o in STAGES if o["value"] == item.get("stage")] + [
            o for o in TAGS if o["value"] in (item.get("tags") or [])
        ]
        names = [o["value"] for o in options] + [
            name
            for o in options
            for name in ([o["label"]] if isinstance(o["label"], str) else list(o["label"].values()))
        ]
        if texts or any(folded in name.casefold() for name in names):
            hits.add(item["id"])
    return hits


def random_text(chance: random.Random) -> str | None:
    if chance.random() < 0.15:
        return None
    return "".join(chance.choice(ALPHABET) for _ in range(chance.randint(1, 12)))


def test_search_finds_what_reading_every_record_finds(records, actors):
    chance = random.Random(20240611)
    items = []
    for _ in range(120):
        values = {f: random_text(chance) for f in ("name", "notes", "secret")}
        values["stage"] = chance.choice([None, "won", "lost", "lead"])
        values["tags"] = chance.sample(["vip", "new"], chance.randint(0, 2)) or None
        items.append(records.create(actors["admin"], APP, "company", values))
    needles = {"won", "赢", "key", "客户", "%", "_", "a_", "%b", "华东", "Ab c"}
    for item in chance.sample(items, 40):
        value = item["name"] or item["notes"] or ""
        start = chance.randint(0, max(0, len(value) - 1))
        needles.add(value[start : start + chance.randint(1, 5)])
    for needle in sorted(n for n in needles if n.strip()):
        for actor, readable in ((actors["boss"], TEXTS), (actors["rep"], TEXTS[:3])):
            expected = reference(items, needle.strip(), readable)
            page = records.list(actor, APP, "company", ListQuery(q=needle, per_page=200))
            assert {i["id"] for i in page["items"]} == expected, (actor.username, needle)
            assert page["total"] == len(expected) and not page["total_is_estimate"]


# --- the index follows every way records are written ----------------------------------


def fts_ids(engine, needle: str) -> set[int]:
    """SQLite: what the FTS table itself holds for ``needle`` (deleted records too)."""
    with engine.connect() as conn:
        query = '{f_name f_notes f_email f_secret} : "' + needle.replace('"', '""') + '"'
        return set(
            conn.exec_driver_sql(
                'SELECT rowid FROM "fts_finder__company" WHERE "fts_finder__company" MATCH ?',
                (query,),
            ).scalars()
        )


def read_ids(engine, needle: str) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(text('SELECT * FROM "finder__company"')).mappings().all()
    return {r["id"] for r in rows if any(needle.lower() in (r[f] or "").lower() for f in TEXTS)}


def test_the_index_stays_in_step_with_every_write(engine, records, actors, tmp_path):
    admin = actors["admin"]
    first, second = add(records, admin, "Apple orchard", "Pear grove")
    records.update(admin, APP, "company", second, {"name": "Apple press", "notes": "apple juice"})
    records.update(admin, APP, "company", first, {"size": 3})  # no searched field changes
    records.delete(admin, APP, "company", first)
    assert found(records, admin, "apple") == {"Apple press"}
    records.restore(admin, APP, "company", first)
    assert found(records, admin, "apple") == {"Apple orchard", "Apple press"}
    records.create_many(admin, APP, "company", [{"name": "Apple pie"}, {"name": "Plum"}])
    path = tmp_path / "companies.csv"
    path.write_text("Name,Notes\nImported apple,x\n华东 apple,\nCherry,apple in the notes\n")
    assert import_file(records, admin, APP, "company", path).imported == 3
    expected = {
        "Apple orchard",
        "Apple press",
        "Apple pie",
        "Imported apple",
        "华东 apple",
        "Cherry",
    }
    assert found(records, admin, "apple") == expected
    assert found(records, admin, "华东 a") == {"华东 apple"}
    if engine.dialect.name == "sqlite":
        for needle in ("apple", "pear", "juice", "华东 a", "plum", "press"):
            assert fts_ids(engine, needle) == read_ids(engine, needle), needle


def test_without_its_index_search_still_works(engine, records, actors):
    """A database applied before search indexes existed: found by reading the rows."""
    add(records, actors["admin"], "Apple orchard", "Pear grove")
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for event_name in ("insert", "update", "delete"):
                conn.exec_driver_sql(f'DROP TRIGGER "fts_finder__company__{event_name}"')
            conn.exec_driver_sql('DROP TABLE "fts_finder__company"')
        else:
            for column in TEXTS:
                conn.exec_driver_sql(f'DROP INDEX "trgm_finder__company__{column}"')
    fresh = Records(engine)
    assert found(fresh, actors["admin"], "orchard") == {"Apple orchard"}


def plan_of(conn, statement) -> str:
    sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(conn.exec_driver_sql("EXPLAIN " + sql).scalars())


def test_a_search_of_three_characters_or_more_uses_the_index(engine, records, actors):
    add(records, actors["admin"], "Apple orchard", "Pear grove")
    with records.reading() as conn:
        runtime = records.runtime(APP, "company", conn)
        query = select(runtime.table.c.id)
        searched = plan_of(conn, query.where(search_condition(conn, runtime, "orchard")))
        short = plan_of(conn, query.where(search_condition(conn, runtime, "or")))
    if engine.dialect.name == "sqlite":
        assert "fts_finder__company VIRTUAL TABLE" in searched, searched
        assert "fts_finder__company" not in short
    else:
        for column in TEXTS:
            assert f"Bitmap Index Scan on trgm_finder__company__{column}" in searched, searched


# --- counts ----------------------------------------------------------------------------


@pytest.fixture
def statements(engine):
    seen: list[str] = []

    def remember(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", remember)
    yield seen
    event.remove(engine, "before_cursor_execute", remember)


def counts(seen: list[str]) -> int:
    return sum(1 for s in seen if "count(*)" in s.lower())


def test_a_short_page_is_not_counted(records, actors, statements):
    admin = actors["admin"]
    add(records, admin, "Acme one", "Acme two", "Acme three", "Other")
    statements.clear()
    page = records.list(admin, APP, "company", ListQuery(q="acme", per_page=10))
    assert (page["total"], page["total_is_estimate"], len(page["items"])) == (3, False, 3)
    assert counts(statements) == 0
    # The last page of several: its total is what came before and what it holds.
    statements.clear()
    page = records.list(admin, APP, "company", ListQuery(q="acme", per_page=2, page=2))
    assert (page["total"], len(page["items"]), counts(statements)) == (3, 1, 0)
    # A full page may have more after it: counted.
    statements.clear()
    page = records.list(admin, APP, "company", ListQuery(q="acme", per_page=2))
    assert (page["total"], len(page["items"]), counts(statements)) == (3, 2, 1)
    # Past the end nothing tells the total: counted.
    statements.clear()
    page = records.list(admin, APP, "company", ListQuery(per_page=2, page=9))
    assert (page["total"], page["items"], counts(statements)) == (4, [], 1)


def test_the_count_stops_at_the_cap_asked_for(records, actors):
    admin = actors["admin"]
    add(records, admin, *(f"Company {n}" for n in range(5)))
    page = records.list(admin, APP, "company", ListQuery(per_page=2), count_cap=3)
    assert (page["total"], page["total_is_estimate"]) == (3, True)
    pages = records.pages(
        admin, APP, "company", [ListQuery(per_page=2), ListQuery(q="Company 4")], count_cap=10
    )
    assert [(p["total"], p["total_is_estimate"]) for p in pages] == [(5, False), (1, False)]
    assert [i["name"] for i in pages[1]["items"]] == ["Company 4"]
