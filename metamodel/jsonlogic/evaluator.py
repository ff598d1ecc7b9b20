"""``apply``: json-logic-js 2.0.5's ``jsonLogic.apply``, read line by line.

A rule is an array (every item evaluated), an object with exactly one key (an
operation), or anything else (a literal, returned as it is). Most operations
evaluate all their arguments first and then run; ``if``/``?:``, ``and``, ``or`` and
the array operations (``map``, ``filter``, ``reduce``, ``all``, ``none``, ``some``)
decide what to evaluate themselves. ``var``, ``missing`` and ``missing_some`` read
the data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import arithmetic, compare
from .errors import RuleError
from .operations import OPERATIONS
from .values import UNDEFINED, get_property, to_number, to_string, truthy

# Unsupported on purpose: `log` writes to the console, `method` calls arbitrary methods.
_REFUSED = {
    "log": "'log' is not supported in rules (it only prints to the browser console)",
    "method": "'method' is not supported in rules (it calls arbitrary JavaScript methods)",
}


def is_logic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1


def apply(logic: Any, data: Any) -> Any:
    if isinstance(logic, list):
        return [apply(item, data) for item in logic]
    if not is_logic(logic):
        return logic
    ((operator, values),) = logic.items()
    if not isinstance(values, list):
        values = [values]  # {"var": "x"} is short for {"var": ["x"]}
    special_form = SPECIAL_FORMS.get(operator)
    if special_form is not None:
        return special_form(values, data)
    args = [apply(value, data) for value in values]
    data_operation = DATA_OPERATIONS.get(operator)
    if data_operation is not None:
        return data_operation(data, *args)
    operation = OPERATIONS.get(operator)
    if operation is None:
        raise RuleError(_REFUSED.get(operator, f"unknown operator {operator!r}"))
    return operation(*args)


def _argument(values: list, index: int) -> Any:
    return values[index] if index < len(values) else UNDEFINED


def _if(values: list, data: Any) -> Any:
    # Pairs of condition and consequent, then an optional else; no else gives null.
    for index in range(0, len(values) - 1, 2):
        if truthy(apply(values[index], data)):
            return apply(values[index + 1], data)
    if len(values) % 2:
        return apply(values[-1], data)
    return None


def _and(values: list, data: Any) -> Any:
    current = UNDEFINED
    for value in values:
        current = apply(value, data)
        if not truthy(current):
            return current
    return current


def _or(values: list, data: Any) -> Any:
    current = UNDEFINED
    for value in values:
        current = apply(value, data)
        if truthy(current):
            return current
    return current


def _scope(values: list, data: Any) -> tuple[Any, Any]:
    """The array an array operation walks, and the logic it applies to each item."""
    return apply(_argument(values, 0), data), _argument(values, 1)


def _filter(values: list, data: Any) -> list:
    items, logic = _scope(values, data)
    if not isinstance(items, list):
        return []
    return [item for item in items if truthy(apply(logic, item))]


def _map(values: list, data: Any) -> list:
    items, logic = _scope(values, data)
    if not isinstance(items, list):
        return []
    return [apply(logic, item) for item in items]


def _reduce(values: list, data: Any) -> Any:
    items, logic = _scope(values, data)
    accumulator = apply(values[2], data) if len(values) > 2 else None
    if not isinstance(items, list):
        return accumulator
    for current in items:
        accumulator = apply(logic, {"current": current, "accumulator": accumulator})
    return accumulator


def _all(values: list, data: Any) -> bool:
    items, logic = _scope(values, data)
    # All of nothing is false, unlike Python's all([]).
    if not isinstance(items, list) or not items:
        return False
    return all(truthy(apply(logic, item)) for item in items)


def _none(values: list, data: Any) -> bool:
    items, logic = _scope(values, data)
    if not isinstance(items, list):
        return True
    return not any(truthy(apply(logic, item)) for item in items)


def _some(values: list, data: Any) -> bool:
    items, logic = _scope(values, data)
    if not isinstance(items, list):
        return False
    return any(truthy(apply(logic, item)) for item in items)


SPECIAL_FORMS: dict[str, Callable[[list, Any], Any]] = {
    "if": _if,
    "?:": _if,
    "and": _and,
    "or": _or,
    "filter": _filter,
    "map": _map,
    "reduce": _reduce,
    "all": _all,
    "none": _none,
    "some": _some,
}


def _var(data: Any, name: Any = UNDEFINED, default: Any = UNDEFINED, *_: Any) -> Any:
    not_found = None if default is UNDEFINED else default
    if name is UNDEFINED or name is None or name == "":
        return data
    for key in to_string(name).split("."):
        if data is None or data is UNDEFINED:
            return not_found
        data = get_property(data, key)
        if data is UNDEFINED:
            return not_found
    return data


def _missing(data: Any, *args: Any) -> list:
    # Keys come as arguments, or as one array argument (the result of merge, if, ...).
    keys = args[0] if args and isinstance(args[0], list) else args
    missing = []
    for key in keys:
        value = apply({"var": key}, data)
        if value is None or value == "":
            missing.append(key)
    return missing


def _missing_some(data: Any, need_count: Any = UNDEFINED, options: Any = UNDEFINED, *_: Any):
    are_missing = apply({"missing": options}, data)
    if options is None or options is UNDEFINED:
        raise RuleError("'missing_some' needs a list of keys as its second argument")
    # `options.length - are_missing.length`, with JavaScript's coercions.
    present = arithmetic.subtract(to_number(get_property(options, "length")), len(are_missing))
    return [] if compare.greater_or_equal(present, need_count) else are_missing


DATA_OPERATIONS: dict[str, Callable[..., Any]] = {
    "var": _var,
    "missing": _missing,
    "missing_some": _missing_some,
}
