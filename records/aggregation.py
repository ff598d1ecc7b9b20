"""Counts, sums and averages over the records a user may read, grouped, in SQL.

Dashboards aggregate here, on SQLite and PostgreSQL alike:

* the rows are the entity's live records (not the recycle bin) that the actor
  may read — the very condition a list applies (``records.query.visible``:
  ``:own`` permissions and row rules), and for a child entity the rows of
  parents the actor may read — narrowed by the widget's filter, compiled to SQL;
* a field or a group is named by a path; ``account.industry`` follows the
  reference ``account`` by an outer join (a record whose reference is empty
  groups under null);
* a date or datetime group may be bucketed by day, ISO week (starting Monday)
  or month, in UTC: SQLite's ``date()`` modifiers, PostgreSQL's ``date_trunc``
  on the UTC wall-clock time; either way a bucket comes back as its first day;
* sums of decimal, currency and percent fields are exact: the column type reads
  SQLite's scaled integers back as Decimals, and averages are divided in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    Select,
    cast,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from metamodel import field_types
from metamodel.errors import Problem
from metamodel.model import EntityModel, FieldModel

from . import access
from .actor import Actor
from .errors import ValidationFailed
from .query import compile_rule, visible
from .runtime import EntityRuntime

# The type each system column has, as a field of that type would.
SYSTEM_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "user",
    "updated_by": "user",
    "owner": "user",
    "version": "integer",
    "parent_id": "integer",
    "row_order": "integer",
}
NUMERIC_STORAGE = (field_types.INTEGER, field_types.DECIMAL)
GROUPABLE_STORAGE = (
    field_types.STRING,
    field_types.INTEGER,
    field_types.DECIMAL,
    field_types.BOOLEAN,
    field_types.DATE,
    field_types.DATETIME,
    field_types.REFERENCE,
)
PERIODS = ("day", "week", "month")
AVERAGE_SCALE = 4


@dataclass
class Path:
    """A field (or system column) a widget names, reached from the widget's entity."""

    name: str
    entity: EntityModel  # the entity holding the column at the end of the path
    field: FieldModel | None  # None for a system column
    column: ColumnElement
    # (alias of a referenced table, join condition), one per reference followed.
    joins: list[tuple[Any, ColumnElement]] = field(default_factory=list)

    @property
    def spec(self) -> dict[str, Any]:
        """The definition deciding what the values look like (see FieldModel.value_spec)."""
        if self.field is None:
            return {"name": self.name, "type": SYSTEM_TYPES[self.name.split(".")[-1]]}
        return self.field.value_spec

    @property
    def storage(self) -> str:
        return field_types.get(self.spec["type"]).storage


def resolve(runtime: EntityRuntime, tables_for, name: Any, at: str) -> Path:
    """The column ``name`` reads; each reference on the way is joined; else ValidationFailed."""
    if not isinstance(name, str) or not name:
        raise ValidationFailed([Problem(at, "must name a field")])
    entity, source = runtime.entity, runtime.table
    joins = []
    segments = name.split(".")
    for index, segment in enumerate(segments):
        fld = entity.fields.get(segment)
        if fld is None and segment not in SYSTEM_TYPES:
            raise ValidationFailed([Problem(at, f"'{name}': {entity.name} has no '{segment}'")])
        if fld is not None and not fld.has_column:
            raise ValidationFailed(
                [Problem(at, f"'{name}': '{segment}' ({fld.type_name}) has no column to read")]
            )
        if segment not in source.c:
            raise ValidationFailed([Problem(at, f"'{name}': {entity.name} has no '{segment}'")])
        column = source.c[segment]
        if index == len(segments) - 1:
            return Path(name, entity, fld, column, joins)
        target = fld.target if fld is not None and fld.type_name == "reference" else None
        if target is None:
            raise ValidationFailed(
                [Problem(at, f"'{name}': '{segment}' is not a reference that can be followed")]
            )
        alias = tables_for(target).alias()
        joins.append((alias, alias.c.id == column))
        entity, source = target, alias
    raise AssertionError("unreachable: a path has at least one segment")


def unreadable(actor: Actor, entity: EntityModel, name: str) -> str | None:
    """Why ``actor`` may not see the values of the path ``name``, or None when they may."""
    segments = name.split(".")
    for index, segment in enumerate(segments):
        fld = entity.fields.get(segment)
        if fld is None:
            return None
        if not access.readable(actor, fld):
            return f"you may not read '{segment}' of {entity.name} records"
        # A reference read as it is shows ids, which the record shows too; following
        # it reads the target's fields.
        if index < len(segments) - 1 and fld.target is not None:
            entity = fld.target
            if access.grant(actor, entity, "read") is None:
                return f"you may not read {entity.name} records"
    return None


