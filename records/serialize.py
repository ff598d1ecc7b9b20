"""Records as JSON, as interfaces.md describes them.

Fields by name plus the system columns; references as the target's id; child
tables as lists of row objects; multiselect as lists; decimal, currency and
percent as strings (exact); dates ISO 8601, datetimes in UTC with ``Z``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from metamodel.sqltypes import UTC

SYSTEM_FIELDS = ("id", "created_at", "updated_at", "created_by", "updated_by", "owner", "version")


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        stamp = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    return value


def as_json(record: dict[str, Any]) -> dict[str, Any]:
    return {key: json_value(value) for key, value in record.items()}
