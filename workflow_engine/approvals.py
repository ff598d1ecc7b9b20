"""Approvals: steps in order, each decided by its approvers, then the record moves on.

Firing a transition with an ``approval`` opens one (:func:`start`): the record
goes to the transition's ``pending_state`` and the first step whose ``when``
holds and that has approvers gets tasks. A step passes by its ``mode``: ``any``
(或签: the first decision decides, an approval passes the step and a rejection
rejects), ``all`` (会签: every seat approves, one rejection rejects), ``quorum``
(``min`` seats or a ``ratio`` of them approve; a rejection rejects only once the
quorum is out of reach); a chain of managers (逐级审批, ``manager_of`` with
``levels`` other than 1) passes level by level, each level in turn. When the last
step passes the record reaches ``to`` (with ``set``); a rejection sends it to
``reject_to`` (or back where it came from).

Steps are looked at when they are reached, not when the approval opens, so a
step's ``when`` sees the record as its approvers left it. Whoever an overdue
step is escalated to decides the step on their own (see ``deadlines``).

Concurrency: actions work on a locked :class:`~workflow_engine.cases.Case` and
read their task (with the approval's others) only once the lock is held; a
partial unique index keeps one open approval per record.
"""

from __future__ import annotations

import math

from sqlalchemy.exc import IntegrityError

from metamodel.jsonlogic import RuleError
from metamodel.messages import Label, Message
from records.errors import RecordConflict
from records.runtime import EntityRuntime

from . import statements, tasks
from .approvers import Subject, notified, resolve, with_role
from .calls import Call
from .cases import OPEN, Case
from .definitions import Step, Transition, Workflow
from .machine import assigned_values, move
from .paths import holds

# --- opening ----------------------------------------------------------------------


def start(
    call: Call,
    runtime: EntityRuntime,
    workflow: Workflow,
    transition: Transition,
    record: dict,
    comment: str | None,
) -> Case | None:
    """Open an approval for ``transition``; None when no step needs anyone."""
    from_state = workflow.state_of(record)
    subject = Subject(runtime.entity, record, call.actor.id, call.tables_for)
    first = next_step(call, runtime, transition, record, subject, 0)
    if first is None:
        return None
    step, approvers = first
    row = {
        "app": runtime.app_name,
        "entity": runtime.name,
        "record_id": record["id"],
        "workflow": workflow.name,
        "transition": transition.name,
        "definition": workflow.doc,
        "from_state": from_state,
        "to_state": transition.to,
        "pending_state": transition.pending_state,
        "submitter_id": call.actor.id,
        "status": OPEN,
        # Written as already in its first step (the first round): one statement, not two.
        "step_index": step.index,
        "round": 1,
        "version": 1,
        "comment": comment,
        "started_at": call.now,
        "closed_at": None,
    }
    try:
        # No savepoint: a duplicate refuses the whole call, so its transaction is rolled back.
        row["id"] = call.conn.execute(statements.insert_approval, row).scalar_one()
    except IntegrityError:
        raise RecordConflict(
            Message(
                "{entity} {id} already has an open approval",
                entity=runtime.entity.named,
                id=record["id"],
            )
        ) from None
    case = Case(call, row, workflow, transition, runtime, record, task_rows=[])
    if transition.pending_state and transition.pending_state != from_state:
        case.record = move(
            call, runtime, workflow, record, transition.pending_state, comment=comment
        )
    case.log("submit", from_state, comment=comment, step=step.name)
    copied = resolve(call.conn, transition.cc, subject, call.names)
    enter(case, step, approvers, entered=True, copied=copied)
    return case


def next_step(
    call: Call,
    runtime: EntityRuntime,
    transition: Transition,
    record: dict,
    subject: Subject,
    index: int,
) -> tuple[Step, list[int]] | None:
    """The first step from ``index`` that applies, with its approvers; None if none does."""
    for step in transition.steps[index:]:
        try:
            applies = holds(
                call.conn, call.tables_for, runtime.entity, record, step.when, call.context()
            )
        except RuleError as error:
            raise RecordConflict(
                Message(
                    "the condition of step '{step}' fails: {error}",
                    step=step.name,
                    error=str(error),
                )
            ) from None
        if not applies:
            continue
        approvers = approvers_of(call, step, subject)
        if approvers:
            return step, approvers
    return None


def approvers_of(call: Call, step: Step, subject: Subject) -> list[int]:
    """Who decides ``step``: its approvers, else admins (or nobody, with ``skip``)."""
    found = resolve(call.conn, step.approvers, subject, call.names)
    if found or step.on_no_approver == "skip":
        return found
    admins = with_role(call.conn, "admin", call.names)
    if not admins:
        raise RecordConflict(
            Message(
                "nobody can approve step '{step}': no user resolves from its approvers "
                "and there is no active admin to fall back on",
                step=step.name,
            )
        )
    return admins


