from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.accounts import create_user
from metamodel import publish, store
from records.actor import Actor
from records.service import Records

EXAMPLE = Path(__file__).parents[2].parent / "shared" / "examples" / "sales_pipeline.json"
APP = "sales_pipeline"
# Tests need hashes, not strong ones.
FAST_HASH = "pbkdf2:sha256:1000"


@pytest.fixture
def example_doc():
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def records(engine, example_doc):
    publish.apply_document(engine, example_doc)
    return Records(engine)


@pytest.fixture
def users(engine):
    """Users of the example's roles, as actors."""
    store.ensure_system_tables(engine)
    actors = {}
    with engine.begin() as conn:
        for name, roles in [
            ("admin", ["admin"]),
            ("li", ["sales"]),
            ("zhao", ["sales"]),
            ("wang", ["sales_manager"]),
            ("chen", ["finance"]),
        ]:
            create_user(conn, name, roles, password="pw", method=FAST_HASH)
    from sqlalchemy import select

    from metamodel.system_tables import users as users_table

    with engine.connect() as conn:
        for row in conn.execute(
            select(users_table.c.id, users_table.c.username, users_table.c.roles)
        ):
            actors[row.username] = Actor(row.id, row.username, frozenset(row.roles))
    return actors
