"""Computed fields: formulas, lookups and rollups, evaluated on save.

Formulas run through the JsonLogic rules compiled once per metadata version
(``compiled.py``, the evaluator's exact answers, Decimals kept exact, so money
is never a float). Lookups copy a field of the referenced record; rollups
aggregate child rows or the records that reference this one. The service calls
:func:`compute` before each write and propagates to the records that depend on
the one it wrote.

A rollup over the records that reference this one (``deal.account``) is
aggregated by the database: one query, the filter compiled to SQL by
``metamodel.jsonlogic.sql`` (which selects exactly the rows the evaluator
accepts), SUM/COUNT/MIN/MAX computed there and finished in Python (averages
divided, results rounded by :func:`fit`) exactly as the evaluator-side code
would. Where SQL cannot give exactly that answer (a filter the compiler
refuses, an aggregate over dates or texts, SQLite's integer overflow), the
matching rows are streamed and aggregated in Python instead, never all held in
memory at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.exc import DBAPIError

from metamodel import field_types
from metamodel.errors import Problem
from metamodel.field_types import ValueProblem
from metamodel.jsonlogic import RuleError, evaluate, truthy, variables
from metamodel.jsonlogic import rule_data as plain_rule_data
from metamodel.jsonlogic.data import normalise
from metamodel.jsonlogic.sql import compile_filter, followed_references
from metamodel.messages import Message
from metamodel.model import EntityModel, FieldModel

from .compiled import compile_rule, defined, rule_reads
from .errors import ValidationFailed
from .rule_data import follow, rule_data
from .runtime import EntityRuntime

# Children streamed per fetch when a rollup is aggregated in Python.
STREAM_CHUNK = 5000
NUMERIC_STORAGE = (field_types.INTEGER, field_types.DECIMAL)


def compute(
    conn: Connection,
    runtime: EntityRuntime,
    record: dict[str, Any],
    tables_for,
    child_rows: dict[str, list[dict]] | None = None,
    context: dict | None = None,
    changed: set[str] | None = None,
) -> dict[str, Any]:
    """The values of every computed field of ``record`` (which is not modified).

    ``changed``, when given, names the only inputs that differ from what ``record``'s
    stored computed values were computed from (a child table's name when its rows
    changed): a computed field none of whose inputs changed keeps its value from
    ``record``, without the queries that would compute it again (and ``child_rows``
    is only read by rollups over a child table named in ``changed``).
    """
    plan = computing(runtime, tables_for)
    values = dict(record)
    # What changed so far: grows by each recomputed field whose value moved, so a
    # formula reading a lookup that moved is recomputed too.
    dirty = None if changed is None else set(changed)

    def stale(inputs: frozenset[str] | None) -> bool:
        return dirty is None or inputs is None or not dirty.isdisjoint(inputs)

    def settle(name: str, value: Any) -> None:
        if dirty is not None and value != values.get(name):
            dirty.add(name)
        values[name] = value

    inputs = plan.inputs
    for fld, query in plan.lookups:
        if not stale(inputs[fld.name]):
            continue
        if query is None:
            settle(fld.name, lookup_value(conn, fld, values, tables_for))
        else:
            target_id = values.get(fld.doc["via"])
            settle(
                fld.name,
                None if target_id is None else conn.execute(query, {"id": target_id}).scalar(),
            )
    for fld, rollup in plan.rollups:
        if not stale(inputs[fld.name]):
            continue
        if rollup is None:
            settle(fld.name, rollup_value(conn, fld, values, tables_for, child_rows or {}))
        elif values.get("id") is None:
            settle(fld.name, Aggregate(rollup.aggregate).result(fld))
        else:
            settle(fld.name, rollup.values(conn, [values["id"]])[values["id"]])
    if plan.formulas:
        normalised = normalised_context(context)
        for formula, paths in plan.formulas:
            if not stale(inputs[formula.name]):
                continue
            data = follow(conn, runtime.entity, values, paths, tables_for) if paths else values
            settle(formula.name, formula(data, context, normalised))
    return {f.name: values[f.name] for f in runtime.lookups + runtime.rollups + runtime.formulas}


class ComputePlan:
    """What :func:`compute` prepares once per entity and metadata version."""

    def __init__(self, runtime: EntityRuntime, tables_for):
        entity = runtime.entity
        # Each computed field's inputs: the fields of the record whose change can change
        # its value (None: any change can). What other records hold reaches it by
        # propagation, not through these.
        self.inputs: dict[str, frozenset[str] | None] = {}
        # (lookup, the query reading its value by the target's id), the query None when
        # the target is in another app, whose tables change with that app's versions.
        self.lookups: list[tuple[FieldModel, Any]] = []
        for fld in runtime.lookups:
            target = entity.fields[fld.doc["via"]].target
            query = None
            if target.app is entity.app:
                table = tables_for(target)
                query = select(table.c[fld.doc["field"]]).where(table.c.id == bindparam("id"))
            self.lookups.append((fld, query))
            self.inputs[fld.name] = frozenset({fld.doc["via"]})
        # (rollup, its plan), the plan None for rollups of child table rows (held in
        # memory), whose input is the child table. A rollup over the records referencing
        # this one reads none of this record's fields, unless its filter follows a
        # reference (which may lead back to this record).
        self.rollups: list[tuple[FieldModel, RollupPlan | None]] = []
        for fld in runtime.rollups:
            if "." not in fld.doc["via"]:
                self.rollups.append((fld, None))
                self.inputs[fld.name] = frozenset({fld.doc["via"]})
                continue
            self.rollups.append((fld, rollup_plan(runtime, fld, tables_for)))
            rule = fld.doc.get("filter")
            follows = rule is not None and bool(followed_references(rule, fld.rollup_children()[0]))
            self.inputs[fld.name] = None if follows else frozenset()
        # (formula, the references it follows, shallowest first).
        self.formulas: list[tuple[Formula, list[str]]] = []
        for fld in runtime.formulas:
            formula = Formula(fld)
            paths = sorted(
                followed_references(fld.doc["expression"], entity), key=lambda p: p.count(".")
            )
            self.formulas.append((formula, paths))
            # One reading $now or $today is computed again on every save, as before.
            reads = formula.reads
            self.inputs[fld.name] = None if reads is None or formula.context else frozenset(reads)


def rollup_reads(fld: FieldModel) -> frozenset[str] | None:
    """The fields of the records a rollup over referencing records aggregates that it reads.

    Its reference back, the field it aggregates and what its filter reads (a reference
    the filter follows counts as read); None when a change to any field may matter: a
    filter reading names computed by the rule, or a system column every save changes.
    """
    child, back = fld.rollup_children()
    reads = {back.name}
    if fld.doc.get("field"):
        reads.add(fld.doc["field"])
    rule = fld.doc.get("filter")
    if rule is not None:
        filtered = _record_reads(rule, child)
        if filtered is None:
            return None
        reads |= filtered
    return frozenset(reads)


def formula_reads_through(fld: FieldModel, via: str) -> frozenset[str] | None:
    """The fields of the record at reference ``via`` that formula ``fld`` reads; None: any."""
    rule = fld.doc["expression"]
    if rule_reads(rule)[0] is None:
        return None
    target = fld.entity.fields[via].target
    names = [name for name, _pointer in variables(rule)]
    if via in names:
        return None  # the referenced record's data as a whole
    prefix = f"{via}."
    reads = {name[len(prefix) :].split(".", 1)[0] for name in names if name.startswith(prefix)}
    if any(name not in target.fields and name not in _REPORTED_COLUMNS for name in reads):
        return None
    return frozenset(reads)


def dependents_reads(
    runtime: EntityRuntime,
) -> tuple[list[frozenset[str] | None], list[frozenset[str] | None]]:
    """What each of ``runtime.rollups_over_me`` and ``runtime.formulas_reading_me`` reads.

    The fields of this entity whose change can change them (None: any), in their order:
    a save changing none of them leaves the rollup or formula as it is.
    """
    found = runtime.cache.get("dependents_reads")
    if found is None:
        found = runtime.cache["dependents_reads"] = (
            [rollup_reads(rollup) for _parent, rollup in runtime.rollups_over_me],
            [formula_reads_through(f, via) for _other, f, via in runtime.formulas_reading_me],
        )
    return found


# Columns that are not fields: those never changed after the insert, and the owner, which
# every save reports as a change when it changes. The others (updated_at, version, ...)
# change on every save without being reported.
_REPORTED_COLUMNS = {"id", "created_at", "created_by", "owner"}


def _record_reads(rule: Any, entity: EntityModel) -> set[str] | None:
    """The fields of ``entity`` a rule reads (the first segment of each name); None: any.

    A rule reading ``$now`` or ``$today`` counts as reading any: its answer moves with time.
    """
    reads, context = rule_reads(rule)
    if reads is None or context:
        return None
    for name in reads:
        if name not in entity.fields and name not in _REPORTED_COLUMNS:
            return None
    return set(reads)


def computing(runtime: EntityRuntime, tables_for) -> ComputePlan:
    plan = runtime.cache.get("compute")
    if plan is None:
        plan = runtime.cache["compute"] = ComputePlan(runtime, _of_version(runtime, tables_for))
    return plan


def rollup_plan(runtime: EntityRuntime, fld: FieldModel, tables_for) -> RollupPlan:
    """The plan of ``fld``, a rollup of ``runtime``'s entity over referencing records."""
    key = f"rollup:{fld.name}"
    plan = runtime.cache.get(key)
    if plan is None:
        plan = RollupPlan(fld, _of_version(runtime, tables_for))
        if plan.same_app:
            runtime.cache[key] = plan
    return plan


