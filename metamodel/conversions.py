"""Type changes: how a stored value becomes a value of the changed field.

A conversion either keeps every bit of what the user entered or fails for
that record; a plan is refused while any record fails. Nothing is rounded,
truncated or dropped on the way.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from . import field_types
from .field_types import JSON, STRING, ValueProblem
from .model import FieldModel
from .sqltypes import UTC


def to_plain(value: Any) -> Any:
    """A stored Python value as the JSON-ish value a user would have typed."""
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def can_convert(old: FieldModel, new: FieldModel) -> bool:
    if old.storage == field_types.REFERENCE or new.storage == field_types.REFERENCE:
        # A reference only ever converts to a reference to the same target.
        return (
            old.storage == new.storage == field_types.REFERENCE
            and old.type_name == new.type_name
            and old.doc.get("target") == new.doc.get("target")
        )
    return new.storage in field_types.CONVERTIBLE.get(old.storage, set())


def convert(value: Any, old: FieldModel, new: FieldModel) -> Any:
    """``value`` of ``old`` as a value of ``new``; raises ValueProblem when it would lose data."""
    if value is None:
        return None
    spec = {**new.value_spec, "_converting": True}
    target = field_types.get(spec["type"])
    if old.storage == field_types.BOOLEAN and new.storage != STRING:
        value = int(value)
    elif old.storage == JSON and new.storage == STRING:
        value = _json_as_text(value, new)
        if value is None:
            return None
    elif isinstance(value, Decimal) and new.storage == STRING:
        value = format(value, "f")
    else:
        value = to_plain(value)
    return target.coerce(value, spec)


def _json_as_text(value: Any, new: FieldModel) -> str | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        if new.value_spec["type"] == "select":
            if len(value) > 1:
                raise ValueProblem(f"holds {len(value)} choices; a select holds one")
            return value[0] if value else None
        return ", ".join(value)
    raise ValueProblem("holds structured data that does not convert to text")