def readable_rows(records, conn: Connection, actor: Actor, runtime: EntityRuntime, context):
    """The condition selecting the live rows of ``runtime``'s entity that ``actor`` may read."""
    entity, table = runtime.entity, runtime.table
    parent = entity.parent if entity.is_child else None
    if parent is None:
        return visible(actor, runtime, records.tables_for, context).whereclause
    owner = records.runtime(entity.app.name, parent[0].name, conn)
    parents = select(owner.table.c.id).where(readable_rows(records, conn, actor, owner, context))
    return table.c.deleted_at.is_(None) & table.c.parent_id.in_(parents)


def widget_rows(records, conn, actor: Actor, runtime: EntityRuntime, context, widget, at: str):
    """The rows a widget aggregates: readable, and matching its filter."""
    where = readable_rows(records, conn, actor, runtime, context)
    if widget.get("filter") is not None:
        rule = compile_rule(widget["filter"], runtime, records.tables_for, context, at + "/filter")
        where = where & rule
    return where


# --- measures ----------------------------------------------------------------------


@dataclass
class Measure:
    """What a widget computes per group: ``count`` (rows, or values of ``path``), sum or avg."""

    aggregate: str
    path: Path | None

    def columns(self) -> list[ColumnElement]:
        if self.aggregate == "count":
            count = func.count() if self.path is None else func.count(self.path.column)
            return [count.label("n")]
        column = self.path.column
        return [func.count(column).label("n"), func.sum(column).label("total")]

    def value(self, n: int, total: Any = None) -> Any:
        """The group's result: int for counts and integer sums, Decimal otherwise, None for
        the average of nothing."""
        if self.aggregate == "count":
            return int(n)
        integer = self.path.storage == field_types.INTEGER
        scale = 0 if integer else field_types.decimal_scale(self.path.spec)
        total = Decimal(0) if total is None else Decimal(total)
        if self.aggregate == "sum":
            return int(total) if integer else total.quantize(Decimal(1).scaleb(-scale))
        if not n:
            return None
        average = total / n
        return average.quantize(Decimal(1).scaleb(-max(AVERAGE_SCALE, scale)), ROUND_HALF_UP)

    @property
    def empty(self) -> Any:
        """The value over no rows at all."""
        return self.value(0, None)


def check_measure(measure: Measure, at: str) -> None:
    if measure.aggregate == "count" or measure.path is None:
        if measure.aggregate != "count":
            raise ValidationFailed(
                [Problem(at, f"a {measure.aggregate} needs 'field': the field to aggregate")]
            )
        return
    if measure.path.storage not in NUMERIC_STORAGE or measure.path.spec["type"] == "user":
        raise ValidationFailed(
            [
                Problem(
                    at + "/field",
                    f"'{measure.path.name}' holds {measure.path.spec['type']} values; "
                    f"a {measure.aggregate} needs a number field",
                )
            ]
        )


# --- grouping ----------------------------------------------------------------------


def period_bucket(path: Path, period: str, dialect: str, at: str) -> ColumnElement:
    """The first day of the day, ISO week or month a date or datetime falls in, in UTC."""
    if period not in PERIODS:
        raise ValidationFailed([Problem(at + "/period", f"must be one of {', '.join(PERIODS)}")])
    if path.storage not in (field_types.DATE, field_types.DATETIME):
        raise ValidationFailed(
            [
                Problem(
                    at + "/group_by",
                    f"'{path.name}' holds {path.spec['type']} values; "
                    "a period needs a date or datetime field",
                )
            ]
        )
    column = path.column
    # Constants are written into the SQL, not bound: PostgreSQL only matches the
    # GROUP BY expression to the selected one when both are the same text.
    if dialect == "sqlite":
        # Datetimes are stored as UTC text; date() reads both kinds.
        modifiers = {"day": [], "week": ["'weekday 0'", "'-6 days'"], "month": ["'start of month'"]}
        return type_coerce(func.date(column, *map(literal_column, modifiers[period])), Date())
    if path.storage == field_types.DATETIME:
        wall_clock = func.timezone(literal_column("'UTC'"), column)
    else:
        wall_clock = cast(column, DateTime())
    return cast(func.date_trunc(literal_column(f"'{period}'"), wall_clock), Date)


def check_groupable(path: Path, at: str) -> None:
    if path.storage not in GROUPABLE_STORAGE:
        raise ValidationFailed(
            [
                Problem(
                    at,
                    f"'{path.name}' is a {path.spec['type']} field; its values cannot be grouped",
                )
            ]
        )


def grouped(
    conn: Connection,
    table,
    where: ColumnElement,
    measure: Measure,
    key: ColumnElement | None,
    paths: list[Path],
) -> list[tuple[Any, Any]]:
    """``[(group key, value)]`` over the rows ``where`` selects; one row without ``key``."""
    source = table
    for path in paths:
        for alias, condition in path.joins:
            source = source.outerjoin(alias, condition)
    columns = measure.columns()
    query: Select = select(*columns).select_from(source).where(where)
    if key is None:
        row = conn.execute(query).one()
        return [(None, measure.value(*row))]
    query = query.add_columns(key.label("group_key")).group_by(key)
    found = []
    for row in conn.execute(query):
        *aggregates, group = row
        found.append((group, measure.value(*aggregates)))
    return found
