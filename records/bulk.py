"""Writing many new records at once: the fast path imports take.

The record service writes one record per statement, which is right for forms and
the API but far too slow for a file of a million rows. Here the same rows go in
by batches: one multi-row INSERT ... RETURNING id per batch, one block of
autonumbers per batch, one multi-row INSERT into the audit log, and the rollups
of parent records refreshed once per affected parent at the end (aggregated by
the database, see ``computed.RollupPlan``), so a parent with a million children
costs no memory.

Callers validate and compute every value first (see ``importing.py``); nothing
here checks a value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Dialect,
    String,
    Table,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from metamodel import search_index
from metamodel.model import FieldModel
from metamodel.system_tables import audit_log, sequences

from .actor import Actor
from .autonumber import render
from .computed import computing, rollup_plan
from .copy_text import copy_text
from .rule_data import follow
from .runtime import EntityRuntime
from .serialize import json_value

# Parent ids refreshed per round trip.
PARENT_BATCH = 500
# Bind parameter conversions remembered per column and batch, for values of these types.
MEMO_SIZE = 1000
# Imported ids entered in SQLite's FTS table per statement (see SearchIndexInBulk).
FTS_RANGE = 20_000
REMEMBERED = frozenset({Decimal, dt.date, dt.datetime, str, int, bool})


def new_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` ids for new rows of ``table``, taken before the rows are written.

    PostgreSQL: from the id column's sequence, as a default id would be. SQLite:
    after the largest id, which is what SQLite itself picks; the caller's write
    transaction (BEGIN IMMEDIATE) holds the database lock, so nobody else takes them.
    """
    return NewIds(table).take(conn, count)


class NewIds:
    """Ids for new rows of one table, for the length of one transaction.

    PostgreSQL: the sequence's name is looked up once (asked for with every id, the
    lookup cost ten times the ids themselves), and ids are taken ``block`` at a time:
    an import's writer waits on every round trip. Ids taken and not used are a gap
    in the sequence, as a rolled-back insert leaves one.
    SQLite: exactly the ids asked for, after the largest id, every time: a reserve
    would stop being after the largest id as soon as rows were written.
    """

    def __init__(self, table: Table, block: int = 1):
        self.table = table
        self.block = block
        self.sequence: str | None = None
        self.reserve: list[int] = []

    def take(self, conn: Connection | Callable[[], Connection], count: int) -> list[int]:
        """``count`` new ids; ``conn`` may be a function giving the connection, called
        only if the database must be asked (an import's writer may be using it)."""
        if count <= 0:
            return []
        if len(self.reserve) >= count:
            taken, self.reserve = self.reserve[:count], self.reserve[count:]
            return taken
        if callable(conn):
            conn = conn()
        if conn.dialect.name != "postgresql":
            last = conn.execute(select(func.max(self.table.c.id))).scalar() or 0
            return list(range(last + 1, last + 1 + count))
        if self.sequence is None:
            query = select(func.pg_get_serial_sequence(self.table.name, "id"))
            self.sequence = conn.execute(query).scalar_one()
        wanted = max(self.block, count - len(self.reserve))
        taken = conn.exec_driver_sql(
            "SELECT array_agg(nextval(%(sequence)s::regclass)) FROM generate_series(1, %(count)s)",
            {"sequence": self.sequence, "count": wanted},
        ).scalar_one()
        self.reserve += sorted(taken)
        taken, self.reserve = self.reserve[:count], self.reserve[count:]
        return taken