def _of_version(runtime: EntityRuntime, tables_for):
    """``tables_for``, with the tables of the runtime's own app at the runtime's version.

    What is kept with a runtime must not be built from a newer version's tables, as
    it could be if another call moved the registry on meanwhile.
    """
    published, app = runtime.published, runtime.entity.app

    def table_for(entity: EntityModel):
        return published.table(entity.name) if entity.app is app else tables_for(entity)

    return table_for


def lookup_value(conn, fld: FieldModel, values: dict, tables_for) -> Any:
    via = fld.entity.fields[fld.doc["via"]]
    target_id = values.get(via.name)
    if target_id is None:
        return None
    table = tables_for(via.target)
    return conn.execute(select(table.c[fld.doc["field"]]).where(table.c.id == target_id)).scalar()


def rollup_value(conn, fld: FieldModel, values: dict, tables_for, child_rows: dict) -> Any:
    """One rollup of the record ``values``; child table rows are taken from ``child_rows``."""
    child_entity, back_reference = fld.rollup_children()
    aggregate = fld.doc["aggregate"]
    if back_reference is not None:
        if values.get("id") is None:
            return Aggregate(aggregate).result(fld)
        return RollupPlan(fld, tables_for).values(conn, [values["id"]])[values["id"]]
    source = fld.doc.get("field")
    rule = fld.doc.get("filter")
    total = Aggregate(aggregate)
    for row in child_rows.get(fld.doc["via"], []):
        if rule is None or _holds(rule, rule_data(conn, child_entity, row, rule, tables_for)):
            total.add(row.get(source) if source else row)
    return total.result(fld)


