"""The schema of what users see: forms, views and dashboards."""

from __future__ import annotations

from typing import Any

from .blocks import BOOLEAN, NAMES, RULE, STRING, TEXT, closed, dispatch_on_type, list_of, ref

VIEW_TYPES = ("list", "kanban", "calendar")
WIDGET_AGGREGATES = ("count", "sum", "avg")


def form_definitions() -> dict[str, Any]:
    layout_field = closed(
        "layout field",
        {
            "field": STRING,
            "label": TEXT,
            "help": TEXT,
            "width": {"type": "integer", "minimum": 1, "maximum": 4},
            "visible_when": RULE,
            "required_when": RULE,
            "read_only_when": RULE,
        },
        ("field",),
    )
    section = closed(
        "layout section",
        {
            "section": TEXT,
            "tab": TEXT,
            "columns": {"type": "integer", "minimum": 1, "maximum": 4},
            "fields": list_of(
                {"type": ["string", "object"], "if": {"type": "object"}, "then": layout_field}
            ),
        },
        ("fields",),
    )
    validation = closed(
        "validation", {"rule": RULE, "message": TEXT, "fields": NAMES}, ("rule", "message")
    )
    return {
        "form": closed(
            "form",
            {
                "name": ref("identifier"),
                "entity": STRING,
                "label": TEXT,
                "description": TEXT,
                "default": BOOLEAN,
                "public": BOOLEAN,
                "layout": list_of(section, 1),
                "validations": list_of(validation),
            },
            ("name", "entity"),
        )
    }


def view_definitions() -> dict[str, Any]:
    sort = closed("sort", {"field": STRING, "dir": {"enum": ["asc", "desc"]}}, ("field",))
    needs = [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {"title": f"{kind} view", "required": [key]},
        }
        for kind, key in (("kanban", "group_by"), ("calendar", "date_field"))
    ]
    return {
        "view": closed(
            "view",
            {
                "name": ref("identifier"),
                "entity": STRING,
                "type": {"title": "view type", "enum": list(VIEW_TYPES)},
                "label": TEXT,
                "description": TEXT,
                "columns": list_of(STRING, 1),
                "filter": RULE,
                "sort": list_of(sort),
                "group_by": STRING,
                "date_field": STRING,
                "roles": NAMES,
            },
            ("name", "entity"),
            allOf=needs,
        )
    }


WIDGET_KEYS = {
    "number": {"aggregate": {"enum": list(WIDGET_AGGREGATES)}, "field": STRING},
    "chart": {
        "chart": {"enum": ["bar", "line", "pie", "funnel"]},
        "group_by": STRING,
        "aggregate": {"enum": list(WIDGET_AGGREGATES)},
        "field": STRING,
        "period": {"enum": ["day", "week", "month"]},
    },
    "pareto": {
        "group_by": STRING,
        "field": STRING,
        "classes": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Z]$"},
            "additionalProperties": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        },
    },
}
WIDGET_REQUIRED = {"number": (), "chart": ("chart", "group_by"), "pareto": ("group_by", "field")}


def dashboard_definitions() -> dict[str, Any]:
    common = {
        "type": {"title": "widget type", "enum": list(WIDGET_KEYS)},
        "label": TEXT,
        "entity": STRING,
        "filter": RULE,
    }
    definitions: dict[str, Any] = {
        "widget": {
            "title": "widget",
            "type": "object",
            "required": ["type", "entity"],
            "properties": common,
            "allOf": dispatch_on_type("widget", list(WIDGET_KEYS)),
        }
    }
    for kind, keys in WIDGET_KEYS.items():
        known = dict.fromkeys(common, True) | keys
        definitions[f"widget_{kind}"] = closed(f"{kind} widget", known, WIDGET_REQUIRED[kind])
    definitions["dashboard"] = closed(
        "dashboard",
        {
            "name": ref("identifier"),
            "label": TEXT,
            "description": TEXT,
            "roles": NAMES,
            "widgets": list_of(ref("widget"), 1),
        },
        ("name", "widgets"),
    )
    return definitions
