"""Rules (JsonLogic): only the supported operators, only fields that exist.

One rule language serves forms, validations, guards, filters and row-level
permissions, and each rule must give the same answer in Python, in the browser
and compiled to SQL, so only the operators the evaluator implements are allowed
(json-logic-js's, less ``log`` and ``method``). Every literal ``{"var": ...}``
in the record's scope must name a field of the rule's entity (a dotted path may
follow references) or a context variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import pointer
from ..errors import Problem
from ..jsonlogic import variables
from ..jsonlogic.evaluator import DATA_OPERATIONS, SPECIAL_FORMS
from ..jsonlogic.operations import OPERATIONS as VALUE_OPERATIONS
from ..wording import did_you_mean
from .scope import AppScope, EntityScope, items

OPERATORS = (*DATA_OPERATIONS, *SPECIAL_FORMS, *VALUE_OPERATIONS)
CONTEXT_VARIABLES = ("$user", "$user.id", "$user.roles", "$now", "$today")
LAYOUT_RULES = ("visible_when", "required_when", "read_only_when")


def operations(node: Any, at: str) -> Iterator[tuple[str, str | None]]:
    """``(pointer, operator)`` of every operation in a rule.

    An object that is not exactly one operator with its arguments comes out with
    operator None: json-logic-js would take it for data, but in a rule it is a slip.
    """
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from operations(item, pointer.join(at, index))
        return
    if not isinstance(node, dict):
        return
    if len(node) != 1:
        yield at, None
        return
    ((operator, arguments),) = node.items()
    yield at, operator
    yield from operations(arguments, pointer.join(at, operator))


def operator_problems(rule: Any, at: str) -> Iterator[Problem]:
    for where, operator in operations(rule, at):
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
    """``(pointer, name)`` of every literal name the rule reads from the record.

    Names read inside the per-item logic of map, filter and the like read list
    items, and ``""`` reads the whole record: neither names a field.
    """
    for name, where in variables(rule):
        if name:
            yield at + where, name


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