def _targets(rule: Any, entity: EntityModel) -> list[EntityModel]:
    """The entities ``rule`` reaches by following references from ``entity``."""
    found = []
    for path in followed_references(rule, entity):
        owner = entity
        for segment in path.split("."):
            owner = owner.fields[segment].target
            found.append(owner)
    return found


def _holds(rule, row: dict) -> bool:
    try:
        return truthy(evaluate(rule, row))
    except RuleError:
        return False


class RollupPlan:
    """How one rollup over the records referencing its own (``via: "deal.account"``) is made.

    Built once per metadata version: the filter compiled to SQL (None when the
    compiler refuses it: the rows are then filtered by the evaluator), and
    whether the aggregate can be left to the database.
    """

    def __init__(self, fld: FieldModel, tables_for):
        child, back = fld.rollup_children()
        self.field = fld
        self.child = child
        self.tables_for = tables_for
        self.table = table = tables_for(child)
        self.back = table.c[back.name]
        self.aggregate = aggregate = fld.doc["aggregate"]
        self.source = source = fld.doc.get("field")
        self.rule = fld.doc.get("filter")
        self.same_app = True
        self.condition = None
        self.filter_in_sql = self.rule is None
        if self.rule is not None:
            # A filter following references into another app reads tables that change
            # with that app's versions: such a plan is not kept.
            self.same_app = all(target.app is child.app for target in _targets(self.rule, child))
            try:
                self.condition = compile_filter(
                    self.rule, child, table, context=None, table_for=tables_for
                )
                self.filter_in_sql = True
            except RuleError:
                self.run = compile_rule(self.rule)
        # Counting is exact for any rows; sums, averages and extremes only of numbers
        # (the evaluator orders dates and texts as Python does, not as a collation).
        self.in_sql = self.filter_in_sql and (
            aggregate == "count" or child.fields[source].storage in NUMERIC_STORAGE
        )
        if aggregate == "count":
            wanted = [func.count()]
        else:
            value = table.c[source]
            wanted = {
                "sum": [func.sum(value)],
                "avg": [func.sum(value), func.count(value)],
                "min": [func.min(value)],
                "max": [func.max(value)],
            }[aggregate]
        # Each query for one parent (the usual case: a record was saved) and for many.
        self.aggregated = [
            self._live(select(self.back, *wanted), many).group_by(self.back)
            for many in (False, True)
        ]
        if self.filter_in_sql:
            columns = [self.back] + ([table.c[source]] if source else [])
        else:
            # The evaluator may read any column (and follow references from them).
            columns = list(table.c)
        self.streamed = [self._live(select(*columns), many) for many in (False, True)]

    def values(self, conn: Connection, parent_ids: list[int]) -> dict[int, Any]:
        """The rollup of each record in ``parent_ids``."""
        if self.in_sql:
            found = self._aggregated(conn, parent_ids)
            if found is not None:
                return found
        return self._streamed(conn, parent_ids)

    def _live(self, query, many: bool):
        key = self.back
        query = query.where(
            key.in_(bindparam("ids", expanding=True)) if many else key == bindparam("id"),
            self.table.c.deleted_at.is_(None),
        )
        if self.condition is not None:
            query = query.where(self.condition)
        return query

    @staticmethod
    def _params(parent_ids: list[int]) -> tuple[int, dict]:
        if len(parent_ids) == 1:
            return 0, {"id": parent_ids[0]}
        return 1, {"ids": parent_ids}

    def _aggregated(self, conn: Connection, parent_ids: list[int]) -> dict[int, Any] | None:
        """The rollups by one GROUP BY query; None when SQLite's integer sum overflowed."""
        aggregate, fld = self.aggregate, self.field
        which, params = self._params(parent_ids)
        query = self.aggregated[which]
        if conn.dialect.name == "sqlite" and aggregate in ("sum", "avg"):
            # sum() of integers raises on overflow; a failed SELECT leaves SQLite's
            # transaction as it was, so no savepoint is needed to carry on.
            try:
                rows = conn.execute(query, params).all()
            except DBAPIError:
                return None
        else:
            rows = conn.execute(query, params).all()
        empty = Aggregate(aggregate).result(fld)
        values = dict.fromkeys(parent_ids, empty)
        for row in rows:
            if aggregate == "count":
                values[row[0]] = row[1]
            elif aggregate == "sum":
                values[row[0]] = fit(Decimal(0) if row[1] is None else _number(row[1]), fld)
            elif aggregate == "avg":
                values[row[0]] = fit(_number(row[1]) / row[2], fld) if row[2] else None
            else:
                values[row[0]] = None if row[1] is None else fit(_number(row[1]), fld)
        return values

    def _streamed(self, conn: Connection, parent_ids: list[int]) -> dict[int, Any]:
        """The rollups aggregated in Python, the rows filtered by SQL or by the evaluator."""
        back = self.back.name
        which, params = self._params(parent_ids)
        query = self.streamed[which].execution_options(stream_results=True, yield_per=STREAM_CHUNK)
        totals = {pid: Aggregate(self.aggregate) for pid in parent_ids}
        result = conn.execute(query, params)
        for chunk in result.mappings().partitions():
            # Rows in hand before any query the filter makes (a followed reference).
            for row in chunk:
                if not self.filter_in_sql and not self._holds(conn, dict(row)):
                    continue
                totals[row[back]].add(row[self.source] if self.source else row)
        return {pid: totals[pid].result(self.field) for pid in parent_ids}

    def _holds(self, conn: Connection, row: dict) -> bool:
        data = rule_data(conn, self.child, row, self.rule, self.tables_for)
        try:
            return truthy(defined(self.run(normalise(data))))
        except (RuleError, RecursionError):
            return False


