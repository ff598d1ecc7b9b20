"""Read-only questions the planner asks the data before it changes a schema.

Every answer that refuses a change names the records behind it (their ids), so
a user can go and fix them. Examples are capped; counts are exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Connection, Table, func, select, true

from .field_types import ValueProblem

EXAMPLES = 20
SCAN_BATCH = 5000


def row_count(conn: Connection, table: Table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def example_ids(conn: Connection, table: Table, condition) -> list[int]:
    query = select(table.c.id).where(condition).order_by(table.c.id).limit(EXAMPLES)
    return list(conn.execute(query).scalars())


def missing_values(conn: Connection, table: Table, column: Column) -> tuple[int, list[int]] | None:
    """How many records (the recycle bin included) have no value, and which."""
    count = conn.execute(
        select(func.count()).select_from(table).where(column.is_(None))
    ).scalar_one()
    if not count:
        return None
    return count, example_ids(conn, table, column.is_(None))


def duplicate_values(conn: Connection, table: Table, column: Column) -> list[tuple[Any, list[int]]]:
    """Values held by more than one live record, with the records holding them."""
    live = table.c.deleted_at.is_(None)
    values = list(
        conn.execute(
            select(column)
            .where(live, column.is_not(None))
            .group_by(column)
            .having(func.count() > 1)
            .order_by(column)
            .limit(EXAMPLES)
        ).scalars()
    )
    return [(value, example_ids(conn, table, live & (column == value))) for value in values]


def _scan(conn: Connection, table: Table, column: Column, live_only: bool = False):
    """Every (id, value) with a value, in id order, a batch at a time."""
    last = None
    while True:
        query = (
            select(table.c.id, column)
            .where(column.is_not(None), table.c.deleted_at.is_(None) if live_only else true())
            .order_by(table.c.id)
            .limit(SCAN_BATCH)
        )
        if last is not None:
            query = query.where(table.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def conversion_failures(
    conn: Connection, table: Table, column: Column, convert: Callable[[Any], Any]
) -> tuple[list[tuple[int, Any, str]], int]:
    """Records whose value does not convert (at most EXAMPLES), and how many values there are."""
    failures: list[tuple[int, Any, str]] = []
    seen = 0
    for row_id, value in _scan(conn, table, column):
        seen += 1
        try:
            convert(value)
        except ValueProblem as problem:
            failures.append((row_id, value, problem.message))
            if len(failures) >= EXAMPLES:
                break
    return failures, seen


def misfit_count(
    conn: Connection, table: Table, column: Column, check: Callable[[Any], Any]
) -> int:
    """How many values the field's new rules would refuse."""
    misfits = 0
    for _row_id, value in _scan(conn, table, column):
        try:
            check(value)
        except ValueProblem:
            misfits += 1
    return misfits


def value_count(conn: Connection, column: Column) -> int:
    """How many records hold a value in ``column``."""
    return conn.execute(select(func.count()).where(column.is_not(None))).scalar_one()


def converted_duplicates(
    conn: Connection, table: Table, column: Column, convert: Callable[[Any], Any]
) -> list[tuple[Any, list[int]]]:
    """Values that live records would share once converted ("7" and "007" both become 7)."""
    holders: dict[str, tuple[Any, list[int]]] = {}
    for row_id, value in _scan(conn, table, column, live_only=True):
        try:
            converted = convert(value)
        except ValueProblem:
            continue
        if converted is not None:
            key = json.dumps(converted, sort_keys=True, default=str)
            holders.setdefault(key, (converted, []))[1].append(row_id)
    shared = [(value, ids[:EXAMPLES]) for value, ids in holders.values() if len(ids) > 1]
    return shared[:EXAMPLES]


def converted_empty(conn: Connection, table: Table, column: Column, convert) -> list[int]:
    """Records whose value converts to no value at all (an empty list becoming a select)."""
    empty = []
    for row_id, value in _scan(conn, table, column):
        try:
            if convert(value) is None:
                empty.append(row_id)
        except ValueProblem:
            continue
    return empty


def live_row_count(conn: Connection, table: Table) -> int:
    """Records outside the recycle bin (what a partial unique index covers)."""
    query = select(func.count()).select_from(table).where(table.c.deleted_at.is_(None))
    return conn.execute(query).scalar_one()
