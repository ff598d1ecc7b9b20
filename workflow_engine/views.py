"""An approval as the API and pages show it: steps in order, each with its tasks."""

from __future__ import annotations

from metamodel.messages import Message
from records.runtime import EntityRuntime
from records.serialize import json_value

from . import tasks
from .calls import Call
from .definitions import Workflow


def record_title(runtime: EntityRuntime, record: dict) -> Message:
    """How messages name a record: its entity and title, e.g. "deal 'Big order' (#3)"."""
    title_field = runtime.entity.title_field
    title = record.get(title_field) if title_field else None
    entity = runtime.entity.noun
    if title:
        return Message("{entity} '{title}' (#{id})", entity=entity, title=title, id=record["id"])
    return Message("{entity} #{id}", entity=entity, id=record["id"])


def approval_view(
    call: Call, row: dict, *, workflow: Workflow | None = None, every: list[dict] | None = None
) -> dict:
    """The approval ``row`` as ``call.actor`` sees it.

    ``workflow`` (its parsed definition) and ``every`` (all its tasks, in id order)
    are read here when the caller does not have them already.
    """
    actor = call.actor
    workflow = workflow or Workflow.from_doc(row["definition"])
    transition = workflow.transitions[row["transition"]]
    if every is None:
        every = tasks.all_of(call, row["id"])
    names = call.usernames(
        [row["submitter_id"]]
        + [t["assignee_id"] for t in every]
        + [t["on_behalf_of"] for t in every]
        + [t["acted_by"] for t in every],
    )
    by_step: dict[int, list[dict]] = {}
    for task in every:
        by_step.setdefault(task["step_index"], []).append(task_view(task, names))
    steps = [
        {
            "index": step.index,
            "name": step.name,
            "label": step.label,
            "mode": "chain" if step.chain else step.mode,
            "editable_fields": list(step.editable_fields),
            "status": _step_status(row, step.index, bool(by_step.get(step.index))),
            "tasks": by_step.get(step.index, []),
        }
        for step in transition.steps
    ]
    is_open = row["status"] == "open"
    current = transition.steps[row["step_index"]] if is_open and row["step_index"] >= 0 else None
    nothing_approved = not any(t["status"] == "approved" for t in every)
    return json_value(
        {
            "id": row["id"],
            "app": row["app"],
            "entity": row["entity"],
            "record_id": row["record_id"],
            "workflow": row["workflow"],
            "transition": row["transition"],
            "label": transition.label,
            "from": row["from_state"],
            "to": row["to_state"],
            "pending_state": row["pending_state"],
            "status": row["status"],
            "step": current.name if current else None,
            "submitter": {"id": row["submitter_id"], "username": names.get(row["submitter_id"])},
            "comment": row["comment"],
            "started_at": row["started_at"],
            "closed_at": row["closed_at"],
            "steps": steps,
            "cc": by_step.get(-1, []),
            "may_withdraw": is_open
            and nothing_approved
            and (actor.id == row["submitter_id"] or actor.is_admin),
            "my_tasks": [
                t["id"]
                for t in every
                if is_open
                and t["kind"] == tasks.APPROVE
                and t["status"] == tasks.OPEN
                and t["assignee_id"] == actor.id
            ],
        }
    )


def task_view(task: dict, names: dict[int, str]) -> dict:
    return {
        "id": task["id"],
        "kind": task["kind"],
        "step": task["step_name"],
        "round": task["round"],
        "level": task["level"],
        "source": task["source"],
        "assignee": names.get(task["assignee_id"]),
        "assignee_id": task["assignee_id"],
        "on_behalf_of": names.get(task["on_behalf_of"]),
        "status": task["status"],
        "acted_by": names.get(task["acted_by"]),
        "acted_at": task["acted_at"],
        "comment": task["comment"],
        "due_at": task["due_at"],
        "escalated_at": task["escalated_at"],
    }


def _step_status(row: dict, index: int, had_tasks: bool) -> str:
    current, status = row["step_index"], row["status"]
    if index < current:
        return "passed" if had_tasks else "skipped"
    if index == current:
        if status == "open":
            return "current"
        return "passed" if status == "approved" else status
    if status == "open":
        return "pending"
    return "skipped" if status == "approved" else "not_reached"
