"""JavaScript's comparisons: ``==`` (loose), ``===`` (strict) and ``<`` (relational)."""

from __future__ import annotations

from typing import Any

from . import arithmetic
from .values import js_type, string_less, string_to_number, to_number, to_primitive

_NULLISH = {"null", "undefined"}
_PRIMITIVE = {"string", "number"}


def strict_equal(left: Any, right: Any) -> bool:
    """IsStrictlyEqual: same type and value; arrays and objects only equal themselves."""
    kind = js_type(left)
    if kind != js_type(right):
        return False
    if kind == "number":
        return arithmetic.equal(left, right)
    if kind == "object":
        return left is right
    return left == right


def loose_equal(left: Any, right: Any) -> bool:
    """IsLooselyEqual (ECMA-262 §7.2.14), step by step."""
    left_kind, right_kind = js_type(left), js_type(right)
    if left_kind == right_kind:
        return strict_equal(left, right)
    if left_kind in _NULLISH or right_kind in _NULLISH:
        return left_kind in _NULLISH and right_kind in _NULLISH
    if left_kind == "number" and right_kind == "string":
        return arithmetic.equal(left, string_to_number(right))
    if left_kind == "string" and right_kind == "number":
        return arithmetic.equal(string_to_number(left), right)
    if left_kind == "boolean":
        return loose_equal(int(left), right)
    if right_kind == "boolean":
        return loose_equal(left, int(right))
    if left_kind in _PRIMITIVE and right_kind == "object":
        return loose_equal(left, to_primitive(right))
    if left_kind == "object" and right_kind in _PRIMITIVE:
        return loose_equal(to_primitive(left), right)
    return False


def less(left: Any, right: Any) -> bool | None:
    """IsLessThan: two strings compare as strings, anything else as numbers; None is undefined.

    Undefined (a NaN was involved) makes ``<``, ``<=``, ``>`` and ``>=`` all false.
    """
    left, right = to_primitive(left), to_primitive(right)
    if isinstance(left, str) and isinstance(right, str):
        return string_less(left, right)
    left, right = to_number(left), to_number(right)
    if arithmetic.is_nan(left) or arithmetic.is_nan(right):
        return None
    return arithmetic.less(left, right)


def less_than(left: Any, right: Any) -> bool:
    return less(left, right) is True


def less_or_equal(left: Any, right: Any) -> bool:
    return less(right, left) is False


def greater_than(left: Any, right: Any) -> bool:
    return less(right, left) is True


def greater_or_equal(left: Any, right: Any) -> bool:
    return less(left, right) is False
