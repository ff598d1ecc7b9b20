"""Values as rules read them: parsed from form input the same way here and in the browser.

Two readings of an input exist on purpose. The WTForms fields coerce input
through the field-type registry (the record service's own code and messages) to
decide what is valid and what is saved. Rules, though, must give the same
answer on the server and in ``app/static/js/form_rules.js`` on every
keystroke, so the value a rule sees is a plain *parse* of the text that the
browser script repeats line for line (:func:`rule_value`): numbers by one
regular expression, dates by their ISO form, options only when they exist,
blanks as null. Nothing locale-specific, no normalising a browser cannot do
(a phone number is read as typed, not as E.164).

Decimals stay ``Decimal`` here (the evaluator keeps money exact) and become
JSON numbers for the browser (:func:`browser_value`), as
``metamodel.jsonlogic.data`` describes.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from metamodel import field_types
from metamodel.errors import CrmError
from metamodel.field_types import ValueProblem
from metamodel.jsonlogic import normalise
from metamodel.model import FieldModel
from metamodel.sqltypes import UTC

# What a rule sees of each field type; form_rules.js switches on the same kinds.
KINDS = {
    "text": "text",
    "long_text": "text",
    "autonumber": "text",
    "email": "trimmed",
    "url": "trimmed",
    "phone": "trimmed",
    "integer": "integer",
    "rating": "integer",
    "decimal": "decimal",
    "currency": "decimal",
    "percent": "decimal",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    "select": "select",
    "multiselect": "multiselect",
    "reference": "id",
    "user": "id",
    "multi_reference": "ids",
    "child_table": "rows",
    # Not read from inputs: a rule sees the stored value.
    "file": "stored",
    "signature": "stored",
    "location": "stored",
    "formula": "computed",
    "lookup": "computed",
    "rollup": "computed",
}
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$")
ID = re.compile(r"^\d{1,18}$")
LIMIT_KEYS = ("min", "max", "pattern", "max_length")


def kind(fld: FieldModel) -> str:
    try:
        return KINDS[fld.type_name]
    except KeyError:
        raise CrmError(f"unknown field type '{fld.type_name}'") from None


def zone(name: str | None) -> dt.tzinfo:
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CrmError(f"'{name}' is not a time zone (use e.g. Asia/Shanghai or UTC)") from None


def blank(value: Any) -> bool:
    """Nothing given: null, empty or white text, an empty list."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


# --- input text → the value a rule reads ---------------------------------------------


def _text(raw: list) -> str | None:
    text = raw[0] if raw and isinstance(raw[0], str) else None
    return None if text is None or not text.strip() else text


def _number(text: str | None) -> Decimal | None:
    text = text.strip() if text else ""
    if not NUMBER.match(text):
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    # Beyond a double's range the browser has Infinity; both sides say "no number".
    return number if number.is_finite() and abs(number) < Decimal("1e300") else None


def parse_date(text: str | None) -> dt.date | None:
    match = DATE.match(text.strip()) if text else None
    if not match:
        return None
    try:
        return dt.date(*map(int, match.groups()))
    except ValueError:
        return None


def parse_local_datetime(text: str | None, tz: dt.tzinfo) -> dt.datetime | None:
    """A ``datetime-local`` input's wall time in ``tz``, as UTC (whole seconds)."""
    match = DATETIME.match(text.strip()) if text else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups())
    try:
        local = dt.datetime(year, month, day, hour, minute, second, tzinfo=tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def option_values(fld: FieldModel) -> list[str]:
    return field_types.option_values(fld.value_spec)


def rule_value(fld: FieldModel, raw: list, tz: dt.tzinfo = UTC) -> Any:
    """The value a rule reads from a field's submitted strings (see the module docstring)."""
    how = kind(fld)
    if how == "text":
        return _text(raw)
    if how == "trimmed":
        text = _text(raw)
        return text.strip() if text is not None else None
    if how == "integer":
        number = _number(_text(raw))
        return int(number) if number is not None and number == number.to_integral() else None
    if how == "decimal":
        return _number(_text(raw))
    if how == "boolean":
        text = _text(raw)
        return text is not None and text.strip().lower() in field_types.TRUE_WORDS
    if how == "date":
        return parse_date(_text(raw))
    if how == "datetime":
        return parse_local_datetime(_text(raw), tz)
    if how == "select":
        text = _text(raw)
        return text if text in option_values(fld) else None
    if how == "multiselect":
        allowed = option_values(fld)
        return list(dict.fromkeys(v for v in raw if v in allowed))
    if how == "id":
        text = (_text(raw) or "").strip()
        return int(text) if ID.match(text) and int(text) > 0 else None
    if how == "ids":
        ids = (v.strip() for v in raw if isinstance(v, str))
        return list(dict.fromkeys(int(v) for v in ids if ID.match(v) and int(v) > 0))
    raise CrmError(f"a rule does not read {fld.type_name} fields from input")


# --- stored values → typed values --------------------------------------------------


def typed(fld: FieldModel, value: Any) -> Any:
    """A stored or JSON value (``"12.50"``, ``"2026-01-31"``) as its Python value.

    Limits are not checked (a value stored before a limit was tightened still
    reads as itself); a value that does not convert at all stays as it is.
    """
    if value is None:
        return None
    if fld.type_name == "child_table":
        target = fld.target
        if target is None or not isinstance(value, list):
            return value
        return [typed_row(target.fields, row) for row in value if isinstance(row, dict)]
    if fld.type_name in ("file", "signature", "location"):
        return value
    spec = fld.value_spec
    relaxed = {k: v for k, v in spec.items() if k not in LIMIT_KEYS}
    try:
        return field_types.get(spec["type"]).coerce(value, {**relaxed, "_converting": True})
    except (ValueProblem, TypeError):
        return value


def typed_row(fields: dict[str, FieldModel], row: dict) -> dict:
    out = {"id": row.get("id")}
    for name, fld in fields.items():
        if name in row:
            out[name] = typed(fld, row[name])
    return out


# --- typed values → text in an input, JSON for the browser --------------------------


def input_text(fld: FieldModel, value: Any, tz: dt.tzinfo = UTC) -> str:
    """How a value is written into its input (and compared with what comes back)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(tz)
        return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def browser_value(value: Any) -> Any:
    """A value as the browser's rule data holds it: JSON, numbers as numbers."""
    value = normalise(value)
    return _numbers(value)


def _numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):  # JSON has no NaN, Infinity
        return None
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    return value


def same(left: Any, right: Any) -> bool:
    """Do two values mean the same to a rule (``10`` and ``10.00``; blank and blank)?"""
    if blank(left) and blank(right):
        return True
    return normalise(left) == normalise(right)
