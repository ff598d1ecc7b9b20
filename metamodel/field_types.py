"""The registry of field types: everything a type means, in one entry.

Each entry declares its storage class (what kind of column, which decides which
type changes can convert), its type-specific keys as JSON Schema, its column type
and how a JSON value becomes a checked Python value. Adding a type is adding one
entry; asking for an unknown type raises.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from sqlalchemy import BigInteger, Boolean, Date, String, Text
from sqlalchemy.types import TypeEngine

from .errors import CrmError
from .messages import Message
from .sqltypes import UTC, ExactDecimal, UtcDateTime, json_type

# Storage classes: a type change within a class, or between classes listed in
# CONVERTIBLE, converts every value; anything else is refused.
STRING, INTEGER, DECIMAL, BOOLEAN, DATE, DATETIME, JSON, REFERENCE, NONE = (
    "string",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "json",
    "reference",
    "none",
)
CONVERTIBLE = {
    STRING: {STRING, INTEGER, DECIMAL, BOOLEAN, DATE, DATETIME, JSON},
    INTEGER: {STRING, INTEGER, DECIMAL, BOOLEAN},
    DECIMAL: {STRING, INTEGER, DECIMAL},
    BOOLEAN: {STRING, INTEGER, BOOLEAN},
    DATE: {STRING, DATE, DATETIME},
    DATETIME: {STRING, DATE, DATETIME},
    JSON: {STRING, JSON},
    REFERENCE: set(),
}

DEFAULT_TEXT_LENGTH = 255
DEFAULT_PHONE_REGION = "CN"
MAX_DECIMAL_PRECISION = 18


class ValueProblem(CrmError):
    """A value that does not fit its field; its message is a Message (see metamodel.messages)."""

    code = "invalid_value"

    def __init__(self, template: str, **params: Any):
        # A Message passed on as it is (a problem raised again) keeps its template.
        keep = isinstance(template, Message) and not params
        super().__init__(template if keep else Message(template, **params))


@dataclass(frozen=True)
class FieldType:
    name: str
    storage: str
    keys: dict[str, Any] = field(default_factory=dict)
    required_keys: tuple[str, ...] = ()
    computed: bool = False
    # (field definition) -> column type; None for types without a column of their own.
    column: Callable[[dict], TypeEngine] | None = None
    # (value, field definition) -> Python value; raises ValueProblem.
    coerce: Callable[[Any, dict], Any] | None = None
    # May a default be given, and may the field be unique / indexed?
    accepts_default: bool = True
    indexable: bool = True
    # Is the stored text searched by substring (the list's search box, search_index.py)?
    searchable: bool = False


REGISTRY: dict[str, FieldType] = {}


def register(field_type: FieldType) -> FieldType:
    REGISTRY[field_type.name] = field_type
    return field_type


def get(name: str) -> FieldType:
    try:
        return REGISTRY[name]
    except KeyError:
        raise CrmError(f"unknown field type '{name}'") from None


# --- JSON Schema fragments shared by several types --------------------------------

NUMBER_OR_STRING = {"type": ["number", "string"]}
DATE_LIMIT = {"type": "string"}
OPTIONS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "string", "minLength": 1, "maxLength": 100},
            "label": {"$ref": "#/$defs/text"},
            "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
        },
        "additionalProperties": False,
    },
}
RULE = {"$ref": "#/$defs/rule"}
NUMERIC_TYPES = ["integer", "decimal", "currency", "percent", "rating"]
RESULT_TYPES = ["text", "integer", "decimal", "currency", "percent", "boolean", "date", "datetime"]


# --- coercion ---------------------------------------------------------------------
# Messages are templates with their values (metamodel.messages), so a page can say
# them in its user's language; their English is what the API and the CLI show.


def _limits(value, spec: dict, parse):
    if "min" not in spec and "max" not in spec:
        return value
    for key, compare in (("min", lambda v, m: v < m), ("max", lambda v, m: v > m)):
        limit = spec.get(key)
        if limit is None:
            continue
        bound = (
            parse(limit, spec) if not (isinstance(limit, str) and limit.startswith("$")) else None
        )
        if bound is None and limit == "$today":
            bound = dt.date.today()
        if bound is not None and compare(value, bound):
            if key == "min":
                raise ValueProblem("must be at least {bound}", bound=bound)
            raise ValueProblem("must be at most {bound}", bound=bound)
    return value


def coerce_text(value, spec):
    if isinstance(value, bool):
        raise ValueProblem("must be text")
    if isinstance(value, int | Decimal | float):
        value = str(value)
    if not isinstance(value, str):
        raise ValueProblem("must be text")
    if "\x00" in value:
        raise ValueProblem("contains a NUL character, which text cannot hold")
    limit = spec.get("max_length", DEFAULT_TEXT_LENGTH if spec.get("type") != "long_text" else None)
    if limit is not None and len(value) > limit:
        raise ValueProblem(
            "is {length} characters long; at most {limit} are allowed",
            length=len(value),
            limit=limit,
        )
    pattern = spec.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ValueProblem("does not match the pattern {pattern}", pattern=pattern)
    return value


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
URL = re.compile(
    r"^https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?$|^https?://localhost(:\d+)?([/?#]\S*)?$"
)


def coerce_email(value, spec):
    value = coerce_text(value, spec).strip()
    if not EMAIL.match(value):
        raise ValueProblem("'{value}' is not an e-mail address", value=value)
    return value


def coerce_url(value, spec):
    value = coerce_text(value, spec).strip()
    if not URL.match(value):
        raise ValueProblem(
            "'{value}' is not a web address (it must start with http:// or https://)", value=value
        )
    return value


def coerce_phone(value, spec):
    value = coerce_text(value, spec).strip()
    try:
        number = phonenumbers.parse(value, spec.get("region", DEFAULT_PHONE_REGION))
    except phonenumbers.NumberParseException:
        raise ValueProblem("'{value}' is not a phone number", value=value) from None
    if not phonenumbers.is_possible_number(number):
        raise ValueProblem("'{value}' is not a possible phone number", value=value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def coerce_integer(value, spec):
    if isinstance(value, bool):
        if not spec.get("_converting"):
            raise ValueProblem("must be a whole number")
        return int(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, Decimal | float | str):
        try:
            exact = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueProblem("'{value}' is not a whole number", value=value) from None
        if not exact.is_finite() or exact != exact.to_integral_value():
            raise ValueProblem("'{value}' is not a whole number", value=value)
        number = int(exact)
    else:
        raise ValueProblem("must be a whole number")
    if abs(number) > 2**63 - 1:
        raise ValueProblem("is too large")
    return _limits(number, spec, lambda limit, _: int(limit))


def decimal_scale(spec) -> int:
    if spec.get("type") == "currency":
        return spec.get("scale", 2)
    if spec.get("type") == "percent":
        return spec.get("scale", 2)
    return spec.get("scale", 4)


def decimal_precision(spec) -> int:
    return spec.get("precision", MAX_DECIMAL_PRECISION)


@functools.lru_cache(maxsize=64)
def _decimal_bounds(whole_digits: int, scale: int) -> tuple[Decimal, Decimal]:
    return Decimal(10) ** whole_digits, Decimal(1).scaleb(-scale)


def coerce_decimal(value, spec):
    if isinstance(value, bool):
        raise ValueProblem("must be a number")
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str | int | Decimal):
        raise ValueProblem("must be a number")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise ValueProblem("'{value}' is not a number", value=value) from None
    if not number.is_finite():
        raise ValueProblem("'{value}' is not a number", value=value)
    scale = decimal_scale(spec)
    whole_digits = decimal_precision(spec) - scale
    too_large, quantum = _decimal_bounds(whole_digits, scale)
    # The size check comes first: quantizing a huge number overflows the context.
    if abs(number) >= too_large:
        raise ValueProblem(
            "is too large: at most {digits} digits before the decimal point", digits=whole_digits
        )
    # Exact at the scale, or refused: the value is never rounded.
    exact = number.quantize(quantum, rounding="ROUND_DOWN")
    if number != exact:
        raise ValueProblem("has more than {scale} decimal places", scale=scale)
    number = exact
    return _limits(number, spec, lambda limit, _: Decimal(str(limit)))


TRUE_WORDS = {"true", "yes", "y", "1", "是", "t"}
FALSE_WORDS = {"false", "no", "n", "0", "否", "f"}


def coerce_boolean(value, spec):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueProblem("'{value}' is not true or false", value=value)


def _parse_date(value, spec=None):
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueProblem("'{value}' is not a date (use YYYY-MM-DD)", value=value) from None
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise ValueProblem(
                "'{value}' has a time of day; a date holds none, so it would be lost",
                value=value.isoformat(),
            )
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise ValueProblem("'{value}' is not a date (use YYYY-MM-DD)", value=value)


def coerce_date(value, spec):
    return _limits(_parse_date(value, spec), spec, _parse_date)


def _parse_datetime(value, spec=None):
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime.combine(value, dt.time(0))
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueProblem(
                "'{value}' is not a date and time (use ISO 8601, e.g. 2026-01-31T09:30:00Z)",
                value=value,
            ) from None
    else:
        raise ValueProblem("'{value}' is not a date and time", value=value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueProblem("'{value}' is outside the years 1 to 9999 in UTC", value=value) from None


def coerce_datetime(value, spec):
    parsed = _parse_datetime(value, spec)
    for key in ("min", "max"):
        limit = spec.get(key)
        if limit is None:
            continue
        bound = (
            dt.datetime.combine(dt.date.today(), dt.time(0), UTC)
            if limit == "$today"
            else _parse_datetime(limit)
        )
        if key == "min" and parsed < bound:
            raise ValueProblem("must be after {bound}", bound=bound.isoformat())
        if key == "max" and parsed > bound:
            raise ValueProblem("must be before {bound}", bound=bound.isoformat())
    return parsed


def option_values(spec) -> list[str]:
    return [option["value"] for option in spec.get("options", [])]


def coerce_select(value, spec):
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueProblem("must be one of the options")
    values = option_values(spec)
    if value not in values:
        raise ValueProblem(
            "'{value}' is not one of the options: {options}", value=value, options=", ".join(values)
        )
    return value


def coerce_multiselect(value, spec):
    if isinstance(value, str):
        if not spec.get("_converting"):
            raise ValueProblem("must be a list of options")
        value = [value]
    if not isinstance(value, list):
        raise ValueProblem("must be a list of options")
    chosen: list[str] = []
    for item in value:
        item = coerce_select(item, spec)
        if item not in chosen:
            chosen.append(item)
    return chosen


def coerce_rating(value, spec):
    number = coerce_integer(value, {})
    top = spec.get("max", 5)
    if not 0 <= number <= top:
        raise ValueProblem("must be between 0 and {top}", top=top)
    return number


def coerce_location(value, spec):
    if not isinstance(value, dict) or not {"lat", "lng"} <= value.keys():
        raise ValueProblem("must be an object with lat and lng")
    lat, lng = (coerce_decimal(value[k], {"scale": 7}) for k in ("lat", "lng"))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise ValueProblem("lat must be within ±90 and lng within ±180")
    address = value.get("address")
    if address is not None and not isinstance(address, str):
        raise ValueProblem("address must be text")
    return {"lat": float(lat), "lng": float(lng), "address": address}


def coerce_id(value, spec):
    if isinstance(value, bool):
        raise ValueProblem("must be a record id")
    number = coerce_integer(value, {})
    if number < 1:
        raise ValueProblem("must be a record id")
    return number


def coerce_ids(value, spec):
    if not isinstance(value, list):
        raise ValueProblem("must be a list of record ids")
    ids: list[int] = []
    for item in value:
        item = coerce_id(item, spec)
        if item not in ids:
            ids.append(item)
    return ids


def coerce_rows(value, spec):
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise ValueProblem("must be a list of rows")
    return value


def coerce_files(value, spec):
    if isinstance(value, dict | int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(item, dict) or (isinstance(item, int) and not isinstance(item, bool))
        for item in value
    ):
        raise ValueProblem("must be a list of files (their ids, or the objects an upload returned)")
    return value


def coerce_by_result_type(value, spec):
    result_type = spec.get("result_type", "decimal")
    return get(result_type).coerce(value, {**spec, "type": result_type})


# --- column types -----------------------------------------------------------------


def _string(spec):
    return String(spec.get("max_length", DEFAULT_TEXT_LENGTH))


def _decimal(spec):
    return ExactDecimal(decimal_precision(spec), decimal_scale(spec))


def _by_result_type(spec):
    result_type = spec.get("result_type", "decimal")
    return get(result_type).column({**spec, "type": result_type})


# --- the entries ------------------------------------------------------------------

LENGTH = {"type": "integer", "minimum": 1, "maximum": 10485760}
register(
    FieldType(
        "text",
        STRING,
        {
            "max_length": {**LENGTH, "maximum": 4000},
            "pattern": {"type": "string", "format": "regex"},
        },
        column=_string,
        coerce=coerce_text,
        searchable=True,
    )
)
register(
    FieldType(
        "long_text",
        STRING,
        {"max_length": LENGTH},
        column=lambda s: Text(),
        coerce=coerce_text,
        indexable=False,
        searchable=True,
    )
)
register(
    FieldType(
        "integer",
        INTEGER,
        {"min": {"type": "integer"}, "max": {"type": "integer"}},
        column=lambda s: BigInteger(),
        coerce=coerce_integer,
    )
)
DECIMAL_KEYS = {
    "precision": {"type": "integer", "minimum": 1, "maximum": MAX_DECIMAL_PRECISION},
    "scale": {"type": "integer", "minimum": 0, "maximum": 10},
    "min": NUMBER_OR_STRING,
    "max": NUMBER_OR_STRING,
}
register(FieldType("decimal", DECIMAL, DECIMAL_KEYS, column=_decimal, coerce=coerce_decimal))
register(
    FieldType(
        "currency",
        DECIMAL,
        {**DECIMAL_KEYS, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        column=_decimal,
        coerce=coerce_decimal,
    )
)
register(
    FieldType(
        "percent",
        DECIMAL,
        {k: DECIMAL_KEYS[k] for k in ("min", "max", "scale")},
        column=_decimal,
        coerce=coerce_decimal,
    )
)
register(FieldType("boolean", BOOLEAN, column=lambda s: Boolean(), coerce=coerce_boolean))
register(
    FieldType(
        "date",
        DATE,
        {"min": DATE_LIMIT, "max": DATE_LIMIT},
        column=lambda s: Date(),
        coerce=coerce_date,
    )
)
register(
    FieldType(
        "datetime",
        DATETIME,
        {"min": DATE_LIMIT, "max": DATE_LIMIT},
        column=lambda s: UtcDateTime(),
        coerce=coerce_datetime,
    )
)
register(
    FieldType(
        "select",
        STRING,
        {"options": OPTIONS},
        ("options",),
        column=lambda s: String(100),
        coerce=coerce_select,
    )
)
register(
    FieldType(
        "multiselect",
        JSON,
        {"options": OPTIONS},
        ("options",),
        column=lambda s: json_type(),
        coerce=coerce_multiselect,
        indexable=False,
    )
)
register(
    FieldType(
        "email",
        STRING,
        column=lambda s: String(DEFAULT_TEXT_LENGTH),
        coerce=coerce_email,
        searchable=True,
    )
)
register(
    FieldType(
        "phone",
        STRING,
        {"region": {"type": "string", "pattern": "^[A-Z]{2}$"}},
        column=lambda s: String(32),
        coerce=coerce_phone,
        searchable=True,
    )
)
register(
    FieldType("url", STRING, column=lambda s: String(2000), coerce=coerce_url, searchable=True)
)
register(
    FieldType(
        "rating",
        INTEGER,
        {"max": {"type": "integer", "minimum": 1, "maximum": 10}},
        column=lambda s: BigInteger(),
        coerce=coerce_rating,
    )
)
register(
    FieldType(
        "location",
        JSON,
        column=lambda s: json_type(),
        coerce=coerce_location,
        accepts_default=False,
        indexable=False,
    )
)
register(
    FieldType(
        "signature",
        JSON,
        column=lambda s: json_type(),
        coerce=coerce_files,
        accepts_default=False,
        indexable=False,
    )
)
register(
    FieldType(
        "reference",
        REFERENCE,
        {"target": {"type": "string"}, "on_delete": {"enum": ["restrict", "set_null", "cascade"]}},
        ("target",),
        column=lambda s: BigInteger(),
        coerce=coerce_id,
        accepts_default=False,
    )
)
register(
    FieldType(
        "multi_reference",
        NONE,
        {"target": {"type": "string"}},
        ("target",),
        coerce=coerce_ids,
        accepts_default=False,
        indexable=False,
    )
)
register(
    FieldType(
        "child_table",
        NONE,
        {"target": {"type": "string"}},
        ("target",),
        coerce=coerce_rows,
        accepts_default=False,
        indexable=False,
    )
)
register(FieldType("user", REFERENCE, column=lambda s: BigInteger(), coerce=coerce_id))
register(
    FieldType(
        "file",
        JSON,
        {
            "accept": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^[a-z*]+/[a-z0-9.+*-]+$|^\.[a-z0-9]+$"},
            },
            "max_size_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
            "multiple": {"type": "boolean"},
        },
        column=lambda s: json_type(),
        coerce=coerce_files,
        accepts_default=False,
        indexable=False,
    )
)
register(
    FieldType(
        "autonumber",
        STRING,
        {"pattern": {"type": "string", "pattern": r"\{seq(:[1-9])?\}"}},
        ("pattern",),
        column=lambda s: String(64),
        coerce=coerce_text,
        accepts_default=False,
        searchable=True,
    )
)
register(
    FieldType(
        "formula",
        NONE,
        {
            "expression": RULE,
            "result_type": {"enum": RESULT_TYPES},
            "scale": DECIMAL_KEYS["scale"],
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        },
        ("expression",),
        computed=True,
        column=_by_result_type,
        coerce=coerce_by_result_type,
        accepts_default=False,
    )
)
register(
    FieldType(
        "lookup",
        NONE,
        {"via": {"type": "string"}, "field": {"type": "string"}},
        ("via", "field"),
        computed=True,
        accepts_default=False,
    )
)
register(
    FieldType(
        "rollup",
        NONE,
        {
            "via": {"type": "string"},
            "aggregate": {"enum": ["count", "sum", "avg", "min", "max"]},
            "field": {"type": "string"},
            "filter": RULE,
        },
        ("via", "aggregate"),
        computed=True,
        accepts_default=False,
    )
)

# Keys every field may carry, whatever its type.
COMMON_KEYS = (
    "name",
    "type",
    "label",
    "help",
    "required",
    "unique",
    "indexed",
    "default",
    "read_only",
    "read_roles",
    "write_roles",
    "renamed_from",
    "description",
)
DEFAULT_TOKENS = {"$now": ("datetime", "date"), "$today": ("date", "datetime"), "$user": ("user",)}
