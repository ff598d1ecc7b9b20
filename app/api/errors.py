"""Every refusal of the API as ``{"errors": [{"path", "message"}]}`` with its status.

The core raises CrmErrors; this boundary picks the status by the error's class.
HTTP errors Werkzeug raises (unknown route, wrong method, body too large) get
the same JSON shape under ``/api/v1``; elsewhere the pages keep their own.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.exceptions import HTTPException

from metamodel.errors import Conflict, CrmError, InvalidDocument, NotFound, PlanRefused
from records.errors import Forbidden, RecordConflict, StaleVersion, ValidationFailed
from workflow_engine.machine import GuardFailed


class BadRequest(CrmError):
    """A request the API cannot read: malformed JSON, a query parameter of the wrong form (400)."""

    code = "bad_request"


class Unauthenticated(CrmError):
    """No credentials, or credentials that do not name an active user (401)."""

    code = "unauthenticated"

    def __init__(self, message: str, *, invalid_token: bool = False):
        super().__init__(message)
        self.invalid_token = invalid_token


# First match wins: subclasses before the classes they refine.
STATUS: list[tuple[type[CrmError], int]] = [
    (BadRequest, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (StaleVersion, 412),
    (RecordConflict, 409),
    (Conflict, 409),
    (GuardFailed, 409),
    (PlanRefused, 409),
    (InvalidDocument, 422),
    (ValidationFailed, 422),
    (CrmError, 422),
]

HTTP_MESSAGES = {
    400: "the request could not be read",
    404: "there is no such endpoint",
    405: "this endpoint does not accept this method",
    413: "the request body is too large",
}


def status_of(error: CrmError) -> int:
    return next(status for kind, status in STATUS if isinstance(error, kind))


def error_response(status: int, problems: list[dict], headers: dict | None = None, **extra):
    response = jsonify({"errors": problems, **extra})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def crm_error(error: CrmError):
    status = status_of(error)
    headers, extra = {}, {}
    if isinstance(error, Unauthenticated):
        challenge = 'Bearer realm="crm"'
        if error.invalid_token:
            challenge += ', error="invalid_token"'
        headers["WWW-Authenticate"] = challenge
    if isinstance(error, StaleVersion):
        extra["current_version"] = error.current_version
        if error.current is not None:
            extra["current"] = error.current
    return error_response(status, error.as_dicts(), headers, **extra)


def http_error(error: HTTPException):
    status = error.code or 500
    if status >= 500:
        message = "the server failed to answer this request; it has been logged"
    else:
        message = HTTP_MESSAGES.get(status) or error.description or error.name
    if status == 413:
        limit = current_app.config["CRM"]["max_request_mb"]
        message = f"the request body is too large: at most {limit:g} MB are accepted"
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return error_response(status, [{"path": "", "message": message}], headers)


def install(blueprint: Blueprint) -> None:
    """JSON errors for the API's views (app/errors.py routes unknown API paths here too)."""
    blueprint.register_error_handler(CrmError, crm_error)
    blueprint.register_error_handler(HTTPException, http_error)
