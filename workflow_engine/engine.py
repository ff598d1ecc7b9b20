"""The workflow engine's front door: one method per thing a user (or a clock) does.

Each method is one transaction of the record service (``Records.writing``), so
a transition, its approval, tasks, history and notifications commit together or
not at all. Errors are the record service's: ``Forbidden`` (403) when the actor
may not, ``RecordConflict`` (409) when the record's state forbids it,
``ValidationFailed`` (422) when the input does not fit (its subclass
``machine.GuardFailed`` when a transition's condition does not hold: 409 at the
API), ``NotFound`` (404) — each with a message that names the failed check.

Notifications are saved in the same transaction; a ``deliver`` channel (e-mail)
given to :class:`Workflows` gets them after the commit, and its failures are
logged, never raised: the action has happened by then.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from metamodel.messages import Message
from records import access
from records.actor import Actor
from records.errors import RecordConflict, StaleVersion
from records.runtime import EntityRuntime
from records.service import Records

from . import (
    actions,
    approvals,
    cases,
    deadlines,
    delegations,
    history,
    inbox,
    notifications,
    tasks,
)
from .approvers import Subject, notified
from .calls import Call
from .definitions import find_transition, snapshot, workflows_of
from .locks import guard
from .machine import assigned_values, move, refusals
from .notifications import Deliver, Notice
from .views import approval_view, record_title

log = logging.getLogger(__name__)


class Workflows:
    def __init__(self, records: Records, *, deliver: Deliver | None = None):
        self.records = records
        self.deliver = deliver
        if guard not in records.guards:
            records.guards.append(guard)

    @contextmanager
    def _writing(self, actor: Actor) -> Iterator[Call]:
        with self.records.writing() as conn:
            call = Call(conn, self.records, actor, self.records.clock())
            yield call
            call.flush()
        self._deliver(call.sent)

    def _deliver(self, notices: list[Notice]) -> None:
        if not notices or self.deliver is None:
            return
        try:
            self.deliver(notices)
        except Exception:
            # Committed already: an error here would report a done action as failed.
            log.exception("%d notifications were saved but not delivered", len(notices))

    @contextmanager
    def _reading(self, actor: Actor) -> Iterator[Call]:
        with self.records.reading() as conn:
            yield Call(conn, self.records, actor, self.records.clock())

    # --- transitions -----------------------------------------------------------------

    def available(self, actor: Actor, app: str, entity: str, record_id: int) -> list[dict]:
        """The transitions ``actor`` may fire on the record now."""
        with self._reading(actor) as call:
            runtime = call.runtime(app, entity)
            record = call.load(runtime, record_id)
            call.require("read", runtime, record)
            waiting = self._waiting(call, runtime, record_id)
            return [
                {
                    "name": transition.name,
                    "workflow": workflow.name,
                    "label": transition.label,
                    "to": transition.to,
                    "approval": transition.needs_approval,
                }
                for workflow in workflows_of(runtime.entity)
                for transition in workflow.transitions.values()
                if next(refusals(call, runtime, workflow, transition, record, waiting), None)
                is None
            ]

    def fire(
        self,
        actor: Actor,
        app: str,
        entity: str,
        record_id: int,
        transition: str,
        comment: str | None = None,
        *,
        expected_version: int | None = None,
    ) -> dict:
        """Fire ``transition``: move the record, or open the approval it needs.

        The record's row is locked first; ``expected_version`` (the version the user
        saw) refuses with StaleVersion when someone changed the record meanwhile.
        Returns ``{"record", "state", "approval"}`` (``approval`` None unless one opened).
        """
        with self._writing(actor) as call:
            runtime = call.runtime(app, entity)
            record = call.load(runtime, record_id, lock=True)
            call.require("read", runtime, record)
            if expected_version is not None and record["version"] != expected_version:
                raise StaleVersion(record["version"], call.serialise(runtime, record))
            workflow, chosen = find_transition(runtime.entity, transition)
            waiting = self._waiting(call, runtime, record_id)
            refusal = next(refusals(call, runtime, workflow, chosen, record, waiting), None)
            if refusal is not None:
                raise refusal.error()
            before = workflow.state_of(record)
            if chosen.needs_approval:
                case = approvals.start(call, runtime, workflow, chosen, record, comment)
                if case is not None:
                    return self._outcome(call, case)
            values = assigned_values(runtime, chosen, call)
            moved = move(call, runtime, workflow, record, chosen.to, values=values, comment=comment)
            history.record(
                call,
                app=app,
                entity=entity,
                record_id=record_id,
                action="transition",
                state=(before, chosen.to),
                details={
                    "workflow": workflow.name,
                    "transition": chosen.name,
                    "approval": "no step needed an approver" if chosen.needs_approval else None,
                },
                comment=comment,
            )
            self._tell_watchers(call, runtime, moved, chosen)
            return {"record": call.serialise(runtime, moved), "state": chosen.to, "approval": None}

    # --- approvals -------------------------------------------------------------------

    def approval(self, actor: Actor, app: str, entity: str, record_id: int) -> dict | None:
        """The record's open approval: steps, tasks and who acted; None when there is none."""
        with self._reading(actor) as call:
            runtime = call.runtime(app, entity)
            record = call.load(runtime, record_id)
            row = cases.open_for(call, app, entity, record_id)
            every = tasks.all_of(call, row["id"]) if row else []
            if not call.may("read", runtime, record) and not any(
                t["assignee_id"] == actor.id for t in every
            ):
                raise access.refused(runtime.entity, "read", record_id)
            if row is None:
                return None
            workflow = snapshot(runtime.entity, row["definition"])
            return approval_view(call, row, workflow=workflow, every=every)

    def act(self, actor: Actor, task_id: int, action: str, payload: dict | None = None) -> dict:
        """An approver's action on a task (see ``actions``); returns the approval and record."""
        with self._writing(actor) as call:
            case = actions.act(call, task_id, action, payload)
            return self._outcome(call, case)

    def withdraw(self, actor: Actor, app: str, entity: str, record_id: int) -> dict:
        """The submitter takes the approval back (撤回) while nobody has approved yet."""
        with self._writing(actor) as call:
            runtime = call.runtime(app, entity)
            call.load(runtime, record_id)
            row = cases.open_for(call, app, entity, record_id)
            if row is None:
                raise RecordConflict(
                    Message(
                        "{entity} {id} has no open approval to withdraw",
                        entity=runtime.entity.named,
                        id=record_id,
                    )
                )
            return self._outcome(call, actions.withdraw(call, row["id"]))

    def inbox(self, actor: Actor, box: str, limit: int = 100) -> list[dict]:
        """``waiting`` (my open tasks), ``submitted``, ``cc`` or ``done`` (tasks I decided)."""
        with self._reading(actor) as call:
            return inbox.listed(call.conn, actor, box, limit)

    def counts(self, actor: Actor) -> dict[str, int]:
        with self._reading(actor) as call:
            return inbox.counts(call.conn, actor)

    def tick(self, now: dt.datetime | None = None) -> int:
        """Escalate overdue tasks; safe to run repeatedly and concurrently."""
        return deadlines.tick(self.records, now, deliver=self._deliver)

    # --- delegation and notifications ----------------------------------------------

    def delegate(self, actor: Actor, to: str, starts_at: dt.datetime, ends_at: dt.datetime) -> dict:
        with self._writing(actor) as call:
            return delegations.create(call.conn, actor.id, to, starts_at, ends_at, call.now)

    def delegations(self, actor: Actor) -> list[dict]:
        with self._reading(actor) as call:
            return delegations.listed(call.conn, actor.id)

    def end_delegation(self, actor: Actor, delegation_id: int) -> None:
        with self._writing(actor) as call:
            delegations.end(call.conn, actor.id, delegation_id, call.now, actor.is_admin)

    def notifications(self, actor: Actor, *, unread_only: bool = False, limit: int = 50):
        with self._reading(actor) as call:
            return notifications.listed(call.conn, actor.id, unread_only=unread_only, limit=limit)

    def mark_read(self, actor: Actor, ids: Iterable[int] | None = None) -> int:
        with self._writing(actor) as call:
            return notifications.mark_read(call, ids)

    # --- helpers ---------------------------------------------------------------------

    @staticmethod
    def _waiting(call: Call, runtime: EntityRuntime, record_id: int) -> str | None:
        row = cases.open_for(call, runtime.app_name, runtime.name, record_id)
        return cases.waiting_label(row, runtime.entity) if row else None

    @staticmethod
    def _outcome(call: Call, case: cases.Case) -> dict:
        return {
            "record": call.serialise(case.runtime, case.record),
            "state": case.state,
            "approval": approval_view(call, case.row, workflow=case.workflow, every=case.all_tasks),
        }

    @staticmethod
    def _tell_watchers(call: Call, runtime: EntityRuntime, record: dict, transition) -> None:
        if not transition.notify:
            return
        subject = Subject(runtime.entity, record, call.actor.id, call.tables_for)
        users: list[int] = []
        for party in transition.notify:
            users += notified(call.conn, party, subject, call.names)
        notifications.send(
            call,
            users,
            "transition",
            Message(
                "{user} moved {record}: {transition}",
                user=call.actor.username,
                record=record_title(runtime, record),
                transition=transition.named,
            ),
            app=runtime.app_name,
            entity=runtime.name,
            record_id=record["id"],
        )
