"""Computed fields: lookups and rollups that resolve, and no circles among them.

A formula, lookup or rollup is recomputed from the fields it reads; if those
lead back to itself there is no order in which to compute them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from .. import pointer
from ..errors import Problem
from .rules import field_names
from .scope import NUMERIC_TYPES, AppScope, EntityScope, Resolved

COMPUTED_TYPES = ("formula", "lookup", "rollup")
NEEDS_NUMBERS = ("sum", "avg")
Node = tuple[str, str]  # (entity, field) of this app


def check_computed(app: AppScope) -> Iterator[Problem]:
    for entity, at, field in app.fields():
        if field.get("type") == "lookup":
            yield from lookup_problems(entity, at, field)
        elif field.get("type") == "rollup":
            yield from rollup_problems(entity, at, field)
    yield from cycle_problems(app)


def lookup_problems(entity: EntityScope, at: str, field: dict) -> Iterator[Problem]:
    source = entity.lookup_source(field)
    if source.problem:
        yield Problem(pointer.join(at, source.key), source.problem)


def rollup_problems(entity: EntityScope, at: str, field: dict) -> Iterator[Problem]:
    rolled = entity.rolled_up(field.get("via"))
    if rolled.problem:
        yield Problem(pointer.join(at, "via"), rolled.problem)
    if rolled.entity is None:
        return
    aggregate, name = field.get("aggregate"), field.get("field")
    if name is None:
        if isinstance(aggregate, str) and aggregate != "count":
            yield Problem(
                at,
                f'a rollup with "aggregate": "{aggregate}" needs \'field\': the field of '
                f"'{rolled.entity.title}' to aggregate",
            )
        return
    if not isinstance(name, str):
        return
    source = rolled.entity.own_field(name)
    if source is None:
        yield Problem(pointer.join(at, "field"), rolled.entity.not_a_field(name))
        return
    value_type = rolled.entity.value_type(source)
    if aggregate in NEEDS_NUMBERS and value_type not in NUMERIC_TYPES:
        yield Problem(
            pointer.join(at, "field"),
            f"'{name}' holds {value_type or 'unknown'} values; {aggregate} needs a number "
            f"field ({', '.join(sorted(NUMERIC_TYPES))})",
        )


# --- circles -------------------------------------------------------------------------


def dependencies(entity: EntityScope, field: dict) -> Iterator[tuple[EntityScope, dict]]:
    """The fields a computed field reads."""
    kind = field.get("type")
    if kind == "formula":
        for _, name in field_names(field.get("expression"), ""):
            yield from found(entity.path(name))
    elif kind == "lookup":
        yield from found(entity.lookup_source(field))
    elif kind == "rollup":
        rolled = entity.rolled_up(field.get("via")).entity
        if rolled is None:
            return
        source = rolled.own_field(field.get("field"))
        if source is not None:
            yield rolled, source
        for _, name in field_names(field.get("filter"), ""):
            yield from found(rolled.path(name))


def found(resolved: Resolved) -> Iterator[tuple[EntityScope, dict]]:
    if resolved.field is not None:
        yield resolved.entity, resolved.field


def dependency_graph(app: AppScope) -> dict[Node, list[Node]]:
    """Edges between the computed fields of this app (only they can close a circle)."""
    graph: dict[Node, list[Node]] = {}
    for entity in app.entities.values():
        for name, (_, field) in entity.fields.items():
            if field.get("type") not in COMPUTED_TYPES:
                continue
            graph[(entity.name, name)] = [
                (source.name, source_field.get("name"))
                for source, source_field in dependencies(entity, field)
                if source.app is app and source_field.get("type") in COMPUTED_TYPES
            ]
    return graph


def cycle_problems(app: AppScope) -> Iterator[Problem]:
    graph = dependency_graph(app)
    for node in graph:
        circle = circle_through(graph, node)
        if circle is None:
            continue
        entity_name, field_name = node
        at = app.entities[entity_name].fields[field_name][0]
        steps = " → ".join(f"{e}.{f}" for e, f in circle)
        if len(circle) == 2:
            message = f"'{field_name}' is computed from itself ({steps}); it must not read itself"
        else:
            message = (
                f"computed fields depend on each other in a circle: {steps}; one of them must "
                "stop reading the others"
            )
        yield Problem(at, message)


def circle_through(graph: dict[Node, list[Node]], start: Node) -> list[Node] | None:
    """The shortest path from ``start`` back to itself, or None (breadth first)."""
    paths = {start: [start]}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in graph.get(node, []):
            if successor == start:
                return [*paths[node], start]
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                queue.append(successor)
    return None
