"""The operations of the OpenAPI description: the apps endpoints and each entity's paths."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from records.query import MAX_PER_PAGE
from records.runtime import EntityRuntime

from .inputs import MAX_ID
from .records import MAX_BATCH, MAX_PAGE
from .schemas import names, ref

# Where the API lives; the description names full paths, so it needs no servers.
PREFIX = "/api/v1"
IDENTIFIER = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,29}$"}
TEXT = {
    "oneOf": [
        {"type": "string"},
        {"type": "object", "additionalProperties": {"type": "string"}},
    ],
    "description": "a text, or a map of language code to text",
}
ERROR_STATUSES = {
    400: ("BadRequest", "the request could not be read (malformed JSON, a bad query parameter)"),
    401: ("Unauthorized", "no valid bearer token"),
    403: ("Forbidden", "the caller may not do this"),
    404: ("NotFound", "no such app, entity or record"),
    409: ("Conflict", "the data forbids it (a unique value taken, a refused plan)"),
    413: ("TooLarge", "the request body is larger than the server accepts"),
    422: ("Invalid", "values that do not fit; each error's path names the field"),
}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[int, dict[str, Any]], *errors: int) -> dict[str, Any]:
    responses: dict[Any, Any] = {str(status): body for status, body in ok.items()}
    for status in (401, *errors):
        responses[str(status)] = {"$ref": f"#/components/responses/{ERROR_STATUSES[status][0]}"}
    return responses


# --- apps ---------------------------------------------------------------------------


def app_paths(spec: APISpec) -> None:
    applied = {
        "type": "object",
        "required": ["name", "version", "plan"],
        "properties": {"name": IDENTIFIER, "version": {"type": "string"}, "plan": ref("Plan")},
    }
    spec.path(
        path=f"{PREFIX}/apps",
        operations={
            "get": {
                "operationId": "apps.list",
                "summary": "The installed apps",
                "responses": _responses(
                    {
                        200: {
                            "description": "the apps",
                            **json_content(
                                {
                                    "type": "object",
                                    "required": ["items"],
                                    "properties": {
                                        "items": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "required": ["name", "version", "label"],
                                                "properties": {
                                                    "name": IDENTIFIER,
                                                    "version": {"type": "string"},
                                                    "label": TEXT,
                                                },
                                            },
                                        }
                                    },
                                }
                            ),
                        }
                    }
                ),
            },
            "post": {
                "operationId": "apps.publish",
                "summary": "Apply an app document, or with dry_run=1 validate and plan it",
                "description": "admin and designer only",
                "parameters": [
                    {
                        "name": "dry_run",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["0", "1"]},
                        "description": "1: validate and plan, change nothing",
                    }
                ],
                "requestBody": {"required": True, **json_content(ref("AppDocument"))},
                "responses": _responses(
                    {
                        200: {
                            "description": "dry run: the plan; or applied: nothing changed",
                            **json_content(
                                {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "required": ["plan"],
                                            "properties": {"plan": ref("Plan")},
                                            "additionalProperties": False,
                                        },
                                        applied,
                                    ]
                                }
                            ),
                        },
                        201: {"description": "published as a new version", **json_content(applied)},
                    },
                    400,
                    403,
                    409,
                    413,
                    422,
                ),
            },
        },
    )
    spec.path(
        path=f"{PREFIX}/apps/{{app}}",
        operations={
            "get": {
                "operationId": "apps.get",
                "summary": "The current document of an app",
                "parameters": [
                    {"name": "app", "in": "path", "required": True, "schema": IDENTIFIER}
                ],
                "responses": _responses(
                    {200: {"description": "the app document", **json_content({"type": "object"})}},
                    404,
                ),
            }
        },
    )
    spec.path(
        path=f"{PREFIX}/openapi.json",
        operations={
            "get": {
                "operationId": "openapi",
                "summary": "This description",
                "responses": _responses(
                    {200: {"description": "OpenAPI 3.1", **json_content({"type": "object"})}}
                ),
            }
        },
    )


# --- records of one entity ----------------------------------------------------------


def record_paths(spec: APISpec, runtime: EntityRuntime) -> None:
    schema = names(runtime)
    base = f"{PREFIX}/records/{runtime.app_name}/{runtime.name}"
    label = runtime.name
    op = f"{runtime.app_name}.{runtime.name}"
    record = {"description": f"the {label} record", **json_content(ref(schema["record"]))}
    record["headers"] = {"ETag": {"schema": {"type": "string"}, "description": "the version"}}
    record_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }
    spec.path(
        path=base,
        operations={
            "get": {
                "operationId": f"{op}.list",
                "summary": f"List {label} records the caller may read",
                "parameters": _list_parameters(),
                "responses": _responses(
                    {200: {"description": "a page of records", **json_content(_page(schema))}},
                    400,
                    403,
                    404,
                    422,
                ),
            },
            "post": {
                "operationId": f"{op}.create",
                "summary": f"Create a {label} record",
                "requestBody": {"required": True, **json_content(ref(schema["create"]))},
                "responses": _responses(
                    {201: {**record, "description": "created"}}, 400, 403, 404, 409, 413, 422
                ),
            },
        },
    )
    spec.path(
        path=f"{base}/batch",
        operations={
            "post": {
                "operationId": f"{op}.batch",
                "summary": f"Create up to {MAX_BATCH} {label} records, all or nothing",
                "description": "errors point at /items/N/field",
                "requestBody": {
                    "required": True,
                    **json_content(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "maxItems": MAX_BATCH,
                                    "items": ref(schema["create"]),
                                }
                            },
                            "additionalProperties": False,
                        }
                    ),
                },
                "responses": _responses(
                    {
                        201: {
                            "description": "the ids of the new records, in order",
                            **json_content(
                                {
                                    "type": "object",
                                    "required": ["ids"],
                                    "properties": {
                                        "ids": {
                                            "type": "array",
                                            "items": {"type": "integer", "minimum": 1},
                                        }
                                    },
                                }
                            ),
                        }
                    },
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
    stale = {
        "description": "the record changed since the version in If-Match",
        **json_content(
            {
                "allOf": [ref("Errors")],
                "type": "object",
                "required": ["current_version"],
                "properties": {
                    "current_version": {"type": "integer", "minimum": 1},
                    "current": ref(schema["record"]),
                },
            }
        ),
    }
    spec.path(
        path=f"{base}/{{id}}",
        parameters=[record_id],
        operations={
            "get": {
                "operationId": f"{op}.get",
                "summary": f"One {label} record",
                "responses": _responses({200: record}, 403, 404),
            },
            "patch": {
                "operationId": f"{op}.update",
                "summary": f"Update a {label} record with the fields given",
                "parameters": [
                    {
                        "name": "If-Match",
                        "in": "header",
                        "schema": {"type": "string", "pattern": '^(W/)?"?[1-9][0-9]{0,17}"?$'},
                        "description": "the version you read; 412 when the record moved on",
                    }
                ],
                "requestBody": {"required": True, **json_content(ref(schema["input"]))},
                "responses": {
                    **_responses({200: record}, 400, 403, 404, 409, 413, 422),
                    "412": stale,
                },
            },
            "delete": {
                "operationId": f"{op}.delete",
                "summary": f"Move a {label} record to the recycle bin",
                "responses": _responses({204: {"description": "deleted"}}, 403, 404, 409),
            },
        },
    )
    spec.path(
        path=f"{base}/{{id}}/history",
        parameters=[record_id],
        operations={
            "get": {
                "operationId": f"{op}.history",
                "summary": "Audit and workflow events, newest first",
                "responses": _responses(
                    {
                        200: {
                            "description": "the events",
                            **json_content(
                                {
                                    "type": "object",
                                    "required": ["items"],
                                    "properties": {
                                        "items": {"type": "array", "items": ref("Event")}
                                    },
                                }
                            ),
                        }
                    },
                    403,
                    404,
                ),
            },
        },
    )
    spec.path(
        path=f"{base}/{{id}}/restore",
        parameters=[record_id],
        operations={
            "post": {
                "operationId": f"{op}.restore",
                "summary": f"Restore a {label} record from the recycle bin",
                "responses": _responses({200: record}, 403, 404, 409),
            },
        },
    )


def _page(schema: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "total", "total_is_estimate", "page", "per_page"],
        "properties": {
            "items": {"type": "array", "items": ref(schema["record"])},
            "total": {"type": "integer", "minimum": 0},
            "total_is_estimate": {"type": "boolean"},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        },
    }


def _list_parameters() -> list[dict[str, Any]]:
    return [
        {
            "name": "filter",
            "in": "query",
            "description": "a JsonLogic rule, as URL-encoded JSON",
            "content": {"application/json": {"schema": {}}},
        },
        {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "search text"},
        {
            "name": "sort",
            "in": "query",
            "schema": {"type": "string"},
            "description": "field names, comma separated; a leading - sorts descending",
        },
        {
            "name": "page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        },
        {
            "name": "per_page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        },
    ]
