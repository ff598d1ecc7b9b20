"""Values that make a workflow's condition hold: a small solver for the rules presets write.

A transition's ``when`` or an approval step's ``when`` reads the record's fields;
to drive a workflow a test must first give the record values that satisfy it.
:class:`Solver` finds such values for the simple rules a preset uses —
comparisons with a literal or another field, ``in`` a list, ``!``/``!!``, and
``and``/``or`` of those — and returns them as a *plan*: ``{name the rule reads:
value}``. A name may be a field of the record, a lookup (written where it looks
up), a dotted path through references, or a formula: then one numeric input of
the formula is tried on a ladder of magnitudes (1, 10, 100 ...) until the
formula's value fits. Every candidate is checked by evaluating the rules with
the project's own JsonLogic, so a plan is only offered when the rules hold on it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from metamodel.jsonlogic import evaluate, truthy, variables

NUMERIC = ("integer", "decimal", "currency", "percent", "rating")
TEXTUAL = ("text", "long_text", "email", "url", "phone")
# Fields the record service computes or that hold no single value a rule compares.
NOT_WRITABLE = (
    "formula",
    "rollup",
    "lookup",
    "autonumber",
    "file",
    "signature",
    "child_table",
    "multi_reference",
)
COMPARISONS = {"==", "===", "!=", "!==", ">", ">=", "<", "<="}
FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
LADDER_POWERS = range(10)

Plan = dict[str, Any]


def holds(rule: Any, data: dict) -> bool:
    return rule is None or truthy(evaluate(rule, data))


def compares(op: str, left: Any, right: Any) -> bool:
    return holds({op: [{"var": "a"}, {"var": "b"}]}, {"a": left, "b": right})


def overlay(data: dict, plan: Plan) -> dict:
    """``data`` as it would read with ``plan`` written (dotted names nest)."""
    result = copy.deepcopy(data)
    for name, value in plan.items():
        *heads, last = name.split(".")
        node = result
        for head in heads:
            if not isinstance(node.get(head), dict):
                node[head] = {}
            node = node[head]
        node[last] = value
    return result


class Solver:
    def __init__(self, doc: dict, entity: str):
        self.fields = {e["name"]: {f["name"]: f for f in e["fields"]} for e in doc["entities"]}
        self.entity = entity

    # --- where a name is written ---------------------------------------------------

    def writable_path(self, name: str, entity: str | None = None) -> tuple[str, dict] | None:
        """The path a plan's ``name`` is written at, and that field; None if computed.

        A lookup is written where it looks up (``customer_tier`` is ``customer.value_tier``).
        """
        entity = entity or self.entity
        head, _, rest = name.partition(".")
        field = self.fields[entity].get(head)
        if field is None:
            return None
        if field["type"] == "lookup":
            via = f"{field['via']}.{field['field']}"
            return self.writable_path(f"{via}.{rest}" if rest else via, entity)
        if rest:
            if field["type"] != "reference":
                return None
            found = self.writable_path(rest, field["target"])
            return (f"{head}.{found[0]}", found[1]) if found else None
        if field["type"] in NOT_WRITABLE or field.get("read_only"):
            return None
        return head, field

    def field(self, name: str) -> dict | None:
        """The definition a rule's ``name`` reads: through references, not through lookups."""
        entity = self.entity
        *heads, last = name.split(".")
        for head in heads:
            field = self.fields[entity].get(head)
            if field is None or field["type"] != "reference":
                return None
            entity = field["target"]
        return self.fields[entity].get(last)

    # --- plans -----------------------------------------------------------------------

    def extend(self, plan: Plan, rules: list, data: dict) -> Plan | None:
        """``plan`` grown until every rule holds on ``data``; None if no plan was found."""

        def search(index: int, current: Plan) -> Plan | None:
            if index == len(rules):
                return current
            for found in self.solutions(rules[index], overlay(data, current)):
                # A later rule may change a value an earlier one chose, if that still holds.
                merged = {**current, **found}
                seen = overlay(data, merged)
                if all(holds(rule, seen) for rule in rules[: index + 1]):
                    result = search(index + 1, merged)
                    if result is not None:
                        return result
            return None

        return search(0, dict(plan))

    def solutions(self, rule: Any, data: dict) -> Iterator[Plan]:
        """Plans that may make ``rule`` hold on ``data``, the empty one first if it holds."""
        if holds(rule, data):
            yield {}
        if not isinstance(rule, dict) or len(rule) != 1:
            return
        op, args = next(iter(rule.items()))
        args = args if isinstance(args, list) else [args]
        if op == "and":
            yield from self._all(args, data, 0, {})
        elif op == "or":
            for arg in args:
                yield from self.solutions(arg, data)
        elif op == "var":
            yield from self.assign(_name(rule), "truthy", None, data)
        elif op in ("!!", "!") and args and _name(args[0]):
            yield from self.assign(_name(args[0]), "truthy" if op == "!!" else "falsy", None, data)
        elif op in COMPARISONS and len(args) == 2:
            left, right = args
            if _name(left):
                yield from self.assign(_name(left), op, evaluate(right, data), data)
            if _name(right):
                yield from self.assign(
                    _name(right), FLIPPED.get(op, op), evaluate(left, data), data
                )
        elif op == "in" and len(args) == 2 and _name(args[0]) and isinstance(args[1], list):
            for value in args[1]:
                yield from self.assign(_name(args[0]), "==", value, data)

    def _all(self, args: list, data: dict, index: int, plan: Plan) -> Iterator[Plan]:
        if index == len(args):
            yield plan
            return
        for found in self.solutions(args[index], overlay(data, plan)):
            merged = {**plan, **found}
            if all(holds(arg, overlay(data, merged)) for arg in args[: index + 1]):
                yield from self._all(args, data, index + 1, merged)

    def assign(self, name: str, op: str, target: Any, data: dict) -> Iterator[Plan]:
        """Plans giving ``name`` a value that makes ``name op target`` hold."""
        field = self.field(name)
        if field is None:
            return
        if field["type"] == "formula":
            yield from self._formula(name, field, op, target, data)
            return
        written = self.writable_path(name)
        if written is None:
            return
        for value in candidates(written[1], op, target):
            if op in COMPARISONS and not compares(op, value, target):
                continue
            yield {name: value}

    def _formula(self, name: str, field: dict, op: str, target: Any, data: dict):
        """A formula reaches ``target`` when one numeric input grows (or shrinks) enough."""
        if op not in COMPARISONS:
            return
        expression = field["expression"]
        inputs = dict.fromkeys(n for n, _ in variables(expression) if n)
        signs = (-1,) if op in ("<", "<=") else (1,)
        for input_name in inputs:
            written = self.writable_path(input_name)
            if written is None or written[1]["type"] not in NUMERIC:
                continue
            for sign in signs:
                for power in LADDER_POWERS:
                    value = sign * 10**power
                    if not within(written[1], Decimal(value)):
                        continue
                    trial = overlay(data, {input_name: value})
                    result = evaluate(expression, trial)
                    if result is not None and compares(op, result, target):
                        yield {input_name: value, name: result}
                        break


