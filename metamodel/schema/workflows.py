"""The schema of workflows: states, transitions, approvals and approvers."""

from __future__ import annotations

from typing import Any

from .blocks import BOOLEAN, COLOUR, NAMES, RULE, STRING, TEXT, closed, list_of, ref


def workflow_definitions() -> dict[str, Any]:
    approvers = closed(
        "approvers",
        {
            "role": STRING,
            "users": list_of(STRING, 1),
            "field": STRING,
            "manager_of": STRING,
            "levels": {"title": "levels", "type": "integer", "minimum": -1, "not": {"const": 0}},
        },
        minProperties=1,
        dependentRequired={"levels": ["manager_of"]},
    )
    step = closed(
        "approval step",
        {
            "name": ref("identifier"),
            "label": TEXT,
            "approvers": ref("approvers"),
            "mode": {"enum": ["any", "all", "quorum"]},
            "min": {"type": "integer", "minimum": 1},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "when": RULE,
            "due_hours": {"type": "number", "exclusiveMinimum": 0},
            "escalate_to": ref("approvers"),
            "editable_fields": NAMES,
            "on_no_approver": {"enum": ["skip", "admin"]},
        },
        ("name", "approvers"),
    )
    # A notified party is a role (or $owner), or anyone an approvers object names.
    notified = {"type": ["string", "object"], "if": {"type": "object"}, "then": ref("approvers")}
    transition = closed(
        "transition",
        {
            "name": ref("identifier"),
            "label": TEXT,
            "description": TEXT,
            "from": {"type": ["string", "array"], "items": STRING, "minItems": 1},
            "to": STRING,
            "roles": NAMES,
            "when": RULE,
            "set": {"type": "object"},
            "approval": closed(
                "approval", {"steps": list_of(step, 1), "cc": ref("approvers")}, ("steps",)
            ),
            "pending_state": STRING,
            "reject_to": STRING,
            "notify": list_of(notified),
        },
        ("name", "from", "to"),
    )
    state = closed(
        "state",
        {
            "name": ref("identifier"),
            "label": TEXT,
            "initial": BOOLEAN,
            "final": BOOLEAN,
            "editable": BOOLEAN,
            "color": {"type": "string", "pattern": COLOUR},
        },
        ("name",),
    )
    return {
        "approvers": approvers,
        "workflow": closed(
            "workflow",
            {
                "name": ref("identifier"),
                "entity": STRING,
                "label": TEXT,
                "description": TEXT,
                "state_field": ref("field_name"),
                "states": list_of(state, 1),
                "transitions": list_of(transition),
            },
            ("name", "entity", "state_field", "states"),
        ),
    }
