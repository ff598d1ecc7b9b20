"""What an approver does with a task, and what the submitter may take back.

Actions: ``approve``, ``reject``, ``send_back`` (``{"to": "previous"}`` re-opens the
previous step, ``{"to": "start"}`` returns the record to its submitter),
``transfer`` (``{"to": username}``, 转交), ``add_approver`` (``{"users": [...]}``,
加签: more approvers in the current step) and ``comment``. Every payload may
carry a ``comment``. Only the task's assignee, or an admin, acts on an open
task; the record's history gets one event per action, naming on whose behalf a
delegate (or an admin) acted.
"""

from __future__ import annotations

from typing import Any

from metamodel.errors import NotFound, Problem
from metamodel.messages import Message
from records.errors import Forbidden, RecordConflict, ValidationFailed

from . import tasks
from .approvals import advance, approvers_of, close_as, enter, fail, tally
from .approvers import active, user_id
from .calls import Call
from .cases import Case, locked

ACTIONS = ("approve", "reject", "send_back", "transfer", "add_approver", "comment")


def act(call: Call, task_id: int, action: str, payload: dict | None) -> Case:
    if action not in ACTIONS:
        raise ValidationFailed(
            [
                Problem(
                    "/action",
                    Message(
                        "unknown action '{action}'; use one of {actions}",
                        action=action,
                        actions=", ".join(ACTIONS),
                    ),
                )
            ]
        )
    payload = payload or {}
    if not isinstance(payload, dict):
        raise ValidationFailed([Problem("", Message("the payload must be an object"))])
    case = locked(call, task_id=task_id)
    # Read after the lock, with the approval's other tasks: as it is now, not as it was.
    task = next((t for t in case.all_tasks if t["id"] == task_id), None)
    if task is None:
        raise NotFound(Message("there is no approval task {task_id}", task_id=task_id))
    _check_may_act(call, case, task)
    comment = _text(payload.get("comment"), "/comment")
    before = case.state
    on_behalf = _on_behalf_of(call, task)
    details: dict[str, Any] = {"step": task["step_name"], "task_id": task["id"]}
    if action == "approve":
        tasks.decide(call, task, "approved", comment)
        _decided(case, task, comment)
    elif action == "reject":
        tasks.decide(call, task, "rejected", comment)
        _decided(case, task, comment)
    elif action == "send_back":
        details.update(_send_back(case, task, payload.get("to", "previous"), comment))
    elif action == "transfer":
        details.update(to=_transfer(case, task, payload.get("to"), comment))
    elif action == "add_approver":
        details.update(users=_add_approvers(case, task, payload.get("users"), comment))
    else:
        if not comment:
            raise ValidationFailed([Problem("/comment", Message("write a comment"))])
        case.notify(
            [case.row["submitter_id"]],
            "comment",
            Message(
                "{user} commented on {record}: {comment}",
                user=call.actor.username,
                record=case.title,
                comment=comment,
            ),
        )
    case.log(action, before, comment=comment, on_behalf_of=on_behalf, **details)
    return case


def _check_may_act(call: Call, case: Case, task: dict) -> None:
    if task["assignee_id"] != call.actor.id and not call.actor.is_admin:
        owner = call.usernames([task["assignee_id"]]).get(task["assignee_id"], "someone")
        raise Forbidden(
            Message("this task is {user}'s; only they (or an admin) may act on it", user=owner)
        )
    if task["kind"] != tasks.APPROVE:
        raise RecordConflict(
            Message("this is a copy for your information; there is nothing to decide")
        )
    if task["status"] != tasks.OPEN or case.row["status"] != "open":
        status = tasks.status_word(task["status"])
        if task["acted_at"] is None:
            raise RecordConflict(Message("this task is already {status}", status=status))
        raise RecordConflict(
            Message(
                "this task is already {status} at {time} UTC",
                status=status,
                time=f"{task['acted_at']:%Y-%m-%d %H:%M}",
            )
        )
    if task["round"] != case.row["round"]:
        raise RecordConflict(Message("this task belongs to an earlier round of the approval"))


def _on_behalf_of(call: Call, task: dict) -> int | None:
    if task["assignee_id"] != call.actor.id:
        return task["assignee_id"]
    return task["on_behalf_of"]


def _decided(case: Case, task: dict, comment: str | None) -> None:
    """After an approve or reject: close the seat, then pass or fail the step if decided."""
    tasks.close(case.call, case.all_tasks, seat=task["seat"], round=task["round"])
    outcome = tally(case)
    if outcome == "passed":
        advance(case, comment)
    elif outcome == "failed":
        fail(case, comment)
    elif case.step.chain:
        _next_level(case)


def _next_level(case: Case) -> None:
    current = case.tasks_where(round=case.row["round"])
    if any(t["status"] == tasks.OPEN for t in current):
        return
    waiting = [t for t in current if t["status"] == tasks.WAITING]
    if waiting:
        lowest = min(t["level"] for t in waiting)
        for task in waiting:
            if task["level"] == lowest:
                opened = tasks.activate(case.call, task, case.step)
                case.notify(
                    [opened["assignee_id"]],
                    "assigned",
                    Message(
                        "{user} passed {record} on to you for approval ({transition})",
                        user=case.call.actor.username,
                        record=case.title,
                        transition=case.transition.named,
                    ),
                )


