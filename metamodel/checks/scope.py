"""What a document declares, indexed for the semantic checks.

The index is built from a document that may have failed the schema, so it takes
only the parts that have the right shape (objects with string names) and looks
nothing up with a key that is not a string. The first of two things with the
same name is the one references resolve to; the duplicate is reported elsewhere.

Resolving a name gives a ``Resolved``: the entity and field found, or a problem
to report where the name is written, or neither when the name leads through
something already reported (a reference whose target does not exist).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import field_types, pointer
from ..field_types import FieldType
from ..wording import did_you_mean

SYSTEM_COLUMN_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "user",
    "updated_by": "user",
    "owner": "user",
    "version": "integer",
    "deleted_at": "datetime",
}
CHILD_COLUMN_TYPES = {"parent_id": "integer", "row_order": "integer"}

BUILT_IN_ROLES = frozenset({"admin", "designer"})
OWNER = "$owner"
NUMERIC_TYPES = ("currency", "decimal", "integer", "percent", "rating")
# Types without a column of their own: their values live in other tables.
UNSTORED_TYPES = ("multi_reference", "child_table")

ExternalApps = Callable[[str], "dict | None"]


def items(container: Any, key: str) -> list[tuple[int, dict]]:
    """The objects listed under ``key``, with their indexes; anything else is skipped."""
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]


def text(container: Any, key: str) -> str | None:
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, str) else None


def strings(container: Any, key: str) -> list[tuple[int, str]]:
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, str)]


def type_of(field: dict) -> FieldType | None:
    """The registered type of a field definition, or None when it has none."""
    kind = field.get("type")
    return field_types.REGISTRY.get(kind) if isinstance(kind, str) else None


@dataclass
class Resolved:
    entity: EntityScope | None = None
    field: dict | None = None
    problem: str | None = None
    # The key of the definition the problem is about, when it is not the name itself.
    key: str | None = None


class EntityScope:
    def __init__(self, app: AppScope, doc: dict, at: str):
        self.app = app
        self.doc = doc
        self.pointer = at
        self.name = text(doc, "name") or ""
        self.field_list = [(pointer.join(at, "fields", i), f) for i, f in items(doc, "fields")]
        self.fields: dict[str, tuple[str, dict]] = {}
        for at_field, field_doc in self.field_list:
            name = text(field_doc, "name")
            if name is not None:
                self.fields.setdefault(name, (at_field, field_doc))
        # The state fields of the workflows on this entity, declared or not.
        self.state_fields: set[str] = set()

    @property
    def is_child(self) -> bool:
        return self.doc.get("child") is True

    @property
    def title(self) -> str:
        """How messages name the entity: with its app when it belongs to another."""
        return self.name if self.app.is_root else f"{self.app.name}.{self.name}"

    def declared(self, name: Any) -> dict | None:
        if not isinstance(name, str) or name not in self.fields:
            return None
        return self.fields[name][1]

    def own_field(self, name: Any) -> dict | None:
        """A declared field or a workflow's state field: a field the read API models."""
        if not isinstance(name, str):
            return None
        if name in self.fields:
            return self.fields[name][1]
        if name in self.state_fields:
            return {"name": name, "type": "select"}
        return None

    def field(self, name: Any) -> dict | None:
        """A field of the record: its own, or a system column."""
        if not isinstance(name, str):
            return None
        if own := self.own_field(name):
            return own
        columns = SYSTEM_COLUMN_TYPES | (CHILD_COLUMN_TYPES if self.is_child else {})
        if name in columns:
            return {"name": name, "type": columns[name]}
        return None

    def not_a_field(self, name: str) -> str:
        choices = [*self.fields, *self.state_fields]
        return f"'{name}' is not a field of '{self.title}'{did_you_mean(name, choices)}"

    # --- resolving names -------------------------------------------------------------

    def path(self, path: str) -> Resolved:
        """The field a dotted path names: ``account.tier`` follows the reference ``account``."""
        parts = path.split(".")
        current = self
        for depth, part in enumerate(parts):
            found = current.field(part)
            if found is None:
                problem = current.not_a_field(part)
                if depth:
                    problem += f" (reached through '{'.'.join(parts[:depth])}')"
                return Resolved(problem=problem)
            if depth == len(parts) - 1:
                return Resolved(current, found)
            if found.get("type") != "reference":
                return Resolved(
                    problem=f"'{part}' is a {found.get('type')} field, not a reference, so "
                    f"'{path}' can't go through it"
                )
            target = current.app.target(found.get("target"))
            if target.entity is None:
                return Resolved()
            current = target.entity
        return Resolved()

    def lookup_source(self, lookup: dict) -> Resolved:
        """The field a lookup copies: ``field`` in the target of the reference ``via``."""
        via_name = lookup.get("via")
        via = self.declared(via_name)
        if via is None:
            if not isinstance(via_name, str):
                return Resolved()
            return Resolved(problem=self.not_a_field(via_name), key="via")
        if via.get("type") != "reference":
            return Resolved(
                problem=f"'{via_name}' is a {via.get('type')} field; a lookup goes through a "
                "reference field",
                key="via",
            )
        target = self.app.target(via.get("target")).entity
        name = lookup.get("field")
        if target is None or not isinstance(name, str):
            return Resolved()
        found = target.own_field(name)
        if found is None:
            return Resolved(problem=target.not_a_field(name), key="field")
        return Resolved(target, found)

    def rolled_up(self, via: Any) -> Resolved:
        """The entity a rollup aggregates: a child table's rows, or ``entity.field`` records."""
        if not isinstance(via, str):
            return Resolved()
        app = self.app
        if "." not in via:
            holder = self.declared(via)
            if holder is None:
                return Resolved(problem=self.not_a_field(via))
            if holder.get("type") != "child_table":
                return Resolved(
                    problem=f"'{via}' is a {holder.get('type')} field; roll up a child_table "
                    "field of this entity, or records that refer to it as 'entity.field'"
                )
            return Resolved(app.target(holder.get("target")).entity)
        entity_name, field_name = via.split(".", 1)
        source = app.entity(entity_name)
        if source is None:
            return Resolved(problem=app.no_entity(entity_name))
        back = source.declared(field_name)
        if back is None:
            return Resolved(problem=source.not_a_field(field_name))
        if back.get("type") != "reference" or app.target(back.get("target")).entity is not self:
            return Resolved(
                problem=f"'{via}' must be a reference field of '{entity_name}' that points to "
                f"'{self.name}'"
            )
        return Resolved(source)

    def value_type(self, field_doc: dict, seen: frozenset = frozenset()) -> str | None:
        """The type of the values a field holds: for computed fields, what they compute."""
        kind = field_doc.get("type")
        key = (self.app.name, self.name, field_doc.get("name"))
        if key in seen:
            return None
        seen = seen | {key}
        if kind == "formula":
            result = field_doc.get("result_type", "decimal")
            return result if isinstance(result, str) else None
        if kind == "lookup":
            source = self.lookup_source(field_doc)
            return source.entity.value_type(source.field, seen) if source.field else None
        if kind == "rollup":
            aggregate = field_doc.get("aggregate")
            if aggregate in ("count", "avg"):
                return "integer" if aggregate == "count" else "decimal"
            rolled = self.rolled_up(field_doc.get("via")).entity
            source = rolled.own_field(field_doc.get("field")) if rolled else None
            return rolled.value_type(source, seen) if source else None
        return kind if isinstance(kind, str) else None


