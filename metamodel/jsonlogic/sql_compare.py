"""Comparisons compiled to SQL, with JavaScript's coercions.

The column's kind is known when the rule is compiled, so the coercion JavaScript
would apply at run time is applied to the literal here, once:

* numbers (integer and decimal columns) compare numerically with ``ToNumber`` of
  the literal: ``"3"`` is 3, ``""`` and null are 0 (null only in ``<`` and
  friends: ``null == 0`` is false), booleans are 0 and 1, text that is no number
  is NaN, which makes every comparison false. The number is then moved onto the
  column's grid (whole numbers, or multiples of 10**-scale) and clamped to the
  column's range, so the SQL compares like with like and SQLite's scaled
  decimals are bound exactly;
* dates and datetimes are the ISO strings the evaluator sees. Equality needs the
  literal in exactly that form; ``<`` with a string is a string comparison, which
  for fixed-width ISO text is the chronological order, so it becomes a
  comparison with the first date (or second) whose text is past the literal.
  Against a number or boolean the text is NaN: false;
* text compares as text, by code point (``COLLATE "C"`` on PostgreSQL). JavaScript
  orders by UTF-16 code unit, which agrees with code points whenever the literal
  has no character from U+D800 up; other literals are refused for ``<``. Text
  compared with a number or boolean would need JavaScript's ``ToNumber`` of the
  text in SQL: refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Any

from sqlalchemy import literal

from . import compare
from .arithmetic import is_nan
from .errors import RuleError
from .sql_values import (
    DATE,
    DATETIME,
    DECIMAL,
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
    code_point_order,
    conj,
    disj,
    iso_text,
    neg,
    text_literal,
    whole_seconds,
)
from .values import (
    UNDEFINED,
    is_number,
    string_less,
    to_number,
    to_primitive,
    to_string,
)

FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "===": "==="}
_PYTHON: dict[str, Callable[[Any, Any], bool]] = {
    "==": compare.loose_equal,
    "===": compare.strict_equal,
    "<": compare.less_than,
    "<=": compare.less_or_equal,
    ">": compare.greater_than,
    ">=": compare.greater_or_equal,
}
INT64 = (Decimal(-(2**63)), Decimal(2**63 - 1))
WIDE = Context(prec=100)
_SECOND = dt.timedelta(seconds=1)


def compare_terms(op: str, left: Term, right: Term) -> Guard:
    """Where ``left op right`` holds; op is one of == === != !== < <= > >=."""
    check_size(len(left) * len(right))
    parts = []
    for left_guard, left_value in left:
        for right_guard, right_value in right:
            guard = conj(left_guard, right_guard)
            if guard is not False:
                parts.append(conj(guard, compare_values(op, left_value, right_value)))
    return disj(*parts)


def compare_values(op: str, left, right) -> Guard:
    if op in ("!=", "!=="):
        return neg(compare_values("==" if op == "!=" else "===", left, right))
    for value in (left, right):
        if isinstance(value, Opaque):
            raise RuleError(f"{value.what} can only be tested for truth in a filter")
    if isinstance(left, Lit) and isinstance(right, Lit):
        return _PYTHON[op](left.value, right.value)
    if isinstance(left, Lit):
        return column_vs_literal(FLIPPED[op], right, left.value)
    if isinstance(right, Lit):
        return column_vs_literal(op, left, right.value)
    return column_vs_column(op, left, right)


def column_vs_literal(op: str, column: Col, value: Any) -> Guard:
    """``column op value`` for a column that is not NULL."""
    if column.kind in NUMBERS:
        return _number_vs_literal(op, column, value)
    if column.kind == STRING:
        return _text_vs_literal(op, column, value)
    return _temporal_vs_literal(op, column, value)


# --- numbers ----------------------------------------------------------------------


def _number_vs_literal(op: str, column: Col, value: Any) -> Guard:
    if op == "===":
        if not is_number(value):
            return False
        op = "=="
    elif op == "==" and (value is None or value is UNDEFINED):
        return False  # null and undefined are only loosely equal to each other
    number = to_number(value)
    if is_nan(number):
        return False
    if isinstance(number, float):
        # The evaluator compares an int with a float exactly, a Decimal with its repr.
        exact = Decimal(number) if column.kind == INTEGER else Decimal(repr(number))
    else:
        exact = Decimal(number)
    if not exact.is_finite():
        above = exact > 0  # ±Infinity: beyond every value of the column
        return {"==": False, "<": above, "<=": above, ">": not above, ">=": not above}[op]
    if column.kind == INTEGER:
        step = Decimal(1)
        low, high = INT64
    else:
        step = Decimal(1).scaleb(-column.type.scale)
        high = Decimal(10) ** (column.type.precision - column.type.scale) - step
        low = -high
    return _on_grid(op, column, exact, step, low, high)


def _on_grid(op, column: Col, exact: Decimal, step, low, high) -> Guard:
    """``column op exact`` for a column holding multiples of ``step`` in [low, high]."""

    def bound(rounding: str):
        rounded = exact.quantize(step, rounding=rounding, context=WIDE)
        number = int(rounded) if column.kind == INTEGER else rounded
        return literal(number, column.type)

    if op == "==":
        if not low <= exact <= high or exact != exact.quantize(step, context=WIDE):
            return False
        return column.expr == bound(ROUND_FLOOR)
    below, above = exact < low, exact > high
    if op == "<":
        if above:
            return True
        return False if below or exact == low else column.expr < bound(ROUND_CEILING)
    if op == ">=":
        if above:
            return False
        return True if below or exact == low else column.expr >= bound(ROUND_CEILING)
    if op == "<=":
        if below:
            return False
        return True if above or exact == high else column.expr <= bound(ROUND_FLOOR)
    if below:  # ">"
        return True
    return False if above or exact == high else column.expr > bound(ROUND_FLOOR)


# --- text -------------------------------------------------------------------------


def _text_vs_literal(op: str, column: Col, value: Any) -> Guard:
    if op == "===":
        return column.expr == text_literal(value) if isinstance(value, str) else False
    if op == "==" and (value is None or value is UNDEFINED):
        return False
    primitive = to_primitive(value)
    if isinstance(primitive, str):
        if op == "==":
            return column.expr == text_literal(primitive)
        return _ordered_text(op, column, primitive)
    if op != "==" and primitive is UNDEFINED:
        return False  # ToNumber(undefined) is NaN
    if is_nan(to_number(primitive)):
        return False
    raise RuleError(
        f"{column.what} is text and cannot be compared with {to_string(primitive)} in a filter:"
        " JavaScript would convert the text to a number; compare with a string instead"
    )


def _ordered_text(op: str, column: Col, text: str) -> Guard:
    if any(char >= "\ud800" for char in text):
        raise RuleError(
            f"{column.what} cannot be ordered against {text!r} in a filter: characters from"
            " U+D800 up sort differently in JavaScript (UTF-16) and in SQL (code points)"
        )
    return _sql_op(op, code_point_order(column.expr), text_literal(text))


def _sql_op(op: str, left, right):
    if op in ("==", "==="):
        return left == right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


# --- dates and datetimes ---------------------------------------------------------


class _Calendar:
    """The values of a date or datetime column, numbered in order of their ISO text."""

    def __init__(self, kind: str):
        self.kind = kind
        if kind == DATE:
            self.last = dt.date.max.toordinal()
            self.first = 1
        else:
            self.first = 0
            self.last = (dt.datetime.max - dt.datetime.min) // _SECOND

    def point(self, index: int):
        if self.kind == DATE:
            return dt.date.fromordinal(index)
        return (dt.datetime.min + index * _SECOND).replace(tzinfo=dt.UTC)

    def text(self, index: int) -> str:
        if self.kind == DATE:
            return self.point(index).isoformat()
        return self.point(index).replace(tzinfo=None).isoformat() + "Z"

    def parse(self, text: str) -> int | None:
        """The index whose text is exactly ``text``, if any."""
        try:
            if self.kind == DATE:
                day = dt.date.fromisoformat(text)
                return day.toordinal() if day.isoformat() == text else None
            if not text.endswith("Z"):
                return None
            moment = dt.datetime.fromisoformat(text[:-1])
        except ValueError:
            return None
        if moment.tzinfo is not None or moment.isoformat() + "Z" != text:
            return None
        return (moment - dt.datetime.min) // _SECOND

    def first_where(self, predicate: Callable[[str], bool]) -> int | None:
        """The first index whose text satisfies ``predicate`` (false, then true)."""
        low, high = self.first, self.last + 1
        while low < high:
            middle = (low + high) // 2
            if predicate(self.text(middle)):
                high = middle
            else:
                low = middle + 1
        return None if low > self.last else low

    def equal(self, column: Col, index: int) -> Guard:
        if self.kind == DATE:
            return column.expr == literal(self.point(index), column.type)
        # The rule sees whole seconds: the text names a one-second interval.
        start = column.expr >= literal(self.point(index), column.type)
        if index == self.last:
            return start
        return conj(start, column.expr < literal(self.point(index + 1), column.type))


CALENDARS = {DATE: _Calendar(DATE), DATETIME: _Calendar(DATETIME)}


def _temporal_vs_literal(op: str, column: Col, value: Any) -> Guard:
    if op == "===" and not isinstance(value, str):
        return False
    if op == "==" and (value is None or value is UNDEFINED):
        return False
    text = to_primitive(value)
    if not isinstance(text, str):
        return False  # against a number or boolean the ISO text is NaN
    calendar = CALENDARS[column.kind]
    if op in ("==", "==="):
        index = calendar.parse(text)
        return False if index is None else calendar.equal(column, index)
    if op in ("<", ">="):
        # text(x) < literal  <=>  x before the first value whose text is >= literal
        index = calendar.first_where(lambda candidate: not string_less(candidate, text))
    else:
        # text(x) <= literal  <=>  x before the first value whose text is > literal
        index = calendar.first_where(lambda candidate: string_less(text, candidate))
    before: Guard
    if index is None:
        before = True
    elif index == calendar.first:
        before = False
    else:
        before = column.expr < literal(calendar.point(index), column.type)
    return before if op in ("<", "<=") else neg(before)


# --- two columns -----------------------------------------------------------------


def column_vs_column(op: str, left: Col, right: Col) -> Guard:
    kinds = {left.kind, right.kind}
    if kinds <= set(NUMBERS):
        if left.kind != right.kind or (
            left.kind == DECIMAL and left.type.scale != right.type.scale
        ):
            raise _cannot_compare(left, right)
        return _sql_op(op, left.expr, right.expr)
    if kinds & set(NUMBERS):
        if kinds & set(TEMPORAL):
            return False  # ToNumber of ISO text is NaN; a number never strictly equals text
        raise _cannot_compare(left, right)
    # Both are JavaScript strings from here on.
    if left.kind == right.kind == DATE:
        return _sql_op(op, left.expr, right.expr)
    if left.kind == right.kind == DATETIME:
        return _sql_op(op, whole_seconds(left.expr), whole_seconds(right.expr))
    if kinds == {DATE, DATETIME}:
        raise _cannot_compare(left, right)
    if left.kind == right.kind == STRING:
        if op in ("==", "==="):
            return left.expr == right.expr
        raise RuleError(
            f"{left.what} and {right.what} cannot be ordered against each other in a filter:"
            " JavaScript orders text by UTF-16 code unit, SQL by code point"
        )
    # Text against ISO text: the ISO side is ASCII, so code point order is JavaScript's.
    return _sql_op(op, code_point_order(iso_text(left)), code_point_order(iso_text(right)))


def _cannot_compare(left: Col, right: Col) -> RuleError:
    return RuleError(
        f"{left.what} ({left.kind}) and {right.what} ({right.kind}) cannot be compared"
        " with each other in a filter"
    )
