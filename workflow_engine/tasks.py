"""Approval tasks: one row per person's part in an approval.

A task is a decision to take (kind ``approve``) or a copy for information (kind
``cc``). Status: ``open`` (to decide), ``waiting`` (a later level of a chain of
managers, not yet anyone's turn), ``approved``, ``rejected``, ``sent_back``,
``transferred`` (handed to someone else, who got a task of the same seat), and
``closed`` (no longer needed: the step or the approval was decided without it).

Tasks that stand for the same approver share a ``seat``: a transfer keeps the
seat. A step counts seats, not tasks. ``round`` ties a task to one entry into
its step; sending an approval back starts a new round.

A call that changes an approval reads its tasks once, after locking it (see
``cases.Case.all_tasks``), and the functions here that write tasks keep that
list (``every``, in id order) as the database has it: every task of an approval
is written under its lock, so the list stays true for the rest of the call.
"""

from __future__ import annotations

import datetime as dt

from metamodel.messages import Message

from . import statements
from .calls import Call
from .definitions import Step
from .delegations import delegates_of

APPROVE, CC = "approve", "cc"
OPEN, WAITING = "open", "waiting"
LIVE = (OPEN, WAITING)
# A task's or an approval's status in a message, as words the edge translates.
STATUS_WORDS = {
    "open": Message("open"),
    "waiting": Message("waiting"),
    "approved": Message("approved"),
    "rejected": Message("rejected"),
    "sent_back": Message("sent back"),
    "transferred": Message("transferred"),
    "closed": Message("closed"),
    "withdrawn": Message("withdrawn"),
}


def status_word(status: str) -> str:
    return STATUS_WORDS.get(status) or status.replace("_", " ")


def all_of(call: Call, approval_id: int) -> list[dict]:
    """Every task of the approval, in id order; the assignees' names go to ``call.names``."""
    every = []
    for row in call.conn.execute(statements.tasks_of, {statements.ID: approval_id}):
        task = dict(row._mapping)
        name = task.pop(statements.ASSIGNEE_NAME)
        if name is not None:
            call.names[task["assignee_id"]] = name
        every.append(task)
    return every


def matching(
    every: list[dict],
    *,
    round: int | None = None,
    kind: str | None = APPROVE,
    seat: int | None = None,
    live: bool = False,
) -> list[dict]:
    """The tasks of ``every`` (an approval's tasks) selected: the same dicts, not copies."""
    return [
        t
        for t in every
        if (round is None or t["round"] == round)
        and (kind is None or t["kind"] == kind)
        and (seat is None or t["seat"] == seat)
        and (not live or t["status"] in LIVE)
    ]


def due(step: Step, now: dt.datetime) -> dt.datetime | None:
    return now + dt.timedelta(hours=step.due_hours) if step.due_hours else None


def new(
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
    """A task to create (with :func:`create`): every column but ``id``."""
    return {
        "approval_id": approval["id"],
        "step_index": step.index if step else -1,
        "step_name": step.name if step else "cc",
        "round": approval["round"] if step else 0,
        "seat": seat,
        "level": level,
        "kind": kind,
        "source": source,
        "assignee_id": assignee,
        "on_behalf_of": None,
        "status": status,
        "created_at": call.now,
        "acted_at": None,
        "acted_by": None,
        "comment": None,
        "due_at": due_at,
        "escalated_at": escalated_at,
    }


def create(call: Call, every: list[dict], rows: list[dict]) -> list[dict]:
    """Insert the tasks ``rows`` (from :func:`new`), in order; adds them to ``every``.

    An open decision goes to the assignee's delegate when they have one now. A
    task without a seat is a seat of its own (its seat is its id). Three
    statements, however many tasks: the delegations, the insert, the seats.
    """
    if not rows:
        return []
    deciding = [r["assignee_id"] for r in rows if r["status"] == OPEN and r["kind"] == APPROVE]
    delegated = delegates_of(call.conn, deciding, call.now)
    rows = [dict(r) for r in rows]
    for row in rows:
        delegate = delegated.get(row["assignee_id"])
        if delegate is not None and row["status"] == OPEN and row["kind"] == APPROVE:
            row["assignee_id"], row["on_behalf_of"] = delegate, row["assignee_id"]
    for row, task_id in zip(rows, _insert(call, rows), strict=True):
        row["id"] = task_id
    own = [row for row in rows if row["seat"] is None]
    if own:
        call.conn.execute(statements.own_seats, {statements.IDS: [row["id"] for row in own]})
        for row in own:
            row["seat"] = row["id"]
    every.extend(rows)
    every.sort(key=lambda t: t["id"])
    return rows


def _insert(call: Call, rows: list[dict]) -> list[int]:
    """Insert ``rows`` in one statement; their ids, in the order of ``rows``."""
    if call.is_postgresql:
        return list(call.conn.execute(statements.insert_tasks_ordered, rows).scalars())
    # SQLAlchemy keeps the order on SQLite only by inserting row by row. SQLite numbers the
    # rows of one INSERT in the order given (its write transaction excludes other writers),
    # so the ids returned, in whatever order they come, sorted are the rows' ids.
    return sorted(call.conn.execute(statements.insert_tasks, rows).scalars())


def activate(call: Call, task: dict, step: Step) -> dict:
    """A waiting level's turn: open its task (to the delegate, if one is named now)."""
    values = {"status": OPEN, "due_at": due(step, call.now), "created_at": call.now}
    delegate = delegates_of(call.conn, [task["assignee_id"]], call.now).get(task["assignee_id"])
    if delegate is not None:
        values.update(assignee_id=delegate, on_behalf_of=task["assignee_id"])
    call.conn.execute(statements.update_task, {statements.ID: task["id"], **values})
    task.update(values)
    return task


def decide(call: Call, task: dict, status: str, comment: str | None) -> None:
    """Record the assignee's (or an admin's) decision on an open task."""
    values = {"status": status, "acted_at": call.now, "acted_by": call.actor.id, "comment": comment}
    call.conn.execute(statements.decide_task, {statements.ID: task["id"], **values})
    task.update(values)


def close(
    call: Call,
    every: list[dict],
    *,
    status: str = "closed",
    kind: str | None = APPROVE,
    seat: int | None = None,
    round: int | None = None,
) -> list[dict]:
    """Close the live tasks of ``every`` selected; returns them as they were."""
    closing = matching(every, kind=kind, seat=seat, round=round, live=True)
    if not closing:
        return []
    before = [dict(t) for t in closing]
    call.conn.execute(
        statements.update_tasks,
        {statements.IDS: [t["id"] for t in closing], "status": status, "acted_at": call.now},
    )
    for task in closing:
        task.update(status=status, acted_at=call.now)
    return before
