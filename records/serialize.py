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


def plain(value: Any) -> Any:
    """``json_value``, with the common JSON-ready values (text, numbers, null) let through."""
    kind = type(value)
    if kind is str or kind is int or value is None or kind is bool:
        return value
    return json_value(value)


class Serialiser:
    """Records of one entity as JSON, for one set of readable fields; built once per version.

    What :func:`as_json` gives for the item the service assembles (system fields,
    then each readable field in the entity's order: child rows, link targets or the
    column's value, then ``deleted_at`` for a record in the recycle bin), with
    the walk over the model done once instead of for every record.
    """

    def __init__(self, entity, hidden: frozenset[str] = frozenset(), columns_only: bool = False):
        # (name, kind): "column", "rows" (a child table) or "links" (a multi_reference).
        self.fields: list[tuple[str, str]] = []
        self.rows: dict[str, Serialiser] = {}
        for fld in entity.fields.values():
            if fld.name in hidden or (columns_only and not fld.has_column):
                continue
            if fld.type_name == "child_table":
                self.fields.append((fld.name, "rows"))
                self.rows[fld.name] = Serialiser(fld.target, columns_only=True)
            elif fld.type_name == "multi_reference":
                self.fields.append((fld.name, "links"))
            elif fld.has_column:
                self.fields.append((fld.name, "column"))

    def record(self, record: dict, children: dict, links: dict) -> dict[str, Any]:
        """``record`` as JSON; ``children``/``links`` map a field to {record id: rows/ids}."""
        item = {name: plain(record.get(name)) for name in SYSTEM_FIELDS}
        record_id = record["id"]
        for name, kind in self.fields:
            if kind == "column":
                item[name] = plain(record.get(name))
            elif kind == "rows":
                row_json = self.rows[name].row
                item[name] = [row_json(row) for row in children[name][record_id]]
            else:
                item[name] = list(links[name][record_id])
        if record.get("deleted_at") is not None:
            item["deleted_at"] = json_value(record["deleted_at"])
        return item

    def row(self, row: dict) -> dict[str, Any]:
        """A child table row as JSON: its id and its fields."""
        item = {"id": plain(row["id"])}
        for name, _kind in self.fields:
            item[name] = plain(row.get(name))
        return item
