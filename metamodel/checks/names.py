"""Names: unique in their scope, usable in table names, renames that make sense.

Whether each name is a legal identifier at all is the schema's job (its
identifier definition is built from ``identifiers``); these checks need to see
several names at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import pointer
from ..errors import Problem
from .scope import AppScope, items, text

APP_LISTS = (
    ("roles", "role"),
    ("entities", "entity"),
    ("forms", "form"),
    ("workflows", "workflow"),
    ("views", "view"),
    ("dashboards", "dashboard"),
)


def check_names(app: AppScope) -> Iterator[Problem]:
    yield from no_separator(app.doc.get("name"), "/name")
    for key, what in APP_LISTS:
        yield from unique_names(items(app.doc, key), f"/{key}", what, "in an app")
    for entity in app.entity_list:
        yield from no_separator(entity.name, pointer.join(entity.pointer, "name"))
        yield from unique_names(
            items(entity.doc, "fields"),
            pointer.join(entity.pointer, "fields"),
            f"field of '{entity.name}'",
            "in an entity",
        )
    yield from workflow_names(app)
    yield from renames(items(app.doc, "entities"), "/entities", "entity")
    for entity in app.entity_list:
        yield from renames(
            items(entity.doc, "fields"), pointer.join(entity.pointer, "fields"), "field"
        )


def unique_names(listed: list[tuple[int, dict]], base: str, what: str, scope: str):
    first: dict[str, str] = {}
    for index, item in listed:
        name = text(item, "name")
        at = pointer.join(base, index)
        if name is None:
            continue
        if name in first:
            yield Problem(
                pointer.join(at, "name"),
                f"another {what} is already named '{name}' (at {first[name]}); "
                f"names must be unique {scope}: rename one of them",
            )
        else:
            first[name] = at


def no_separator(name: object, at: str) -> Iterator[Problem]:
    # Table names join app and entity with "__"; a name containing it could collide.
    if isinstance(name, str) and "__" in name:
        yield Problem(
            at,
            f"'{name}' contains '__', which separates app and entity names in table names; "
            "use a single '_'",
        )


def workflow_names(app: AppScope) -> Iterator[Problem]:
    for w_index, workflow in items(app.doc, "workflows"):
        at = pointer.join("/workflows", w_index)
        name = text(workflow, "name") or "this workflow"
        for key, what in (("states", "state"), ("transitions", "transition")):
            yield from unique_names(
                items(workflow, key), pointer.join(at, key), f"{what} of '{name}'", "in a workflow"
            )
        for t_index, transition in items(workflow, "transitions"):
            approval = transition.get("approval")
            yield from unique_names(
                items(approval, "steps"),
                pointer.join(at, "transitions", t_index, "approval", "steps"),
                "step of this approval",
                "in an approval",
            )


def renames(listed: list[tuple[int, dict]], base: str, what: str) -> Iterator[Problem]:
    """``renamed_from`` gives an old name: no current sibling may have it, nor two claim it."""
    current = {name for _, item in listed if (name := text(item, "name"))}
    claimed: dict[str, str] = {}
    for index, item in listed:
        old = text(item, "renamed_from")
        at = pointer.join(base, index, "renamed_from")
        if old is None or old == item.get("name"):
            continue
        if old in current:
            yield Problem(
                at,
                f"'{old}' is the name of another {what} here; renamed_from gives the old name "
                f"this {what} had, so the data of '{old}' would be taken over",
            )
        elif old in claimed:
            yield Problem(at, f"another {what} (at {claimed[old]}) is already renamed from '{old}'")
        else:
            claimed[old] = pointer.join(base, index)
