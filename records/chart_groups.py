"""The groups of a chart: their keys, labels, colours and order.

A group's key is its stored value as the API serialises it (an option's value,
a referenced record's id, a user's id, a period's first day); its label is what
a person reads:

* a select field's option label (localised) and colour; a workflow's state
  field the same, the workflow's state labels and colours filling what the
  options leave out; every option is a group, those without rows too, in the
  options' order;
* a reference: the referenced record's title (its entity's ``title_field``),
  when the user may read that record, else ``#id``;
* a user field (``owner`` and the other system user columns too): the username;
* a period: ``2024-03-05`` (day), ``2024-W10`` (ISO week), ``2024-03`` (month),
  the buckets between the first and the last included, empty ones too;
* yes/no fields: Yes/No; anything else: the value as text.

Rows without a value form the group with key null, labelled "(empty)", last.

Labels come in the language asked for; asked for none (``language=None``), the
labels that are metadata or words of this module stay as written (a string, or a
map of language code to string), so a snapshot can be kept once for every
language and worded when shown (see ``records.dashboards.localised``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from metamodel import field_types
from metamodel.model import EntityModel
from metamodel.system_tables import users
from metamodel.text import localise

from . import access
from .actor import Actor
from .aggregation import Path
from .errors import Forbidden
from .query import visible
from .serialize import json_value

EMPTY = {"en": "(empty)", "zh": "（空）"}
YES_NO = {True: {"en": "Yes", "zh": "是"}, False: {"en": "No", "zh": "否"}}
CHUNK = 500
# Filling the gaps of a period axis stops here: a day axis over ten years is no chart.
MAX_FILLED_BUCKETS = 1000


def worded(text: Any, language: str | None) -> Any:
    """``text`` in ``language``; as written when ``language`` is None."""
    return text if language is None else localise(text, language)


@dataclass
class Choice:
    value: str
    label: Any
    color: str | None


def choices(path: Path) -> list[Choice] | None:
    """The options of a select or state field in order, or None for other fields."""
    spec = path.spec
    if spec.get("type") != "select":
        return None
    found = {
        option["value"]: Choice(option["value"], option.get("label"), option.get("color"))
        for option in spec.get("options", [])
    }
    if path.field is not None:
        for state in _states(path.entity, path.field.name):
            choice = found.setdefault(state["name"], Choice(state["name"], None, None))
            choice.label = choice.label or state.get("label")
            choice.color = choice.color or state.get("color")
    return list(found.values())


def _states(entity: EntityModel, field_name: str) -> list[dict]:
    for workflow in entity.app.list_of("workflows"):
        if workflow.get("entity") == entity.name and workflow.get("state_field") == field_name:
            return workflow.get("states", [])
    return []


class Groups:
    """Names and orders the groups of one widget."""

    def __init__(self, records, actor: Actor, context: dict, path: Path, period: str | None):
        self.records = records
        self.actor = actor
        self.context = context
        self.path = path
        self.period = period
        self.choices = None if period else choices(path)
        spec_type = path.spec["type"]
        self.kind = (
            "period"
            if period
            else "select"
            if self.choices is not None
            else "user"
            if spec_type == "user"
            else "reference"
            if path.storage == field_types.REFERENCE
            else path.storage
        )

    # --- the series ------------------------------------------------------------------

    def series(
        self,
        conn: Connection,
        found: list[tuple[Any, Any]],
        empty: Any,
        language: str | None,
        *,
        complete: bool = True,
    ) -> list[dict[str, Any]]:
        """``[{key, label, value, color?}]`` in the order the chart shows them.

        ``empty`` is the value of a group without rows: every option, and every
        period between the first and the last, is a group when ``complete``.
        Groups without an order of their own (references, users, texts) come by
        value, largest first, then by key.
        """
        values = dict(found)
        keys = self._keys(values) if complete else list(values)
        names = self._names(conn, [key for key in keys if key is not None], language)
        items = []
        for key in keys:
            label, color = names.get(key, (None, None)) if key is not None else (None, None)
            item = {
                "key": key,
                "label": worded(EMPTY, language) if key is None else label,
                "value": values.get(key, empty),
            }
            if color:
                item["color"] = color
            items.append(item)
        return items

    def _keys(self, values: dict) -> list[Any]:
        present = [key for key in values if key is not None]
        if self.kind == "select":
            known = [choice.value for choice in self.choices]
            keys = known + sorted(key for key in present if key not in set(known))
        elif self.kind == "period":
            keys = fill_periods(sorted(present), self.period)
        elif self.kind == "boolean":
            keys = [key for key in (True, False) if key in values]
        elif self.kind in ("reference", "user", "string"):
            keys = sorted(present, key=lambda key: (_descending(values[key]), key))
        else:
            keys = sorted(present)
        return keys + ([None] if None in values else [])

    # --- labels ------------------------------------------------------------------------

    def _names(self, conn: Connection, keys: list, language: str | None) -> dict[Any, tuple]:
        if self.kind == "select":
            by_value = {choice.value: choice for choice in self.choices}
            return {
                key: (
                    worded(by_value[key].label, language) or key if key in by_value else key,
                    by_value[key].color if key in by_value else None,
                )
                for key in keys
            }
        if self.kind == "period":
            return {key: (period_label(key, self.period), None) for key in keys}
        if self.kind == "reference":
            return {key: (title, None) for key, title in self._titles(conn, keys).items()}
        if self.kind == "user":
            return {key: (name, None) for key, name in self._usernames(conn, keys).items()}
        if self.kind == "boolean":
            return {key: (worded(YES_NO[bool(key)], language), None) for key in keys}
        return {key: (_text(key), None) for key in keys}

    def _titles(self, conn: Connection, ids: list[int]) -> dict[int, str]:
        titles = {key: f"#{key}" for key in ids}
        spec = self.path.spec
        target = self.path.entity.app.resolve_entity(spec.get("target") or "")
        if target is None or not target.title_field:
            return titles
        title = target.fields.get(target.title_field)
        if title is None or not title.has_column or not access.readable(self.actor, title):
            return titles
        runtime = self.records.runtime(target.app.name, target.name, conn)
        try:
            readable = visible(self.actor, runtime, self.records.tables_for, self.context)
        except Forbidden:
            return titles
        table = runtime.table
        for start in range(0, len(ids), CHUNK):
            query = readable.with_only_columns(table.c.id, table.c[title.name]).where(
                table.c.id.in_(ids[start : start + CHUNK])
            )
            for record_id, value in conn.execute(query):
                if value is not None and value != "":
                    titles[record_id] = _text(value)
        return titles

    def _usernames(self, conn: Connection, ids: list[int]) -> dict[int, str]:
        names = {key: f"#{key}" for key in ids}
        for start in range(0, len(ids), CHUNK):
            query = select(users.c.id, users.c.username).where(
                users.c.id.in_(ids[start : start + CHUNK])
            )
            names.update(conn.execute(query).all())
        return names


def _descending(value: Any) -> tuple:
    return (value is None, -(value or 0))


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return json_value(value)
    return str(value)


# --- periods ---------------------------------------------------------------------------


def next_period(day: dt.date, period: str) -> dt.date:
    if period == "day":
        return day + dt.timedelta(days=1)
    if period == "week":
        return day + dt.timedelta(days=7)
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def period_label(day: dt.date, period: str) -> str:
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{day.year:04d}-{day.month:02d}"
    return day.isoformat()


def fill_periods(days: list[dt.date], period: str) -> list[dt.date]:
    """Every bucket from the first to the last, when there are not too many."""
    if len(days) < 2:
        return days
    filled = [days[0]]
    while filled[-1] < days[-1] and len(filled) <= MAX_FILLED_BUCKETS:
        filled.append(next_period(filled[-1], period))
    if filled[-1] != days[-1]:
        return days
    return filled
