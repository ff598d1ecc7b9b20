"""A user's approval boxes: waiting for me, submitted by me, copied to me, done by me."""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, select

from metamodel.errors import Problem
from metamodel.system_tables import approval_tasks, approvals
from records.actor import Actor
from records.errors import ValidationFailed
from records.serialize import json_value

from . import notifications, tasks
from .approvers import usernames
from .definitions import Workflow

BOXES = ("waiting", "submitted", "cc", "done")
DECISIONS = ("approved", "rejected", "sent_back", "transferred")


def _conditions(box: str, actor: Actor):
    if box == "waiting":
        return and_(
            approval_tasks.c.assignee_id == actor.id,
            approval_tasks.c.kind == tasks.APPROVE,
            approval_tasks.c.status == tasks.OPEN,
            approvals.c.status == "open",
        )
    if box == "cc":
        return and_(approval_tasks.c.assignee_id == actor.id, approval_tasks.c.kind == tasks.CC)
    return and_(
        approval_tasks.c.acted_by == actor.id,
        approval_tasks.c.kind == tasks.APPROVE,
        approval_tasks.c.status.in_(DECISIONS),
    )


def listed(conn: Connection, actor: Actor, box: str, limit: int = 100) -> list[dict]:
    if box not in BOXES:
        raise ValidationFailed([Problem("/box", f"there is no box '{box}'; use one of {BOXES}")])
    if box == "submitted":
        rows = conn.execute(
            select(approvals)
            .where(approvals.c.submitter_id == actor.id)
            .order_by(approvals.c.id.desc())
            .limit(limit)
        )
        pairs = [(dict(r._mapping), None) for r in rows]
    else:
        order = approval_tasks.c.acted_at.desc() if box == "done" else approval_tasks.c.id.desc()
        rows = conn.execute(
            select(approval_tasks, approvals)
            .join(approvals, approvals.c.id == approval_tasks.c.approval_id)
            .where(_conditions(box, actor))
            .order_by(order, approval_tasks.c.id.desc())
            .limit(limit)
        )
        pairs = [
            (
                {c.name: r._mapping[approvals.c[c.name]] for c in approvals.columns},
                {c.name: r._mapping[approval_tasks.c[c.name]] for c in approval_tasks.columns},
            )
            for r in rows
        ]
    names = usernames(
        conn,
        [a["submitter_id"] for a, _ in pairs] + [t["on_behalf_of"] for _, t in pairs if t],
    )
    parsed: dict[int, Workflow] = {}
    for approval, _ in pairs:
        if approval["id"] not in parsed:
            parsed[approval["id"]] = Workflow.from_doc(approval["definition"])
    return [_item(approval, task, parsed[approval["id"]], names) for approval, task in pairs]


def counts(conn: Connection, actor: Actor) -> dict[str, int]:
    def tally(box: str) -> int:
        return conn.execute(
            select(func.count())
            .select_from(approval_tasks.join(approvals))
            .where(_conditions(box, actor))
        ).scalar_one()

    submitted = conn.execute(
        select(func.count())
        .select_from(approvals)
        .where(approvals.c.submitter_id == actor.id, approvals.c.status == "open")
    ).scalar_one()
    return {
        "waiting": tally("waiting"),
        "submitted": submitted,
        "cc": tally("cc"),
        "done": tally("done"),
        "unread": notifications.unread(conn, actor.id),
    }


def _item(approval: dict, task: dict | None, workflow: Workflow, names: dict) -> dict:
    transition = workflow.transitions[approval["transition"]]
    steps = transition.steps
    decides = task is not None and task["kind"] == tasks.APPROVE
    index = task["step_index"] if decides else approval["step_index"]
    item = {
        "approval_id": approval["id"],
        "app": approval["app"],
        "entity": approval["entity"],
        "record_id": approval["record_id"],
        "workflow": approval["workflow"],
        "transition": approval["transition"],
        "label": transition.label,
        "approval_status": approval["status"],
        "step": steps[index].name if 0 <= index < len(steps) else None,
        "submitter": names.get(approval["submitter_id"]),
        "started_at": approval["started_at"],
        "closed_at": approval["closed_at"],
    }
    if task is None:
        item["id"] = approval["id"]
    else:
        item.update(
            id=task["id"],
            kind=task["kind"],
            status=task["status"],
            source=task["source"],
            on_behalf_of=names.get(task["on_behalf_of"]),
            due_at=task["due_at"],
            escalated_at=task["escalated_at"],
            acted_at=task["acted_at"],
            comment=task["comment"],
        )
    return json_value(item)
