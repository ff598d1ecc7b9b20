"""Deadlines: an overdue step is escalated, once, and the escalation is recorded.

A step with ``due_hours`` gives each task a ``due_at``. :func:`tick` (run it
from cron or a worker, as often as you like, on as many machines as you like)
finds open tasks past their ``due_at`` that were not escalated yet, and for
each approval concerned, in its own transaction: locks the approval, marks the
tasks escalated with a conditional UPDATE (``escalated_at IS NULL``) — so a
second tick, here or elsewhere, finds nothing left to do — and gives the step's
``escalate_to`` users a task that decides the step on its own. Without
``escalate_to`` the overdue approvers are reminded instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select, update

from metamodel.messages import Message
from metamodel.system_tables import approval_tasks, approvals
from records.actor import SYSTEM
from records.service import Records

from . import tasks
from .approvers import resolve
from .calls import Call
from .cases import locked
from .notifications import Notice


def overdue_approvals(records: Records, now: dt.datetime) -> list[int]:
    with records.reading() as conn:
        return list(
            conn.execute(
                select(approval_tasks.c.approval_id)
                .join(approvals, approvals.c.id == approval_tasks.c.approval_id)
                .where(
                    approvals.c.status == "open",
                    approval_tasks.c.status == tasks.OPEN,
                    approval_tasks.c.kind == tasks.APPROVE,
                    approval_tasks.c.escalated_at.is_(None),
                    approval_tasks.c.due_at < now,
                )
                .distinct()
                .order_by(approval_tasks.c.approval_id)
            ).scalars()
        )


def tick(
    records: Records,
    now: dt.datetime | None = None,
    *,
    deliver: Callable[[list[Notice]], None] | None = None,
) -> int:
    """Escalate every overdue task; returns how many this call escalated.

    ``deliver`` gets each approval's notifications once its transaction committed.
    """
    now = now or records.clock()
    escalated = 0
    for approval_id in overdue_approvals(records, now):
        with records.writing() as conn:
            call = Call(conn, records, SYSTEM, now)
            escalated += escalate(call, approval_id)
            call.flush()
        if deliver is not None:
            deliver(call.sent)
    return escalated


def escalate(call: Call, approval_id: int) -> int:
    case = locked(call, approval_id)
    if case.row["status"] != "open":
        return 0
    late = [
        t
        for t in case.tasks_where(round=case.row["round"])
        if t["status"] == tasks.OPEN
        and t["escalated_at"] is None
        and t["due_at"] is not None
        and t["due_at"] < call.now
    ]
    marked = [t for t in late if _mark(call, t)]
    if not marked:
        return 0
    step = case.step
    holding = {
        t["assignee_id"]
        for t in case.tasks_where(round=case.row["round"])
        if t["status"] in tasks.LIVE
    }
    targets = [
        u
        for u in resolve(call.conn, step.escalate_to, case.subject, call.names)
        if u not in holding
    ]
    late_names = ", ".join(call.usernames([t["assignee_id"] for t in marked]).values())
    level = min(t["level"] for t in marked)
    rows = [
        tasks.new(call, case.row, step, user, source="escalated", level=level) for user in targets
    ]
    opened = [new["assignee_id"] for new in tasks.create(call, case.all_tasks, rows)]
    if opened:
        message = Message(
            "the approval of {record} ({transition}, step {step}) is overdue with {users}; "
            "it is escalated to you and you may decide the step",
            record=case.title,
            transition=case.transition.named,
            step=step.name,
            users=late_names,
        )
        case.notify(opened, "escalated", message)
    else:
        message = Message(
            "your approval of {record} ({transition}) is overdue",
            record=case.title,
            transition=case.transition.named,
        )
        case.notify([t["assignee_id"] for t in marked], "escalated", message)
    case.log(
        "escalate",
        case.state,
        step=step.name,
        tasks=[t["id"] for t in marked],
        overdue=late_names,
        to=list(call.usernames(opened).values()),
    )
    return len(marked)


def _mark(call: Call, task: dict) -> bool:
    """Claim the escalation of one task; False when another tick already did."""
    done = call.conn.execute(
        update(approval_tasks)
        .where(
            approval_tasks.c.id == task["id"],
            approval_tasks.c.status == tasks.OPEN,
            approval_tasks.c.escalated_at.is_(None),
        )
        .values(escalated_at=call.now)
    )
    if done.rowcount != 1:
        return False
    task["escalated_at"] = call.now
    return True
