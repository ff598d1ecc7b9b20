"""Records a reference picker offers or shows: found by their title, limited to what one may read.

A picker shows a record by its title and hands the browser the record's fields
(``data-record``), so rules and lookups that follow the reference
(``account.tier``) are right the moment the user picks. Both come from ONE
query per target entity, built on the record service's own visibility query
(``:own``, row rules), and only fields the user may read are handed over.

The type-ahead searches the title field by substring, case-insensitively for
Latin letters; Chinese text matches by substring as typed (``华东`` finds
``上海华东贸易有限公司``), as the list's search does (``records.query.text_condition``,
through the search index). A number also finds the record with that id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, or_

from form_engine.values import browser_value
from metamodel.model import EntityModel
from records import access
from records.actor import Actor
from records.errors import Forbidden
from records.query import text_condition, visible
from records.service import Records

SEARCH_LIMIT = 20
MAX_SEARCH_CHARS = 200
# Ids a page can name at once: far above any form; beyond it the rest show as ids.
MAX_IDS = 1000
SYSTEM_FIELDS = ("id", "owner")


@dataclass(frozen=True)
class Picked:
    """A record as a picker shows it: id, title, and its readable fields as JSON."""

    id: int
    title: str
    record: str


def _columns(actor: Actor, entity: EntityModel, table) -> list:
    names = [f.name for f in entity.fields.values() if f.has_column and access.readable(actor, f)]
    return [table.c[name] for name in (*SYSTEM_FIELDS, *names)]


def _picked(entity: EntityModel, row: dict[str, Any]) -> Picked:
    title_field = entity.title_field
    title = row.get(title_field) if title_field else None
    text = str(title) if title not in (None, "") else f"#{row['id']}"
    record = json.dumps(browser_value(row), ensure_ascii=False, allow_nan=False)
    return Picked(row["id"], text, record)


def _readable_query(service: Records, actor: Actor, target: EntityModel, conn):
    runtime = service.runtime(target.app.name, target.name, conn)
    try:
        query = visible(actor, runtime, service.tables_for, service.context(actor))
    except Forbidden:
        return None, runtime
    return query.with_only_columns(*_columns(actor, runtime.entity, runtime.table)), runtime


def found(
    service: Records, actor: Actor, target: EntityModel, ids: Iterable[Any]
) -> dict[int, Picked]:
    """The records of ``target`` with these ids that ``actor`` may read (one query)."""
    wanted = sorted({i for i in ids if isinstance(i, int) and not isinstance(i, bool)})[:MAX_IDS]
    if not wanted:
        return {}
    with service.reading() as conn:
        query, runtime = _readable_query(service, actor, target, conn)
        if query is None:
            return {}
        rows = conn.execute(query.where(runtime.table.c.id.in_(wanted)))
        return {row.id: _picked(runtime.entity, dict(row._mapping)) for row in rows}


def search(service: Records, actor: Actor, target: EntityModel, text: str) -> list[Picked] | None:
    """Up to SEARCH_LIMIT records whose title holds ``text``; None if ``target`` is unreadable."""
    needle = text.replace("\x00", "").strip()[:MAX_SEARCH_CHARS]
    with service.reading() as conn:
        query, runtime = _readable_query(service, actor, target, conn)
        if query is None:
            return None
        if not needle:
            return []
        table, entity = runtime.table, runtime.entity
        title = entity.fields.get(entity.title_field or "")
        conditions = []
        if title is not None and title.has_column and access.readable(actor, title):
            conditions.append(text_condition(conn, runtime, [title], needle))
            order = (table.c[title.name], table.c.id)
        else:
            order = (table.c.id,)
        if needle.isascii() and needle.isdigit() and len(needle) < 19:
            conditions.append(table.c.id == int(needle))
        chosen = query.where(or_(*conditions) if conditions else false())
        rows = conn.execute(chosen.order_by(*order).limit(SEARCH_LIMIT))
        return [_picked(entity, dict(row._mapping)) for row in rows]
