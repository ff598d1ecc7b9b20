from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app.accounts import create_user
from form_engine import FormCache
from metamodel import publish, store
from metamodel.model import AppModel
from metamodel.sqltypes import UTC
from metamodel.system_tables import users as users_table
from metamodel.validate import validate_document
from records.actor import Actor
from records.service import Records

HERE = Path(__file__).parent
EXAMPLE = HERE.parents[1].parent / "shared" / "examples" / "sales_pipeline.json"
NOW = dt.datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
CONTEXT = {"user": {"id": 7, "roles": ["sales"], "username": "li"}, "now": NOW, "today": NOW.date()}
FAST_HASH = "pbkdf2:sha256:1000"


def model(doc: dict) -> AppModel:
    """The model of a document that must be valid (the engine trusts validated documents)."""
    assert validate_document(doc) == []
    return AppModel.from_document(doc)


@pytest.fixture
def sales_doc() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def sales(sales_doc) -> AppModel:
    return model(sales_doc)


@pytest.fixture
def kit_doc() -> dict:
    return json.loads((HERE / "kit.json").read_text(encoding="utf-8"))


@pytest.fixture
def kit(kit_doc) -> AppModel:
    return model(kit_doc)


@pytest.fixture
def cache() -> FormCache:
    return FormCache()


def with_form(doc: dict, form: dict) -> dict:
    changed = copy.deepcopy(doc)
    changed.setdefault("forms", []).append(form)
    return changed


@pytest.fixture
def records(engine, sales_doc):
    publish.apply_document(engine, sales_doc)
    return Records(engine, clock=lambda: NOW)


@pytest.fixture
def admin(engine) -> Actor:
    store.ensure_system_tables(engine)
    with engine.begin() as conn:
        create_user(conn, "admin", ["admin"], password="pw", method=FAST_HASH)
    with engine.connect() as conn:
        row = conn.execute(
            select(users_table.c.id, users_table.c.username).where(
                users_table.c.username == "admin"
            )
        ).one()
    return Actor(row.id, row.username, frozenset({"admin"}))
