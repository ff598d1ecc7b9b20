"""Type changes: how a stored value becomes a value of the changed field.

A conversion either keeps every bit of what the user entered or fails for
that record; a plan is refused while any record fails. Nothing is rounded,
truncated or dropped on the way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
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


def converter(old: FieldModel, new: FieldModel) -> Callable[[Any], Any]:
    """A function turning values of ``old`` into values of ``new``, built once per change.

    It raises ValueProblem for a value that would lose data. Everything that does
    not depend on the value is worked out here, outside the per-row path.
    """
    spec = {**new.value_spec, "_converting": True}
    coerce = field_types.get(spec["type"]).coerce
    source, target = old.storage, new.storage
    if source == field_types.BOOLEAN and target != STRING:

        def prepare(value):
            return int(value)

    elif source == JSON and target == STRING:

        def prepare(value):
            return _json_as_text(value, new)

    elif source == field_types.DECIMAL and target == STRING:

        def prepare(value):
            return format(value, "f")

    else:
        prepare = to_plain

    def convert_one(value):
        if value is None:
            return None
        prepared = prepare(value)
        return None if prepared is None else coerce(prepared, spec)

    return convert_one


def convert(value: Any, old: FieldModel, new: FieldModel) -> Any:
    """``value`` of ``old`` as a value of ``new``; raises ValueProblem when it would lose data."""
    return converter(old, new)(value)


def _json_as_text(value: Any, new: FieldModel) -> str | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        if new.value_spec["type"] == "select":
            if len(value) > 1:
                raise ValueProblem(f"holds {len(value)} choices; a select holds one")
            return value[0] if value else None
        return ", ".join(value)
    raise ValueProblem("holds structured data that does not convert to text")
