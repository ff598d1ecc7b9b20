"""The discount approval of the sales_pipeline example, with a clock the tests control.

Publishing the example costs about a second on PostgreSQL, most of this suite's
time if every test paid it. So each app document is published once per session
into a database of its own, and every test gets that database emptied: no
records, users, approvals or history, only the published app. A test that
publishes a version of its own overrides ``engine`` to get a private database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from app.accounts import create_user
from metamodel import publish, store
from metamodel.db import make_engine
from metamodel.sqltypes import UTC
from metamodel.system_tables import app_versions, apps, meta_state
from metamodel.system_tables import users as users_table
from records.actor import Actor
from records.service import Records
from tests.conftest import POSTGRES_SERVER
from workflow_engine import Workflows

EXAMPLE = Path(__file__).parents[2].parent / "shared" / "examples" / "sales_pipeline.json"
APP = "sales_pipeline"
FAST_HASH = "pbkdf2:sha256:1000"
# (username, roles, manager): boss <- wang <- li, zhao
PEOPLE = [
    ("admin", ["admin"], None),
    ("boss", ["sales_manager"], None),
    ("wang", ["sales_manager"], "boss"),
    ("li", ["sales"], "wang"),
    ("zhao", ["sales"], "wang"),
    ("chen", ["finance"], None),
    ("qian", ["finance"], None),
]


class Clock:
    """A frozen clock: time moves only when a test says so."""

    def __init__(self):
        self.now = dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def load_example() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


# What a published app is made of; emptying a database keeps these.
KEPT = {apps.name, app_versions.name, meta_state.name}


def empty(engine) -> None:
    names = [n for n in inspect(engine).get_table_names() if n not in KEPT]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            quoted = ", ".join(f'"{name}"' for name in names)
            conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            # The search index (FTS tables and their shadow tables) follows the
            # records' own deletes, by its triggers.
            index = "SELECT name FROM pragma_table_list WHERE type IN ('virtual', 'shadow')"
            skipped = set(conn.exec_driver_sql(index).scalars())
            for name in names:
                if name not in skipped:
                    conn.execute(text(f'DELETE FROM "{name}"'))


@pytest.fixture(scope="session")
def published(db_kind, tmp_path_factory):
    """``published(doc)``: an engine on a database where ``doc`` is published."""
    engines: dict[str, object] = {}
    schemas: list[str] = []
    server = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")

    def get(doc: dict):
        key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
        if key not in engines:
            if db_kind == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('wf') / f'{key}.db'}"
            else:
                schema = "wf_" + uuid.uuid4().hex[:16]
                with server.connect() as conn:
                    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                schemas.append(schema)
                url = f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
            engines[key] = make_engine(url)
            publish.apply_document(engines[key], doc)
        return engines[key]

    yield get
    for engine in engines.values():
        engine.dispose()
    with server.connect() as conn:
        for schema in schemas:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    server.dispose()


@pytest.fixture
def example_doc():
    return load_example()


@pytest.fixture
def engine(published, example_doc):
    engine = published(example_doc)
    empty(engine)
    return engine


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def people(engine):
    store.ensure_system_tables(engine)
    with engine.begin() as conn:
        for name, roles, manager in PEOPLE:
            create_user(conn, name, roles, password="pw", manager=manager, method=FAST_HASH)
    with engine.connect() as conn:
        rows = conn.execute(select(users_table.c.id, users_table.c.username, users_table.c.roles))
        return {row.username: Actor(row.id, row.username, frozenset(row.roles)) for row in rows}


@pytest.fixture
def records(engine, clock, people):
    return Records(engine, clock=clock)


@pytest.fixture
def flow(records):
    return Workflows(records)


@pytest.fixture
def account(records, people):
    return records.create(
        people["admin"], APP, "account", {"name": "Acme", "account_manager": people["zhao"].id}
    )


@pytest.fixture
def make_deal(records, people, account):
    def make(discount=20, owner="li", **values) -> int:
        deal = records.create(
            people[owner],
            APP,
            "deal",
            {"title": f"Deal {discount}%", "account": account["id"], "discount_pct": discount}
            | values,
        )
        return deal["id"]

    return make


def waiting(flow, actor) -> list[int]:
    """Ids of the open tasks waiting for ``actor``."""
    return [item["id"] for item in flow.inbox(actor, "waiting")]


def state(records, people, deal_id) -> str:
    return records.get(people["admin"], APP, "deal", deal_id)["approval_state"]