class Aggregate:
    """One rollup value built value by value: count, sum, avg, min or max.

    Nulls are skipped (except by count, which counts rows); sums and averages are
    exact Decimals; min and max of values that are not all numbers (dates,
    datetimes, texts) compare the values themselves, as Python orders them.
    """

    __slots__ = ("best", "extreme", "kind", "numbers", "numeric", "present", "rows", "total")

    def __init__(self, kind: str):
        self.kind = kind
        self.rows = 0
        self.present = False  # some value was not null
        self.numeric = True  # ... and all of them were numbers
        self.extreme: Any = None  # min/max of the values as they are
        self.numbers = 0
        self.total = Decimal(0)
        self.best: Decimal | None = None  # min/max of the values as numbers

    def add(self, value: Any) -> None:
        self.rows += 1
        kind = self.kind
        if kind == "count" or value is None:
            return
        if kind in ("min", "max"):
            if not self.present or (
                value < self.extreme if kind == "min" else value > self.extreme
            ):
                self.extreme = value
            if self.numeric and not _numeric(value):
                self.numeric = False
        self.present = True
        number = _number(value)
        if number is None:
            return
        self.numbers += 1
        if kind in ("sum", "avg"):
            self.total += number
        elif self.best is None or (number < self.best if kind == "min" else number > self.best):
            self.best = number

    def result(self, fld: FieldModel) -> Any:
        kind = self.kind
        if kind == "count":
            return self.rows
        if kind in ("min", "max") and self.present and not self.numeric:
            # Dates, datetimes and texts order as themselves (e.g. the last contact date).
            return fit(self.extreme, fld)
        if kind == "sum":
            return fit(self.total, fld)
        if not self.numbers:
            return None
        if kind == "avg":
            return fit(self.total / self.numbers, fld)
        return fit(self.best, fld)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return Decimal(int(value))
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


