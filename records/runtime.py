"""What the service needs to know about one entity, built once per metadata version.

An :class:`EntityRuntime` gathers, from the model, which fields input may set,
the marshmallow schema that checks them, the order computed fields are
evaluated in, and who depends on this entity (lookups reading it, rollups
over it, references to it) so that changes propagate. The service caches one
per (app, seq, entity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema
from sqlalchemy import Table

from metamodel.jsonlogic import variables
from metamodel.jsonlogic.sql import followed_references
from metamodel.model import EntityModel, FieldModel
from metamodel.registry import PublishedApp

from .validation import build_schema


@dataclass(eq=False)
class EntityRuntime:
    published: PublishedApp
    entity: EntityModel
    table: Table
    writable: list[FieldModel]
    schema: Schema | None = None
    children: dict[str, EntityRuntime] = field(default_factory=dict)
    lookups: list[FieldModel] = field(default_factory=list)
    rollups: list[FieldModel] = field(default_factory=list)
    formulas: list[FieldModel] = field(default_factory=list)
    autonumbers: list[FieldModel] = field(default_factory=list)
    # (entity, lookup field) elsewhere that read this entity through a reference.
    lookups_of_me: list[tuple[EntityModel, FieldModel]] = field(default_factory=list)
    # (entity, rollup field) elsewhere that aggregate this entity through a reference.
    rollups_over_me: list[tuple[EntityModel, FieldModel]] = field(default_factory=list)
    # (entity, reference field) elsewhere that point at this entity.
    references_to_me: list[tuple[EntityModel, FieldModel]] = field(default_factory=list)
    # (entity, formula, reference field) elsewhere whose formula reads this entity's fields.
    formulas_reading_me: list[tuple[EntityModel, FieldModel, str]] = field(default_factory=list)
    # What other modules derive from the model on first use (compiled rules and
    # filters, serialisers), kept as long as this metadata version is.
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def app_name(self) -> str:
        return self.entity.app.name

    @property
    def has_computed(self) -> bool:
        return bool(self.lookups or self.rollups or self.formulas)

    def field(self, name: str) -> FieldModel:
        return self.entity.fields[name]


def workflow_owned(entity: EntityModel) -> set[str]:
    """State fields: only the workflow engine writes them."""
    return {
        w["state_field"]
        for w in entity.app.list_of("workflows")
        if w.get("entity") == entity.name and w.get("state_field")
    }


def build_runtime(published: PublishedApp, entity_name: str, make_child) -> EntityRuntime:
    app = published.model
    entity = app.entities[entity_name]
    owned = workflow_owned(entity)
    writable = [
        f
        for f in entity.fields.values()
        if not f.computed
        and f.type_name != "autonumber"
        and f.name not in owned
        and not f.doc.get("read_only")
    ]
    runtime = EntityRuntime(published, entity, published.table(entity_name), writable)
    for fld in entity.fields.values():
        if fld.type_name == "child_table":
            runtime.children[fld.name] = make_child(fld.target.name)
        elif fld.type_name == "lookup":
            runtime.lookups.append(fld)
        elif fld.type_name == "rollup":
            runtime.rollups.append(fld)
        elif fld.type_name == "autonumber":
            runtime.autonumbers.append(fld)
    runtime.formulas = _formula_order(entity)
    for other in app.entities.values():
        for fld in other.fields.values():
            if fld.type_name == "reference" and fld.doc.get("target") == entity.name:
                runtime.references_to_me.append((other, fld))
            elif fld.type_name == "lookup":
                via = other.fields.get(fld.doc["via"])
                if via is not None and via.doc.get("target") == entity.name:
                    runtime.lookups_of_me.append((other, fld))
            elif fld.type_name == "rollup" and _rolls_up(fld, entity):
                runtime.rollups_over_me.append((other, fld))
            elif fld.type_name == "formula":
                for path in followed_references(fld.doc["expression"], other):
                    if "." not in path and other.fields[path].doc.get("target") == entity.name:
                        runtime.formulas_reading_me.append((other, fld, path))
    return runtime


def _rolls_up(rollup: FieldModel, entity: EntityModel) -> bool:
    """Does ``rollup`` aggregate records of ``entity`` through a reference (``entity.field``)?"""
    via = rollup.doc["via"]
    return "." in via and via.split(".", 1)[0] == entity.name


def _formula_order(entity: EntityModel) -> list[FieldModel]:
    """Formulas so that each comes after the formulas it reads (the checker forbids cycles)."""
    formulas = {f.name: f for f in entity.fields.values() if f.type_name == "formula"}
    ordered: list[FieldModel] = []
    placed: set[str] = set()

    def place(name: str) -> None:
        if name in placed:
            return
        placed.add(name)
        for var, _pointer in variables(formulas[name].doc["expression"]):
            if var in formulas:
                place(var)
        ordered.append(formulas[name])

    for name in formulas:
        place(name)
    return ordered


def attach_schema(runtime: EntityRuntime, rows_validators: dict) -> None:
    runtime.schema = build_schema(runtime.entity, runtime.writable, rows_validators)
