"""Schema errors as problems a business user can act on.

jsonschema says *which keyword* failed ("'x' is not valid under any of the given
schemas"); a user needs to know *what to write instead*. Each keyword gets a small
function that turns its error into a message, using the ``title`` of the failing
definition to name the thing ("a reference field needs 'target'") and suggesting
the closest allowed word for typos.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .. import field_types, pointer
from ..errors import Problem
from ..identifiers import identifier_problem
from ..wording import did_you_mean, show
from . import build_schema
from .blocks import COLOUR, LANGUAGE_CODE

TEXT_HINT = (
    'a string, or an object of language code to string, e.g. {"en": "Customer", "zh": "客户"}'
)
PATTERN_HINTS = {
    COLOUR: "is not a colour: write it as #rrggbb, e.g. #27ae60",
    LANGUAGE_CODE: "is not a language code such as en, zh or pt-BR",
    "^[A-Z]{3}$": "is not a currency code: use the 3 capital letters of ISO 4217, e.g. CNY or EUR",
    "^[A-Z]{2}$": "is not a country code: use 2 capital letters, e.g. CN",
    "^[A-Z]$": "is not a class name: use one capital letter, e.g. A",
    r"\{seq(:[1-9])?\}": (
        "has no sequence number: put {seq} (or {seq:N} for N digits) in the pattern, "
        "e.g. CUS-{YYYY}-{seq:5}"
    ),
}
TYPE_WORDS = {
    "object": "an object {...}",
    "array": "a list [...]",
    "string": "text in double quotes",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@functools.cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(build_schema())


def schema_problems(doc: Any) -> list[Problem]:
    """Every way ``doc`` breaks the schema, sorted by where it is, without repeats."""
    problems: list[Problem] = []
    for error in sorted(validator().iter_errors(doc), key=document_order):
        for problem in problems_for(error):
            if problem not in problems:
                problems.append(problem)
    return problems


def document_order(error: ValidationError) -> tuple:
    """List items in order, keys alphabetically (a container holds only one of the two)."""
    return tuple((0, part) if isinstance(part, int) else (1, part) for part in error.absolute_path)


def problems_for(error: ValidationError) -> Iterator[Problem]:
    path = pointer.from_parts(error.absolute_path)
    if error.validator == "additionalProperties":
        for key in unexpected_keys(error):
            yield Problem(pointer.join(path, key), unknown_key(key, error.schema))
    elif error.validator == "required":
        for key in error.validator_value:
            if key not in error.instance:
                yield Problem(path, f"{noun(error.schema, 'this object')} needs '{key}'")
    else:
        explain = MESSAGES.get(error.validator)
        yield Problem(path, explain(error) if explain else error.message)


# --- unknown keys --------------------------------------------------------------------


def unexpected_keys(error: ValidationError) -> list[str]:
    known = error.schema.get("properties", {})
    return [key for key in error.instance if key not in known]


def unknown_key(key: str, schema: dict) -> str:
    known = list(schema.get("properties", {}))
    title = schema.get("title", "")
    message = f"'{key}' is not a key of {noun(schema, 'this object')}{did_you_mean(key, known)}"
    if title.endswith(" field"):
        specific = [k for k in known if k not in field_types.COMMON_KEYS]
        own = f"{', '.join(specific)}, and " if specific else ""
        common = ", ".join(field_types.COMMON_KEYS)
        return f"{message}. It may have {own}the keys every field has: {common}"
    return f"{message}. Its keys are: {', '.join(known)}"


# --- one function per keyword --------------------------------------------------------


def type_message(error: ValidationError) -> str:
    expected = error.validator_value
    words = [TYPE_WORDS[t] for t in ([expected] if isinstance(expected, str) else expected)]
    message = f"must be {' or '.join(words)}"
    if "title" in error.schema and expected == "object":
        message += f" describing {noun(error.schema)}"
    return message


def enum_message(error: ValidationError) -> str:
    choices = [str(choice) for choice in error.validator_value]
    what = f"a {error.schema['title']}" if "title" in error.schema else "allowed here"
    hint = did_you_mean(error.instance, choices) if isinstance(error.instance, str) else ""
    return f"{show(error.instance)} is not {what}{hint}. Use one of: {', '.join(choices)}"


def const_message(error: ValidationError) -> str:
    return f"must be {show(error.validator_value)}, not {show(error.instance)}"


def pattern_message(error: ValidationError) -> str:
    title = error.schema.get("title")
    if title in ("identifier", "field name"):
        return identifier_message(error)
    if title == "version":
        return (
            f"{show(error.instance)} is not a version number: use MAJOR.MINOR.PATCH "
            "(semantic versioning), e.g. 1.0.0"
        )
    hint = PATTERN_HINTS.get(error.validator_value)
    if hint:
        return f"{show(error.instance)} {hint}"
    return f"{show(error.instance)} does not have the expected form {error.validator_value}"


def identifier_message(error: ValidationError) -> str:
    field = error.schema.get("title") == "field name"
    return identifier_problem(error.instance, field=field) or error.message


def not_message(error: ValidationError) -> str:
    if error.schema.get("title") in ("identifier", "field name"):
        return identifier_message(error)
    if error.schema.get("title") == "levels":
        return "must be a number of levels (1 or more), or -1 for up to the top"
    return f"{show(error.instance)} is not allowed here"


def any_of_message(error: ValidationError) -> str:
    if error.schema.get("title") == "text":
        return f"must be a text: {TEXT_HINT}"
    return error.message


def minimum_message(error: ValidationError) -> str:
    return f"must be at least {error.validator_value}, not {show(error.instance)}"


def exclusive_minimum_message(error: ValidationError) -> str:
    return f"must be more than {error.validator_value}, not {show(error.instance)}"


def maximum_message(error: ValidationError) -> str:
    return f"must be at most {error.validator_value}, not {show(error.instance)}"


def min_items_message(error: ValidationError) -> str:
    if error.validator_value == 1:
        return "must not be empty: give at least one item"
    return f"needs at least {error.validator_value} items"


def min_properties_message(error: ValidationError) -> str:
    if error.schema.get("title") == "approvers":
        return "must say who approves: give 'role', 'users', 'field' or 'manager_of'"
    return "must not be empty"


def max_length_message(error: ValidationError) -> str:
    return f"is {len(error.instance)} characters long; at most {error.validator_value} are allowed"


def min_length_message(error: ValidationError) -> str:
    return "must not be empty"


def unique_items_message(error: ValidationError) -> str:
    seen: list = []
    for item in error.instance:
        if item in seen:
            return f"lists {show(item)} more than once"
        seen.append(item)
    return error.message


def dependent_required_message(error: ValidationError) -> str:
    for key, needed in error.validator_value.items():
        missing = [n for n in needed if key in error.instance and n not in error.instance]
        if missing:
            return f"'{key}' only makes sense with '{missing[0]}'"
    return error.message


MESSAGES: dict[str, Callable[[ValidationError], str]] = {
    "type": type_message,
    "enum": enum_message,
    "const": const_message,
    "pattern": pattern_message,
    "not": not_message,
    "anyOf": any_of_message,
    "minimum": minimum_message,
    "exclusiveMinimum": exclusive_minimum_message,
    "maximum": maximum_message,
    "minItems": min_items_message,
    "minProperties": min_properties_message,
    "maxLength": max_length_message,
    "minLength": min_length_message,
    "uniqueItems": unique_items_message,
    "dependentRequired": dependent_required_message,
}


# --- wording -------------------------------------------------------------------------


def noun(schema: dict, fallback: str = "this") -> str:
    """The title of a definition with its article: 'an entity', 'the app document'."""
    title = schema.get("title")
    if not title:
        return fallback
    if title == "app document":
        return "the app document"
    article = "an" if title[0] in "aeio" else "a"
    return f"{article} {title}"
