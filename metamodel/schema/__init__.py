"""The JSON Schema (draft 2020-12) of the app document, format ``crm-app/1``.

The field definitions are generated from the field-type registry, so adding a
type is adding one registry entry. Field and widget definitions dispatch on
their ``type`` with ``if``/``then`` into one closed definition per type rather
than a ``oneOf`` of every type: a key that does not belong to the type is then
reported as exactly that, and an unknown type gives one error listing the types.

Every object is closed (``additionalProperties: false``): a misspelt key is the
most common mistake in a hand-written document, and an open schema would
silently ignore it. Keys the project adds must be added here.

``python -m metamodel.schema`` rewrites the shipped copy of the schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .blocks import (
    SEMVER,
    STRING,
    TEXT,
    closed,
    identifier_definitions,
    list_of,
    ref,
    value_definitions,
)
from .entities import entity_definitions, field_definitions
from .screens import dashboard_definitions, form_definitions, view_definitions
from .workflows import workflow_definitions

FORMAT = "crm-app/1"
SCHEMA_ID = "https://crm-builder.invalid/schema/crm-app-1.schema.json"
SCHEMA_PATH = Path(__file__).with_name("crm-app-1.schema.json")


def build_schema() -> dict[str, Any]:
    """The schema of ``crm-app/1`` as the registry defines it now."""
    role = closed(
        "role", {"name": ref("identifier"), "label": TEXT, "description": TEXT}, ("name",)
    )
    top = closed(
        "app document",
        {
            "format": {"const": FORMAT},
            "name": ref("identifier"),
            "version": {"title": "version", "type": "string", "pattern": SEMVER},
            "label": TEXT,
            "description": TEXT,
            "industry": STRING,
            "roles": list_of(role),
            "entities": list_of(ref("entity")),
            "forms": list_of(ref("form")),
            "workflows": list_of(ref("workflow")),
            "views": list_of(ref("view")),
            "dashboards": list_of(ref("dashboard")),
            "sample_data": {
                "title": "sample data",
                "type": "object",
                "additionalProperties": list_of({"type": "object"}),
            },
        },
        ("format", "name", "version"),
    )
    definitions = (
        identifier_definitions()
        | value_definitions()
        | entity_definitions()
        | field_definitions()
        | form_definitions()
        | workflow_definitions()
        | view_definitions()
        | dashboard_definitions()
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **top,
        "$defs": definitions,
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write the generated schema where the package ships it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")
    return path
