"""The operators that only look at their evaluated arguments, one function each.

Each mirrors its entry in the ``operations`` table of json-logic-js 2.0.5: a
missing argument is ``UNDEFINED`` (JavaScript's undefined) and extra arguments
are ignored, as JavaScript ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import arithmetic, compare
from .errors import RuleError
from .values import (
    UNDEFINED,
    join,
    parse_float,
    string_length,
    substr,
    to_boolean,
    to_number,
    to_primitive,
    to_string,
    truthy,
)


def _loose_equal(a=UNDEFINED, b=UNDEFINED, *_):
    return compare.loose_equal(a, b)


def _strict_equal(a=UNDEFINED, b=UNDEFINED, *_):
    return compare.strict_equal(a, b)


def _not_loose_equal(a=UNDEFINED, b=UNDEFINED, *_):
    return not compare.loose_equal(a, b)


def _not_strict_equal(a=UNDEFINED, b=UNDEFINED, *_):
    return not compare.strict_equal(a, b)


def _greater(a=UNDEFINED, b=UNDEFINED, *_):
    return compare.greater_than(a, b)


def _greater_or_equal(a=UNDEFINED, b=UNDEFINED, *_):
    return compare.greater_or_equal(a, b)


def _less(a=UNDEFINED, b=UNDEFINED, c=UNDEFINED, *_):
    # A third argument makes it "between, exclusive": a < b < c.
    if c is UNDEFINED:
        return compare.less_than(a, b)
    return compare.less_than(a, b) and compare.less_than(b, c)


def _less_or_equal(a=UNDEFINED, b=UNDEFINED, c=UNDEFINED, *_):
    if c is UNDEFINED:
        return compare.less_or_equal(a, b)
    return compare.less_or_equal(a, b) and compare.less_or_equal(b, c)


def _double_not(a=UNDEFINED, *_):
    return truthy(a)


def _not(a=UNDEFINED, *_):
    return not truthy(a)


def _remainder(a=UNDEFINED, b=UNDEFINED, *_):
    return arithmetic.remainder(to_number(a), to_number(b))


def _in(a=UNDEFINED, b=UNDEFINED, *_):
    # `!b` here is JavaScript's falsiness, so "" and 0 contain nothing but [] is searched.
    if not to_boolean(b):
        return False
    if isinstance(b, str):
        return to_string(a) in b
    if isinstance(b, list):
        return any(compare.strict_equal(a, item) for item in b)
    if isinstance(b, dict) and "indexOf" in b:
        raise RuleError("'in': b.indexOf is not a function")
    return False


def _cat(*args):
    return join(list(args), "")


def _substr(source=UNDEFINED, start=UNDEFINED, end=UNDEFINED, *_):
    text = to_string(source)
    if compare.less_than(end, 0):
        # json-logic-js emulates PHP: a negative length drops that many from the end.
        # `temp.length + end` is JavaScript's +, so a string `end` concatenates.
        rest = substr(text, start)
        return substr(rest, 0, _js_plus(string_length(rest), end))
    return substr(text, start, end)


def _js_plus(left: Any, right: Any) -> Any:
    """JavaScript's binary +: concatenation as soon as either side is (or becomes) a string."""
    left, right = to_primitive(left), to_primitive(right)
    if isinstance(left, str) or isinstance(right, str):
        return to_string(left) + to_string(right)
    return arithmetic.add(to_number(left), to_number(right))


def _plus(*args):
    total = 0
    for value in args:
        total = arithmetic.add(parse_float(total), parse_float(value))
    return total


def _times(*args):
    if not args:
        raise RuleError("'*' needs at least one argument (reduce of empty array)")
    # One argument comes back as it is: Array.prototype.reduce never calls the callback.
    product = args[0]
    for value in args[1:]:
        product = arithmetic.multiply(parse_float(product), parse_float(value))
    return product


def _minus(a=UNDEFINED, b=UNDEFINED, *_):
    if b is UNDEFINED:
        return arithmetic.negate(to_number(a))
    return arithmetic.subtract(to_number(a), to_number(b))


def _divide(a=UNDEFINED, b=UNDEFINED, *_):
    return arithmetic.divide(to_number(a), to_number(b))


def _min(*args):
    return arithmetic.minimum([to_number(value) for value in args])


def _max(*args):
    return arithmetic.maximum([to_number(value) for value in args])


def _merge(*args):
    merged = []
    for value in args:
        if isinstance(value, list):
            merged.extend(value)
        else:
            merged.append(value)
    return merged


OPERATIONS: dict[str, Callable[..., Any]] = {
    "==": _loose_equal,
    "===": _strict_equal,
    "!=": _not_loose_equal,
    "!==": _not_strict_equal,
    ">": _greater,
    ">=": _greater_or_equal,
    "<": _less,
    "<=": _less_or_equal,
    "!!": _double_not,
    "!": _not,
    "%": _remainder,
    "in": _in,
    "cat": _cat,
    "substr": _substr,
    "+": _plus,
    "*": _times,
    "-": _minus,
    "/": _divide,
    "min": _min,
    "max": _max,
    "merge": _merge,
}