@dataclass
class Prepared:
    """Rows converted for the driver, their id slots empty until ``assign`` (see
    ``prepare_rows``); ``copy`` is them as COPY text, once made (PostgreSQL)."""

    rows: list[dict[str, Any]]
    names: list[str]
    values: list[list[Any]]
    ids: list[int] | None = None
    copy: bytes | None = None

    def assign(self, ids: list[int]) -> None:
        for row, item, record_id in zip(self.rows, self.values, ids, strict=True):
            row["id"] = item[0] = record_id
        self.ids = ids


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (dicts with the same keys, no ``id``); their new ids, in order."""
    return write_prepared(conn, table, prepare_rows(conn.dialect, table, rows))


def prepare_rows(dialect: Dialect, table: Table, rows: list[dict[str, Any]]) -> Prepared:
    """``rows`` as the driver takes them, each value converted by its column type's own
    bind processor, as SQLAlchemy would convert it, but once per distinct value
    rather than through the per-row machinery of a compiled statement.

    Needs no database: an import prepares one batch while the last is written.
    """
    if not rows:
        return Prepared(rows, [], [])
    names = ["id", *(name for name in rows[0] if name != "id")]
    if len(names) > 2:
        cells = itemgetter(*names[1:])
        values = [[None, *cells(row)] for row in rows]
    else:  # itemgetter of one name gives the value itself, not a tuple
        values = [[None, *(row[name] for name in names[1:])] for row in rows]
    for index, name in enumerate(names):
        processor = bind_processor(dialect, table, name)
        if processor is not None and index:
            _process_column(values, index, processor)
    return Prepared(rows, names, values)


def _process_column(values: list[list[Any]], index: int, processor: Callable) -> None:
    """Convert one column of every row, each distinct value once.

    A batch repeats its values: the same timestamp object in every row, and
    often the same percentages, dates and choices.
    """
    memo: dict[Any, tuple[type, Any]] = {}
    last: Any = _NOTHING
    done: Any = None
    for item in values:
        value = item[index]
        if value is last:
            item[index] = done
            continue
        kind = type(value)
        if value is None or kind is JsonText:
            continue
        if kind in REMEMBERED:
            # Equal values of one type convert alike (1 == True: the type is checked).
            known = memo.get(value)
            if known is None or known[0] is not kind:
                known = (kind, processor(value))
                if len(memo) < MEMO_SIZE:
                    memo[value] = known
            converted = known[1]
        else:
            converted = processor(value)
        item[index] = converted
        last, done = value, converted


_NOTHING = object()


def write_prepared(
    conn: Connection, table: Table, prepared: Prepared, ids: NewIds | None = None
) -> list[int]:
    """Write prepared rows: ids taken first (``ids``, by default ``new_ids``), then one
    COPY (PostgreSQL) or one executemany (SQLite); the new ids, in order."""
    if not prepared.rows:
        return []
    if prepared.ids is None:
        prepared.assign((ids or NewIds(table)).take(conn, len(prepared.rows)))
    if prepared.copy is not None:
        write_copy_text(conn, table, prepared.names, prepared.copy)
    elif not write_rows(conn, table, prepared.names, prepared.values):
        conn.execute(insert(table), prepared.rows)
    return prepared.ids


def bind_processor(dialect: Dialect, table: Table, name: str) -> Callable[[Any], Any] | None:
    return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)


def copy_statement(conn: Connection, table: Table, names: list[str]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    table_name = conn.dialect.identifier_preparer.format_table(table)
    return f"COPY {table_name} ({', '.join(quote(name) for name in names)}) FROM STDIN"


@contextmanager
def driver_errors(conn: Connection, statement: str) -> Iterator[None]:
    """The driver's errors, raised as ``conn.execute`` would raise them: SQLAlchemy's
    (an IntegrityError is one), for the rows written past SQLAlchemy here."""
    base = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except base as error:
        raise DBAPIError.instance(statement, None, error, base, dialect=conn.dialect) from error


def write_copy_text(conn: Connection, table: Table, names: list[str], data: bytes) -> None:
    """PostgreSQL (psycopg): rows already in COPY text format (see ``copy_text.py``)."""
    statement = copy_statement(conn, table, names)
    cursor = conn.connection.driver_connection.cursor()
    try:
        with driver_errors(conn, statement), cursor.copy(statement) as copy:
            copy.write(data)
    finally:
        cursor.close()


def write_rows(conn: Connection, table: Table, names: list[str], values: list) -> bool:
    """Write rows of values already converted for the driver; False on an unknown driver."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    table_name = dialect.identifier_preparer.format_table(table)
    columns = ", ".join(quote(name) for name in names)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        data = copy_text(values)
        if data is not None:
            write_copy_text(conn, table, names, data)
            return True
        statement = copy_statement(conn, table, names)
        cursor = conn.connection.driver_connection.cursor()
        try:
            with driver_errors(conn, statement), cursor.copy(statement) as copy:
                for item in values:
                    copy.write_row(item)
        finally:
            cursor.close()
    elif dialect.name == "sqlite":
        marks = ", ".join("?" for _ in names)
        statement = f"INSERT INTO {table_name} ({columns}) VALUES ({marks})"
        cursor = conn.connection.driver_connection.cursor()
        try:
            with driver_errors(conn, statement):
                cursor.executemany(statement, values)
        finally:
            cursor.close()
    else:
        return False
    return True


