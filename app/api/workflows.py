"""Workflow endpoints: a record's transitions and approval, approval tasks, notifications,
and the caller's delegations (who takes their approval tasks while they are away).

Every rule is the workflow engine's (``workflow_engine.Workflows``); these views
read the request, check its shape and shape the answer. A refused transition is
403 (the caller may not fire it), 404 (no such transition) or 409 (the record's
state, its data — a ``when`` condition — or an open approval forbids it), each
message naming the check that failed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from metamodel.errors import NotFound, Problem
from metamodel.field_types import ValueProblem, coerce_datetime
from metamodel.pointer import escape
from records.errors import ValidationFailed
from records.serialize import json_value
from workflow_engine.actions import ACTIONS

from .auth import current_actor
from .errors import BadRequest
from .inputs import MAX_ID, etag, if_match, json_body, query_flag, query_int
from .records import RECORD, entity_runtime
from .service import workflows_service

blueprint = Blueprint("workflows", __name__)

MAX_LIMIT = 200
DEFAULT_LIMIT = 100
TASK = f"/approvals/<int(min=1, max={MAX_ID}):task_id>/<action>"


# --- reading bodies -----------------------------------------------------------------


def payload(*keys: str) -> dict[str, Any]:
    """The optional JSON object body of an action; no body at all is ``{}``."""
    if not request.get_data(cache=True).strip():
        return {}
    body = json_body()
    if not isinstance(body, dict):
        example = ", ".join(f'"{key}": ...' for key in keys)
        raise ValidationFailed([Problem("", f"must be a JSON object: {{{example}}}")])
    allowed = f"use {', '.join(keys)}" if keys else "send no body, or {}"
    problems = [
        Problem(f"/{escape(key)}", f"is not a key here; {allowed}")
        for key in body
        if key not in keys
    ]
    problems += list(_nul_characters(body, ""))
    if problems:
        raise ValidationFailed(problems)
    return body


def _nul_characters(value: Any, path: str):
    # No database text holds a NUL (PostgreSQL refuses it outright).
    if isinstance(value, str) and "\x00" in value:
        yield Problem(path, "contains a NUL character, which text cannot hold")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nul_characters(item, f"{path}/{escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_characters(item, f"{path}/{index}")


def comment_of(body: dict[str, Any]) -> str | None:
    comment = body.get("comment")
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise ValidationFailed([Problem("/comment", "must be text")])
    return comment.strip() or None


def limit() -> int:
    value = query_int("limit", DEFAULT_LIMIT)
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed([Problem("/limit", f"must be a whole number from 1 to {MAX_LIMIT}")])
    return value


def outcome(result: dict[str, Any]):
    """The answer to a change: ``{record, state, approval}``, with the record's ETag."""
    response = jsonify(result)
    response.headers["ETag"] = etag(result["record"]["version"])
    return response


# --- a record's transitions and approval ------------------------------------------


@blueprint.get("/records" + RECORD + "/transitions")
def list_transitions(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    items = workflows_service().available(current_actor(), app, entity, record_id)
    return jsonify({"items": items})


@blueprint.post("/records" + RECORD + "/transitions/<name>")
def fire_transition(app: str, entity: str, record_id: int, name: str):
    entity_runtime(app, entity)
    expected = if_match()
    body = payload("comment")
    result = workflows_service().fire(
        current_actor(),
        app,
        entity,
        record_id,
        name,
        comment_of(body),
        expected_version=expected,
    )
    return outcome(result)


@blueprint.get("/records" + RECORD + "/approval")
def get_approval(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    view = workflows_service().approval(current_actor(), app, entity, record_id)
    if view is None:
        raise NotFound(f"{entity} {record_id} has no open approval")
    return jsonify(view)


@blueprint.post("/records" + RECORD + "/approval/withdraw")
def withdraw_approval(app: str, entity: str, record_id: int):
    entity_runtime(app, entity)
    payload()
    return outcome(workflows_service().withdraw(current_actor(), app, entity, record_id))


# --- the caller's approval tasks ------------------------------------------------------


@blueprint.get("/approvals")
def list_approvals():
    if "mine" in request.args and not query_flag("mine"):
        raise BadRequest("only your own approvals are listed: send mine=1 or leave it out", "/mine")
    actor = current_actor()
    flow = workflows_service()
    box = request.args.get("box", "waiting")
    items = flow.inbox(actor, box, limit())
    return jsonify({"items": items, "counts": flow.counts(actor)})


@blueprint.post(TASK)
def act_on_task(task_id: int, action: str):
    if action not in ACTIONS:
        raise NotFound(f"there is no approval action '{action}'; use one of {', '.join(ACTIONS)}")
    keys = {
        "send_back": ("comment", "to"),
        "transfer": ("comment", "to"),
        "add_approver": ("comment", "users"),
    }.get(action, ("comment",))
    body = payload(*keys)
    return outcome(workflows_service().act(current_actor(), task_id, action, body))


# --- notifications ------------------------------------------------------------------


@blueprint.get("/notifications")
def list_notifications():
    actor = current_actor()
    flow = workflows_service()
    items = flow.notifications(actor, unread_only=query_flag("unread"), limit=limit())
    return jsonify({"items": items, "unread": flow.counts(actor)["unread"]})


@blueprint.post("/notifications/read")
def mark_notifications_read():
    """Mark the notifications ``ids`` read, or all of the caller's without ``ids``."""
    ids = payload("ids").get("ids")
    if ids is not None:
        if not isinstance(ids, list):
            raise ValidationFailed([Problem("/ids", "must be a list of notification ids")])
        problems = [
            Problem(f"/ids/{index}", "must be a notification id (a whole number from 1)")
            for index, value in enumerate(ids)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID
        ]
        if problems:
            raise ValidationFailed(problems)
    return jsonify({"marked": workflows_service().mark_read(current_actor(), ids)})


# --- delegation -----------------------------------------------------------------------


@blueprint.get("/delegations")
def list_delegations():
    """The caller's delegations, the latest start first (past ones included)."""
    return jsonify({"items": json_value(workflows_service().delegations(current_actor()))})


@blueprint.post("/delegations")
def create_delegation():
    """Hand the caller's approval tasks of a period to another user."""
    actor = current_actor()
    body = payload("delegate", "starts_at", "ends_at")
    problems = []
    delegate = body.get("delegate")
    if not isinstance(delegate, str) or not delegate.strip():
        problems.append(Problem("/delegate", "name the user who takes your tasks (a username)"))
    flow = workflows_service()
    starts_at = _moment(body, "starts_at", problems, default=flow.records.clock())
    ends_at = _moment(body, "ends_at", problems)
    if problems:
        raise ValidationFailed(problems)
    made = flow.delegate(actor, delegate.strip(), starts_at, ends_at)
    return jsonify(json_value(made)), 201


@blueprint.post(f"/delegations/<int(min=1, max={MAX_ID}):delegation_id>/end")
def end_delegation(delegation_id: int):
    """End a delegation now (one not begun yet never begins); the caller's own, or any for an
    admin."""
    workflows_service().end_delegation(current_actor(), delegation_id)
    return jsonify({"ended": delegation_id})


def _moment(body: dict[str, Any], key: str, problems: list[Problem], default=None):
    value = body.get(key)
    if value is None:
        if default is None:
            problems.append(Problem(f"/{key}", "is required: a date and time (ISO 8601)"))
        return default
    try:
        return coerce_datetime(value, {})
    except ValueProblem as problem:
        problems.append(Problem(f"/{key}", problem.message))
        return None
