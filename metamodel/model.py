"""One read API over a validated app document.

Tables, the planner, the record service and the forms all read metadata through
these objects rather than walking the JSON themselves. Build them only from
documents that passed validation: they trust what the checker already proved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.types import TypeEngine

from . import field_types
from .errors import CrmError
from .identifiers import link_table_name, table_name
from .messages import Label
from .text import humanise, localise

ExternalApps = Callable[[str], "AppModel | None"]


@dataclass(eq=False)
class FieldModel:
    entity: EntityModel
    doc: dict[str, Any]
    pointer: str
    # Fields the engine adds (a workflow's state column) have no place in the document.
    synthetic: bool = False

    @property
    def name(self) -> str:
        return self.doc["name"]

    @property
    def type_name(self) -> str:
        return self.doc["type"]

    @property
    def type(self) -> field_types.FieldType:
        return field_types.get(self.type_name)

    @property
    def label(self):
        return self.doc.get("label") or humanise(self.name)

    @property
    def required(self) -> bool:
        return bool(self.doc.get("required")) and not self.type.computed

    @property
    def unique(self) -> bool:
        return bool(self.doc.get("unique")) or self.type_name == "autonumber"

    @property
    def indexed(self) -> bool:
        return bool(self.doc.get("indexed")) or self.storage == field_types.REFERENCE

    @property
    def computed(self) -> bool:
        return self.type.computed

    @property
    def has_column(self) -> bool:
        return self.storage != field_types.NONE

    @cached_property
    def value_spec(self) -> dict[str, Any]:
        """The definition whose type decides what values look like.

        For computed fields that is the definition of what they compute: a
        formula's result type, a lookup's source field, a rollup's aggregate.
        """
        doc = self.doc
        if self.type_name == "formula":
            return {**doc, "type": doc.get("result_type", "decimal")}
        if self.type_name == "lookup":
            source = self.lookup_source()
            return {**source.value_spec, "name": self.name}
        if self.type_name == "rollup":
            aggregate = doc["aggregate"]
            if aggregate == "count":
                return {"name": self.name, "type": "integer"}
            source = self.rollup_source_field()
            if aggregate == "avg":
                return {
                    "name": self.name,
                    "type": "decimal",
                    "scale": max(4, field_types.decimal_scale(source.value_spec)),
                }
            return {**source.value_spec, "name": self.name, "required": False}
        return doc

    @property
    def storage(self) -> str:
        return field_types.get(self.value_spec["type"]).storage

    def column_type(self) -> TypeEngine:
        spec = self.value_spec
        column = field_types.get(spec["type"]).column
        if column is None:
            raise CrmError(f"field '{self.name}' has no column")
        return column(spec)

    def coerce(self, value):
        spec = self.value_spec
        return field_types.get(spec["type"]).coerce(value, spec)

    # --- references -------------------------------------------------------------

    @property
    def target(self) -> EntityModel | None:
        """The entity a reference, multi_reference or child_table points at."""
        name = self.doc.get("target")
        if name is None:
            return None
        return self.entity.app.resolve_entity(name)

    @property
    def link_table_name(self):
        return link_table_name(self.entity.app.name, self.entity.name, self.name)

    def lookup_source(self) -> FieldModel:
        via = self.entity.fields[self.doc["via"]]
        return via.target.fields[self.doc["field"]]

    def rollup_children(self) -> tuple[EntityModel, FieldModel | None]:
        """The entity rolled up and the reference back to us (None for child tables)."""
        via = self.doc["via"]
        if "." in via:
            entity_name, field_name = via.split(".", 1)
            child = self.entity.app.entities[entity_name]
            return child, child.fields[field_name]
        return self.entity.fields[via].target, None

    def rollup_source_field(self) -> FieldModel:
        child, _ = self.rollup_children()
        return child.fields[self.doc["field"]]


@dataclass(eq=False)
class EntityModel:
    app: AppModel
    doc: dict[str, Any]
    pointer: str
    fields: dict[str, FieldModel] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.doc["name"]

    @property
    def label(self):
        return self.doc.get("label") or humanise(self.name)

    @property
    def plural_label(self):
        return self.doc.get("plural_label") or self.label

    @property
    def named(self) -> Label:
        """The entity in a message: its name in English, its label in the user's language."""
        return Label(self.label, self.name)

    @property
    def noun(self) -> Label:
        """The entity inside a sentence ("this deal"): its English label in lower case,
        its label in the user's language at the edge."""
        return Label(self.label, localise(self.label).lower())

    @property
    def is_child(self) -> bool:
        return bool(self.doc.get("child"))

    @property
    def title_field(self) -> str | None:
        return self.doc.get("title_field")

    @property
    def table_name(self):
        return table_name(self.app.name, self.name)

    @property
    def stored_fields(self) -> list[FieldModel]:
        return [f for f in self.fields.values() if f.has_column]

    @property
    def parent(self) -> tuple[EntityModel, FieldModel] | None:
        """For a child entity: the entity and child_table field that own its rows."""
        for entity in self.app.entities.values():
            for candidate in entity.fields.values():
                if (
                    candidate.type_name == "child_table"
                    and candidate.doc.get("target") == self.name
                ):
                    return entity, candidate
        return None

    @property
    def indexes(self) -> list[dict[str, Any]]:
        return self.doc.get("indexes", [])


@dataclass(eq=False)
class AppModel:
    doc: dict[str, Any]
    external: ExternalApps | None = None
    entities: dict[str, EntityModel] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: dict[str, Any], external: ExternalApps | None = None) -> AppModel:
        app = cls(doc=doc, external=external)
        for e_index, entity_doc in enumerate(doc.get("entities", [])):
            pointer = f"/entities/{e_index}"
            entity = EntityModel(app=app, doc=entity_doc, pointer=pointer)
            for f_index, field_doc in enumerate(entity_doc.get("fields", [])):
                entity.fields[field_doc["name"]] = FieldModel(
                    entity, field_doc, f"{pointer}/fields/{f_index}"
                )
            app.entities[entity.name] = entity
        for w_index, workflow in enumerate(doc.get("workflows", [])):
            entity = app.entities.get(workflow.get("entity"))
            state_field = workflow.get("state_field")
            if entity is None or not state_field or state_field in entity.fields:
                continue
            states = [
                {
                    "value": s["name"],
                    **({"label": s["label"]} if "label" in s else {}),
                    **({"color": s["color"]} if "color" in s else {}),
                }
                for s in workflow.get("states", [])
            ]
            entity.fields[state_field] = FieldModel(
                entity,
                {
                    "name": state_field,
                    "type": "select",
                    "options": states,
                    "read_only": True,
                    "indexed": True,
                },
                f"/workflows/{w_index}/state_field",
                synthetic=True,
            )
        return app

    @property
    def name(self) -> str:
        return self.doc["name"]

    @property
    def version(self) -> str:
        return self.doc["version"]

    @property
    def label(self):
        return self.doc.get("label") or humanise(self.name)

    @property
    def role_names(self) -> set[str]:
        return {"admin", "designer"} | {r["name"] for r in self.doc.get("roles", [])}

    def resolve_entity(self, name: str) -> EntityModel | None:
        """An entity of this app, or ``app.entity`` of another installed app."""
        if "." not in name:
            return self.entities.get(name)
        app_name, entity_name = name.split(".", 1)
        if app_name == self.name:
            return self.entities.get(entity_name)
        other = self.external(app_name) if self.external else None
        return other.entities.get(entity_name) if other else None

    def list_of(self, key: str) -> list[dict[str, Any]]:
        return self.doc.get(key, [])
