"""Notifications: what a user should look at, kept until they read it.

Kinds: ``assigned`` (a task is yours), ``cc`` (for your information),
``approved``, ``rejected``, ``sent_back``, ``withdrawn``, ``escalated``,
``comment`` and ``transition`` (a record moved and you asked to know). Nobody is
told about their own action.

Each notification a call saves is also kept on the call as a :class:`Notice`, so
the engine can hand them to a delivery channel (e-mail) once the transaction
has committed: nobody is mailed about a change that was rolled back.

A notification's text is a :class:`~metamodel.messages.Message`: its English is
stored (and is what the API says), and so are its template and values, so a
page shows it in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from metamodel.messages import Message, message_from_json
from metamodel.system_tables import notifications
from records.serialize import json_value

from .calls import Call


@dataclass(frozen=True)
class Notice:
    """One saved notification, as a delivery channel needs it."""

    user_id: int
    kind: str
    message: str
    app: str
    entity: str
    record_id: int
    approval_id: int | None = None


# A delivery channel: called after the commit with the notices of one transaction.
Deliver = Callable[[list[Notice]], None]


def send(
    call: Call,
    user_ids: Iterable[int | None],
    kind: str,
    message: str,
    *,
    app: str,
    entity: str,
    record_id: int,
    approval_id: int | None = None,
) -> None:
    recipients = [u for u in dict.fromkeys(user_ids) if u is not None and u != call.actor.id]
    if not recipients:
        return
    # Kept on the call and written in one INSERT when the call ends (Call.flush).
    call.unsaved.extend(
        {
            "user_id": user,
            "kind": kind,
            "app": app,
            "entity": entity,
            "record_id": record_id,
            "approval_id": approval_id,
            "message": str(message),
            "message_parts": message.as_json() if isinstance(message, Message) else None,
            "created_at": call.now,
        }
        for user in recipients
    )
    call.sent.extend(
        Notice(user, kind, message, app, entity, record_id, approval_id) for user in recipients
    )


def listed(conn: Connection, user_id: int, *, unread_only: bool, limit: int) -> list[dict]:
    query = select(notifications).where(notifications.c.user_id == user_id)
    if unread_only:
        query = query.where(notifications.c.read_at.is_(None))
    rows = conn.execute(query.order_by(notifications.c.id.desc()).limit(limit))
    return [_listed(dict(row._mapping)) for row in rows]


def _listed(row: dict) -> dict:
    """The notification as the API shows it; ``message`` is a Message where one was kept."""
    parts = row.pop("message_parts")
    item = json_value(row)
    item["message"] = message_from_json(parts) or item["message"]
    return item


def unread(conn: Connection, user_id: int) -> int:
    return conn.execute(
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.user_id == user_id, notifications.c.read_at.is_(None))
    ).scalar_one()


def mark_read(call: Call, ids: Iterable[int] | None) -> int:
    query = update(notifications).where(
        notifications.c.user_id == call.actor.id, notifications.c.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(notifications.c.id.in_(list(ids)))
    return call.conn.execute(query.values(read_at=call.now)).rowcount
