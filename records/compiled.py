"""Rules run once per row or per record: compiled once, then applied many times.

``compile_rule`` walks a JsonLogic rule once and returns a function of the data
that calls exactly the operations ``jsonlogic.evaluator.apply`` would call, in
the same order; ``rule_reads`` names the record keys a rule can reach, so the
data given to it can be cut down to them.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from metamodel.jsonlogic import RuleError, arithmetic, variables
from metamodel.jsonlogic.evaluator import DATA_OPERATIONS, SPECIAL_FORMS, is_logic
from metamodel.jsonlogic.operations import OPERATIONS
from metamodel.jsonlogic.values import UNDEFINED


def compile_rule(logic: Any) -> Callable[[Any], Any]:
    """``jsonlogic.evaluator.apply`` with the dispatch done once, for rules run per row.

    Each node calls the very operation ``apply`` would call, on arguments evaluated
    in the same order, so the results are the evaluator's; only the walk over the
    rule (which operator, how many arguments) is no longer repeated for each row.
    """
    if isinstance(logic, list):
        items = [compile_rule(item) for item in logic]
        return lambda data: [item(data) for item in items]
    if not is_logic(logic):
        return lambda data: logic
    ((operator, values),) = logic.items()
    if not isinstance(values, list):
        values = [values]
    special_form = SPECIAL_FORMS.get(operator)
    if special_form is not None:
        return lambda data: special_form(values, data)
    if operator == "var" and len(values) == 1 and _plain_name(values[0]):
        # _var on an object and a name without dots: the key's value, null when absent.
        (name,) = values
        var = DATA_OPERATIONS["var"]
        return lambda data: data.get(name) if type(data) is dict else var(data, name)
    arguments = [compile_rule(value) for value in values]
    data_operation = DATA_OPERATIONS.get(operator)
    if data_operation is not None:
        if len(arguments) == 1:
            (only,) = arguments
            return lambda data: data_operation(data, only(data))
        return lambda data: data_operation(data, *[a(data) for a in arguments])
    operation = OPERATIONS.get(operator)
    if operation is None:

        def refused(data):
            for argument in arguments:
                argument(data)
            raise RuleError(f"unknown operator {operator!r}")

        return refused
    if len(arguments) == 2:
        left, right = arguments
        exact = _DECIMAL_STEPS.get(operator)
        if exact is not None:
            return _decimal_first(exact, operation, left, right)
        return lambda data: operation(left(data), right(data))
    if len(arguments) == 1:
        (only,) = arguments
        return lambda data: operation(only(data))
    return lambda data: operation(*[a(data) for a in arguments])


# Money in formulas is Decimal: for two non-zero finite operands, Decimal or int,
# ``*`` and ``/`` come down to one operation of the evaluator's own context
# (``parse_float``/``to_number`` give such numbers back as they are, and
# ``arithmetic._binary`` turns the int into a Decimal). Everything else takes the
# evaluator's path.
_DECIMAL_STEPS = {"*": arithmetic._CONTEXT.multiply, "/": arithmetic._CONTEXT.divide}


def _decimal_first(exact, operation, left, right) -> Callable[[Any], Any]:
    def run(data):
        a, b = left(data), right(data)
        kind_a, kind_b = type(a), type(b)
        if (
            (kind_a is Decimal or kind_b is Decimal)
            and (kind_a is Decimal or kind_a is int)
            and (kind_b is Decimal or kind_b is int)
            and a
            and b
        ):
            result = exact(a, b)
            if result.is_finite():
                return result
        return operation(a, b)

    return run


def _plain_name(name: Any) -> bool:
    return type(name) is str and name != "" and "." not in name


def defined(value: Any) -> Any:
    if value is UNDEFINED:
        return None
    if isinstance(value, list):
        return [defined(item) for item in value]
    if isinstance(value, dict):
        return {key: defined(item) for key, item in value.items()}
    return value


def rule_reads(rule: Any) -> tuple[list[str] | None, bool]:
    """The record keys a rule reads (None: the whole record), and whether it reads ``$`` names."""
    if _computed_names(rule):
        return None, True
    reads: list[str] = []
    context = False
    for name, _pointer in variables(rule):
        root = name.split(".", 1)[0]
        if not root:
            return None, True
        if root.startswith("$"):
            context = True
        elif root not in reads:
            reads.append(root)
    return reads, context


def _computed_names(node: Any) -> bool:
    """Might the rule read a name ``variables`` does not report? Then it may read any.

    Names computed by a rule (``{"var": {"cat": ...}}``), and names that are not
    text or numbers (``{"var": true}`` reads the key "true").
    """
    if isinstance(node, list):
        return any(_computed_names(item) for item in node)
    if not is_logic(node):
        return False
    ((operator, values),) = node.items()
    arguments = values if isinstance(values, list) else [values]
    if operator == "var":
        names = arguments[:1]
    elif operator == "missing":
        names = arguments[0] if arguments and isinstance(arguments[0], list) else arguments
    elif operator == "missing_some":
        names = arguments[1] if len(arguments) > 1 and isinstance(arguments[1], list) else [{}]
    else:
        names = []
    if any(not _literal_name(name) for name in names):
        return True
    return _computed_names(values)


def _literal_name(name: Any) -> bool:
    return type(name) in (str, int, float) or name is None
