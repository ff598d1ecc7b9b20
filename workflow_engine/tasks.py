"""Approval tasks: one row per person's part in an approval.

A task is a decision to take (kind ``approve``) or a copy for information (kind
``cc``). Status: ``open`` (to decide), ``waiting`` (a later level of a chain of
managers, not yet anyone's turn), ``approved``, ``rejected``, ``sent_back``,
``transferred`` (handed to someone else, who got a task of the same seat), and
``closed`` (no longer needed: the step or the approval was decided without it).

Tasks that stand for the same approver share a ``seat``: a transfer keeps the
seat. A step counts seats, not tasks. ``round`` ties a task to one entry into
its step; sending an approval back starts a new round.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select, update

from metamodel.system_tables import approval_tasks

from .calls import Call
from .definitions import Step
from .delegations import delegate_of

APPROVE, CC = "approve", "cc"
OPEN, WAITING = "open", "waiting"
LIVE = (OPEN, WAITING)


def get(conn: Connection, task_id: int) -> dict | None:
    row = conn.execute(select(approval_tasks).where(approval_tasks.c.id == task_id)).first()
    return dict(row._mapping) if row else None


def of_approval(
    conn: Connection, approval_id: int, *, round: int | None = None, kind: str | None = APPROVE
) -> list[dict]:
    query = select(approval_tasks).where(approval_tasks.c.approval_id == approval_id)
    if round is not None:
        query = query.where(approval_tasks.c.round == round)
    if kind is not None:
        query = query.where(approval_tasks.c.kind == kind)
    return [dict(r._mapping) for r in conn.execute(query.order_by(approval_tasks.c.id))]


def due(step: Step, now: dt.datetime) -> dt.datetime | None:
    return now + dt.timedelta(hours=step.due_hours) if step.due_hours else None


def create(
    call: Call,
    approval: dict,
    step: Step | None,
    assignee: int,
    *,
    kind: str = APPROVE,
    source: str = "assigned",
    status: str = OPEN,
    level: int = 0,
    seat: int | None = None,
    due_at: dt.datetime | None = None,
    escalated_at: dt.datetime | None = None,
) -> dict:
    """A new task; an open one goes to the assignee's delegate when they have one now."""
    on_behalf_of = None
    if status == OPEN and kind == APPROVE:
        delegate = delegate_of(call.conn, assignee, call.now)
        if delegate is not None:
            assignee, on_behalf_of = delegate, assignee
    row = {
        "approval_id": approval["id"],
        "step_index": step.index if step else -1,
        "step_name": step.name if step else "cc",
        "round": approval["round"] if step else 0,
        "seat": seat,
        "level": level,
        "kind": kind,
        "source": source,
        "assignee_id": assignee,
        "on_behalf_of": on_behalf_of,
        "status": status,
        "created_at": call.now,
        "due_at": due_at,
        "escalated_at": escalated_at,
    }
    task_id = call.conn.execute(
        insert(approval_tasks).values(row).returning(approval_tasks.c.id)
    ).scalar_one()
    if seat is None:
        row["seat"] = task_id
        call.conn.execute(
            update(approval_tasks).where(approval_tasks.c.id == task_id).values(seat=task_id)
        )
    return {**row, "id": task_id}


def activate(call: Call, task: dict, step: Step) -> dict:
    """A waiting level's turn: open its task (to the delegate, if one is named now)."""
    values = {"status": OPEN, "due_at": due(step, call.now), "created_at": call.now}
    delegate = delegate_of(call.conn, task["assignee_id"], call.now)
    if delegate is not None:
        values.update(assignee_id=delegate, on_behalf_of=task["assignee_id"])
    call.conn.execute(
        update(approval_tasks).where(approval_tasks.c.id == task["id"]).values(values)
    )
    return {**task, **values}


def decide(call: Call, task: dict, status: str, comment: str | None) -> None:
    """Record the assignee's (or an admin's) decision on an open task."""
    call.conn.execute(
        update(approval_tasks)
        .where(approval_tasks.c.id == task["id"], approval_tasks.c.status == OPEN)
        .values(status=status, acted_at=call.now, acted_by=call.actor.id, comment=comment)
    )


def close(
    call: Call,
    approval_id: int,
    *,
    status: str = "closed",
    kind: str | None = APPROVE,
    seat: int | None = None,
    round: int | None = None,
) -> list[dict]:
    """Close the live tasks selected; returns them as they were."""
    query = select(approval_tasks).where(
        approval_tasks.c.approval_id == approval_id, approval_tasks.c.status.in_(LIVE)
    )
    if kind is not None:
        query = query.where(approval_tasks.c.kind == kind)
    if seat is not None:
        query = query.where(approval_tasks.c.seat == seat)
    if round is not None:
        query = query.where(approval_tasks.c.round == round)
    closing = [dict(r._mapping) for r in call.conn.execute(query)]
    if closing:
        call.conn.execute(
            update(approval_tasks)
            .where(approval_tasks.c.id.in_([t["id"] for t in closing]))
            .values(status=status, acted_at=call.now)
        )
    return closing
