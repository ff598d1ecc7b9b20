"""The workflow operations of the OpenAPI description, and the schemas they answer with.

A record's transitions and approval are described for each entity that has a
workflow (the transition names as an enum); approval tasks and notifications
once for the whole API.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from records.runtime import EntityRuntime
from workflow_engine.actions import ACTIONS
from workflow_engine.definitions import workflows_of
from workflow_engine.inbox import BOXES

from .inputs import MAX_ID
from .paths import PREFIX, TEXT, _responses, json_content
from .schemas import names, ref
from .workflows import MAX_LIMIT

STRING = {"type": "string"}
MAYBE_STRING = {"type": ["string", "null"]}
MAYBE_MOMENT = {"type": ["string", "null"], "format": "date-time"}
MOMENT = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1}
MAYBE_ID = {"type": ["integer", "null"], "minimum": 1}
COUNT = {"type": "integer", "minimum": 0}


def _object(properties: dict[str, Any], *optional: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def _id_parameter(name: str, description: str | None = None) -> dict[str, Any]:
    """A row id in the path (the routes' ``int(min=1, max=MAX_ID)``)."""
    parameter = {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "example": 1,
    }
    return {**parameter, "description": description} if description else parameter


def _ok(description: str, schema: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {200: {"description": description, **json_content(schema)}}


def _body(properties: dict[str, Any], description: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {"required": False, "description": description, **json_content(schema)}


COMMENT = {"comment": {"type": ["string", "null"], "description": "a comment for the history"}}


# --- components -------------------------------------------------------------------


def workflow_components(spec: APISpec) -> None:
    schemas = spec.components
    schemas.schema(
        "Transition",
        _object(
            {
                "name": STRING,
                "workflow": STRING,
                "label": TEXT,
                "to": {**STRING, "description": "the state the record moves to"},
                "approval": {"type": "boolean", "description": "does it open an approval"},
            }
        ),
    )
    schemas.schema(
        "ApprovalTask",
        _object(
            {
                "id": ID,
                "kind": {"type": "string", "enum": ["approve", "cc"]},
                "step": MAYBE_STRING,
                "round": {"type": "integer"},
                "level": {"type": "integer"},
                "source": {**STRING, "description": "assigned, transferred, added, escalated ..."},
                "assignee": MAYBE_STRING,
                "assignee_id": ID,
                "on_behalf_of": MAYBE_STRING,
                "status": {
                    **STRING,
                    "description": "open, waiting, approved, rejected, sent_back, transferred, "
                    "closed",
                },
                "acted_by": MAYBE_STRING,
                "acted_at": MAYBE_MOMENT,
                "comment": MAYBE_STRING,
                "due_at": MAYBE_MOMENT,
                "escalated_at": MAYBE_MOMENT,
            }
        ),
    )
    step = _object(
        {
            "index": {"type": "integer", "minimum": 0},
            "name": STRING,
            "label": TEXT,
            "mode": STRING,
            "editable_fields": {"type": "array", "items": STRING},
            "status": {
                **STRING,
                "description": "passed, skipped, current, pending, rejected, not_reached ...",
            },
            "tasks": {"type": "array", "items": ref("ApprovalTask")},
        }
    )
    schemas.schema(
        "Approval",
        _object(
            {
                "id": ID,
                "app": STRING,
                "entity": STRING,
                "record_id": ID,
                "workflow": STRING,
                "transition": STRING,
                "label": TEXT,
                "from": MAYBE_STRING,
                "to": STRING,
                "pending_state": MAYBE_STRING,
                "status": {**STRING, "description": "open, approved, rejected, withdrawn ..."},
                "step": {**MAYBE_STRING, "description": "the current step, while open"},
                "submitter": _object({"id": MAYBE_ID, "username": MAYBE_STRING}),
                "comment": MAYBE_STRING,
                "started_at": MOMENT,
                "closed_at": MAYBE_MOMENT,
                "steps": {"type": "array", "items": step},
                "cc": {"type": "array", "items": ref("ApprovalTask")},
                "may_withdraw": {"type": "boolean"},
                "my_tasks": {
                    "type": "array",
                    "items": ID,
                    "description": "the caller's open tasks: act on them at /approvals/{id}",
                },
            }
        ),
    )
    schemas.schema(
        "Outcome",
        _object(
            {
                "record": {"type": "object", "description": "the record after the change"},
                "state": {**STRING, "description": "the record's workflow state now"},
                "approval": {
                    "oneOf": [ref("Approval"), {"type": "null"}],
                    "description": "the approval the change opened or acted on",
                },
            }
        ),
    )
    task_fields = ("kind", "status", "source", "on_behalf_of", "due_at", "escalated_at")
    schemas.schema(
        "InboxItem",
        _object(
            {
                "id": {**ID, "description": "the task (the approval in the submitted box)"},
                "approval_id": ID,
                "app": STRING,
                "entity": STRING,
                "record_id": ID,
                "workflow": STRING,
                "transition": STRING,
                "label": TEXT,
                "approval_status": STRING,
                "step": MAYBE_STRING,
                "submitter": MAYBE_STRING,
                "started_at": MOMENT,
                "closed_at": MAYBE_MOMENT,
                "kind": STRING,
                "status": STRING,
                "source": STRING,
                "on_behalf_of": MAYBE_STRING,
                "due_at": MAYBE_MOMENT,
                "escalated_at": MAYBE_MOMENT,
                "acted_at": MAYBE_MOMENT,
                "comment": MAYBE_STRING,
            },
            *task_fields,
            "acted_at",
            "comment",
        ),
    )
    schemas.schema(
        "InboxCounts",
        _object(
            {"waiting": COUNT, "submitted": COUNT, "cc": COUNT, "done": COUNT, "unread": COUNT}
        ),
    )
    schemas.schema(
        "Notification",
        _object(
            {
                "id": ID,
                "user_id": ID,
                "kind": {
                    **STRING,
                    "description": "assigned, cc, approved, rejected, sent_back, withdrawn, "
                    "escalated, comment, transition",
                },
                "app": MAYBE_STRING,
                "entity": MAYBE_STRING,
                "record_id": MAYBE_ID,
                "approval_id": MAYBE_ID,
                "message": STRING,
                "created_at": MOMENT,
                "read_at": MAYBE_MOMENT,
            }
        ),
    )
    schemas.schema(
        "Delegation",
        _object(
            {
                "id": ID,
                "delegate": {**STRING, "description": "the user who takes the tasks"},
                "starts_at": MOMENT,
                "ends_at": MOMENT,
            }
        ),
    )


# --- one entity's records -------------------------------------------------------------


def workflow_record_paths(spec: APISpec, runtime: EntityRuntime) -> None:
    """Transitions and approval of a record, for an entity that has a workflow."""
    workflows = workflows_of(runtime.entity)
    if not workflows:
        return
    base = f"{PREFIX}/records/{runtime.app_name}/{runtime.name}/{{id}}"
    op = f"{runtime.app_name}.{runtime.name}"
    record_id = _id_parameter("id")
    transitions = [t for w in workflows for t in w.transitions]
    transitions += [f"{w.name}.{t}" for w in workflows for t in w.transitions]
    outcome = {
        "allOf": [ref("Outcome")],
        "properties": {"record": ref(names(runtime)["record"])},
    }
    changed = {
        "description": "done: the record, its state and the approval",
        "headers": {"ETag": {"schema": STRING, "description": "the record's version"}},
        **json_content(outcome),
    }
    spec.path(
        path=f"{base}/transitions",
        parameters=[record_id],
        operations={
            "get": {
                "operationId": f"{op}.transitions",
                "summary": "The transitions the caller may fire on the record now",
                "responses": _responses(
                    _ok(
                        "the transitions",
                        _object({"items": {"type": "array", "items": ref("Transition")}}),
                    ),
                    403,
                    404,
                ),
            }
        },
    )
    spec.path(
        path=f"{base}/transitions/{{name}}",
        parameters=[
            record_id,
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": transitions},
                "description": "the transition (workflow.transition where two share a name)",
            },
        ],
        operations={
            "post": {
                "operationId": f"{op}.fire",
                "summary": "Fire a transition: move the record, or open its approval",
                "description": "403: the caller may not fire it; 404: no such transition; "
                "409: the record's state, its data (the transition's condition, with the "
                "path of the field it reads) or an open approval forbids it. Send If-Match "
                "to refuse (412) when the record changed since you read it.",
                "parameters": [
                    {
                        "name": "If-Match",
                        "in": "header",
                        "schema": STRING,
                        "description": "the version you read",
                    }
                ],
                "requestBody": _body(COMMENT, "optional: a comment for the history"),
                "responses": {
                    **_responses({200: changed}, 400, 403, 404, 409, 413, 422),
                    "412": {
                        "description": "the record changed since the version in If-Match",
                        **json_content(ref("Errors")),
                    },
                },
            }
        },
    )
    spec.path(
        path=f"{base}/approval",
        parameters=[record_id],
        operations={
            "get": {
                "operationId": f"{op}.approval",
                "summary": "The open approval of the record: steps, tasks and who acted",
                "description": "404 when no approval is open (its message says so)",
                "responses": _responses(_ok("the open approval", ref("Approval")), 403, 404),
            }
        },
    )
    spec.path(
        path=f"{base}/approval/withdraw",
        parameters=[record_id],
        operations={
            "post": {
                "operationId": f"{op}.withdraw",
                "summary": "The submitter withdraws the open approval while nobody approved",
                "description": "409 when no approval is open or someone already approved",
                "requestBody": _body({}, "no body, or {}"),
                "responses": _responses({200: changed}, 400, 403, 404, 409, 413, 422),
            }
        },
    )


# --- the caller's tasks and notifications ------------------------------------------


def workflow_paths(spec: APISpec) -> None:
    limit = {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    }
    spec.path(
        path=f"{PREFIX}/approvals",
        operations={
            "get": {
                "operationId": "approvals.list",
                "summary": "The caller's approval boxes",
                "parameters": [
                    {
                        "name": "mine",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["1"]},
                        "description": "the caller's own (the only kind listed)",
                    },
                    {
                        "name": "box",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(BOXES)},
                        "description": "waiting (default): tasks to decide; submitted: "
                        "approvals I asked for; cc: copies to me; done: tasks I decided",
                    },
                    limit,
                ],
                "responses": _responses(
                    _ok(
                        "the box, newest first, and how many each box holds",
                        _object(
                            {
                                "items": {"type": "array", "items": ref("InboxItem")},
                                "counts": ref("InboxCounts"),
                            }
                        ),
                    ),
                    400,
                    422,
                ),
            }
        },
    )
    bodies = {
        "approve": COMMENT,
        "reject": COMMENT,
        "comment": COMMENT,
        "send_back": {**COMMENT, "to": {"type": "string", "enum": ["previous", "start"]}},
        "transfer": {**COMMENT, "to": {**STRING, "description": "the username to hand it to"}},
        "add_approver": {
            **COMMENT,
            "users": {"type": "array", "minItems": 1, "items": STRING},
        },
    }
    spec.path(
        path=f"{PREFIX}/approvals/{{task_id}}/{{action}}",
        parameters=[
            _id_parameter("task_id", "a task id: see my_tasks of an approval, or GET /approvals"),
            {
                "name": "action",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(ACTIONS)},
                "example": "comment",
            },
        ],
        operations={
            "post": {
                "operationId": "approvals.act",
                "summary": "Act on an approval task: " + ", ".join(ACTIONS),
                "description": "Only the task's assignee (or an admin) acts (403). send_back "
                'takes {"to": "previous"|"start"}, transfer {"to": username}, add_approver '
                '{"users": [...]}; every action takes an optional "comment" (comment needs '
                "one). 409 when the task is decided already.",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    key: value
                                    for body in bodies.values()
                                    for key, value in body.items()
                                },
                                "additionalProperties": False,
                            },
                            "example": {"comment": "please add the customer's order history"},
                        }
                    },
                },
                "responses": _responses(
                    {200: {"description": "done", **json_content(ref("Outcome"))}},
                    400,
                    403,
                    404,
                    409,
                    413,
                    422,
                ),
            }
        },
    )
    spec.path(
        path=f"{PREFIX}/notifications",
        operations={
            "get": {
                "operationId": "notifications.list",
                "summary": "The caller's notifications, newest first",
                "parameters": [
                    {
                        "name": "unread",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["0", "1"]},
                        "description": "1: only the unread ones",
                    },
                    limit,
                ],
                "responses": _responses(
                    _ok(
                        "the notifications and how many are unread",
                        _object(
                            {
                                "items": {"type": "array", "items": ref("Notification")},
                                "unread": COUNT,
                            }
                        ),
                    ),
                    400,
                    422,
                ),
            }
        },
    )
    spec.path(
        path=f"{PREFIX}/notifications/read",
        operations={
            "post": {
                "operationId": "notifications.read",
                "summary": "Mark notifications read: those in ids, or all without a body",
                "requestBody": _body(
                    {"ids": {"type": "array", "items": {"type": "integer", "minimum": 1}}},
                    'optional: {"ids": [...]}',
                ),
                "responses": _responses(
                    _ok("how many were marked", _object({"marked": COUNT})), 400, 413, 422
                ),
            }
        },
    )
    delegation_paths(spec)


