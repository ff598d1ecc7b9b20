"""Entity-level settings: title field, permissions, row rules and indexes."""

from __future__ import annotations

from collections.abc import Iterator

from .. import pointer
from ..errors import Problem
from .scope import UNSTORED_TYPES, AppScope, EntityScope, items, strings, text, type_of


def check_entities(app: AppScope) -> Iterator[Problem]:
    for entity in app.entity_list:
        yield from title_field_problems(entity)
        yield from permission_problems(app, entity)
        yield from row_rule_problems(app, entity)
        yield from index_problems(entity)
    for _, at, field in app.fields():
        for key in ("read_roles", "write_roles"):
            for index, role in strings(field, key):
                if problem := app.role_problem(role):
                    yield Problem(pointer.join(at, key, index), problem)


def title_field_problems(entity: EntityScope) -> Iterator[Problem]:
    name = text(entity.doc, "title_field")
    if name is not None and entity.declared(name) is None:
        yield Problem(
            pointer.join(entity.pointer, "title_field"),
            f"{entity.not_a_field(name)}; the title field names a record, so it must be one "
            "of its fields",
        )


def permission_problems(app: AppScope, entity: EntityScope) -> Iterator[Problem]:
    permissions = entity.doc.get("permissions")
    if not isinstance(permissions, dict):
        return
    for role in permissions:
        if problem := app.role_problem(role):
            yield Problem(pointer.join(entity.pointer, "permissions", role), problem)


def row_rule_problems(app: AppScope, entity: EntityScope) -> Iterator[Problem]:
    for index, row_rule in items(entity.doc, "row_rules"):
        if problem := app.role_problem(row_rule.get("role")):
            yield Problem(pointer.join(entity.pointer, "row_rules", index, "role"), problem)


def index_problems(entity: EntityScope) -> Iterator[Problem]:
    for i_index, index in items(entity.doc, "indexes"):
        for f_index, name in strings(index, "fields"):
            at = pointer.join(entity.pointer, "indexes", i_index, "fields", f_index)
            field = entity.field(name)
            if field is None:
                yield Problem(at, entity.not_a_field(name))
                continue
            kind = field.get("type")
            field_type = type_of(field)
            if kind in UNSTORED_TYPES:
                yield Problem(
                    at,
                    f"'{name}' is a {kind} field, kept in a table of its own, so it can't be "
                    "part of an index",
                )
            elif field_type is not None and not field_type.indexable:
                yield Problem(at, f"'{name}' is a {kind} field, which can't be indexed")


def entity_problem(app: AppScope, container: dict, at: str) -> Iterator[Problem]:
    """The ``entity`` a form, workflow, view or widget is about must be an entity of this app."""
    name = text(container, "entity")
    if name is not None and app.entity(name) is None:
        yield Problem(
            pointer.join(at, "entity"),
            app.no_entity(name),
        )