class SearchIndexInBulk:
    """SQLite: an import's rows entered in the entity's FTS table a range at a time.

    The FTS table is kept in step by a trigger per row, and FTS5 writes its
    pending entries out at the end of every statement: entered one row at a time
    they cost ten times the row itself. For the length of an import the insert
    trigger is dropped, and the imported rows are entered with one INSERT ...
    SELECT per ``FTS_RANGE`` ids; the trigger is back before the transaction
    ends. The import holds SQLite's only write lock, so no other writer can
    miss the trigger, and readers never see the transaction's inside.
    """

    def __init__(self, conn: Connection, runtime: EntityRuntime):
        self.conn = conn
        self.index = None
        if conn.dialect.name == "sqlite" and search_index.fts_ready(conn, runtime.entity):
            self.index = search_index.fts_index(runtime.entity)
        self.first: int | None = None
        self.last: int | None = None

    def __enter__(self) -> SearchIndexInBulk:
        if self.index is not None:
            trigger = search_index.fts_triggers(self.index.name)[0]
            self.trigger = self.index.definition()[trigger]
            self.conn.exec_driver_sql(f'DROP TRIGGER "{trigger}"')
        return self

    def add(self, ids: Iterable[int | None]) -> None:
        """Enter these new records (``None``: not written) once their range is full."""
        if self.index is None:
            return
        written = [i for i in ids if i is not None]
        if not written:
            return
        low, high = min(written), max(written)
        self.first = low if self.first is None else min(self.first, low)
        self.last = high if self.last is None else max(self.last, high)
        if self.last - self.first >= FTS_RANGE:
            self.flush()

    def flush(self) -> None:
        if self.index is None or self.first is None:
            return
        # Ids past the table's largest are the import's own (new_ids), all of this range.
        self.conn.exec_driver_sql(
            f"{self.index.fill()} WHERE id BETWEEN ? AND ?", (self.first, self.last)
        )
        self.first = self.last = None

    def __exit__(self, kind, error, traceback) -> None:
        if self.index is None:
            return
        if error is None:
            self.flush()
        self.conn.exec_driver_sql(self.trigger)


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
    entries: Iterable[tuple[int, str, dt.datetime]],
    ids: NewIds | None = None,
) -> None:
    """One audit entry per (record id, comment, time), in one multi-row INSERT.

    The entries of an import say where each record came from (the comment) and
    hold no field values: those are the record's own until a change, which the
    audit log then records with its values before and after. Writing every value
    of every row again as JSON was a fifth of an import's time.
    """
    entries = list(entries)
    if not entries:
        return
    fixed = {
        "app": runtime.app_name,
        "entity": runtime.name,
        "action": action,
        "actor_id": actor.id,
        "on_behalf_of": None,
        "changes": NO_CHANGES,
    }
    names = ["id", "record_id", "comment", "at", *fixed]
    audit_ids = (ids or NewIds(audit_log)).take(conn, len(entries))
    plain = all(bind_processor(conn.dialect, audit_log, name) is None for name in names[:3])
    if conn.dialect.name not in ("sqlite", "postgresql") or not plain:
        rows = [
            {"id": i, "record_id": r, "comment": c, "at": at, **fixed, "changes": {}}
            for i, (r, c, at) in zip(audit_ids, entries, strict=True)
        ]
        conn.execute(insert(audit_log), rows)
        return
    # Ids, record ids and comments go to the driver as they are; the values every
    # row shares are converted once, and each time once (a batch shares one).
    constants = []
    for name, value in fixed.items():
        processor = bind_processor(conn.dialect, audit_log, name)
        convert = value is not None and type(value) is not JsonText and processor is not None
        constants.append(processor(value) if convert else value)
    tail = tuple(constants)
    time_processor = bind_processor(conn.dialect, audit_log, "at") or (lambda value: value)
    times: dict[dt.datetime, Any] = {}
    values = []
    for audit_id, (record_id, comment, at) in zip(audit_ids, entries, strict=True):
        bound = times.get(at)
        if bound is None:
            bound = times[at] = time_processor(at)
        values.append((audit_id, record_id, comment, bound, *tail))
    write_rows(conn, audit_log, names, values)