def _name(node: Any) -> str | None:
    """The field a ``{"var": name}`` reads (no default, no ``$`` context), else None."""
    if isinstance(node, dict) and list(node) == ["var"]:
        name = node["var"]
        if isinstance(name, list):
            name = name[0] if len(name) == 1 else None
        if isinstance(name, str) and name and not name.startswith("$"):
            return name
    return None


def candidates(field: dict, op: str, target: Any) -> list[Any]:
    """Values of ``field``'s type worth trying for ``op target``, within its limits."""
    kind = field["type"]
    if kind in NUMERIC:
        return [v for v in _numbers(op, target) if within(field, v)]
    if kind == "boolean":
        if op == "truthy":
            return [True]
        if op == "falsy":
            return [False]
        return [True, False]
    if kind in ("select", "multiselect"):
        options = [o["value"] if isinstance(o, dict) else o for o in field.get("options", [])]
        if op == "truthy":
            return options[:1]
        if op in ("==", "==="):
            return [target] if target in options else []
        return [o for o in options if o != target]
    if kind in TEXTUAL:
        if op == "truthy":
            return ["x"]
        if op in ("==", "===") and isinstance(target, str):
            return [target]
        if op in ("!=", "!=="):
            return [f"{target}x"]
        return []
    if kind == "reference" and op == "falsy":
        return [None]
    return []


def _numbers(op: str, target: Any) -> list[Decimal]:
    if op == "truthy":
        return [Decimal(1)]
    if op == "falsy":
        return [Decimal(0)]
    try:
        value = Decimal(str(target))
    except ArithmeticError:
        return []
    if not value.is_finite():
        return []
    cent = Decimal("0.01")
    floor, ceil = Decimal(math.floor(value)), Decimal(math.ceil(value))
    return {
        "==": [value],
        "===": [value],
        ">=": [value],
        "<=": [value],
        ">": [floor + 1, value + cent],
        "<": [ceil - 1, value - cent],
        "!=": [value + 1, value - 1],
        "!==": [value + 1, value - 1],
    }.get(op, [])


def within(field: dict, value: Decimal) -> bool:
    if field["type"] == "integer" and value != value.to_integral_value():
        return False
    low, high = field.get("min"), field.get("max")
    return (low is None or value >= Decimal(str(low))) and (
        high is None or value <= Decimal(str(high))
    )


def json_value(value: Any) -> Any:
    """A plan's value as the record service takes it."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return str(value)
    return value
