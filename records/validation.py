"""Validation generated from field metadata: marshmallow schemas built at runtime.

One marshmallow field wraps one metadata field and defers to the field-type
registry (``FieldModel.coerce``), so the API, the pages and imports check a
value with exactly the code the planner uses for type changes. Schemas are
built per metadata version (see ``runtime.py``); errors become JSON Pointers.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError
from marshmallow import fields as ma

from metamodel.errors import Problem
from metamodel.field_types import ValueProblem
from metamodel.model import EntityModel, FieldModel

# The JSON Schema a value of each storage class has on the wire (for OpenAPI).
WIRE_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "string", "format": "decimal", "pattern": r"^-?\d+(\.\d+)?$"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "reference": {"type": "integer", "minimum": 1},
}


def wire_schema(fld: FieldModel) -> dict[str, Any]:
    kind = fld.value_spec["type"]
    if kind == "multiselect":
        values = [o["value"] for o in fld.value_spec.get("options", [])]
        return {"type": "array", "items": {"type": "string", "enum": values}}
    if kind == "select":
        return {"type": "string", "enum": [o["value"] for o in fld.value_spec.get("options", [])]}
    if kind == "multi_reference":
        return {"type": "array", "items": {"type": "integer", "minimum": 1}}
    if kind == "child_table":
        return {"type": "array", "items": {"type": "object"}}
    if kind == "location":
        return {
            "type": "object",
            "properties": {
                "lat": {"type": "number"},
                "lng": {"type": "number"},
                "address": {"type": ["string", "null"]},
            },
        }
    if kind in ("file", "signature"):
        return {"type": "array", "items": {"type": "object"}}
    return dict(WIRE_TYPES.get(fld.storage, {}))


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class MetaField(ma.Field):
    """A marshmallow field whose meaning is a metadata field."""

    def __init__(self, model: FieldModel, rows: RowsValidator | None = None):
        super().__init__(allow_none=True, metadata=wire_schema(model))
        self.model = model
        self.rows = rows

    def _deserialize(self, value, attr, data, **kwargs):
        if blank(value):
            return None
        if self.rows is not None:
            return self.rows(value)
        try:
            return self.model.coerce(value)
        except ValueProblem as problem:
            raise ValidationError(problem.message) from None


RowsValidator = Any  # Callable[[Any], list[dict]] raising ValidationError with {index: errors}


def build_schema(
    entity: EntityModel, writable: list[FieldModel], rows: dict[str, RowsValidator]
) -> Schema:
    fields = {f.name: MetaField(f, rows.get(f.name)) for f in writable}
    fields["id"] = ma.Integer(allow_none=True, load_only=True, metadata={"type": "integer"})
    schema_class = Schema.from_dict(fields, name=f"{entity.app.name}_{entity.name}")
    return schema_class(unknown=RAISE)


def problems_from(messages: Any, prefix: str = "") -> list[Problem]:
    """marshmallow's nested error dict as JSON-Pointer problems."""
    problems: list[Problem] = []
    if isinstance(messages, dict):
        for key, inner in messages.items():
            problems += problems_from(inner, f"{prefix}/{key}")
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        for message in messages:
            problems.append(Problem(prefix, _plain(message)))
    elif isinstance(messages, list):
        for index, inner in enumerate(messages):
            problems += problems_from(inner, f"{prefix}/{index}")
    else:
        problems.append(Problem(prefix, _plain(str(messages))))
    return problems


def _plain(message: str) -> str:
    return {"Unknown field.": "is not a field of this entity"}.get(message, message)


__all__ = ["EXCLUDE", "MetaField", "build_schema", "problems_from", "wire_schema"]
