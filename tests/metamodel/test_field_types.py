"""Values of every field type: what is accepted, normalised, or refused with a message."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from metamodel import field_types
from metamodel.field_types import ValueProblem


def coerce(type_name, value, **spec):
    return field_types.get(type_name).coerce(value, {"type": type_name, **spec})


@pytest.mark.parametrize(
    ("type_name", "value", "spec", "expected"),
    [
        ("text", "abc", {}, "abc"),
        ("integer", " 42 ", {}, 42),
        ("integer", "4.0", {}, 4),
        ("decimal", "12.5", {"scale": 2}, Decimal("12.50")),
        ("currency", 3, {}, Decimal("3.00")),
        ("boolean", "是", {}, True),
        ("date", "2026-02-28", {}, dt.date(2026, 2, 28)),
        ("datetime", "2026-02-28T08:00:00+08:00", {}, dt.datetime(2026, 2, 28, tzinfo=dt.UTC)),
        ("phone", "138 0013 8000", {}, "+8613800138000"),
        ("multiselect", ["a", "a", "b"], {"options": [{"value": "a"}, {"value": "b"}]}, ["a", "b"]),
        ("rating", 5, {}, 5),
        ("location", {"lat": 31.2, "lng": 121.5}, {}, {"lat": 31.2, "lng": 121.5, "address": None}),
    ],
)
def test_values_are_normalised(type_name, value, spec, expected):
    assert coerce(type_name, value, **spec) == expected


@pytest.mark.parametrize(
    ("type_name", "value", "spec", "message"),
    [
        ("text", "x" * 11, {"max_length": 10}, "at most 10"),
        ("integer", "4.5", {}, "whole number"),
        ("integer", True, {}, "whole number"),
        ("decimal", "1.234", {"scale": 2}, "more than 2 decimal places"),
        ("decimal", "1e30", {}, "too large"),
        ("decimal", ["1"], {}, "must be a number"),
        ("decimal", {"a": 1}, {}, "must be a number"),
        ("decimal", "NaN", {}, "not a number"),
        ("date", "2026-02-30", {}, "not a date"),
        ("date", "2026-02-28T09:30:00Z", {}, "time of day"),
        ("email", "a@b", {}, "e-mail"),
        ("url", "example.com", {}, "http"),
        ("select", "z", {"options": [{"value": "a"}]}, "not one of the options"),
        ("rating", 6, {"max": 5}, "between 0 and 5"),
        ("location", {"lat": 91, "lng": 0}, {}, "within"),
        ("integer", 11, {"max": 10}, "at most 10"),
    ],
)
def test_values_that_do_not_fit_are_refused_with_a_message(type_name, value, spec, message):
    with pytest.raises(ValueProblem, match=message):
        coerce(type_name, value, **spec)


def test_unknown_types_raise():
    with pytest.raises(field_types.CrmError, match="unknown field type"):
        field_types.get("colour")
