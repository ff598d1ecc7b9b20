"""Writing many new records at once: the fast path imports take.

The record service writes one record per statement, which is right for forms and
the API but far too slow for a file of a million rows. Here the same rows go in
by batches: one multi-row INSERT ... RETURNING id per batch, one block of
autonumbers per batch, one multi-row INSERT into the audit log, and the rollups
of parent records refreshed once per affected parent at the end, streaming the
children so a parent with a million children costs no memory.

Callers validate and compute every value first (see ``importing.py``); nothing
here checks a value.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from metamodel import field_types
from metamodel.jsonlogic import RuleError, rule_data, truthy, variables
from metamodel.jsonlogic.data import normalise
from metamodel.jsonlogic.evaluator import DATA_OPERATIONS, SPECIAL_FORMS, is_logic
from metamodel.jsonlogic.operations import OPERATIONS
from metamodel.jsonlogic.values import UNDEFINED
from metamodel.model import EntityModel, FieldModel
from metamodel.system_tables import audit_log, sequences

from .actor import Actor
from .autonumber import render
from .computed import _number, fit
from .runtime import EntityRuntime
from .serialize import json_value

# Parent ids refreshed per round trip, and children streamed per fetch.
PARENT_BATCH = 500
STREAM_CHUNK = 5000


def new_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` ids for new rows of ``table``, taken before the rows are written.

    PostgreSQL: from the id column's sequence, as a default id would be. SQLite:
    after the largest id, which is what SQLite itself picks; the caller's write
    transaction (BEGIN IMMEDIATE) holds the database lock, so nobody else takes them.
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        query = select(func.nextval(sequence)).select_from(func.generate_series(1, count))
        return list(conn.execute(query).scalars())
    last = conn.execute(select(func.max(table.c.id))).scalar() or 0
    return list(range(last + 1, last + 1 + count))


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (dicts with the same keys, no ``id``); their new ids, in order.

    The ids are taken first (``new_ids``), then the rows go in as one COPY
    (PostgreSQL) or one executemany (SQLite), their values converted by each
    column type's own bind processor, as SQLAlchemy would convert them, but once
    per value rather than through the per-row machinery of a compiled statement.
    """
    if not rows:
        return []
    ids = new_ids(conn, table, len(rows))
    names = ["id", *(name for name in rows[0] if name != "id")]
    dialect = conn.dialect
    # [cell index, processor, last value, its processed form]: a batch repeats its
    # timestamps, so the last value is remembered (by identity).
    processors: list[list[Any]] = []
    for index, name in enumerate(names):
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append([index, processor, None, None])
    values = []
    for row, record_id in zip(rows, ids, strict=True):
        row["id"] = record_id
        item = [row[name] for name in names]
        for slot in processors:
            value = item[slot[0]]
            if value is None or type(value) is JsonText:
                continue
            if value is not slot[2]:
                slot[2], slot[3] = value, slot[1](value)
            item[slot[0]] = slot[3]
        values.append(tuple(item))
    quote = dialect.identifier_preparer.quote
    table_name = dialect.identifier_preparer.format_table(table)
    columns = ", ".join(quote(name) for name in names)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        cursor = conn.connection.driver_connection.cursor()
        try:
            with cursor.copy(f"COPY {table_name} ({columns}) FROM STDIN") as copy:
                for item in values:
                    copy.write_row(item)
        finally:
            cursor.close()
    elif dialect.name == "sqlite":
        marks = ", ".join("?" for _ in names)
        conn.exec_driver_sql(f"INSERT INTO {table_name} ({columns}) VALUES ({marks})", values)
    else:
        conn.execute(insert(table), rows)
    return ids


def reserve_autonumbers(
    conn: Connection, scope: str, pattern: str, today: dt.date, count: int
) -> list[str]:
    """``count`` consecutive numbers of one autonumber, taken with one statement.

    The counter and its key are those of :func:`records.autonumber.next_value`, so
    records created one by one and records imported in bulk share one sequence.
    """
    if count <= 0:
        return []
    key = f"{scope}:{render(pattern, today, None)}"[:200]
    statement = (
        update(sequences)
        .where(sequences.c.key == key)
        .values(value=sequences.c.value + count)
        .returning(sequences.c.value)
    )
    last = conn.execute(statement).scalar()
    if last is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(sequences).values(key=key, value=count))
            last = count
        except IntegrityError:
            # Another transaction created the counter first: take the next block.
            last = conn.execute(statement).scalar_one()
    first = last - count + 1
    return [render(pattern, today, number) for number in range(first, last + 1)]


