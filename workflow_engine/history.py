"""Workflow events in the record's audit log, so its history and timeline show them.

Each event names the action (``transition``, ``submit``, ``approve``, ``reject``,
``send_back``, ``transfer``, ``add_approver``, ``comment``, ``withdraw``,
``escalate``), who acted and on whose behalf, when, the record's state before and
after (``changes.state``) and what else a reader needs (``changes.details``:
workflow, transition, step, task ...).
"""

from __future__ import annotations

from records.serialize import json_value

from . import statements
from .calls import Call


def record(
    call: Call,
    *,
    app: str,
    entity: str,
    record_id: int,
    action: str,
    state: tuple[str | None, str | None],
    details: dict,
    comment: str | None = None,
    on_behalf_of: int | None = None,
) -> None:
    details = {k: v for k, v in details.items() if v is not None}
    if on_behalf_of is not None:
        details["on_behalf_of"] = on_behalf_of
    call.conn.execute(
        statements.insert_event,
        {
            "app": app,
            "entity": entity,
            "record_id": record_id,
            "action": action,
            "actor_id": call.actor.id,
            "on_behalf_of": on_behalf_of,
            "at": call.now,
            "changes": {"state": list(state), "details": json_value(details)},
            "comment": comment,
        },
    )
