"""Views and dashboards: columns, sorting, grouping and measures that exist and fit."""

from __future__ import annotations

from collections.abc import Iterator

from .. import pointer
from ..errors import Problem
from .entities import entity_problem
from .scope import NUMERIC_TYPES, AppScope, EntityScope, items, strings, text

DATE_TYPES = ("date", "datetime")
NEEDS_NUMBERS = ("sum", "avg")


def check_views(app: AppScope) -> Iterator[Problem]:
    for index, view in items(app.doc, "views"):
        at = pointer.join("/views", index)
        yield from entity_problem(app, view, at)
        yield from role_problems(app, view, at)
        entity = app.entity(view.get("entity"))
        if entity is None:
            continue
        for c_index, name in strings(view, "columns"):
            yield from path_problems(entity, name, pointer.join(at, "columns", c_index))
        for s_index, sort in items(view, "sort"):
            if (name := text(sort, "field")) is not None:
                yield from path_problems(entity, name, pointer.join(at, "sort", s_index, "field"))
        yield from group_by_problems(entity, view, at)
        if (name := text(view, "date_field")) is not None:
            yield from date_problems(entity, name, pointer.join(at, "date_field"))


def check_dashboards(app: AppScope) -> Iterator[Problem]:
    for d_index, dashboard in items(app.doc, "dashboards"):
        at = pointer.join("/dashboards", d_index)
        yield from role_problems(app, dashboard, at)
        for w_index, widget in items(dashboard, "widgets"):
            yield from widget_problems(app, widget, pointer.join(at, "widgets", w_index))


def role_problems(app: AppScope, container: dict, at: str) -> Iterator[Problem]:
    for index, role in strings(container, "roles"):
        if problem := app.role_problem(role):
            yield Problem(pointer.join(at, "roles", index), problem)


def path_problems(entity: EntityScope, path: str, at: str) -> Iterator[Problem]:
    if problem := entity.path(path).problem:
        yield Problem(at, problem)


def group_by_problems(entity: EntityScope, view: dict, at: str) -> Iterator[Problem]:
    name = text(view, "group_by")
    if name is None:
        return
    at = pointer.join(at, "group_by")
    if view.get("type") != "kanban":
        yield from path_problems(entity, name, at)
        return
    # Dragging a card sets the field, so it must be a choice of this very record.
    field = entity.field(name)
    if field is None:
        yield Problem(at, entity.not_a_field(name))
    elif field.get("type") != "select" and name not in entity.state_fields:
        yield Problem(
            at,
            f"'{name}' is a {field.get('type')} field; a kanban board groups by a select field "
            "or a workflow's state field",
        )


def date_problems(entity: EntityScope, path: str, at: str) -> Iterator[Problem]:
    resolved = entity.path(path)
    if resolved.problem:
        yield Problem(at, resolved.problem)
    elif resolved.field is not None:
        kind = resolved.entity.value_type(resolved.field)
        if kind not in DATE_TYPES:
            yield Problem(at, f"'{path}' is a {kind} field; a date or datetime field is needed")


def widget_problems(app: AppScope, widget: dict, at: str) -> Iterator[Problem]:
    yield from entity_problem(app, widget, at)
    entity = app.entity(widget.get("entity"))
    if entity is None:
        return
    group_by = text(widget, "group_by")
    if group_by is not None:
        if "period" in widget:
            yield from date_problems(entity, group_by, pointer.join(at, "group_by"))
        else:
            yield from path_problems(entity, group_by, pointer.join(at, "group_by"))
    aggregate = widget.get("aggregate", "sum" if widget.get("type") == "pareto" else "count")
    name = text(widget, "field")
    if name is None:
        if aggregate in NEEDS_NUMBERS and "field" not in widget:
            yield Problem(
                at,
                f'a widget with "aggregate": "{aggregate}" needs \'field\': the field to aggregate',
            )
        return
    resolved = entity.path(name)
    if resolved.problem:
        yield Problem(pointer.join(at, "field"), resolved.problem)
    elif resolved.field is not None and aggregate in NEEDS_NUMBERS:
        kind = resolved.entity.value_type(resolved.field)
        if kind not in NUMERIC_TYPES:
            yield Problem(
                pointer.join(at, "field"),
                f"'{name}' holds {kind} values; a {aggregate} needs a number field "
                f"({', '.join(sorted(NUMERIC_TYPES))})",
            )
