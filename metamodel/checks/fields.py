"""Type-specific keys that fit together: limits, precision, defaults, options, patterns.

The schema has already said which keys a type may have and what shape each
takes; these checks compare keys with each other and with the field's type.
Values are parsed by the field type's own ``coerce``, so a default is accepted
exactly when a user could have entered it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .. import field_types, pointer
from ..errors import Problem
from ..field_types import DEFAULT_TOKENS, FieldType, ValueProblem
from ..wording import did_you_mean, show
from .scope import AppScope, items, type_of

LIMITED_TYPES = ("integer", "decimal", "currency", "percent", "date", "datetime")
DECIMAL_TYPES = ("decimal", "currency", "percent")
TODAY = "$today"


def check_fields(app: AppScope) -> Iterator[Problem]:
    for _, at, field in app.fields():
        field_type = type_of(field)
        if field_type is None:
            continue
        yield from indexable_problems(at, field, field_type)
        yield from option_problems(at, field)
        yield from pattern_problems(at, field)
        if keys_sound(app, at, field_type):
            yield from limits_problems(at, field, field_type)
        yield from precision_problems(at, field)
        yield from default_problems(app, at, field, field_type)


def keys_sound(app: AppScope, at: str, field_type: FieldType) -> bool:
    """Did the schema accept every type-specific key? Parsing a value reads them."""
    return all(app.sound(pointer.join(at, key)) for key in field_type.keys)


def judges_values(app: AppScope, at: str, field: dict) -> bool:
    """Can the field's keys be trusted to judge a value?"""
    field_type = type_of(field)
    return (
        field_type is not None
        and field_type.coerce is not None
        and keys_sound(app, at, field_type)
        and pattern_compiles(field)
        and not list(limits_problems(at, field, field_type))
    )


def token_problem(value: str, type_name: str) -> str | None:
    """Why ``value`` (a string starting with $) is not a token a field of this type takes."""
    if value not in DEFAULT_TOKENS:
        return (
            f"'{value}' is not a special value{did_you_mean(value, DEFAULT_TOKENS)}; "
            f"the special values are {', '.join(DEFAULT_TOKENS)}"
        )
    fits = DEFAULT_TOKENS[value]
    if type_name not in fits:
        return f"'{value}' does not suit a {type_name} field, only {' and '.join(fits)} fields"
    return None


def indexable_problems(at: str, field: dict, field_type: FieldType) -> Iterator[Problem]:
    if field_type.indexable:
        return
    for key in ("unique", "indexed"):
        if field.get(key) is True:
            yield Problem(
                pointer.join(at, key),
                f'a {field_type.name} field can\'t be {key}; remove "{key}": true',
            )


def option_problems(at: str, field: dict) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, option in items(field, "options"):
        value = option.get("value")
        if not isinstance(value, str):
            continue
        if value in seen:
            yield Problem(
                pointer.join(at, "options", index, "value"),
                f"the option '{value}' is listed more than once; each option needs its own value",
            )
        seen.add(value)


def pattern_compiles(field: dict) -> bool:
    return not list(pattern_problems("", field))


def pattern_problems(at: str, field: dict) -> Iterator[Problem]:
    pattern = field.get("pattern")
    if field.get("type") != "text" or not isinstance(pattern, str):
        return
    try:
        re.compile(pattern)
    except re.error as error:
        yield Problem(pointer.join(at, "pattern"), f"is not a valid regular expression: {error}")


def limits_problems(at: str, field: dict, field_type: FieldType) -> Iterator[Problem]:
    if field_type.name not in LIMITED_TYPES:
        return
    # Each limit is parsed as a value of the field, without the limits themselves.
    spec = {key: value for key, value in field.items() if key not in ("min", "max", "default")}
    bounds = {}
    for key in ("min", "max"):
        limit = field.get(key)
        if limit is None or (limit == TODAY and field_type.name in ("date", "datetime")):
            continue
        bound, problem = parse(field_type, limit, spec)
        if problem:
            yield Problem(
                pointer.join(at, key),
                f"{show(limit)} is not a limit a {field_type.name} field can have: {problem}",
            )
        else:
            bounds[key] = bound
    if len(bounds) == 2 and bounds["min"] > bounds["max"]:
        yield Problem(
            pointer.join(at, "min"),
            f"the minimum ({show(field['min'])}) is greater than the maximum "
            f"({show(field['max'])}), so no value would fit",
        )


def precision_problems(at: str, field: dict) -> Iterator[Problem]:
    given = {key: field[key] for key in ("precision", "scale") if key in field}
    if field.get("type") not in DECIMAL_TYPES or not given:
        return
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in given.values()):
        return  # the schema has said what is wrong
    precision = field_types.decimal_precision(field)
    scale = field_types.decimal_scale(field)
    if scale > precision:
        yield Problem(
            pointer.join(at, "scale" if "scale" in given else "precision"),
            f"the scale ({scale} decimal places) can't be more than the precision "
            f"({precision} digits in all)",
        )


def default_problems(
    app: AppScope, at: str, field: dict, field_type: FieldType
) -> Iterator[Problem]:
    value = field.get("default")
    if value is None:
        return
    where = pointer.join(at, "default")
    if not field_type.accepts_default:
        yield Problem(where, f'a {field_type.name} field can\'t have a default; remove "default"')
    elif problem := fit_problem(app, at, field, value):
        yield Problem(where, f"the default {problem}")


def fit_problem(app: AppScope, at: str, field: dict, value: Any) -> str | None:
    """Why ``value`` (a literal or a special value like $now) can't go in the field at ``at``."""
    field_type = type_of(field)
    if field_type is None:
        return None
    if isinstance(value, str) and value in DEFAULT_TOKENS:
        return token_problem(value, field_type.name)
    if not judges_values(app, at, field):
        return None
    _, problem = parse(field_type, value, field)
    if problem and isinstance(value, str) and value.startswith("$"):
        return token_problem(value, field_type.name)
    return problem and f"{show(value)} does not fit this field: {problem}"


def parse(field_type: FieldType, value: Any, spec: dict) -> tuple[Any, str | None]:
    """``value`` as a field of this type reads it, or why it can't."""
    try:
        return field_type.coerce(value, spec), None
    except ValueProblem as problem:
        return None, problem.message
    except (ValueError, ArithmeticError):
        # coerce_decimal lets Decimal's own errors through (for a list, or a huge number).
        return None, f"it is not a {field_type.name} value"