def delegation_paths(spec: APISpec) -> None:
    spec.path(
        path=f"{PREFIX}/delegations",
        operations={
            "get": {
                "operationId": "delegations.list",
                "summary": "The caller's delegations, the latest start first",
                "responses": _responses(
                    _ok(
                        "the delegations, past ones included",
                        _object({"items": {"type": "array", "items": ref("Delegation")}}),
                    ),
                ),
            },
            "post": {
                "operationId": "delegations.create",
                "summary": "Hand the caller's approval tasks of a period to another user",
                "description": "Tasks assigned to the caller between starts_at (default: now) "
                "and ends_at go to the delegate, who acts on the caller's behalf. The "
                "delegate is an active user other than the caller; the period ends after it "
                "starts, and in the future (422 otherwise).",
                "requestBody": {
                    "required": True,
                    **json_content(
                        {
                            "type": "object",
                            "required": ["delegate", "ends_at"],
                            "properties": {
                                "delegate": {**STRING, "description": "a username"},
                                "starts_at": MOMENT,
                                "ends_at": MOMENT,
                            },
                            "additionalProperties": False,
                        }
                    ),
                },
                "responses": _responses(
                    {201: {"description": "delegated", **json_content(ref("Delegation"))}},
                    400,
                    413,
                    422,
                ),
            },
        },
    )
    spec.path(
        path=f"{PREFIX}/delegations/{{delegation_id}}/end",
        parameters=[_id_parameter("delegation_id")],
        operations={
            "post": {
                "operationId": "delegations.end",
                "summary": "End a delegation now; one not begun yet never begins",
                "description": "The caller's own delegations; an admin may end anyone's (403).",
                "responses": _responses(_ok("ended", _object({"ended": ID})), 403, 404),
            }
        },
    )
