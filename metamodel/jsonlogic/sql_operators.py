"""``in`` and integer arithmetic compiled to SQL (see ``sql`` for what is refused)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, literal
from sqlalchemy.sql.elements import ColumnElement

from .arithmetic import SAFE_INTEGER, is_nan
from .errors import RuleError
from .operations import OPERATIONS
from .sql_compare import CALENDARS, INT64, WIDE, compare_values
from .sql_values import (
    DATE,
    INTEGER,
    NUMBERS,
    STRING,
    TEMPORAL,
    Col,
    Guard,
    Lit,
    Opaque,
    Term,
    check_size,
    conj,
    disj,
    iso_text,
    position,
    text_literal,
)
from .values import number_to_string, parse_float, to_boolean, to_number, to_string

# --- in ---------------------------------------------------------------------------


def contains_terms(needle: Term, haystack: Term) -> Guard:
    """Where ``{"in": [needle, haystack]}`` holds."""
    check_size(len(needle) * len(haystack))
    parts = []
    for haystack_guard, haystack_value in haystack:
        for needle_guard, needle_value in needle:
            guard = conj(haystack_guard, needle_guard)
            if guard is not False:
                parts.append(conj(guard, _contains(needle_value, haystack_value)))
    return disj(*parts)


def _contains(needle, haystack) -> Guard:
    for value in (needle, haystack):
        if isinstance(value, Opaque):
            raise RuleError(f"{value.what} can only be tested for truth in a filter")
    if isinstance(haystack, Lit):
        if isinstance(needle, Lit):
            return OPERATIONS["in"](needle.value, haystack.value)
        items = haystack.value
        if isinstance(items, dict) and "indexOf" in items:
            return OPERATIONS["in"](None, items)  # raises, as json-logic-js throws
        if not to_boolean(items):
            return False
        if isinstance(items, list):
            return disj(*(compare_values("===", needle, Lit(item)) for item in items))
        if isinstance(items, str):
            return _column_in_text(needle, items)
        return False
    if haystack.kind in NUMBERS:
        return False  # a number has no indexOf
    text = iso_text(haystack)
    non_empty = haystack.expr != text_literal("") if haystack.kind == STRING else True
    if isinstance(needle, Lit):
        return conj(non_empty, position(text, text_literal(to_string(needle.value))) > 0)
    if needle.kind not in NUMBERS:
        return conj(non_empty, position(text, iso_text(needle)) > 0)
    raise RuleError(
        f"{needle.what} ({needle.kind}) cannot be searched for in {haystack.what} in a filter"
    )


def _column_in_text(column: Col, text: str) -> Guard:
    """Where ``String(column)`` is a substring of ``text``."""
    if column.kind == STRING:
        return position(text_literal(text), column.expr) > 0
    if column.kind in TEMPORAL:
        calendar = CALENDARS[column.kind]
        width = 10 if column.kind == DATE else 20
        indexes = {calendar.parse(text[i : i + width]) for i in range(len(text) - width + 1)}
        check_size(len(indexes))
        return disj(*(calendar.equal(column, i) for i in sorted(indexes - {None})))
    # Numbers: the finitely many values whose JavaScript text occurs in ``text``.
    found: dict[int | Decimal, None] = {}
    for start in range(len(text)):
        for end in range(start + 1, min(len(text), start + 32) + 1):
            piece = text[start:end]
            if piece[0] in "-0123456789" and piece[-1].isdigit():
                value = _number_written(column, piece)
                if value is not None:
                    found[value] = None
    check_size(len(found))
    if not found:
        return False
    return column.expr.in_([literal(value, column.type) for value in found])


def _number_written(column: Col, piece: str) -> int | Decimal | None:
    """The value of ``column`` that JavaScript writes as ``piece``, if there is one."""
    try:
        number = Decimal(piece)
    except ArithmeticError:
        return None
    if not number.is_finite() or abs(number) >= 10**21:
        return None
    if column.kind == INTEGER:
        if number != number.to_integral_value() or not INT64[0] <= number <= INT64[1]:
            return None
        value = int(number)
        return value if number_to_string(value) == piece else None
    step = Decimal(1).scaleb(-column.type.scale)
    if number != number.quantize(step, context=WIDE):
        return None
    value = number.quantize(step, context=WIDE)
    if abs(value) >= Decimal(10) ** (column.type.precision - column.type.scale):
        return None
    return value if number_to_string(value) == piece else None


# --- arithmetic -----------------------------------------------------------------


def integer_arithmetic(operator: str, operands: list) -> Col | Lit:
    """``+``, ``-`` or ``*`` of integer columns and whole numbers, one of them a column.

    The evaluator computes with exact integers up to ±2**53 and rounds past that,
    as JavaScript does; SQL stays exact. So every operand, and every intermediate
    and final result, must provably stay within ±2**53: the columns need declared
    bounds (``min`` and ``max``, or a rating), else the rule is refused.
    """
    numbers: list[tuple[ColumnElement | int, tuple[int, int]]] = []
    for value in operands:
        if isinstance(value, Opaque) or (isinstance(value, Col) and value.kind != INTEGER):
            what = value.what if not isinstance(value, Lit) else repr(value.value)
            raise RuleError(f"'{operator}' in a filter works on integer fields only, not {what}")
        if isinstance(value, Col):
            if value.bounds is None:
                raise RuleError(
                    f"'{operator}' of {value.what} cannot be used in a filter: JavaScript rounds"
                    " results past ±2**53 and SQL does not; give the field a min and a max"
                )
            numbers.append((value.expr, value.bounds))
            continue
        number = (to_number if operator == "-" else parse_float)(value.value)
        if is_nan(number):
            return Lit(float("nan"))  # NaN, whatever the columns hold
        if not _is_safe_whole(number):
            raise RuleError(f"'{operator}' in a filter works with whole numbers only, not {number}")
        numbers.append((int(number), (int(number), int(number))))
    if operator == "-":
        if len(numbers) == 1:
            ((expr, (low, high)),) = numbers
            result = (-expr, (-high, -low))
        else:
            (left, (a, b)), (right, (c, d)) = numbers
            result = (left - right, (a - d, b - c))
    elif operator == "+":
        result = numbers[0]
        for expr, (c, d) in numbers[1:]:
            _safe_bounds(operator, result[1])
            result = (result[0] + expr, (result[1][0] + c, result[1][1] + d))
    else:
        result = numbers[0]
        for expr, (c, d) in numbers[1:]:
            _safe_bounds(operator, result[1])
            corners = [x * y for x in result[1] for y in (c, d)]
            result = (result[0] * expr, (min(corners), max(corners)))
    expr, bounds = result
    _safe_bounds(operator, bounds)
    return Col(expr, INTEGER, BigInteger(), f"the result of '{operator}'", bounds=bounds)


def _safe_bounds(operator: str, bounds: tuple[int, int]) -> None:
    if not -SAFE_INTEGER <= bounds[0] <= bounds[1] <= SAFE_INTEGER:
        raise RuleError(
            f"'{operator}' cannot be used in a filter here: its result may pass ±2**53, where"
            " JavaScript rounds and SQL does not"
        )


def _is_safe_whole(number: int | float | Decimal) -> bool:
    if isinstance(number, float) and not number.is_integer():
        return False
    if isinstance(number, Decimal) and not (
        number.is_finite() and number == number.to_integral_value()
    ):
        return False
    return abs(number) <= SAFE_INTEGER
