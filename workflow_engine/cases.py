"""An approval being worked on: its row (locked), its definition, its record and its tasks.

Every change to an approval goes through a :class:`Case` got from :func:`locked`,
which locks the approval row (``FOR UPDATE`` on PostgreSQL; SQLite's write
transaction already excludes other writers) and then the record's row, always in
that order, and writes the approval row back only at the version it read. Its
tasks are read once, after the lock, and kept up to date by ``tasks``.
"""

from __future__ import annotations

from dataclasses import dataclass

from metamodel.errors import NotFound
from metamodel.messages import Message
from metamodel.model import EntityModel
from records.errors import RecordConflict
from records.runtime import EntityRuntime

from . import history, notifications, statements, tasks
from .approvers import Subject
from .calls import Call
from .definitions import Step, Transition, Workflow, snapshot
from .views import record_title

OPEN = "open"


@dataclass
class Case:
    """An approval being worked on in this call: its row, definition and record."""

    call: Call
    row: dict
    workflow: Workflow
    transition: Transition
    runtime: EntityRuntime
    record: dict
    # Every task of the approval, in id order; read when first needed (see all_tasks).
    task_rows: list[dict] | None = None

    @property
    def id(self) -> int:
        return self.row["id"]

    @property
    def step(self) -> Step:
        return self.transition.steps[self.row["step_index"]]

    @property
    def state(self) -> str:
        return self.workflow.state_of(self.record)

    @property
    def subject(self) -> Subject:
        return Subject(
            self.runtime.entity, self.record, self.row["submitter_id"], self.call.tables_for
        )

    @property
    def title(self) -> str:
        return record_title(self.runtime, self.record)

    @property
    def all_tasks(self) -> list[dict]:
        """Every task of the approval, read once (the row is locked, so it stays true)."""
        if self.task_rows is None:
            self.task_rows = tasks.all_of(self.call, self.id)
        return self.task_rows

    def tasks_where(
        self, *, round: int | None = None, kind: str | None = tasks.APPROVE
    ) -> list[dict]:
        return tasks.matching(self.all_tasks, round=round, kind=kind)

    def notify(self, users, kind: str, message: str) -> None:
        notifications.send(
            self.call,
            users,
            kind,
            message,
            app=self.row["app"],
            entity=self.row["entity"],
            record_id=self.row["record_id"],
            approval_id=self.id,
        )

    def log(self, action: str, before: str, *, comment=None, on_behalf_of=None, **details):
        history.record(
            self.call,
            app=self.row["app"],
            entity=self.row["entity"],
            record_id=self.row["record_id"],
            action=action,
            state=(before, self.state),
            details={
                "workflow": self.workflow.name,
                "transition": self.transition.name,
                "approval_id": self.id,
                **details,
            },
            comment=comment,
            on_behalf_of=on_behalf_of,
        )

    def save(self, **values) -> None:
        """Write the approval row at the version this call read, or refuse."""
        values["version"] = self.row["version"] + 1
        done = self.call.conn.execute(
            statements.save_approval,
            {statements.ID: self.id, statements.VERSION: self.row["version"], **values},
        )
        if done.rowcount != 1:
            raise RecordConflict(Message("the approval changed meanwhile; reload it and try again"))
        self.row.update(values)


def open_for(call: Call, app: str, entity: str, record_id: int) -> dict | None:
    row = call.conn.execute(
        statements.open_approval,
        {statements.APP: app, statements.ENTITY: entity, statements.RECORD: record_id},
    ).first()
    return dict(row._mapping) if row else None


def locked(call: Call, approval_id: int | None = None, *, task_id: int | None = None) -> Case:
    """The approval (or the approval of task ``task_id``), its row and its record locked.

    One statement finds and locks the approval row, whichever id is given: a task
    never changes approvals, so reading its approval_id before the lock is safe.
    """
    # FOR UPDATE on PostgreSQL; SQLite has no row locks, its write transaction suffices.
    lock = call.is_postgresql
    if task_id is not None:
        query = statements.approval_of_task_locked if lock else statements.approval_of_task
        found = call.conn.execute(query, {statements.TASK: task_id}).first()
    else:
        query = statements.approval_locked if lock else statements.approval
        found = call.conn.execute(query, {statements.ID: approval_id}).first()
    if found is None:
        if task_id is not None:
            raise NotFound(Message("there is no approval task {task_id}", task_id=task_id))
        raise NotFound(Message("there is no approval {approval_id}", approval_id=approval_id))
    row = dict(found._mapping)
    submitter = row.pop(statements.SUBMITTER_NAME)
    if submitter is not None:
        call.names[row["submitter_id"]] = submitter
    runtime = call.runtime(row["app"], row["entity"])
    workflow = snapshot(runtime.entity, row["definition"])
    record = call.load(runtime, row["record_id"], lock=True)
    return Case(call, row, workflow, workflow.transitions[row["transition"]], runtime, record)


def waiting_label(row: dict, entity: EntityModel) -> str:
    """How a refusal names an open approval: its transition and current step."""
    workflow = snapshot(entity, row["definition"])
    transition = workflow.transitions[row["transition"]]
    step = transition.steps[row["step_index"]] if row["step_index"] >= 0 else None
    if step is None:
        return transition.named
    return Message("{transition}, step {step}", transition=transition.named, step=step.name)
