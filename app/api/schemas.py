"""OpenAPI schemas of one entity, from the live metadata.

Requests are described by the record runtime's own marshmallow schema (the one
that validates them), converted by apispec's MarshmallowPlugin. Responses are
described by a marshmallow schema built here from the same field metadata plus
the system columns, with the wire forms of ``records.serialize``: decimals as
strings, child tables as arrays of row objects, multi references as arrays of ids.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema
from marshmallow import fields as ma

from metamodel.model import FieldModel
from metamodel.text import localise
from records.runtime import EntityRuntime
from records.validation import wire_schema

from .inputs import MAX_ID

REF = "#/components/schemas/"


def names(runtime: EntityRuntime) -> dict[str, str]:
    """Component names of an entity's schemas."""
    base = f"{runtime.app_name}.{runtime.name}"
    return {
        "record": base,
        "input": f"{base}.input",
        "create": f"{base}.create",
        "row": f"{base}.row",
        "row_input": f"{base}.row.input",
    }


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _system_fields() -> dict[str, ma.Field]:
    user = {"description": "a user id"}
    return {
        "id": ma.Integer(required=True, metadata={"minimum": 1}),
        "created_at": ma.DateTime(required=True),
        "updated_at": ma.DateTime(required=True),
        "created_by": ma.Integer(required=True, allow_none=True, metadata=user),
        "updated_by": ma.Integer(required=True, allow_none=True, metadata=user),
        "owner": ma.Integer(required=True, allow_none=True, metadata=user),
        "version": ma.Integer(
            required=True,
            metadata={"minimum": 1, "description": "send it back in If-Match to update safely"},
        ),
        "deleted_at": ma.DateTime(metadata={"description": "set while in the recycle bin"}),
    }


def _without_enums(schema: dict[str, Any]) -> dict[str, Any]:
    # A stored value may predate the removal of its option (the planner keeps it),
    # so responses promise the type, not today's options.
    out = {k: v for k, v in schema.items() if k != "enum"}
    if isinstance(out.get("items"), dict):
        out["items"] = _without_enums(out["items"])
    return out


def _described(fld: FieldModel, schema: dict[str, Any]) -> dict[str, Any]:
    schema = {**schema, "title": localise(fld.label)}
    if fld.doc.get("help"):
        schema["description"] = localise(fld.doc["help"])
    return schema


def _output_field(fld: FieldModel, runtime: EntityRuntime) -> ma.Field | None:
    if fld.type_name == "child_table":
        child = names(runtime.children[fld.name])["row"]
        metadata = {"type": "array", "items": ref(child)}
        return ma.Raw(required=True, metadata=_described(fld, metadata))
    if fld.type_name == "multi_reference":
        return ma.Raw(required=True, metadata=_described(fld, wire_schema(fld)))
    if not fld.has_column:
        return None
    metadata = _described(fld, _without_enums(wire_schema(fld)))
    if fld.computed or fld.type_name == "autonumber" or fld.doc.get("read_only"):
        metadata["readOnly"] = True
    # A field that only some roles may read is left out for the others.
    return ma.Raw(required=not fld.doc.get("read_roles"), allow_none=True, metadata=metadata)


def record_schema(runtime: EntityRuntime) -> Schema:
    fields: dict[str, ma.Field] = _system_fields()
    for fld in runtime.entity.fields.values():
        out = _output_field(fld, runtime)
        if out is not None:
            fields[fld.name] = out
    return Schema.from_dict(fields, name=f"{runtime.app_name}_{runtime.name}_record")()


def row_schema(child: EntityRuntime) -> Schema:
    fields: dict[str, ma.Field] = {"id": ma.Integer(required=True, metadata={"minimum": 1})}
    for fld in child.entity.fields.values():
        if fld.has_column:
            fields[fld.name] = ma.Raw(
                required=True,
                allow_none=True,
                metadata=_described(fld, _without_enums(wire_schema(fld))),
            )
    return Schema.from_dict(fields, name=f"{child.app_name}_{child.name}_row")()


def _nullable_enums(properties: dict[str, Any]) -> None:
    """``null`` clears a field, so an enum of a nullable field includes it."""
    for prop in properties.values():
        if "enum" in prop and "null" in prop.get("type", []) and None not in prop["enum"]:
            prop["enum"] = [*prop["enum"], None]


def input_schema(converter, runtime: EntityRuntime, row_ref: dict[str, str]) -> dict[str, Any]:
    """What a create or update may send: the runtime's validating schema, as JSON Schema."""
    schema = converter.schema2jsonschema(runtime.schema)
    properties = schema["properties"]
    _nullable_enums(properties)
    for fld in runtime.writable:
        prop = properties[fld.name]
        prop.update(_described(fld, {}))
        if fld.name in row_ref:
            prop["items"] = row_ref[fld.name]
    properties.pop("id", None)
    if not runtime.entity.is_child:
        properties["owner"] = {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": MAX_ID,
            "description": "the user who owns the record (only an admin may hand it over)",
        }
    else:
        properties["id"] = {
            "type": ["integer", "null"],
            "description": "the id of an existing row to keep; leave it out for a new row",
        }
    return schema


def register_entity(spec: APISpec, plugin: MarshmallowPlugin, runtime: EntityRuntime) -> None:
    """Add the record, input and create schemas of an entity (and of its child tables)."""
    own = names(runtime)
    row_refs = {}
    for field_name, child in runtime.children.items():
        child_names = names(child)
        if child_names["row"] not in spec.components.schemas:
            spec.components.schema(child_names["row"], schema=row_schema(child))
            spec.components.schema(
                child_names["row_input"], input_schema(plugin.converter, child, {})
            )
        row_refs[field_name] = ref(child_names["row_input"])
    spec.components.schema(own["record"], schema=record_schema(runtime))
    spec.components.schema(own["input"], input_schema(plugin.converter, runtime, row_refs))
    required = [f.name for f in runtime.writable if f.required and f.has_column]
    create = {"allOf": [ref(own["input"])]}
    if required:
        create["required"] = required
    spec.components.schema(own["create"], create)
