"""Small app documents, rows and snapshots for migration tests."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from sqlalchemy import MetaData, Table, insert, inspect, select

from metamodel import store
from metamodel.model import AppModel
from metamodel.sqltypes import UTC
from metamodel.tables import build_schema

APP = "shop"


def field(name: str, type_: str = "text", **extra) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def entity(name: str, *fields: dict, **extra) -> dict[str, Any]:
    return {"name": name, "fields": list(fields), **extra}


def document(*entities: dict, version: str = "1.0.0", name: str = APP, **extra) -> dict[str, Any]:
    return {
        "format": "crm-app/1",
        "name": name,
        "version": version,
        "entities": list(entities),
        **extra,
    }


def bump(doc: dict, version: str) -> dict:
    changed = copy.deepcopy(doc)
    changed["version"] = version
    return changed


def fields_of(doc: dict, entity_name: str) -> list[dict]:
    return next(e for e in doc["entities"] if e["name"] == entity_name)["fields"]


def live_tables(engine, app: str = APP):
    with engine.connect() as conn:
        stored = store.current(conn, app)
    model = AppModel.from_document(stored.document)
    return build_schema(model, stored.archive, engine.dialect.name)


def insert_rows(engine, entity_name: str, rows: list[dict], app: str = APP) -> list[int]:
    table = live_tables(engine, app).table(entity_name)
    now = dt.datetime.now(UTC)
    ids = []
    with engine.begin() as conn:
        for row in rows:
            values = {"created_at": now, "updated_at": now, "version": 1, **row}
            ids.append(
                conn.execute(insert(table).values(values).returning(table.c.id)).scalar_one()
            )
    return ids


def read_column(engine, entity_name: str, column: str, app: str = APP) -> dict[int, Any]:
    table = live_tables(engine, app).table(entity_name)
    with engine.connect() as conn:
        return dict(conn.execute(select(table.c.id, table.c[column]).order_by(table.c.id)).all())


def virtual_tables(conn) -> set[str]:
    """SQLite's FTS tables (the search index): not scanned, their shadow tables hold their rows."""
    if conn.dialect.name != "sqlite":
        return set()
    found = conn.exec_driver_sql("SELECT name FROM pragma_table_list WHERE type = 'virtual'")
    return set(found.scalars())


def snapshot(engine) -> dict[str, Any]:
    """Everything a refused change must leave untouched: schema, rows and versions."""
    inspector = inspect(engine)
    state: dict[str, Any] = {}
    with engine.connect() as conn:
        skipped = virtual_tables(conn)
        for name in sorted(set(inspector.get_table_names()) - skipped):
            columns = inspector.get_columns(name)
            indexes = sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            )
            table = Table(name, MetaData(), autoload_with=conn)
            order = list(table.primary_key.columns) or [next(iter(table.columns))]
            rows = conn.execute(select(table).order_by(*order)).all()
            state[name] = (
                [(c["name"], str(c["type"]), c["nullable"]) for c in columns],
                indexes,
                [tuple(map(repr, row)) for row in rows],
            )
    return state
