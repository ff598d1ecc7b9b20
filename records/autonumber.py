"""Autonumbers: ``ACC-{YYYY}-{seq:5}`` gives ACC-2026-00001, ACC-2026-00002, ...

Each rendered prefix has its own counter, so a pattern with a year restarts
every year. A number is never reused: the counter only grows, also when the
record that took it is rolled back (so numbers may skip under concurrency).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError

from metamodel.system_tables import sequences

TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|seq(?::(\d))?)\}")


def render(pattern: str, today: dt.date, number: int | None) -> str:
    def token(match: re.Match) -> str:
        name, width = match.group(1), match.group(2)
        if name.startswith("seq"):
            return "{seq}" if number is None else str(number).zfill(int(width or 1))
        return {
            "YYYY": f"{today.year:04d}",
            "YY": f"{today.year % 100:02d}",
            "MM": f"{today.month:02d}",
            "DD": f"{today.day:02d}",
        }[name]

    return TOKEN.sub(token, pattern)


def next_value(conn: Connection, scope: str, pattern: str, today: dt.date) -> str:
    key = f"{scope}:{render(pattern, today, None)}"[:200]
    statement = update(sequences).where(sequences.c.key == key).values(value=sequences.c.value + 1)
    number = conn.execute(statement.returning(sequences.c.value)).scalar()
    if number is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(sequences).values(key=key, value=1))
            number = 1
        except IntegrityError:
            # Another transaction created the counter first: take the next number.
            number = conn.execute(statement.returning(sequences.c.value)).scalar_one()
    return render(pattern, today, number)
