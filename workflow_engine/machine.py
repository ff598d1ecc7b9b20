"""Transitions: may this one fire now, and if not, why not.

The checks run in a fixed order and each failed check names itself:

1. ``state``: the record is in one of the transition's ``from`` states (a record
   without a state is in the initial one);
2. ``role``: the actor holds one of its ``roles`` (``$owner``: owns the record);
   a transition without roles is for whoever may update the record; admin may
   fire anything;
3. ``when``: its guard holds for the record (else :class:`GuardFailed`);
4. ``approval``: no approval is open on the record — while one is, the record
   moves only through that approval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from metamodel.errors import CrmError, Problem
from metamodel.jsonlogic import RuleError, variables
from metamodel.messages import Message, joined
from metamodel.sqltypes import UTC
from records.errors import Forbidden, RecordConflict, ValidationFailed
from records.runtime import EntityRuntime

from .calls import Call
from .definitions import OWNER, Transition, Workflow
from .paths import holds


class GuardFailed(ValidationFailed):
    """A transition's condition does not hold for the record (a ``when`` refusal).

    It is the record's data that refuses, not the request, so the API answers 409;
    the problem's path names the field the condition reads, for a form to show it.
    """

    code = "guard_failed"


@dataclass(frozen=True)
class Refusal:
    check: str
    message: str
    path: str = ""

    def error(self) -> CrmError:
        if self.check == "role":
            return Forbidden(self.message)
        if self.check == "when":
            return GuardFailed([Problem(self.path, self.message)])
        return RecordConflict(self.message)


def refusals(
    call: Call,
    runtime: EntityRuntime,
    workflow: Workflow,
    transition: Transition,
    record: dict,
    waiting: str | None,
) -> Iterator[Refusal]:
    """Why ``transition`` can't fire on ``record`` now, first reason first.

    ``waiting`` describes the open approval of the record, if there is one.
    """
    label = Message("{entity} {id}", entity=runtime.entity.named, id=record["id"])
    state = workflow.state_of(record)
    if state not in transition.sources:
        sources = joined([workflow.state_named(s) for s in transition.sources])
        yield Refusal(
            "state",
            Message(
                "{record} is {state}; '{transition}' only applies to records that are {states}",
                record=label,
                state=workflow.state_named(state),
                transition=transition.named,
                states=sources,
            ),
        )
    if not may_fire(call, runtime, transition, record):
        yield Refusal(
            "role",
            Message(
                "only {who} may '{transition}' {record}",
                who=who(transition),
                transition=transition.named,
                record=label,
            ),
        )
    reason = guard_refusal(call, runtime, transition, record)
    if reason is not None:
        yield reason
    if waiting is not None:
        yield Refusal(
            "approval",
            Message(
                "{record} is waiting for approval ({waiting}); it moves on when the approval "
                "is decided or withdrawn",
                record=label,
                waiting=waiting,
            ),
        )


def may_fire(call: Call, runtime: EntityRuntime, transition: Transition, record: dict) -> bool:
    actor = call.actor
    if actor.is_admin:
        return True
    if not transition.roles:
        return call.may("update", runtime, record)
    if OWNER in transition.roles and record.get("owner") == actor.id:
        return True
    return bool(actor.roles & set(transition.roles))


def who(transition: Transition) -> Message:
    if not transition.roles:
        return Message("users who may edit the record")
    parts = [
        Message("the record's owner") if r == OWNER else Message("role {role}", role=r)
        for r in transition.roles
    ]
    combined = parts[0]
    for part in parts[1:]:
        combined = Message("{one} or {other}", one=combined, other=part)
    return combined


def guard_refusal(
    call: Call, runtime: EntityRuntime, transition: Transition, record: dict
) -> Refusal | None:
    if transition.when is None:
        return None
    read = sorted({name for name, _ in variables(transition.when) if name and name[0] != "$"})
    path = f"/{read[0].split('.')[0]}" if read else ""
    try:
        ok = holds(
            call.conn, call.tables_for, runtime.entity, record, transition.when, call.context()
        )
    except RuleError as error:
        return Refusal(
            "when",
            Message(
                "the condition of '{transition}' fails: {error}",
                transition=transition.named,
                error=str(error),
            ),
            path,
        )
    if ok:
        return None
    subject = {"transition": transition.named, "entity": runtime.entity.named, "id": record["id"]}
    if read:
        message = Message(
            "the condition of '{transition}' does not hold for {entity} {id} (it reads {fields})",
            fields=", ".join(read),
            **subject,
        )
    else:
        message = Message(
            "the condition of '{transition}' does not hold for {entity} {id}", **subject
        )
    return Refusal("when", message, path)


def assigned_values(runtime: EntityRuntime, transition: Transition, call: Call) -> dict:
    """The transition's ``set``: literals, ``$now``/``$today`` and ``$user`` (who completes it)."""
    values: dict[str, Any] = {}
    for name, value in transition.set.items():
        fld = runtime.entity.fields.get(name)
        if fld is None or not fld.has_column:
            continue
        kind = fld.value_spec["type"]
        if value == "$user":
            values[name] = call.actor.id
        elif value in ("$now", "$today"):
            if kind == "date":
                values[name] = call.now.date()
            elif value == "$now":
                values[name] = call.now
            else:
                values[name] = dt.datetime.combine(call.now.date(), dt.time(0), UTC)
        else:
            values[name] = value
    return values


def move(
    call: Call,
    runtime: EntityRuntime,
    workflow: Workflow,
    record: dict,
    state: str,
    *,
    values: dict | None = None,
    comment: str | None = None,
) -> dict:
    """Put ``record`` in ``state`` (plus ``values``) through the record service.

    ``record`` is the row this call read and locked: the service does not read it
    again. Returns the row as written (its new version included).
    """
    return call.records.system_update(
        call.conn,
        call.actor,
        runtime,
        record["id"],
        {workflow.state_field: state, **(values or {})},
        comment=comment,
        current=record,
    )
