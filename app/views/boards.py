"""Kanban boards and calendars: the same records, grouped by a choice or laid out by date.

A board has one column per option of its ``group_by`` field (a select, or a
workflow's state field), each with its count and first cards; a column costs
the same queries whatever its size. Moving a card sets the field through the
record service, or, for a state field, fires the workflow transition that
leads there, so every rule (permissions, locks, guards, approvals) applies.
"""

from __future__ import annotations

import calendar as calendars
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from babel.dates import format_time
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _

from metamodel.errors import CrmError, Problem
from metamodel.model import EntityModel, FieldModel
from metamodel.text import localise
from records import access
from records.actor import Actor
from records.errors import Forbidden, RecordConflict, StaleVersion, ValidationFailed
from records.query import ListQuery
from records.service import Records
from workflow_engine import Workflows
from workflow_engine.definitions import Workflow, workflows_of

from ..i18n import language
from . import listing
from .cells import Chip, option_chip
from .list_filters import combine

CARDS_PER_COLUMN = 20
# A column's count stops here ("more than 1,000 records"): enough to size a column up.
COLUMN_COUNT_CAP = 1000
CARD_FIELDS = 3
# A calendar month shows at most this many records (one page of the service), and
# counts them up to MONTH_COUNT_CAP ("200 of more than 1,000 shown").
MONTH_LIMIT = 200
MONTH_COUNT_CAP = 1000
NO_VALUE = ""
# A month grid shows whole weeks: stay clear of the first and last dates Python knows.
FIRST_YEAR, LAST_YEAR = 1000, 9998


# --- kanban --------------------------------------------------------------------------


@dataclass
class Group:
    """What a board groups by: the field, and the workflow that owns it, if one does."""

    field: FieldModel
    workflow: Workflow | None

    def values(self) -> list[str]:
        return [o["value"] for o in self.field.value_spec["options"]]

    def chip(self, value: str | None) -> Chip:
        if value is None:
            return Chip(_("No value"))
        return option_chip(self.field.value_spec, value)

    def rule(self, value: str | None) -> Any:
        var = {"var": self.field.name}
        if self.workflow is not None and value == self.workflow.initial:
            # A record written before its workflow existed is in the initial state.
            return {"or": [{"==": [var, value]}, {"==": [var, None]}]}
        return {"==": [var, value]}


@dataclass
class BoardColumn:
    value: str | None
    chip: Chip
    total: int
    estimate: bool
    rows: list[listing.Row] = field(default_factory=list)
    next_page: int | None = None

    @property
    def key(self) -> str:
        return NO_VALUE if self.value is None else self.value


def group_of(actor: Actor, entity: EntityModel, view: dict) -> Group:
    name = view.get("group_by", "")
    fld = entity.fields.get(name)
    if fld is None or fld.value_spec["type"] != "select":
        raise CrmError(
            _("the board groups by '%(name)s', which is not a select field", name=name),
            "/group_by",
        )
    if not access.readable(actor, fld):
        raise Forbidden(_("you may not read '%(name)s'", name=name))
    owner = next((w for w in workflows_of(entity) if w.state_field == name), None)
    return Group(fld, owner)


def card_columns(actor: Actor, entity: EntityModel, view: dict, group: Group) -> list:
    """The fields a card shows under its title."""
    skip = {entity.title_field, group.field.name}
    chosen = [
        c
        for c in listing.view_columns(actor, entity, view)
        if c.path not in skip and c.field.type_name != "child_table"
    ]
    return chosen[:CARD_FIELDS]


def column_query(group: Group, value: str | None, rule: Any, query: ListQuery) -> ListQuery:
    """``query`` narrowed to the records of one column."""
    return ListQuery(
        filter=combine(rule, group.rule(value)),
        q=query.q,
        sort=query.sort,
        page=query.page,
        per_page=query.per_page,
    )


def board_column(group: Group, value: str | None, query: ListQuery, found: dict) -> BoardColumn:
    shown = query.page * query.per_page
    more = found["total_is_estimate"] or found["total"] > shown
    return BoardColumn(
        value,
        group.chip(value),
        found["total"],
        found["total_is_estimate"],
        next_page=query.page + 1 if more else None,
    )


def column_page(
    service: Records,
    actor: Actor,
    entity: EntityModel,
    group: Group,
    value: str | None,
    rule: Any,
    query: ListQuery,
) -> tuple[BoardColumn, list[dict]]:
    """One column: its count and the cards of ``query.page``."""
    found = service.list(
        actor,
        entity.app.name,
        entity.name,
        column_query(group, value, rule, query),
        count_cap=COLUMN_COUNT_CAP,
    )
    return board_column(group, value, query, found), found["items"]


def board(
    service: Records,
    actor: Actor,
    entity: EntityModel,
    group: Group,
    cards: list,
    rule: Any,
    query: ListQuery,
) -> list[BoardColumn]:
    """Every column with its first cards; "no value" only while some record has none."""
    values: list[str | None] = list(group.values())
    if group.workflow is None:
        values.append(None)
    queries = [column_query(group, value, rule, query) for value in values]
    # A column's count only sizes it up: it stops at COLUMN_COUNT_CAP.
    found_pages = service.pages(
        actor, entity.app.name, entity.name, queries, count_cap=COLUMN_COUNT_CAP
    )
    columns, items = [], []
    for value, found in zip(values, found_pages, strict=True):
        if value is None and found["total"] == 0:
            continue
        columns.append(board_column(group, value, query, found))
        items.append(found["items"])
    targets = listing.fetch_targets(service, actor, cards, [i for found in items for i in found])
    for column, found in zip(columns, items, strict=True):
        column.rows = listing.shape(entity, cards, found, targets)
    return columns


