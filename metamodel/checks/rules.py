"""Rules (JsonLogic): only the supported operators, only fields that exist.

One rule language serves forms, validations, guards, filters and row-level
permissions, and each rule must give the same answer in Python, in the browser
and compiled to SQL, so only the operators all three implement are allowed.
Every literal ``{"var": ...}`` in the record's scope must name a field of the
rule's entity (a dotted path may follow references) or a context variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import pointer
from ..errors import Problem
from ..wording import did_you_mean
from .scope import AppScope, EntityScope, items

# fmt: off
OPERATORS = (
    "var", "missing", "missing_some", "if", "?:", "==", "===", "!=", "!==", "!", "!!", "or",
    "and", ">", ">=", "<", "<=", "max", "min", "+", "-", "*", "/", "%", "map", "reduce",
    "filter", "all", "none", "some", "merge", "in", "cat", "substr",
)
# fmt: on
# The second argument of these is evaluated for each item of a list, where
# {"var": ...} reads the item (or the accumulator), not the record.
ITEM_SCOPED = frozenset({"map", "reduce", "filter", "all", "none", "some"})
CONTEXT_VARIABLES = ("$user", "$user.id", "$user.roles", "$now", "$today")
LAYOUT_RULES = ("visible_when", "required_when", "read_only_when")


def operations(node: Any, at: str, record_scope: bool = True) -> Iterator[tuple]:
    """Every operation in a rule: ``(pointer, operator, arguments, in record scope)``.

    An object that is not exactly one operator with its arguments comes out with
    operator None.
    """
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from operations(item, pointer.join(at, index), record_scope)
        return
    if not isinstance(node, dict):
        return
    if len(node) != 1:
        yield at, None, node, record_scope
        return
    ((operator, arguments),) = node.items()
    yield at, operator, arguments, record_scope
    inner = pointer.join(at, operator)
    if operator in ITEM_SCOPED and isinstance(arguments, list):
        for index, argument in enumerate(arguments):
            scope = record_scope and index != 1
            yield from operations(argument, pointer.join(inner, index), scope)
    else:
        yield from operations(arguments, inner, record_scope)


def operator_problems(rule: Any, at: str) -> Iterator[Problem]:
    for where, operator, _, _ in operations(rule, at):
        if operator is None:
            yield Problem(
                where,
                "an operation is an object with exactly one key, the operator, e.g. "
                '{"==": [{"var": "stage"}, "won"]}',
            )
        elif operator not in OPERATORS:
            yield Problem(
                pointer.join(where, operator),
                f"'{operator}' is not a rule operator{did_you_mean(operator, OPERATORS)}; "
                f"rules may use: {' '.join(OPERATORS)}",
            )


def field_names(rule: Any, at: str) -> Iterator[tuple[str, str]]:
    """``(pointer, name)`` of every literal field name the rule reads from the record."""
    for where, operator, arguments, record_scope in operations(rule, at):
        if record_scope and operator in NAME_READERS:
            for name_at, name in NAME_READERS[operator](arguments, pointer.join(where, operator)):
                if isinstance(name, str) and name:
                    yield name_at, name


def var_names(arguments: Any, at: str) -> list[tuple[str, Any]]:
    """``{"var": "name"}`` or ``{"var": ["name", default]}``; "" reads the whole record."""
    if isinstance(arguments, list):
        return [(pointer.join(at, 0), arguments[0])] if arguments else []
    return [(at, arguments)]


def missing_names(arguments: Any, at: str) -> list[tuple[str, Any]]:
    """``{"missing": ["a", "b"]}``, or the keys in a list given as its first argument."""
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], list):
        return [(pointer.join(at, 0, i), name) for i, name in enumerate(arguments[0])]
    if isinstance(arguments, list):
        return [(pointer.join(at, i), name) for i, name in enumerate(arguments)]
    return [(at, arguments)]


def missing_some_names(arguments: Any, at: str) -> list[tuple[str, Any]]:
    """``{"missing_some": [count, ["a", "b"]]}``."""
    if isinstance(arguments, list) and len(arguments) == 2 and isinstance(arguments[1], list):
        return [(pointer.join(at, 1, i), name) for i, name in enumerate(arguments[1])]
    return []


NAME_READERS = {"var": var_names, "missing": missing_names, "missing_some": missing_some_names}


def name_problem(entity: EntityScope, name: str) -> str | None:
    if name.startswith("$"):
        if name in CONTEXT_VARIABLES:
            return None
        return (
            f"'{name}' is not a context variable{did_you_mean(name, CONTEXT_VARIABLES)}; "
            f"the context variables are {', '.join(CONTEXT_VARIABLES)}"
        )
    return entity.path(name).problem


def check_rules(app: AppScope) -> Iterator[Problem]:
    for at, rule, entity in document_rules(app):
        yield from operator_problems(rule, at)
        if entity is None:
            continue
        for where, name in field_names(rule, at):
            if problem := name_problem(entity, name):
                yield Problem(where, problem)


# --- where rules are -----------------------------------------------------------------


def document_rules(app: AppScope) -> Iterator[tuple[str, Any, EntityScope | None]]:
    """Every rule of the document: ``(pointer, rule, the entity whose fields it reads)``."""
    yield from entity_rules(app)
    yield from form_rules(app)
    yield from workflow_rules(app)
    for index, view in items(app.doc, "views"):
        yield from rule_at(
            view, "filter", pointer.join("/views", index), app.entity(view.get("entity"))
        )
    for d_index, dashboard in items(app.doc, "dashboards"):
        for w_index, widget in items(dashboard, "widgets"):
            at = pointer.join("/dashboards", d_index, "widgets", w_index)
            yield from rule_at(widget, "filter", at, app.entity(widget.get("entity")))


def rule_at(container: dict, key: str, at: str, entity: EntityScope | None) -> Iterator[tuple]:
    if key in container:
        yield pointer.join(at, key), container[key], entity


def entity_rules(app: AppScope) -> Iterator[tuple]:
    for entity in app.entity_list:
        for index, row_rule in items(entity.doc, "row_rules"):
            yield from rule_at(
                row_rule, "rule", pointer.join(entity.pointer, "row_rules", index), entity
            )
    for entity, at, field in app.fields():
        if field.get("type") == "formula":
            yield from rule_at(field, "expression", at, entity)
        elif field.get("type") == "rollup":
            yield from rule_at(field, "filter", at, entity.rolled_up(field.get("via")).entity)


def form_rules(app: AppScope) -> Iterator[tuple]:
    for f_index, form in items(app.doc, "forms"):
        at = pointer.join("/forms", f_index)
        entity = app.entity(form.get("entity"))
        for s_index, section in items(form, "layout"):
            for i_index, item in items(section, "fields"):
                item_at = pointer.join(at, "layout", s_index, "fields", i_index)
                for key in LAYOUT_RULES:
                    yield from rule_at(item, key, item_at, entity)
        for v_index, validation in items(form, "validations"):
            yield from rule_at(validation, "rule", pointer.join(at, "validations", v_index), entity)


def workflow_rules(app: AppScope) -> Iterator[tuple]:
    for w_index, workflow in items(app.doc, "workflows"):
        entity = app.entity(workflow.get("entity"))
        for t_index, transition in items(workflow, "transitions"):
            at = pointer.join("/workflows", w_index, "transitions", t_index)
            yield from rule_at(transition, "when", at, entity)
            for s_index, step in items(transition.get("approval"), "steps"):
                step_at = pointer.join(at, "approval", "steps", s_index)
                yield from rule_at(step, "when", step_at, entity)
