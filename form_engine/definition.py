"""One form of one entity, read from the metadata: which fields, where, under which rules.

A :class:`FormSpec` is what every other module of the form engine consumes: the
layout, the WTForms classes, the server-side rules and the browser manifest are
all views of it, so they cannot disagree about which fields a form holds or
which of them take input. A spec is plain metadata (no language, no user); the
cache in ``build`` keeps one per (app, entity, form, metadata digest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from metamodel.errors import NotFound
from metamodel.jsonlogic import variables
from metamodel.jsonlogic.sql import followed_references
from metamodel.model import AppModel, EntityModel, FieldModel

RULE_KEYS = ("visible_when", "required_when", "read_only_when")
# Values the engine works out itself: a form shows them and never takes them.
COMPUTED_TYPES = frozenset({"formula", "lookup", "rollup", "autonumber"})
DEFAULT_COLUMNS = 2


def engine_owned(entity: EntityModel) -> set[str]:
    """Fields only an engine writes: the state fields of the entity's workflows."""
    owned = {f.name for f in entity.fields.values() if f.synthetic}
    for workflow in entity.app.list_of("workflows"):
        if workflow.get("entity") == entity.name and workflow.get("state_field"):
            owned.add(workflow["state_field"])
    return owned


def reads(rule: Any) -> list[str]:
    """The field names (and context variables) a rule reads, each once, in order."""
    names: list[str] = []
    for name, _pointer in variables(rule):
        if name and name not in names:
            names.append(name)
    return names


@dataclass(eq=False)
class FormItem:
    """A field placed on a form: where, how wide, and the rules that govern it."""

    field: FieldModel
    section: int
    width: int
    label: Any = None
    help: Any = None
    rules: dict[str, Any] = field(default_factory=dict)
    owned: bool = False

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def display_only(self) -> bool:
        """Shown, never taken as input: computed, engine-owned or declared read-only."""
        return (
            self.field.type_name in COMPUTED_TYPES
            or self.owned
            or bool(self.field.doc.get("read_only"))
        )

    @property
    def static_required(self) -> bool:
        return self.field.required and not self.display_only

    def reads(self, key: str) -> list[str]:
        return reads(self.rules[key]) if key in self.rules else []


@dataclass(eq=False)
class FormSpec:
    app: AppModel
    entity: EntityModel
    doc: dict[str, Any]
    version: str
    items: dict[str, FormItem]
    sections: list[dict[str, Any]]
    children: dict[str, FormSpec] = field(default_factory=dict)
    # Built WTForms classes by language; see build.FormCache.
    classes: dict[str, type] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """The form's name; None for the form generated when the entity has none."""
        return self.doc.get("name")

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.app.name, self.entity.name, self.name)

    @property
    def validations(self) -> list[dict[str, Any]]:
        return self.doc.get("validations", [])

    @property
    def inputs(self) -> list[str]:
        """The items that take input (before any rule or lock)."""
        return [name for name, item in self.items.items() if not item.display_only]

    @cached_property
    def formulas(self) -> list[FieldModel]:
        """Every formula of the entity, each after the formulas it reads.

        All of them, not only those placed: a rule may read a formula the form
        does not show.
        """
        formulas = {f.name: f for f in self.entity.fields.values() if f.type_name == "formula"}
        ordered: list[FieldModel] = []
        placed: set[str] = set()

        def place(name: str) -> None:
            if name in placed:
                return
            placed.add(name)
            for var in reads(formulas[name].doc["expression"]):
                if var in formulas:
                    place(var)
            ordered.append(formulas[name])

        for name in formulas:
            place(name)
        return ordered

    @cached_property
    def rules(self) -> list[Any]:
        """Every rule the form evaluates: item rules, validations and formulas."""
        found = [rule for item in self.items.values() for rule in item.rules.values()]
        found += [v["rule"] for v in self.validations]
        found += [f.doc["expression"] for f in self.formulas]
        return found

    @cached_property
    def followed(self) -> list[str]:
        """Reference paths the rules read through (``account`` for ``account.tier``)."""
        paths: set[str] = set()
        for rule in self.rules:
            paths |= followed_references(rule, self.entity)
        return sorted(paths, key=lambda path: (path.count("."), path))


def find_form(app: AppModel, entity: EntityModel, name: str | None) -> dict[str, Any] | None:
    """The named form of ``entity``, or its default form (None when it has none)."""
    forms = [f for f in app.list_of("forms") if f.get("entity") == entity.name]
    if name is None:
        return next((f for f in forms if f.get("default")), None)
    for form in forms:
        if form.get("name") == name:
            return form
    raise NotFound(f"app '{app.name}' has no form '{name}' for '{entity.name}'")


def default_layout(entity: EntityModel) -> list[dict[str, Any]]:
    """Every field a person fills or reads, in one section of two columns."""
    owned = engine_owned(entity)
    names = [f.name for f in entity.fields.values() if f.name not in owned]
    return [{"section": entity.label, "columns": DEFAULT_COLUMNS, "fields": names}]


def build_spec(
    app: AppModel, entity_name: str, form_name: str | None, version: str, *, child: bool = False
) -> FormSpec:
    entity = app.entities.get(entity_name)
    if entity is None:
        raise NotFound(f"app '{app.name}' has no entity '{entity_name}'")
    doc = find_form(app, entity, form_name) or {"entity": entity.name}
    sections = doc.get("layout") or default_layout(entity)
    owned = engine_owned(entity)
    items: dict[str, FormItem] = {}
    for index, section in enumerate(sections):
        columns = section.get("columns", 1)
        for entry in section["fields"]:
            entry = {"field": entry} if isinstance(entry, str) else entry
            fld = entity.fields[entry["field"]]
            # A child table needs the whole row of the grid for its columns.
            width = columns if fld.type_name == "child_table" else entry.get("width", 1)
            items[fld.name] = FormItem(
                field=fld,
                section=index,
                width=min(width, columns),
                label=entry.get("label"),
                help=entry.get("help"),
                # Rules inside child rows are not evaluated per row (yet), so they
                # are not carried rather than carried and silently ignored.
                rules={} if child else {k: entry[k] for k in RULE_KEYS if k in entry},
                owned=fld.name in owned,
            )
    spec = FormSpec(app, entity, doc, version, items, sections)
    for item in items.values():
        if item.field.type_name == "child_table" and item.field.target is not None:
            target = item.field.target
            spec.children[item.name] = build_spec(
                target.app, target.name, None, version, child=True
            )
    return spec