def enter(
    case: Case,
    step: Step,
    approvers: list[int],
    *,
    entered: bool = False,
    copied: list[int] | None = None,
) -> None:
    """Give ``step``'s approvers their tasks (and ``copied`` users theirs, when opening).

    ``entered``: the approval row says so already (a new approval is written in its
    first step).
    """
    call = case.call
    if not entered:
        case.save(step_index=step.index, round=case.row["round"] + 1)
    rows = [
        tasks.new(call, case.row, None, user, kind=tasks.CC, source="cc") for user in copied or ()
    ]
    for position, user in enumerate(approvers):
        waiting = step.chain and position > 0
        rows.append(
            tasks.new(
                call,
                case.row,
                step,
                user,
                level=position + 1 if step.chain else 0,
                status=tasks.WAITING if waiting else tasks.OPEN,
                due_at=None if waiting else tasks.due(step, call.now),
            )
        )
    created = tasks.create(call, case.all_tasks, rows)
    if copied:
        case.notify(
            copied,
            "cc",
            Message(
                "{user} asked for approval of {record}: {transition} (for your information)",
                user=call.actor.username,
                record=case.title,
                transition=case.transition.named,
            ),
        )
    opened = [
        t["assignee_id"]
        for t in created
        if t["kind"] == tasks.APPROVE and t["status"] == tasks.OPEN
    ]
    _tell_assigned(case, opened, step)


def _tell_assigned(case: Case, users: list[int], step: Step) -> None:
    submitter = case.call.usernames([case.row["submitter_id"]]).get(
        case.row["submitter_id"], "someone"
    )
    case.notify(
        users,
        "assigned",
        Message(
            "{user} asks you to approve {record}: {transition} (step {step})",
            user=submitter,
            record=case.title,
            transition=case.transition.named,
            step=Label(step.label),
        ),
    )


# --- deciding -----------------------------------------------------------------------


def required(step: Step, seats: int) -> int:
    """How many seats must approve for ``step`` to pass."""
    if step.chain or step.mode == "all":
        return seats
    if step.mode == "quorum":
        if step.min is not None:
            return min(step.min, seats)
        return max(1, min(seats, math.ceil(step.ratio * seats - 1e-9)))
    return 1


def tally(case: Case) -> str:
    """``passed``, ``failed`` or ``open``: where the current step stands."""
    step = case.step
    current = case.tasks_where(round=case.row["round"])
    escalated = [t for t in current if t["source"] == "escalated"]
    if any(t["status"] == "approved" for t in escalated):
        return "passed"
    if any(t["status"] == "rejected" for t in escalated):
        return "failed"
    seats: dict[int, set[str]] = {}
    for task in current:
        if task["source"] != "escalated":
            seats.setdefault(task["seat"], set()).add(task["status"])
    approved = {seat for seat, statuses in seats.items() if "approved" in statuses}
    rejected = {seat for seat, statuses in seats.items() if "rejected" in statuses} - approved
    need = required(step, len(seats))
    if len(approved) >= need:
        return "passed"
    if rejected and (step.mode != "quorum" or step.chain):
        return "failed"
    if len(seats) - len(rejected) < need:
        return "failed"
    return "open"


def advance(case: Case, comment: str | None) -> None:
    """The current step passed: on to the next step that applies, or done."""
    # The record is as locked() read it: nothing in this call has changed it since.
    following = next_step(
        case.call,
        case.runtime,
        case.transition,
        case.record,
        case.subject,
        case.row["step_index"] + 1,
    )
    if following is None:
        complete(case, comment)  # closes the step's tasks with the copies, in one statement
    else:
        tasks.close(case.call, case.all_tasks, round=case.row["round"])
        enter(case, *following)


def complete(case: Case, comment: str | None) -> None:
    """Every step passed: the record reaches ``to``, with the transition's ``set``."""
    call = case.call
    case.save(status="approved", closed_at=call.now)
    tasks.close(call, case.all_tasks, kind=None)
    values = assigned_values(case.runtime, case.transition, call)
    case.record = move(
        call,
        case.runtime,
        case.workflow,
        case.record,
        case.transition.to,
        values=values,
        comment=comment,
    )
    message = Message(
        "{record} was approved: {transition}", record=case.title, transition=case.transition.named
    )
    case.notify([case.row["submitter_id"], *_copied(case), *_watchers(case)], "approved", message)


def fail(case: Case, comment: str | None) -> None:
    """Rejected: the record goes to ``reject_to``, or back to where it was."""
    call = case.call
    case.save(status="rejected", closed_at=call.now)
    tasks.close(call, case.all_tasks, kind=None)
    target = case.transition.reject_to or case.row["from_state"]
    case.record = move(call, case.runtime, case.workflow, case.record, target, comment=comment)
    said = {"record": case.title, "user": call.actor.username, "transition": case.transition.named}
    if comment:
        message = Message(
            "{record} was rejected by {user}: {transition} — {comment}", comment=comment, **said
        )
    else:
        message = Message("{record} was rejected by {user}: {transition}", **said)
    case.notify([case.row["submitter_id"], *_copied(case), *_watchers(case)], "rejected", message)


def close_as(case: Case, status: str, comment: str | None) -> list[dict]:
    """End the approval without a decision (withdrawn, sent back to the start)."""
    call = case.call
    case.save(status=status, closed_at=call.now)
    closed = tasks.close(call, case.all_tasks, kind=None)
    case.record = move(
        call, case.runtime, case.workflow, case.record, case.row["from_state"], comment=comment
    )
    return closed


def _copied(case: Case) -> list[int]:
    return [t["assignee_id"] for t in case.tasks_where(kind=tasks.CC)]


def _watchers(case: Case) -> list[int]:
    found: list[int] = []
    for party in case.transition.notify:
        found += notified(case.call.conn, party, case.subject, case.call.names)
    return found