def _send_back(case: Case, task: dict, to: Any, comment: str | None) -> dict:
    if to not in ("previous", "start"):
        raise ValidationFailed([Problem("/to", Message("send back to 'previous' or 'start'"))])
    tasks.decide(case.call, task, "sent_back", comment)
    current = case.row["step_index"]
    earlier = [t["step_index"] for t in case.tasks_where() if t["step_index"] < current]
    target = None
    if to == "previous" and earlier:
        step = case.transition.steps[max(earlier)]
        approvers = approvers_of(case.call, step, case.subject)
        if approvers:
            target = step
    said = {"user": case.call.actor.username, "record": case.title}
    if comment:
        message = Message("{user} sent {record} back: {comment}", comment=comment, **said)
    else:
        message = Message("{user} sent {record} back", **said)
    if target is None:
        close_as(case, "sent_back", comment)
        case.notify([case.row["submitter_id"]], "sent_back", message)
        return {"to": "start"}
    tasks.close(case.call, case.all_tasks, round=case.row["round"])
    enter(case, target, approvers)
    case.notify([case.row["submitter_id"]], "sent_back", message)
    return {"to": "previous", "to_step": target.name}


def _transfer(case: Case, task: dict, username: Any, comment: str | None) -> str:
    call = case.call
    target = user_id(call.conn, username) if isinstance(username, str) else None
    if target is None:
        raise ValidationFailed(
            [Problem("/to", Message("there is no active user {user}", user=repr(username)))]
        )
    if target == task["assignee_id"]:
        raise ValidationFailed(
            [Problem("/to", Message("the task is already {user}'s", user=username))]
        )
    _refuse_if_holding(case, [target])
    tasks.decide(call, task, "transferred", comment)
    (new,) = tasks.create(
        call,
        case.all_tasks,
        [
            tasks.new(
                call,
                case.row,
                case.step,
                target,
                source="transferred",
                level=task["level"],
                seat=task["seat"],
                due_at=task["due_at"],
                escalated_at=task["escalated_at"],
            )
        ],
    )
    case.notify(
        [new["assignee_id"]],
        "assigned",
        Message(
            "{user} handed you the approval of {record} ({transition})",
            user=call.actor.username,
            record=case.title,
            transition=case.transition.named,
        ),
    )
    return username


def _add_approvers(case: Case, task: dict, names: Any, comment: str | None) -> list[str]:
    call = case.call
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValidationFailed([Problem("/users", Message("name the users to add, as a list"))])
    problems, added = [], []
    for index, name in enumerate(names):
        found = user_id(call.conn, name)
        if found is None:
            problems.append(
                Problem(f"/users/{index}", Message("there is no active user '{user}'", user=name))
            )
        else:
            added.append(found)
    if problems:
        raise ValidationFailed(problems)
    added = active(call.conn, added, call.names)
    _refuse_if_holding(case, added)
    rows = [
        tasks.new(
            call,
            case.row,
            case.step,
            user,
            source="added",
            level=task["level"],
            due_at=tasks.due(case.step, call.now),
        )
        for user in added
    ]
    opened = [new["assignee_id"] for new in tasks.create(call, case.all_tasks, rows)]
    case.notify(
        opened,
        "assigned",
        Message(
            "{user} asks you to approve {record} too ({transition})",
            user=call.actor.username,
            record=case.title,
            transition=case.transition.named,
        ),
    )
    return list(names)


def _refuse_if_holding(case: Case, users: list[int]) -> None:
    current = case.tasks_where(round=case.row["round"])
    holding = {t["assignee_id"] for t in current if t["status"] in tasks.LIVE}
    already = [u for u in users if u in holding]
    if already:
        names = ", ".join(case.call.usernames(already).values())
        if len(already) == 1:
            raise RecordConflict(Message("{users} already decides this step", users=names))
        raise RecordConflict(Message("{users} already decide this step", users=names))


def withdraw(call: Call, approval_id: int) -> Case:
    case = locked(call, approval_id)
    if case.row["status"] != "open":
        raise RecordConflict(
            Message(
                "this approval is already {status}", status=tasks.status_word(case.row["status"])
            )
        )
    if case.row["submitter_id"] != call.actor.id and not call.actor.is_admin:
        raise Forbidden(Message("only the user who asked for the approval may withdraw it"))
    approved = [t for t in case.tasks_where() if t["status"] == "approved"]
    if approved:
        who = call.usernames([approved[0]["acted_by"]]).get(approved[0]["acted_by"], "")
        raise RecordConflict(
            Message(
                "{user} already approved step {step}, so the approval can't be withdrawn; "
                "ask an approver to send it back",
                user=who,
                step=approved[0]["step_name"],
            )
        )
    before = case.state
    closed = close_as(case, "withdrawn", None)
    case.notify(
        [t["assignee_id"] for t in closed if t["kind"] == tasks.APPROVE],
        "withdrawn",
        Message(
            "{user} withdrew the approval of {record}", user=call.actor.username, record=case.title
        ),
    )
    case.log("withdraw", before)
    return case


def _text(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed([Problem(path, Message("must be text"))])
    return value.strip() or None
