"""Friendly error pages, and JSON errors for API paths no API view answered.

Routing fails before any blueprint is chosen, so an unknown path under the API
is told apart by its prefix; everything else gets a page in the user's
language that says what happened and where to go next.
"""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from metamodel.errors import CrmError

from .api import PREFIX
from .api import errors as api_errors
from .i18n import reason

log = logging.getLogger(__name__)


def _is_api() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def error_page(status: int, message: str | None = None):
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if _is_api():
            return api_errors.http_error(error)
        status = error.code or 500
        if status >= 500:
            log.error("request failed: %s %s", request.method, request.path, exc_info=error)
        return error_page(status)

    @app.errorhandler(CrmError)
    def _crm_error(error: CrmError):
        if _is_api():
            return api_errors.crm_error(error)
        return error_page(api_errors.status_of(error), reason(error))