def move(
    service: Records,
    workflows: Workflows,
    actor: Actor,
    entity: EntityModel,
    group: Group,
    record_id: int,
    version: int,
    to: str | None,
) -> dict:
    """Move a card to the column ``to``; the record as it is afterwards, and a note."""
    app = entity.app.name
    if to is not None and to not in group.values():
        raise ValidationFailed(
            [Problem("/to", _("'%(value)s' is not a column of this board", value=to))]
        )
    if group.workflow is None:
        record = service.update(
            actor, app, entity.name, record_id, {group.field.name: to}, expected_version=version
        )
        return {"record": record, "note": None}
    workflow = group.workflow
    if to is None:
        raise ValidationFailed([Problem("/to", _("a record always has a state"))])
    record = service.get(actor, app, entity.name, record_id)
    if record["version"] != version:
        raise StaleVersion(record["version"], record)
    current = workflow.state_of(record)
    if current == to:
        return {"record": record, "note": None}
    leading = [
        t
        for t in workflow.transitions.values()
        if current in t.sources and to in (t.to, t.pending_state)
    ]
    if not leading:
        raise RecordConflict(
            _(
                "no step of the workflow leads from %(current)s to %(target)s",
                current=_state(workflow, current),
                target=_state(workflow, to),
            )
        )
    allowed = {t["name"] for t in workflows.available(actor, app, entity.name, record_id)}
    chosen = next((t for t in leading if t.name in allowed), leading[0])
    # Where the actor may not fire it, the engine refuses and says why.
    fired = workflows.fire(
        actor,
        app,
        entity.name,
        record_id,
        f"{workflow.name}.{chosen.name}",
        expected_version=version,
    )
    note = None
    if fired["approval"] is not None:
        note = _("Sent for approval: %(step)s", step=localise(chosen.label, language()))
    return {"record": fired["record"], "note": note}


def _state(workflow: Workflow, state: str) -> str:
    return localise(workflow.states.get(state, {}).get("label"), language()) or state


# --- calendar ------------------------------------------------------------------------


@dataclass
class Entry:
    row: listing.Row
    time: str | None  # for a datetime field, the time of day (UTC)


@dataclass
class Day:
    date: dt.date
    in_month: bool
    entries: list[Entry] = field(default_factory=list)


def parse_month(text: str | None, today: dt.date) -> dt.date:
    if not text:
        return today.replace(day=1)
    try:
        year, month = (int(part) for part in text.split("-"))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(year)
        return dt.date(year, month, 1)
    except ValueError:
        raise ValidationFailed(
            [Problem("/month", _("the month must be written YYYY-MM (years 1000 to 9998)"))]
        ) from None


def shift(month: dt.date, months: int) -> dt.date | None:
    index = month.year * 12 + month.month - 1 + months
    year, number = divmod(index, 12)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    return dt.date(year, number + 1, 1)


def date_field_of(actor: Actor, entity: EntityModel, view: dict) -> FieldModel:
    name = view.get("date_field", "")
    fld = listing.field_named(entity, name)
    if fld is None or fld.value_spec["type"] not in ("date", "datetime") or not fld.has_column:
        raise CrmError(
            _(
                "the calendar is laid out by '%(name)s', which is not a date field of the record",
                name=name,
            ),
            "/date_field",
        )
    if not access.readable(actor, fld):
        raise Forbidden(_("you may not read '%(name)s'", name=name))
    return fld


def month_rule(fld: FieldModel, month: dt.date) -> Any:
    var = {"var": fld.name}
    after = shift(month, 1)
    if fld.value_spec["type"] == "datetime":
        clauses = [{">=": [var, f"{month.isoformat()}T00:00:00Z"]}]
        if after is not None:
            clauses.append({"<": [var, f"{after.isoformat()}T00:00:00Z"]})
    else:
        last = calendars.monthrange(month.year, month.month)[1]
        clauses = [
            {">=": [var, month.isoformat()]},
            {"<=": [var, month.replace(day=last).isoformat()]},
        ]
    return {"and": clauses}


def weeks_of(month: dt.date, rows: list[listing.Row], fld: FieldModel) -> list[list[Day]]:
    """The month as weeks from Monday, with each record on its day (UTC)."""
    timed = fld.value_spec["type"] == "datetime"
    by_day: dict[dt.date, list[Entry]] = {}
    for row in rows:
        value = row.record.get(fld.name)
        if not value:
            continue
        day = dt.date.fromisoformat(str(value)[:10])
        time = None
        if timed:
            stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            time = format_time(stamp, "short", tzinfo=get_timezone(), locale=get_locale())
        by_day.setdefault(day, []).append(Entry(row, time))
    weeks = []
    for week in calendars.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month):
        weeks.append([Day(d, d.month == month.month, by_day.get(d, [])) for d in week])
    return weeks