def audit_rows(
    conn: Connection,
    runtime: EntityRuntime,
    actor: Actor,
    action: str,
    entries: Iterable[tuple[int, dict]],
    at: dt.datetime,
) -> None:
    """One audit entry per (record id, changes), in one multi-row INSERT."""
    rows = [
        {
            "id": None,
            "app": runtime.app_name,
            "entity": runtime.name,
            "record_id": record_id,
            "action": action,
            "actor_id": actor.id,
            "on_behalf_of": None,
            "at": at,
            "changes": changes,
            "comment": None,
        }
        for record_id, changes in entries
    ]
    insert_rows(conn, audit_log, rows)


def _jsonable(fld: FieldModel) -> Callable[[Any], Any] | None:
    """How a value of ``fld`` becomes JSON (``serialize.json_value``), None when it already is."""
    storage = fld.storage
    if storage == field_types.DECIMAL:
        return lambda value: format(value, "f") if isinstance(value, Decimal) else value
    if storage in (field_types.DATE, field_types.DATETIME, field_types.JSON):
        return json_value
    return None


class JsonText(str):
    """A value already serialised as JSON: ``insert_rows`` writes it as it is."""

    __slots__ = ()


def _json(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    return json.dumps(value)


def change_writer(fields: list[FieldModel]) -> Callable[[dict[str, Any]], JsonText]:
    """The audit ``changes`` of a new record, ``{field: [None, value]}`` for what it holds.

    What ``Records._create`` records, written straight to JSON text: the conversion
    of each field is chosen once, and the JSON is built without walking a dict.
    """
    plan = [(f"{_json(f.name)}: [null, ", f.name, _jsonable(f)) for f in fields if f.has_column]

    def changes(row: dict[str, Any]) -> JsonText:
        parts = [
            prefix + _json(value if convert is None else convert(value)) + "]"
            for prefix, name, convert in plan
            if (value := row[name]) is not None and value != []
        ]
        return JsonText("{" + ", ".join(parts) + "}")

    return changes


def insert_links(
    conn: Connection, runtime: EntityRuntime, links: dict[str, list[tuple[int, list[int]]]]
) -> None:
    """Rows of multi_reference link tables: field -> [(source id, [target ids])]."""
    for name, pairs in links.items():
        table = runtime.published.link_table(runtime.name, name)
        rows = [
            {"source_id": source, "target_id": target, "position": position}
            for source, targets in pairs
            for position, target in enumerate(targets)
        ]
        if rows:
            conn.execute(insert(table), rows)


# --- rules evaluated many times ---------------------------------------------------------


def compile_rule(logic: Any) -> Callable[[Any], Any]:
    """``jsonlogic.evaluator.apply`` with the dispatch done once, for rules run per row.

    Each node calls the very operation ``apply`` would call, on arguments evaluated
    in the same order, so the results are the evaluator's; only the walk over the
    rule (which operator, how many arguments) is no longer repeated for each row.
    """
    if isinstance(logic, list):
        items = [compile_rule(item) for item in logic]
        return lambda data: [item(data) for item in items]
    if not is_logic(logic):
        return lambda data: logic
    ((operator, values),) = logic.items()
    if not isinstance(values, list):
        values = [values]
    special_form = SPECIAL_FORMS.get(operator)
    if special_form is not None:
        return lambda data: special_form(values, data)
    if operator == "var" and len(values) == 1 and _plain_name(values[0]):
        # _var on an object and a name without dots: the key's value, null when absent.
        (name,) = values
        var = DATA_OPERATIONS["var"]
        return lambda data: data.get(name) if type(data) is dict else var(data, name)
    arguments = [compile_rule(value) for value in values]
    data_operation = DATA_OPERATIONS.get(operator)
    if data_operation is not None:
        if len(arguments) == 1:
            (only,) = arguments
            return lambda data: data_operation(data, only(data))
        return lambda data: data_operation(data, *[a(data) for a in arguments])
    operation = OPERATIONS.get(operator)
    if operation is None:

        def refused(data):
            for argument in arguments:
                argument(data)
            raise RuleError(f"unknown operator {operator!r}")

        return refused
    if len(arguments) == 2:
        left, right = arguments
        return lambda data: operation(left(data), right(data))
    if len(arguments) == 1:
        (only,) = arguments
        return lambda data: operation(only(data))
    return lambda data: operation(*[a(data) for a in arguments])


def _plain_name(name: Any) -> bool:
    return type(name) is str and name != "" and "." not in name


def _defined(value: Any) -> Any:
    if value is UNDEFINED:
        return None
    if isinstance(value, list):
        return [_defined(item) for item in value]
    if isinstance(value, dict):
        return {key: _defined(item) for key, item in value.items()}
    return value


def rule_reads(rule: Any) -> tuple[list[str] | None, bool]:
    """The record keys a rule reads (None: the whole record), and whether it reads ``$`` names."""
    if _computed_names(rule):
        return None, True
    reads: list[str] = []
    context = False
    for name, _pointer in variables(rule):
        root = name.split(".", 1)[0]
        if not root:
            return None, True
        if root.startswith("$"):
            context = True
        elif root not in reads:
            reads.append(root)
    return reads, context


def _computed_names(node: Any) -> bool:
    """Might the rule read a name ``variables`` does not report? Then it may read any.

    Names computed by a rule (``{"var": {"cat": ...}}``), and names that are not
    text or numbers (``{"var": true}`` reads the key "true").
    """
    if isinstance(node, list):
        return any(_computed_names(item) for item in node)
    if not is_logic(node):
        return False
    ((operator, values),) = node.items()
    arguments = values if isinstance(values, list) else [values]
    if operator == "var":
        names = arguments[:1]
    elif operator == "missing":
        names = arguments[0] if arguments and isinstance(arguments[0], list) else arguments
    elif operator == "missing_some":
        names = arguments[1] if len(arguments) > 1 and isinstance(arguments[1], list) else [{}]
    else:
        names = []
    if any(not _literal_name(name) for name in names):
        return True
    return _computed_names(values)


def _literal_name(name: Any) -> bool:
    return type(name) in (str, int, float) or name is None


class Formula:
    """A formula field evaluated per row: ``computed.formula_value``, faster.

    The rule is compiled once (``compile_rule``) and given only the fields it
    reads, normalised as ``rule_data`` normalises them, plus the context when it
    reads ``$user``, ``$now`` or ``$today``: the same data the evaluator would see
    for every name the rule can reach.
    """

    def __init__(self, fld: FieldModel):
        self.field = fld
        self.name = fld.name
        self.rule = fld.doc["expression"]
        self.run = compile_rule(self.rule)
        self.reads, self.context = rule_reads(self.rule)

    def __call__(self, record: dict, context: dict | None, normalised: dict) -> Any:
        try:
            if self.reads is None:
                data = rule_data(record, context)
            else:
                data = {k: normalise(record[k]) for k in self.reads if k in record}
                if self.context and context:
                    data.update(normalised)
            result = _defined(self.run(data))
        except (RuleError, RecursionError):
            return None
        return fit(result, self.field)


def normalised_context(context: dict | None) -> dict:
    return {f"${name}": normalise(value) for name, value in (context or {}).items()}


# --- rollups of parents --------------------------------------------------------------


class _Aggregate:
    """One rollup value built row by row, as ``computed._aggregate`` builds it from a list."""

    __slots__ = ("best", "count", "kind", "numbers", "total")

    def __init__(self, kind: str):
        self.kind = kind
        self.count = 0  # rows (count) or numbers (the others)
        self.numbers = 0
        self.total = Decimal(0)
        self.best: Decimal | None = None

    def add(self, value: Any) -> None:
        if self.kind == "count":
            self.count += 1
            return
        if value is None:
            return
        number = _number(value)
        if number is None:
            return
        self.numbers += 1
        if self.kind in ("sum", "avg"):
            self.total += number
        else:
            better = self.best is None or (
                number < self.best if self.kind == "min" else number > self.best
            )
            if better:
                self.best = number

    def result(self, fld: FieldModel) -> Any:
        if self.kind == "count":
            return self.count
        if self.kind == "sum":
            return fit(self.total, fld)
        if not self.numbers:
            return None
        if self.kind == "avg":
            return fit(self.total / self.numbers, fld)
        return fit(self.best, fld)


def _rule_columns(rule: Any, table: Table) -> list[str] | None:
    """The columns a filter reads, or None when it needs the whole row."""
    names = []
    for name, _pointer in variables(rule):
        root = name.split(".", 1)[0]
        if root == "":
            return None
        if root in table.c and root not in names:
            names.append(root)
    return names


def rollup_values(
    conn: Connection,
    child: EntityModel,
    child_table: Table,
    back: str,
    rollup: FieldModel,
    parent_ids: list[int],
    tables_for,
) -> dict[int, Any]:
    """The rollup ``rollup`` of each parent in ``parent_ids``: ``computed.rollup_value``'s values.

    Aggregated by the database where that is exact (a numeric field, a filter the
    JsonLogic-to-SQL compiler accepts, reading no followed reference); otherwise the
    children are streamed and each is filtered by the evaluator, never all held
    in memory at once.
    """
    found = _rollup_in_sql(conn, child, child_table, back, rollup, parent_ids, tables_for)
    if found is not None:
        return found
    aggregate = rollup.doc["aggregate"]
    source = rollup.doc.get("field")
    rule = rollup.doc.get("filter")
    needed = [back] + ([source] if source else [])
    holds = None
    if rule is not None:
        read, _context = rule_reads(rule)
        needed = [c.name for c in child_table.c] if read is None else needed + read
        run = compile_rule(rule)

        def holds(row: dict) -> bool:
            try:
                return truthy(_defined(run(normalise(row))))
            except (RuleError, RecursionError):
                return False

    columns = [child_table.c[name] for name in dict.fromkeys(needed) if name in child_table.c]
    sums = {pid: _Aggregate(aggregate) for pid in parent_ids}
    query = select(*columns).where(
        child_table.c[back].in_(parent_ids), child_table.c.deleted_at.is_(None)
    )
    result = conn.execute(query.execution_options(stream_results=True, yield_per=STREAM_CHUNK))
    for row in result.mappings():
        if holds is not None and not holds(dict(row)):
            continue
        sums[row[back]].add(row[source] if source else row)
    return {pid: sums[pid].result(rollup) for pid in parent_ids}


def _rollup_in_sql(conn, child, child_table, back, rollup, parent_ids, tables_for):
    """The rollups by one GROUP BY query, or None when SQL could not give exactly them."""
    from metamodel.jsonlogic.sql import compile_filter

    aggregate = rollup.doc["aggregate"]
    source = rollup.doc.get("field")
    rule = rollup.doc.get("filter")
    if source and child.fields[source].storage not in (field_types.INTEGER, field_types.DECIMAL):
        return None
    condition = None
    if rule is not None:
        # The evaluator reads a row as stored: a dotted name does not follow the reference.
        if any(not name or "." in name for name, _ in variables(rule)):
            return None
        try:
            condition = compile_filter(rule, child, child_table, context=None, table_for=tables_for)
        except RuleError:
            return None
    key = child_table.c[back]
    columns = [key, func.count()]
    if source:
        value = child_table.c[source]
        columns += [func.sum(value), func.count(value), func.min(value), func.max(value)]
    query = select(*columns).where(key.in_(parent_ids), child_table.c.deleted_at.is_(None))
    if condition is not None:
        query = query.where(condition)
    try:
        with conn.begin_nested():
            rows = conn.execute(query.group_by(key)).all()
    except DBAPIError:
        return None  # e.g. SQLite's integer overflow in sum(): count the slow way
    values = {pid: _Aggregate(aggregate).result(rollup) for pid in parent_ids}
    for row in rows:
        if aggregate == "count":
            values[row[0]] = row[1]
            continue
        total, numbers, low, high = row[2], row[3], row[4], row[5]
        if aggregate == "sum":
            values[row[0]] = fit(_number(total) if total is not None else Decimal(0), rollup)
        elif not numbers:
            values[row[0]] = None
        elif aggregate == "avg":
            values[row[0]] = fit(_number(total) / numbers, rollup)
        else:
            values[row[0]] = fit(_number(low if aggregate == "min" else high), rollup)
    return values


def refresh_parents(
    conn: Connection,
    runtime: EntityRuntime,
    pending: dict[str, set[int]],
    runtime_of: Callable[[str], EntityRuntime],
    propagate: Callable[[Connection, EntityRuntime, dict, dict, set[str]], None],
    tables_for,
) -> int:
    """Refresh, once per parent, the rollups over ``runtime``'s entity; the parents updated.

    ``pending`` maps each reference that rollups read back through (``deal.account``
    is ``account``) to the ids the new records point at. ``propagate`` carries a
    changed parent further (lookups and rollups reading it), as the record service
    does after each write.
    """
    groups: dict[tuple[str, str], list[FieldModel]] = {}
    for parent, rollup in runtime.rollups_over_me:
        back = rollup.rollup_children()[1].name
        groups.setdefault((parent.name, back), []).append(rollup)
    updated = 0
    for (parent_name, back), rollups in groups.items():
        parent = runtime_of(parent_name)
        table = parent.table
        ids = sorted(pending.get(back, ()))
        for start in range(0, len(ids), PARENT_BATCH):
            batch = ids[start : start + PARENT_BATCH]
            fresh = {
                r.name: rollup_values(
                    conn, runtime.entity, runtime.table, back, r, batch, tables_for
                )
                for r in rollups
            }
            formulas = [Formula(f) for f in parent.formulas]
            names = list(fresh) + [f.name for f in formulas]
            for record in conn.execute(select(table).where(table.c.id.in_(batch))).mappings():
                before = dict(record)
                after = dict(before)
                for name, values in fresh.items():
                    after[name] = values[before["id"]]
                for formula in formulas:
                    after[formula.name] = formula(after, None, {})
                changed = {n for n in names if json_value(after[n]) != json_value(before.get(n))}
                if not changed:
                    continue
                conn.execute(
                    update(table)
                    .where(table.c.id == before["id"])
                    .values({n: after[n] for n in changed})
                )
                updated += 1
                propagate(conn, parent, before, after, changed)
    return updated
