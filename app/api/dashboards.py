"""``/api/v1/apps/{app}/dashboards``: the dashboards a caller may see, computed.

The numbers, series and ABC groups are the core's (``records.dashboards``, whose
docstring describes the response), computed when asked (exact, unlike the pages'
snapshots; ``as_of`` says when); this view picks the language and shapes
nothing. Labels come in the ``language`` query parameter's language, else the
best of ``Accept-Language`` among the configured languages, else the default.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import Blueprint, current_app, jsonify, request

from records.dashboards import compute_dashboard, list_dashboards

from ..runtime import runtime
from .auth import current_actor
from .paths import IDENTIFIER, PREFIX, json_content
from .paths import _responses as responses
from .schemas import ref
from .service import records_service

blueprint = Blueprint("dashboards", __name__, url_prefix="/apps")


def request_language() -> str:
    settings = current_app.config["CRM"]
    chosen = request.args.get("language", "").strip()
    if chosen:
        return chosen
    return (
        request.accept_languages.best_match(settings["languages"]) or settings["default_language"]
    )


@blueprint.get("/<app>/dashboards")
def dashboards(app: str):
    items = list_dashboards(records_service(), current_actor(), app, request_language())
    return jsonify({"items": items})


@blueprint.get("/<app>/dashboards/<name>")
def dashboard(app: str, name: str):
    return jsonify(
        compute_dashboard(records_service(), current_actor(), app, name, request_language())
    )


# --- the OpenAPI description -------------------------------------------------------------

NUMBER = {"type": ["integer", "string"], "description": "an integer, or an exact decimal string"}
MAYBE_NUMBER = {**NUMBER, "type": ["integer", "string", "null"]}
SHARE = {"type": ["number", "null"], "minimum": 0}


def dashboard_paths(spec: APISpec) -> None:
    """The dashboard operations; the apps and dashboard names are the installed ones."""
    _components(spec)
    apps, names = _installed()
    language = {
        "name": "language",
        "in": "query",
        "schema": {"type": "string"},
        "description": "language of the labels (default: Accept-Language, then the configured)",
    }
    # Listing the names that exist lets a client (or a fuzzer) reach real dashboards.
    app_parameter = {
        "name": "app",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": apps} if apps else IDENTIFIER,
    }
    name_parameter = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": names} if names else IDENTIFIER,
    }
    spec.path(
        path=f"{PREFIX}/apps/{{app}}/dashboards",
        parameters=[app_parameter],
        operations={
            "get": {
                "operationId": "dashboards.list",
                "summary": "The dashboards of an app the caller may see",
                "parameters": [language],
                "responses": responses(
                    {
                        200: {
                            "description": "the dashboards",
                            **json_content(
                                {
                                    "type": "object",
                                    "required": ["items"],
                                    "properties": {
                                        "items": {"type": "array", "items": ref("DashboardEntry")}
                                    },
                                }
                            ),
                        }
                    },
                    404,
                ),
            }
        },
    )
    spec.path(
        path=f"{PREFIX}/apps/{{app}}/dashboards/{{name}}",
        parameters=[app_parameter, name_parameter],
        operations={
            "get": {
                "operationId": "dashboards.get",
                "summary": "A dashboard with every widget computed over what the caller may read",
                "description": "computed when asked (as_of: when); a widget over records "
                "the caller may not read comes back with permitted: false and a message",
                "parameters": [language],
                "responses": responses(
                    {
                        200: {
                            "description": "the computed dashboard",
                            **json_content(ref("Dashboard")),
                        }
                    },
                    403,
                    404,
                    422,
                ),
            }
        },
    )


def _installed() -> tuple[list[str], list[str]]:
    """The apps that have dashboards, and the names of their dashboards."""
    registry = runtime().registry
    apps, names = [], set()
    for app in registry.app_names():
        found = [d["name"] for d in registry.app(app).model.list_of("dashboards")]
        if found:
            apps.append(app)
            names.update(found)
    return apps, sorted(names)


def _components(spec: APISpec) -> None:
    schemas = spec.components
    heading = {
        "name": IDENTIFIER,
        "label": {"type": "string"},
        "description": {"type": "string"},
    }
    schemas.schema(
        "DashboardEntry",
        {
            "type": "object",
            "required": ["name", "label", "widgets"],
            "properties": {**heading, "widgets": {"type": "integer", "minimum": 0}},
        },
    )
    series_item = {
        "key": {
            "type": ["string", "integer", "boolean", "null"],
            "description": "the group's value: an option, a record or user id, a period's "
            "first day; null for records without one",
        },
        "label": {"type": "string"},
        "value": MAYBE_NUMBER,
        "color": {"type": "string"},
    }
    schemas.schema(
        "SeriesItem",
        {"type": "object", "required": ["key", "label", "value"], "properties": series_item},
    )
    schemas.schema(
        "ParetoGroup",
        {
            "type": "object",
            "required": ["key", "label", "value", "rank", "share", "cumulative", "class"],
            "properties": {
                **series_item,
                "rank": {"type": "integer", "minimum": 1},
                "share": SHARE,
                "cumulative": SHARE,
                "class": {"type": ["string", "null"]},
            },
        },
    )
    schemas.schema(
        "ParetoClass",
        {
            "type": "object",
            "required": ["class", "limit", "groups", "value", "share"],
            "properties": {
                "class": {"type": "string"},
                "limit": {"type": "number"},
                "groups": {"type": "integer", "minimum": 0},
                "value": NUMBER,
                "share": SHARE,
            },
        },
    )
    schemas.schema("DashboardWidget", _widget_schema())
    schemas.schema(
        "Dashboard",
        {
            "type": "object",
            "required": ["name", "label", "as_of", "widgets"],
            "properties": {
                **heading,
                "as_of": {
                    "type": "string",
                    "format": "date-time",
                    "description": "the moment the numbers were computed (UTC); the API "
                    "computes them when asked, pages show snapshots",
                },
                "widgets": {"type": "array", "items": ref("DashboardWidget")},
            },
        },
    )


def _widget_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "label", "entity", "permitted"],
        "properties": {
            "type": {"enum": ["number", "chart", "pareto"]},
            "label": {"type": "string"},
            "entity": {"type": "string"},
            "permitted": {"type": "boolean"},
            "message": {"type": "string", "description": "why a widget is not permitted"},
            "aggregate": {"enum": ["count", "sum", "avg"]},
            "field": {"type": "string"},
            "group_by": {"type": "string"},
            "chart": {"enum": ["bar", "line", "pie", "funnel"]},
            "period": {"enum": ["day", "week", "month"]},
            "currency": {"type": "string"},
            "value": {**MAYBE_NUMBER, "description": "number widgets: the result"},
            "series": {"type": "array", "items": ref("SeriesItem")},
            "total": NUMBER,
            "groups": {"type": "array", "items": ref("ParetoGroup")},
            "classes": {"type": "array", "items": ref("ParetoClass")},
        },
    }
