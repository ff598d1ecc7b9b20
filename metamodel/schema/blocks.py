"""Building blocks of the schema: closed objects, lists, names, texts and rules."""

from __future__ import annotations

from typing import Any

from ..identifiers import IDENTIFIER, POSTGRESQL_RESERVED, RESERVED_FIELD_NAMES, SQLITE_KEYWORDS

# semver.org's recommended regular expression.
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
LANGUAGE_CODE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
COLOUR = r"^#[0-9a-fA-F]{6}$"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def closed(
    title: str, properties: dict[str, Any], required: tuple[str, ...] = (), **extra
) -> dict[str, Any]:
    """An object with exactly these keys, ``required`` among them."""
    schema: dict[str, Any] = {"title": title, "type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = False
    schema.update(extra)
    return schema


def list_of(item: dict[str, Any], min_items: int = 0, **extra) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": item}
    if min_items:
        schema["minItems"] = min_items
    schema.update(extra)
    return schema


STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
NAMES = list_of(STRING)
TEXT = ref("text")
RULE = ref("rule")


def dispatch_on_type(kind: str, types: list[str]) -> list[dict[str, Any]]:
    """``if type is X then the definition of an X`` for every type."""
    return [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": ref(f"{kind}_{name}"),
        }
        for name in types
    ]


def identifier_definitions() -> dict[str, Any]:
    reserved = sorted(POSTGRESQL_RESERVED | SQLITE_KEYWORDS)
    return {
        "identifier": {
            "title": "identifier",
            "type": "string",
            "pattern": IDENTIFIER.pattern,
            "not": {"enum": reserved},
        },
        "field_name": {
            "title": "field name",
            "$ref": "#/$defs/identifier",
            "not": {"enum": sorted(RESERVED_FIELD_NAMES)},
        },
    }


def value_definitions() -> dict[str, Any]:
    return {
        "text": {
            "title": "text",
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": LANGUAGE_CODE},
                    "additionalProperties": {"type": "string"},
                },
            ],
        },
        "rule": {"title": "rule", "description": "A JsonLogic expression (jsonlogic.com)."},
    }
