"""``variables``: the names a rule reads from the data, and where in the rule they are."""

from __future__ import annotations

from typing import Any

from .evaluator import is_logic
from .values import to_string

# The second argument of these runs on each item of the array, not on the data.
_SCOPED = {"map", "filter", "reduce", "all", "none", "some"}
_LITERAL_NAMES = (str, int, float, type(None))


def variables(rule: Any) -> list[tuple[str, str]]:
    """Each literal name the rule reads, with the JSON Pointer of that name in the rule.

    ``{"and": [{"==": [{"var": "account.tier"}, "gold"]}]}`` gives
    ``[("account.tier", "/and/0/==/0/var")]``. Names come from ``var`` (the name is
    JavaScript's ``String(name)``; ``""`` and null read the whole data and are
    reported as ``""``) and from the keys ``missing`` and ``missing_some`` look up.
    A name computed by a rule (``{"var": {"cat": ...}}``) is not reported; the vars
    inside it are. The per-item logic of map, filter, reduce, all, none and some
    reads array items, not the data, so it is skipped.
    """
    found: list[tuple[str, str]] = []
    _collect(rule, "", found)
    return found


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _is_literal_name(value: Any) -> bool:
    return isinstance(value, _LITERAL_NAMES) and not isinstance(value, bool)


def _collect(node: Any, pointer: str, found: list[tuple[str, str]]) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            _collect(item, f"{pointer}/{index}", found)
        return
    if not is_logic(node):
        return
    ((operator, values),) = node.items()
    here = f"{pointer}/{_escape(operator)}"
    if isinstance(values, list):
        arguments = [(value, f"{here}/{index}") for index, value in enumerate(values)]
    else:
        arguments = [(values, here)]
    if operator == "var":
        _collect_names(arguments[:1], found)
        arguments = arguments[1:]
    elif operator == "missing":
        # Like json-logic-js: one array argument holds the keys, otherwise the arguments do.
        if arguments and isinstance(arguments[0][0], list):
            keys, where = arguments[0]
            _collect_names([(key, f"{where}/{index}") for index, key in enumerate(keys)], found)
            arguments = arguments[1:]
        else:
            _collect_names(arguments, found)
            arguments = []
    elif operator == "missing_some" and len(arguments) > 1 and isinstance(values[1], list):
        options, where = arguments[1]
        _collect_names([(key, f"{where}/{index}") for index, key in enumerate(options)], found)
        arguments = arguments[:1]
    elif operator in _SCOPED:
        arguments = [argument for index, argument in enumerate(arguments) if index != 1]
    for value, where in arguments:
        _collect(value, where, found)


def _collect_names(arguments: list[tuple[Any, str]], found: list[tuple[str, str]]) -> None:
    for value, where in arguments:
        if _is_literal_name(value):
            found.append(("" if value is None else to_string(value), where))
        else:
            _collect(value, where, found)
