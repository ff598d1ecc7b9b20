"""The import operations of the OpenAPI description: a file to each entity, and the jobs."""

from __future__ import annotations

from apispec import APISpec

from records.import_jobs import DONE, FAILED, QUEUED, RUNNING
from records.runtime import EntityRuntime

from .imports import XLSX
from .inputs import MAX_ID
from .paths import PREFIX, _responses, json_content
from .schemas import ref

COUNT = {"type": "integer", "minimum": 0}
MOMENT = {"type": "string", "format": "date-time"}
MAYBE_MOMENT = {"type": ["string", "null"], "format": "date-time"}
FLAG = {"type": "string", "enum": ["0", "1"]}
JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
}


def import_components(spec: APISpec) -> None:
    problem = {
        "type": "object",
        "required": ["path", "message"],
        "properties": {
            "path": {"type": "string", "description": "/rows/<line>/<column>; the header is row 1"},
            "message": {"type": "string"},
            "row": {"type": "integer", "minimum": 1},
            "column": {"type": "string", "description": "as the file heads it"},
        },
    }
    properties = {
        "id": {"type": "integer", "minimum": 1},
        "app": {"type": "string"},
        "entity": {"type": "string"},
        "file_name": {"type": "string"},
        "format": {"type": "string", "enum": ["csv", "xlsx"]},
        "status": {"type": "string", "enum": [QUEUED, RUNNING, DONE, FAILED]},
        "skip_invalid": {"type": "boolean"},
        "rows_read": COUNT,
        "rows_imported": {
            **COUNT,
            "description": "while running, rows written in the import's transaction, "
            "which commits at the end",
        },
        "rows_rejected": COUNT,
        "error_count": {**COUNT, "description": "all errors; 'errors' lists the first"},
        "errors": {"type": "array", "items": problem},
        "message": {"type": ["string", "null"], "description": "what came of it, in words"},
        "has_rejects": {"type": "boolean", "description": "GET .../rejects downloads them"},
        "created_by": {"type": ["integer", "null"]},
        "created_at": MOMENT,
        "started_at": MAYBE_MOMENT,
        "heartbeat_at": MAYBE_MOMENT,
        "finished_at": MAYBE_MOMENT,
        "stale": {
            "type": "boolean",
            "description": "queued or running, yet silent for minutes: its worker died and "
            "nothing was imported; it is not restarted, import the file again",
        },
    }
    spec.components.schema(
        "ImportJob", {"type": "object", "required": list(properties), "properties": properties}
    )


def import_record_paths(spec: APISpec, runtime: EntityRuntime) -> None:
    label = runtime.name
    spec.path(
        path=f"{PREFIX}/records/{runtime.app_name}/{runtime.name}/import",
        operations={
            "post": {
                "operationId": f"{runtime.app_name}.{runtime.name}.import",
                "summary": f"Import {label} records from a CSV or XLSX file, in the background",
                "description": "All or nothing unless skip_invalid=1, which imports the good "
                "rows and keeps the bad ones in a rejects file. Columns are fields by name "
                "or label; references name the target's title. Poll the Location for "
                "progress. Needs the import permission.",
                "parameters": [
                    {"name": "skip_invalid", "in": "query", "schema": FLAG},
                    {
                        "name": "filename",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "with a raw body: the file's name (its extension "
                        "tells the format)",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {
                                        "type": "string",
                                        "format": "binary",
                                        "description": ".csv (UTF-8 or GB18030) or .xlsx",
                                    },
                                    "skip_invalid": FLAG,
                                },
                            },
                            "encoding": {"file": {"contentType": f"text/csv, {XLSX}"}},
                        },
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": _responses(
                    {
                        202: {
                            "description": "the job, queued; its progress is at Location",
                            "headers": {
                                "Location": {
                                    "schema": {"type": "string"},
                                    "description": "/api/v1/imports/{id}",
                                }
                            },
                            **json_content(ref("ImportJob")),
                        }
                    },
                    400,
                    403,
                    404,
                    413,
                    422,
                ),
            }
        },
    )


def import_paths(spec: APISpec) -> None:
    spec.path(
        path=f"{PREFIX}/imports/{{id}}",
        parameters=[JOB_ID],
        operations={
            "get": {
                "operationId": "imports.get",
                "summary": "An import: status, counts, the first errors",
                "description": "its creator and admins only",
                "responses": _responses(
                    {200: {"description": "the job", **json_content(ref("ImportJob"))}},
                    403,
                    404,
                ),
            }
        },
    )
    spec.path(
        path=f"{PREFIX}/imports/{{id}}/rejects",
        parameters=[JOB_ID],
        operations={
            "get": {
                "operationId": "imports.rejects",
                "summary": "The rows skip_invalid left out, with an error column (CSV)",
                "responses": _responses(
                    {
                        200: {
                            "description": "the rejects file",
                            "content": {"text/csv": {"schema": {"type": "string"}}},
                        }
                    },
                    403,
                    404,
                ),
            }
        },
    )
