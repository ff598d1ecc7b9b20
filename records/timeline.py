"""The customer 360 view: everything that happened around one record, newest first.

Sources come from the entity's ``timeline.sources``: records of other entities
that reference this one (interactions, deals, tickets ...), each placed at its
own moment (its first date-time field, e.g. when a call took place, else when
it was created). The record's audit events join them; workflow events add
themselves through the same audit log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from metamodel.model import EntityModel
from metamodel.sqltypes import UTC
from metamodel.text import localise

from . import access, audit
from .actor import Actor
from .rule_data import rule_data
from .serialize import json_value

LIMIT = 200


def moment_field(entity: EntityModel) -> str:
    for fld in entity.fields.values():
        if fld.has_column and fld.value_spec["type"] == "datetime":
            return fld.name
    return "created_at"


def _sort_key(item: dict) -> str:
    return item["at"] or ""


def timeline(
    conn: Connection, service, actor: Actor, runtime, record_id: int
) -> list[dict[str, Any]]:
    entity = runtime.entity
    items: list[dict[str, Any]] = []
    context = service.context(actor)
    for source in entity.doc.get("timeline", {}).get("sources", []):
        source_runtime = service.runtime(entity.app.name, source["entity"], conn)
        if access.grant(actor, source_runtime.entity, "read") is None:
            continue
        table = source_runtime.table
        moment = moment_field(source_runtime.entity)
        rows = conn.execute(
            select(table)
            .where(table.c[source["via"]] == record_id, table.c.deleted_at.is_(None))
            .order_by(table.c[moment].desc(), table.c.id.desc())
            .limit(LIMIT)
        )
        title_field = source_runtime.entity.title_field
        for row in rows:
            record = dict(row._mapping)

            def data_for(rule, record=record, entity=source_runtime.entity):
                return rule_data(conn, entity, record, rule, service.tables_for)

            if not access.may(actor, source_runtime.entity, "read", record, context, data_for):
                continue
            at = record.get(moment) or record["created_at"]
            if isinstance(at, dt.date) and not isinstance(at, dt.datetime):
                at = dt.datetime.combine(at, dt.time(0), UTC)
            items.append(
                {
                    "kind": "record",
                    "entity": source["entity"],
                    "entity_label": localise(source_runtime.entity.label),
                    "id": record["id"],
                    "title": str(record.get(title_field) or f"#{record['id']}")
                    if title_field
                    else f"#{record['id']}",
                    "at": json_value(at),
                    "channel": record.get("channel"),
                    "owner": record.get("owner"),
                }
            )
    items += audit.events(conn, entity.app.name, entity.name, record_id)
    items.sort(key=_sort_key, reverse=True)
    return items[:LIMIT]
