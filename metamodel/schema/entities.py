"""The schema of entities and their fields, generated from the field-type registry."""

from __future__ import annotations

from typing import Any

from .. import field_types
from .blocks import BOOLEAN, NAMES, RULE, STRING, TEXT, closed, dispatch_on_type, list_of, ref

PERMISSION_VERBS = (
    "read",
    "create",
    "update",
    "delete",
    "export",
    "import",
    "read:own",
    "update:own",
    "delete:own",
)


def common_field_keys() -> dict[str, Any]:
    """The schema of every key ``field_types.COMMON_KEYS`` lists."""
    schemas = {
        "name": ref("field_name"),
        "type": {"title": "field type", "enum": list(field_types.REGISTRY)},
        "label": TEXT,
        "help": TEXT,
        "description": TEXT,
        "required": BOOLEAN,
        "unique": BOOLEAN,
        "indexed": BOOLEAN,
        "read_only": BOOLEAN,
        "default": True,
        "read_roles": NAMES,
        "write_roles": NAMES,
        "renamed_from": ref("field_name"),
    }
    return {key: schemas[key] for key in field_types.COMMON_KEYS}


def field_definitions() -> dict[str, Any]:
    types = list(field_types.REGISTRY)
    definitions: dict[str, Any] = {
        "field": {
            "title": "field",
            "type": "object",
            "required": ["name", "type"],
            "properties": common_field_keys(),
            "allOf": dispatch_on_type("field", types),
        }
    }
    for name, field_type in field_types.REGISTRY.items():
        # The common keys were checked by "field"; here they only count as known.
        keys = dict.fromkeys(field_types.COMMON_KEYS, True) | field_type.keys
        definitions[f"field_{name}"] = closed(f"{name} field", keys, field_type.required_keys)
    return definitions


def entity_definitions() -> dict[str, Any]:
    return {
        "entity": closed(
            "entity",
            {
                "name": ref("identifier"),
                "label": TEXT,
                "plural_label": TEXT,
                "description": TEXT,
                "title_field": STRING,
                "child": BOOLEAN,
                "renamed_from": ref("identifier"),
                "fields": list_of(ref("field"), 1),
                "permissions": {
                    "title": "permissions",
                    "type": "object",
                    "additionalProperties": list_of(
                        {"title": "permission", "enum": list(PERMISSION_VERBS)}, uniqueItems=True
                    ),
                },
                "row_rules": list_of(
                    closed("row rule", {"role": STRING, "rule": RULE}, ("role", "rule"))
                ),
                "timeline": closed(
                    "timeline",
                    {
                        "sources": list_of(
                            closed(
                                "timeline source",
                                {"entity": STRING, "via": STRING},
                                ("entity", "via"),
                            )
                        )
                    },
                    ("sources",),
                ),
                "indexes": list_of(
                    closed(
                        "index",
                        {"fields": list_of(STRING, 1, uniqueItems=True), "unique": BOOLEAN},
                        ("fields",),
                    )
                ),
            },
            ("name", "fields"),
        )
    }
