"""Filters a list offers for its columns, and the one JsonLogic rule they make.

Each column whose type can be filtered gets a widget (options for select and
state fields, yes/no for booleans, from/to for dates and numbers, a record for
references). The query string holds what the user chose (``f.stage=won``,
``f.amount.min=1000``, ``f.expected_close.from=2025-01-01``); the choices become
JsonLogic clauses ANDed with the view's own filter, which the record service
compiles to SQL. A value that does not parse is shown beside its filter and
left out of the rule, never sent on as text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from metamodel.model import FieldModel
from records.actor import Actor
from records.service import Records

from .cells import option_label
from .titles import first_titles, target_of

PREFIX = "f."
# A reference filter offers a select while the target has at most this many records.
SELECT_LIMIT = 50
EMPTY = "-"
NUMBER_KINDS = ("integer", "decimal", "currency", "percent", "rating")


@dataclass
class Filter:
    """One filter widget: ``kind`` is choice, boolean, number, date or reference."""

    name: str
    label: str
    kind: str
    values: dict[str, str] = field(default_factory=dict)
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    datepicker: str = "date"
    typeahead_url: str | None = None
    allow_empty: bool = False
    extra: bool = False  # a field that is not a column: offered under "more filters"

    def param(self, part: str | None = None) -> str:
        return PREFIX + self.name + (f".{part}" if part else "")

    def value(self, part: str | None = None) -> str:
        return self.values.get(self.param(part), "")

    @property
    def active(self) -> bool:
        return any(self.values.values())


def kind_of(fld: FieldModel) -> str | None:
    kind = fld.value_spec["type"]
    if kind == "select":
        return "choice"
    if kind == "boolean":
        return "boolean"
    if kind in NUMBER_KINDS:
        return "number"
    if kind in ("date", "datetime"):
        return "date"
    if kind == "reference" and target_of(fld) is not None:
        return "reference"
    return None


def build(
    service: Records,
    actor: Actor,
    fields: list[tuple[FieldModel, str]],
    args: MultiDict,
) -> tuple[list[Filter], list[Any]]:
    """Widgets for ``fields`` (field, label), with the values in ``args``; their rule clauses."""
    filters, clauses = [], []
    for fld, label in fields:
        kind = kind_of(fld)
        if kind is None:
            continue
        widget = Filter(fld.name, label, kind, allow_empty=not fld.required)
        for part in _parts(kind):
            given = args.get(widget.param(part), "").strip()
            if given:
                widget.values[widget.param(part)] = given
        if kind == "choice":
            spec = fld.value_spec
            widget.options = [(o["value"], option_label(spec, o["value"])) for o in spec["options"]]
        elif kind == "boolean":
            widget.options = [("yes", _("Yes")), ("no", _("No"))]
        elif kind == "date":
            widget.datepicker = fld.value_spec["type"]
        elif kind == "reference":
            _reference_widget(service, actor, fld, widget)
        try:
            clauses += _clauses(fld, widget)
        except ValueError as error:
            widget.error = str(error)
        filters.append(widget)
    return filters, clauses


def _parts(kind: str) -> tuple[str | None, ...]:
    if kind == "number":
        return ("min", "max")
    if kind == "date":
        return ("from", "to")
    return (None,)


def _clauses(fld: FieldModel, widget: Filter) -> list[Any]:
    var = {"var": fld.name}
    kind = widget.kind
    if kind == "choice":
        chosen = widget.value()
        if not chosen:
            return []
        if chosen == EMPTY:
            return [{"==": [var, None]}]
        if chosen not in {value for value, _label in widget.options}:
            raise ValueError(_("'%(value)s' is not one of the options", value=chosen))
        return [{"==": [var, chosen]}]
    if kind == "boolean":
        chosen = widget.value()
        if not chosen:
            return []
        if chosen not in ("yes", "no"):
            raise ValueError(_("choose yes or no"))
        # An empty box reads as "no", as the form shows it.
        return [{"!!": [var]} if chosen == "yes" else {"!": [var]}]
    if kind == "reference":
        chosen = widget.value()
        if not chosen:
            return []
        if chosen == EMPTY:
            return [{"==": [var, None]}]
        record_id = record_id_of(chosen)
        if record_id is None:
            raise ValueError(_("pick a record from the list"))
        return [{"==": [var, record_id]}]
    if kind == "number":
        low, high = _number(widget.value("min")), _number(widget.value("max"))
        if low is not None and high is not None and low > high:
            raise ValueError(_("the minimum is above the maximum"))
        # Numbers go in as text: JsonLogic reads them as numbers, and text keeps them exact.
        found = [{">=": [var, _plain(low)]}] if low is not None else []
        return found + ([{"<=": [var, _plain(high)]}] if high is not None else [])
    start, end = _date(widget.value("from")), _date(widget.value("to"))
    if start is not None and end is not None and start > end:
        raise ValueError(_("the start is after the end"))
    if widget.datepicker == "datetime":
        # Whole days in UTC: up to the end of the "to" day.
        found = [{">=": [var, f"{start.isoformat()}T00:00:00Z"]}] if start else []
        if end is not None:
            found.append({"<": [var, f"{(end + dt.timedelta(days=1)).isoformat()}T00:00:00Z"]})
        return found
    found = [{">=": [var, start.isoformat()]}] if start else []
    return found + ([{"<=": [var, end.isoformat()]}] if end else [])


def record_id_of(text: str) -> int | None:
    """A record id typed or chosen (ASCII digits, within a BIGINT), else None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number < 2**63 else None


def _number(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        number = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise ValueError(_("'%(value)s' is not a number", value=text)) from None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 30:
        raise ValueError(_("'%(value)s' is not a number", value=text))
    return number


def _plain(number: Decimal) -> str:
    return (
        format(number.normalize(), "f") if number == number.to_integral() else format(number, "f")
    )


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(_("'%(value)s' is not a date (YYYY-MM-DD)", value=text)) from None


def _reference_widget(service: Records, actor: Actor, fld: FieldModel, widget: Filter) -> None:
    """A select of the target's records while they are few; else type-ahead by title."""
    target = target_of(fld)
    found = first_titles(service, actor, target, SELECT_LIMIT + 1)
    if found is None:
        return  # the id alone, typed in
    if len(found) <= SELECT_LIMIT:
        widget.options = [(str(record_id), title) for record_id, title in found]
        return
    widget.typeahead_url = url_for(
        "lists.reference_options", app=fld.entity.app.name, entity=fld.entity.name, field=fld.name
    )


def combine(*rules: Any) -> Any:
    """One rule: the ones given ANDed (None when there are none)."""
    present = [rule for rule in rules if rule is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else {"and": present}