# --- formulas -------------------------------------------------------------------------


class Formula:
    """A formula field, its rule compiled once: the evaluator's answers, faster.

    The rule is given only the fields it reads, normalised as ``rule_data``
    normalises them, plus the context when it reads ``$user``, ``$now`` or
    ``$today``: the same data the evaluator would see for every name the rule can
    reach.
    """

    def __init__(self, fld: FieldModel):
        self.field = fld
        self.name = fld.name
        self.rule = fld.doc["expression"]
        self.run = compile_rule(self.rule)
        self.reads, self.context = rule_reads(self.rule)
        self.fit = fitter(fld)

    def __call__(self, record: dict, context: dict | None, normalised: dict) -> Any:
        """The value for ``record``; ``normalised`` is ``normalised_context(context)``."""
        try:
            if self.reads is None:
                data = plain_rule_data(record, context)
            else:
                data = {k: normalise(record[k]) for k in self.reads if k in record}
                if self.context and context:
                    data.update(normalised)
            result = defined(self.run(data))
        except (RuleError, RecursionError):
            return None
        return self.fit(result)


def normalised_context(context: dict | None) -> dict:
    return {f"${name}": normalise(value) for name, value in (context or {}).items()}


def fit(result: Any, fld: FieldModel) -> Any:
    """A computed result as a value of the field's column: rounded half up to its scale."""
    return fitter(fld)(result)


def fitter(fld: FieldModel) -> Callable[[Any], Any]:
    """:func:`fit` for one field, its scale and limits worked out once."""
    spec = fld.value_spec
    kind = field_types.get(spec["type"]).storage
    if kind == field_types.DECIMAL or kind == field_types.INTEGER:
        integer = kind == field_types.INTEGER
        scale = 0 if integer else field_types.decimal_scale(spec)
        digits = 18 if integer else field_types.decimal_precision(spec) - scale
        limit = Decimal(10) ** digits
        quantum = Decimal(1).scaleb(-scale)
        path = f"/{fld.name}"

        def fit_number(result: Any) -> Any:
            if result is None or isinstance(result, bool):
                return None
            kind = type(result)
            if kind is Decimal or kind is int:
                number = Decimal(result)  # exactly Decimal(str(result))
            elif kind is str and not result.strip():
                return None
            else:
                number = _number(result)
            if number is None or not number.is_finite():
                return None
            if abs(number) >= limit:
                raise ValidationFailed(
                    [
                        Problem(
                            path,
                            Message("is computed as {number}, too large to store", number=number),
                        )
                    ]
                )
            rounded = number.quantize(quantum, rounding=ROUND_HALF_UP)
            return int(rounded) if integer else rounded

        return fit_number
    convert = field_types.get(spec["type"]).coerce
    converting = {**spec, "_converting": True}

    def fit_value(result: Any) -> Any:
        if result is None:
            return None
        if kind == field_types.BOOLEAN:
            return truthy(result)
        if kind == field_types.STRING and not isinstance(result, str):
            result = _js_text(result)
        try:
            return convert(result, converting)
        except ValueProblem:
            return None

    return fit_value


def _js_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
