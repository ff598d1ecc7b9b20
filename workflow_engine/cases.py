"""An approval being worked on: its row (locked), its definition and its record.

Every change to an approval goes through a :class:`Case` got from :func:`locked`,
which locks the approval row (``FOR UPDATE`` on PostgreSQL; SQLite's write
transaction already excludes other writers) and then the record's row, always in
that order, and writes the approval row back only at the version it read.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from metamodel.errors import NotFound
from metamodel.system_tables import approvals
from records.errors import RecordConflict
from records.runtime import EntityRuntime

from . import history, notifications
from .approvers import Subject
from .calls import Call
from .definitions import Step, Transition, Workflow
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
            update(approvals)
            .where(approvals.c.id == self.id, approvals.c.version == self.row["version"])
            .values(values)
        )
        if done.rowcount != 1:
            raise RecordConflict("the approval changed meanwhile; reload it and try again")
        self.row.update(values)

    def refresh_record(self) -> None:
        self.record = self.call.load(self.runtime, self.row["record_id"], lock=True)


def open_for(call: Call, app: str, entity: str, record_id: int) -> dict | None:
    row = call.conn.execute(
        select(approvals).where(
            approvals.c.app == app,
            approvals.c.entity == entity,
            approvals.c.record_id == record_id,
            approvals.c.status == OPEN,
        )
    ).first()
    return dict(row._mapping) if row else None


def locked(call: Call, approval_id: int) -> Case:
    """The approval with its row locked for this transaction, and its record locked too."""
    query = select(approvals).where(approvals.c.id == approval_id)
    if call.is_postgresql:
        query = query.with_for_update()
    found = call.conn.execute(query).first()
    if found is None:
        raise NotFound(f"there is no approval {approval_id}")
    row = dict(found._mapping)
    workflow = Workflow.from_doc(row["definition"])
    runtime = call.runtime(row["app"], row["entity"])
    record = call.load(runtime, row["record_id"], lock=True)
    return Case(call, row, workflow, workflow.transitions[row["transition"]], runtime, record)


def waiting_label(row: dict) -> str:
    """How a refusal names an open approval: its transition and current step."""
    workflow = Workflow.from_doc(row["definition"])
    transition = workflow.transitions[row["transition"]]
    step = transition.steps[row["step_index"]] if row["step_index"] >= 0 else None
    return f"{transition.title}, step {step.name}" if step else transition.title
