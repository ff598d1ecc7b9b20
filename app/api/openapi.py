"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of the API as it is now.

Entities bring their own paths and schemas, built from the published metadata,
so a publish shows in the next request's description. The description is
cached per metadata generation, which every publish bumps.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify

from ..runtime import runtime
from .dashboards import dashboard_paths
from .import_paths import import_components, import_paths, import_record_paths
from .paths import ERROR_STATUSES, IDENTIFIER, TEXT, app_paths, json_content, record_paths
from .schemas import ref, register_entity
from .service import records_service
from .workflow_paths import workflow_components, workflow_paths, workflow_record_paths

blueprint = Blueprint("openapi", __name__)

CACHE_KEY = "crm.openapi"


@blueprint.get("/openapi.json")
def openapi_json():
    generation = runtime().registry.generation
    cached = current_app.extensions.get(CACHE_KEY)
    if cached is None or cached[0] != generation:
        cached = (generation, build_spec())
        current_app.extensions[CACHE_KEY] = cached
    return jsonify(cached[1])


def build_spec() -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="CRM builder API",
        version="1",
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Records of every published app, and the apps themselves. "
            "Errors are {errors: [{path, message}]}, path a JSON Pointer."
        },
        security=[{"bearerAuth": []}],
    )
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "a token from crm user create --token"},
    )
    _common_components(spec)
    workflow_components(spec)
    import_components(spec)
    app_paths(spec)
    dashboard_paths(spec)
    workflow_paths(spec)
    import_paths(spec)
    registry = runtime().registry
    service = records_service()
    for app_name in registry.app_names():
        for entity in registry.app(app_name).model.entities.values():
            if entity.is_child:
                continue
            entity_runtime = service.runtime(app_name, entity.name)
            register_entity(spec, plugin, entity_runtime)
            record_paths(spec, entity_runtime)
            workflow_record_paths(spec, entity_runtime)
            import_record_paths(spec, entity_runtime)
    return spec.to_dict()


# --- components every description has --------------------------------------------


def _common_components(spec: APISpec) -> None:
    schemas = spec.components
    schemas.schema(
        "Problem",
        {
            "type": "object",
            "required": ["path", "message"],
            "properties": {
                "path": {"type": "string", "description": "a JSON Pointer ('' is the whole)"},
                "message": {"type": "string"},
            },
        },
    )
    schemas.schema(
        "Errors",
        {
            "type": "object",
            "required": ["errors"],
            "properties": {"errors": {"type": "array", "minItems": 1, "items": ref("Problem")}},
        },
    )
    schemas.schema(
        "Plan",
        {
            "type": "object",
            "required": ["operations", "warnings", "problems"],
            "properties": {
                "operations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["op", "description"],
                        "properties": {"op": {"type": "string"}, "description": {"type": "string"}},
                    },
                },
                "warnings": {"type": "array", "items": {"type": "string"}},
                "problems": {"type": "array", "items": ref("Problem")},
                "changed": {"type": "boolean", "description": "dry run: does the document change"},
                "refused": {"type": "boolean", "description": "dry run: would applying refuse"},
            },
        },
    )
    schemas.schema(
        "AppDocument",
        {
            "type": "object",
            "required": ["format", "name", "version"],
            "properties": {
                "format": {"const": "crm-app/1"},
                "name": IDENTIFIER,
                "version": {"type": "string", "description": "semver, e.g. 1.2.0"},
                "label": TEXT,
            },
            "description": "an app document (format crm-app/1): entities, forms, workflows, "
            "views, dashboards and roles",
        },
    )
    schemas.schema(
        "Event",
        {
            "type": "object",
            "required": ["kind", "action", "at"],
            "properties": {
                "kind": {"type": "string", "description": "audit, or a workflow event"},
                "action": {
                    "type": "string",
                    "description": "create, update, delete, restore; or a workflow event: "
                    "transition, submit, approve, reject, send_back, transfer, add_approver, "
                    "comment, withdraw, escalate",
                },
                "actor_id": {"type": ["integer", "null"]},
                "at": {"type": "string", "format": "date-time"},
                "changes": {
                    "type": "object",
                    "description": "field name to [before, after]; a workflow event has "
                    "state: [before, after] and details (workflow, transition, step, task ...)",
                    "properties": {"details": {"type": "object"}},
                    "additionalProperties": {"type": "array"},
                },
                "comment": {"type": ["string", "null"]},
            },
        },
    )
    for status, (name, description) in ERROR_STATUSES.items():
        response = {"description": description, **json_content(ref("Errors"))}
        if status == 401:
            response["headers"] = {
                "WWW-Authenticate": {
                    "schema": {"type": "string"},
                    "description": 'Bearer realm="crm"',
                }
            }
        schemas.response(name, response)
