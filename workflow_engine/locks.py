"""The edit lock: records under approval, or in a state that is not editable, stay as they are.

:func:`guard` is registered in ``Records.guards``, so every edit and delete of
the record service passes it; the engine's own moves go through
``system_update``, which is not guarded. While an approval is open only the
approvers of its current step may change, and only the step's
``editable_fields``; nobody deletes the record. Otherwise a record whose state
says ``editable: false`` is not edited or deleted at all.
"""

from __future__ import annotations

from sqlalchemy import Connection

from metamodel.messages import Message
from records.actor import Actor
from records.errors import RecordConflict
from records.runtime import EntityRuntime

from . import statements
from .definitions import snapshot, workflows_of


def guard(
    conn: Connection,
    actor: Actor,
    runtime: EntityRuntime,
    current: dict,
    changed: set[str] | None,
) -> None:
    """Refuse (RecordConflict) an edit of ``changed`` fields, or a delete (None)."""
    workflows = workflows_of(runtime.entity)
    if not workflows:
        return
    name = Message(
        "this {entity}",
        entity=runtime.entity.noun,
    )
    approval = conn.execute(
        statements.open_approval,
        {
            statements.APP: runtime.app_name,
            statements.ENTITY: runtime.name,
            statements.RECORD: current["id"],
        },
    ).first()
    if approval is not None:
        _under_approval(conn, actor, runtime, approval, changed, name)
        return
    for workflow in workflows:
        state = workflow.state_of(current)
        if not workflow.editable(state):
            said = {"record": name, "state": workflow.state_named(state)}
            if changed is None:
                raise RecordConflict(
                    Message(
                        "{record} is {state}, and records in that state can't be deleted", **said
                    )
                )
            raise RecordConflict(
                Message("{record} is {state}, and records in that state can't be changed", **said)
            )


def _under_approval(conn, actor, runtime, approval, changed, name) -> None:
    transition = snapshot(runtime.entity, approval.definition).transitions[approval.transition]
    step = transition.steps[approval.step_index]
    waiting = Message("{record} is waiting for approval (step {step})", record=name, step=step.name)
    if changed is None:
        raise RecordConflict(
            Message("{waiting}; it can't be deleted until the approval is decided", waiting=waiting)
        )
    fields = runtime.entity.fields
    edited = {n for n in changed if not (n in fields and fields[n].computed)}
    deciders = set(
        conn.execute(
            statements.deciders, {statements.ID: approval.id, "_round": approval.round}
        ).scalars()
    )
    allowed = set(step.editable_fields)
    if actor.id in deciders and edited <= allowed:
        return
    if not allowed:
        raise RecordConflict(
            Message("{waiting}; it can't be changed until the approval is decided", waiting=waiting)
        )
    listed = ", ".join(sorted(allowed))
    if actor.id in deciders:
        outside = ", ".join(sorted(edited - allowed))
        raise RecordConflict(
            Message(
                "{waiting}; its approvers may change only {fields}, not {others}",
                waiting=waiting,
                fields=listed,
                others=outside,
            )
        )
    raise RecordConflict(
        Message("{waiting}; only its approvers may change {fields}", waiting=waiting, fields=listed)
    )
