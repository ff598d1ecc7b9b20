"""References between entities: targets, child tables and the timeline."""

from __future__ import annotations

from collections.abc import Iterator

from .. import pointer
from ..errors import Problem
from .scope import AppScope, EntityScope, items, text

LINK_TYPES = ("reference", "multi_reference", "child_table")


def check_references(app: AppScope) -> Iterator[Problem]:
    for _, at, field in app.fields():
        if field.get("type") in LINK_TYPES:
            yield from target_problems(app, at, field)
        if field.get("type") == "reference":
            yield from on_delete_problems(at, field)
    for entity in app.entity_list:
        if entity.is_child:
            yield from child_entity_problems(app, entity)
        yield from timeline_problems(app, entity)


def target_problems(app: AppScope, at: str, field: dict) -> Iterator[Problem]:
    name = text(field, "target")
    if name is None:
        return
    at = pointer.join(at, "target")
    kind = field["type"]
    resolved = app.target(name)
    if resolved.problem:
        yield Problem(at, resolved.problem)
        return
    target = resolved.entity
    if kind == "child_table":
        if not target.app.is_root:
            yield Problem(
                at,
                f"'{name}' belongs to another app; a child table's rows belong to this app, so "
                "its target must be an entity of this app",
            )
        elif not target.is_child:
            yield Problem(
                at,
                f"'{name}' is not a child entity: add \"child\": true to it, or use a "
                "reference or multi_reference field to point to its records",
            )
    elif target.is_child:
        yield Problem(
            at,
            f"'{name}' is a child entity: its rows exist only inside their parent's child "
            "table, so a reference can't point to them",
        )


def on_delete_problems(at: str, field: dict) -> Iterator[Problem]:
    if field.get("on_delete") == "set_null" and field.get("required") is True:
        yield Problem(
            pointer.join(at, "on_delete"),
            "a required reference can't be emptied when the record it points to is deleted: "
            "use 'restrict' or 'cascade', or make the field optional",
        )


def child_entity_problems(app: AppScope, child: EntityScope) -> Iterator[Problem]:
    holders = [
        at
        for _, at, field in app.fields()
        if field.get("type") == "child_table" and app.target(field.get("target")).entity is child
    ]
    if not holders:
        yield Problem(
            pointer.join(child.pointer, "child"),
            f"no child_table field holds the rows of '{child.name}': add one (type child_table, "
            f"target '{child.name}') to its parent entity, or remove \"child\": true",
        )
    for at in holders[1:]:
        yield Problem(
            pointer.join(at, "target"),
            f"the rows of '{child.name}' are already held by the child table at {holders[0]}; "
            "a child entity belongs to exactly one child table",
        )
    for key in ("permissions", "row_rules", "timeline"):
        if key in child.doc:
            yield Problem(
                pointer.join(child.pointer, key),
                f"a child entity has no {key.replace('_', ' ')} of its own: its rows follow "
                "their parent record; remove this key",
            )


def timeline_problems(app: AppScope, entity: EntityScope) -> Iterator[Problem]:
    timeline = entity.doc.get("timeline")
    base = pointer.join(entity.pointer, "timeline", "sources")
    for index, source in items(timeline, "sources"):
        at = pointer.join(base, index)
        resolved = app.target(source.get("entity"))
        if resolved.problem:
            yield Problem(pointer.join(at, "entity"), resolved.problem)
        if resolved.entity is None or not isinstance(source.get("via"), str):
            continue
        via = source["via"]
        back = resolved.entity.declared(via)
        if back is None:
            yield Problem(pointer.join(at, "via"), resolved.entity.not_a_field(via))
        elif not points_to(resolved.entity, back, entity):
            yield Problem(
                pointer.join(at, "via"),
                f"'{via}' must be a reference field of '{resolved.entity.title}' that points to "
                f"'{entity.name}', so the timeline can find the records about this one",
            )


def points_to(holder: EntityScope, field: dict, entity: EntityScope) -> bool:
    """Is ``field`` (of ``holder``) a reference to ``entity``?"""
    return field.get("type") == "reference" and (
        holder.app.target(field.get("target")).entity is entity
    )
