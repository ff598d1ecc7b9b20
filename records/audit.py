"""The audit log: who changed what, when, field by field, before and after."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert, select

from metamodel.sqltypes import UTC
from metamodel.system_tables import audit_log

from .actor import Actor
from .serialize import json_value


def diff(before: dict[str, Any], after: dict[str, Any], names) -> dict[str, list]:
    """``{field: [before, after]}`` for every field in ``names`` whose value changed."""
    changes = {}
    for name in names:
        old, new = json_value(before.get(name)), json_value(after.get(name))
        if old != new:
            changes[name] = [old, new]
    return changes


# Built once: its compiled form is then found in SQLAlchemy's cache at once.
_INSERT = insert(audit_log)


def record_event(
    conn: Connection,
    *,
    app: str,
    entity: str,
    record_id: int,
    action: str,
    actor: Actor,
    changes: dict,
    comment: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    conn.execute(
        _INSERT,
        {
            "app": app,
            "entity": entity,
            "record_id": record_id,
            "action": action,
            "actor_id": actor.id,
            "at": at or dt.datetime.now(UTC),
            "changes": changes,
            "comment": comment,
        },
    )


def events(conn: Connection, app: str, entity: str, record_id: int) -> list[dict[str, Any]]:
    """The record's audit events, newest first."""
    rows = conn.execute(
        select(audit_log)
        .where(
            audit_log.c.app == app, audit_log.c.entity == entity, audit_log.c.record_id == record_id
        )
        .order_by(audit_log.c.id.desc())
    )
    return [
        {
            "kind": "audit",
            "action": row.action,
            "actor_id": row.actor_id,
            "at": json_value(row.at),
            "changes": row.changes,
            "comment": row.comment,
        }
        for row in rows
    ]