@dataclass
class Installed:
    """Other installed apps, asked for at most once each."""

    external: ExternalApps | None
    apps: dict[str, AppScope | None] = field(default_factory=dict)

    def app(self, name: str) -> AppScope | None:
        if name not in self.apps:
            doc = self.external(name) if self.external else None
            self.apps[name] = AppScope(doc, self, is_root=False) if isinstance(doc, dict) else None
        return self.apps[name]


class AppScope:
    def __init__(
        self,
        doc: dict,
        installed: Installed,
        *,
        is_root: bool = True,
        unsound: Iterable[str] = (),
    ):
        self.doc = doc
        self.installed = installed
        self.is_root = is_root
        self.name = text(doc, "name") or ""
        self.entity_list = [
            EntityScope(self, e, pointer.join("/entities", i)) for i, e in items(doc, "entities")
        ]
        self.entities: dict[str, EntityScope] = {}
        for entity in self.entity_list:
            self.entities.setdefault(entity.name, entity)
        for _, workflow in items(doc, "workflows"):
            entity = self.entity(workflow.get("entity"))
            state_field = text(workflow, "state_field")
            if entity and state_field:
                entity.state_fields.add(state_field)
        self.roles = BUILT_IN_ROLES | {
            name for _, role in items(doc, "roles") if (name := text(role, "name"))
        }
        # Pointers where the schema found a problem: values there can't be trusted.
        self.unsound = tuple(unsound)

    def sound(self, at: str) -> bool:
        """True when the schema found nothing wrong at ``at`` or inside it."""
        return not any(p == at or p.startswith(at + "/") for p in self.unsound)

    def entity(self, name: Any) -> EntityScope | None:
        return self.entities.get(name) if isinstance(name, str) else None

    def fields(self) -> Iterable[tuple[EntityScope, str, dict]]:
        """Every field definition of every entity, duplicates included."""
        for entity in self.entity_list:
            for at, field_doc in entity.field_list:
                yield entity, at, field_doc

    def role_problem(self, role: Any, *, owner: bool = False) -> str | None:
        if not isinstance(role, str) or role in self.roles or (owner and role == OWNER):
            return None
        known = sorted(self.roles) + ([OWNER] if owner else [])
        listed = ", ".join(known)
        return f"there is no role '{role}'{did_you_mean(role, known)}; the roles are: {listed}"

    def no_entity(self, name: str) -> str:
        where = "this app" if self.is_root else f"app '{self.name}'"
        return f"there is no entity '{name}' in {where}{did_you_mean(name, self.entities)}"

    def target(self, name: Any) -> Resolved:
        """The entity a reference names: ``entity`` here, or ``app.entity`` elsewhere."""
        if not isinstance(name, str):
            return Resolved()
        app_name, _, entity_name = name.rpartition(".")
        app = self if app_name in ("", self.name) else self.installed.app(app_name)
        if app is None:
            return Resolved(problem=f"app '{app_name}' is not installed")
        entity = app.entity(entity_name)
        if entity is None:
            return Resolved(problem=app.no_entity(entity_name))
        return Resolved(entity)