def audit_import(
    conn: Connection,
    runtime: EntityRuntime,
    actor: Actor,
    written: list[tuple[int, int, dt.datetime]],
    source: str,
    ids: NewIds | None = None,
) -> None:
    """The "import" audit entries of records just written: (record id, line, time).

    Each entry says "imported from SOURCE, row LINE". Where ids and lines run on
    together (a batch of valid rows), the database makes a run's entries itself
    with one INSERT ... SELECT from the records (their ``created_at`` is the
    entry's time): sent row by row, the entries cost half as much as the records.
    What is left (rows between rejected ones) goes as rows.
    """
    prefix = f"imported from {source}, row "
    loose: list[tuple[int, str, dt.datetime]] = []
    for first, count in _runs(written):
        record_id, line, _ = written[first]
        if count >= MIN_AUDIT_RUN:
            _audit_run(conn, runtime, actor, record_id, line, count, prefix)
        else:
            loose += [(r, f"{prefix}{n}", t) for r, n, t in written[first : first + count]]
    audit_rows(conn, runtime, actor, "import", loose, ids)


# Runs shorter than this are written as rows: a statement each would cost more.
MIN_AUDIT_RUN = 16


def _runs(written: list[tuple[int, int, dt.datetime]]) -> Iterator[tuple[int, int]]:
    """(start, length) of each stretch where both the id and the line go up by one."""
    start = 0
    for index in range(1, len(written) + 1):
        if index == len(written) or (
            written[index][0] != written[index - 1][0] + 1
            or written[index][1] != written[index - 1][1] + 1
        ):
            yield start, index - start
            start = index


def _audit_run(conn, runtime, actor, first_id, first_line, count, prefix) -> None:
    table = runtime.table
    line = cast(table.c.id - (first_id - first_line), String)
    made = select(
        literal(runtime.app_name, String),
        literal(runtime.name, String),
        table.c.id,
        literal("import", String),
        literal(actor.id, BigInteger),
        table.c.created_at,
        literal({}, audit_log.c.changes.type),
        literal(prefix, String) + line,
    ).where(table.c.id.between(first_id, first_id + count - 1))
    names = ["app", "entity", "record_id", "action", "actor_id", "at", "changes", "comment"]
    conn.execute(insert(audit_log).from_select(names, made))


class JsonText(str):
    """A value already serialised as JSON: ``insert_rows`` writes it as it is."""

    __slots__ = ()


NO_CHANGES = JsonText("{}")


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


# --- rollups of parents --------------------------------------------------------------


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
        plans = [rollup_plan(parent, r, tables_for) for r in rollups]
        formulas = computing(parent, tables_for).formulas
        for start in range(0, len(ids), PARENT_BATCH):
            batch = ids[start : start + PARENT_BATCH]
            fresh = {plan.field.name: plan.values(conn, batch) for plan in plans}
            names = list(fresh) + [formula.name for formula, _paths in formulas]
            for record in conn.execute(select(table).where(table.c.id.in_(batch))).mappings():
                before = dict(record)
                after = dict(before)
                for name, values in fresh.items():
                    after[name] = values[before["id"]]
                for formula, paths in formulas:
                    data = follow(conn, parent.entity, after, paths, tables_for) if paths else after
                    after[formula.name] = formula(data, None, {})
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
