"""Rows as PostgreSQL's COPY text format, made where the writing does not wait.

psycopg formats each row as it is written, holding the GIL. An import writes
on a second thread (``write_behind.py``) while the main thread prepares the
next batch, so the writer would take turns with it for the GIL and the server
would wait for its rows. Formatted beforehand, on the main thread, a batch is
one block of bytes the writer hands to libpq with the GIL released.

Only the types an import's bind values have are formatted here (text, whole
numbers, booleans, finite decimals and floats, dates, times, datetimes); for
anything else :func:`copy_text` answers None and psycopg formats the batch.
The text is that of the server's own input functions; a test writes every
kind of value both ways and reads the same values back.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from operator import is_
from types import NoneType
from typing import Any

NULL = "\\N"
# COPY text: backslash, tab, newline and carriage return are escaped; all else is literal.
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Unformattable(Exception):
    """A value of a type this module does not format."""


def copy_text(rows: list[list[Any]]) -> bytes | None:
    """``rows`` (values as the driver takes them) as COPY text, or None."""
    if not rows:
        return b""
    try:
        columns = [_column(values) for values in zip(*rows, strict=True)]
    except Unformattable:
        return None
    lines = ["\t".join(cells) for cells in zip(*columns, strict=True)]
    lines.append("")
    return "\n".join(lines).encode()


def _column(values: tuple[Any, ...]) -> list[str]:
    """One column's texts. A column that mostly repeats the value above (the batch's
    timestamp, a default) is formatted a value per run; one of a single type (and
    nulls) by a loop in C (``map``); the rest value by value."""
    if 2 * sum(map(is_, values, values[1:])) >= len(values):
        return _one_by_one(values)
    kinds = set(map(type, values))
    nulls = NoneType in kinds
    kinds.discard(NoneType)
    if not kinds:
        return [NULL] * len(values)
    if len(kinds) == 1:
        (kind,) = kinds
        present = [value for value in values if value is not None] if nulls else values
        texts = _same_kind(kind, present)
        if texts is not None:
            if not nulls:
                return texts
            filled = iter(texts)
            return [NULL if value is None else next(filled) for value in values]
    return _one_by_one(values)


def _same_kind(kind: type, values) -> list[str] | None:
    if kind is str:
        if _SPECIAL.search("".join(values)) is None:
            return values
        return [value.translate(_ESCAPES) for value in values]
    if kind is int:
        return list(map(str, values))
    if kind is Decimal:
        return list(map(str, values)) if all(map(Decimal.is_finite, values)) else None
    if kind is dt.date:
        # Few distinct days, many rows: each day once (equal dates print alike).
        days = {day: day.isoformat() for day in set(values)}
        return list(map(days.__getitem__, values))
    if kind is dt.datetime or kind is dt.time:
        return list(map(kind.isoformat, values))
    if kind is bool:
        return ["t" if value else "f" for value in values]
    return None


def _one_by_one(values) -> list[str]:
    texts: list[str] = []
    append = texts.append
    last: Any = _one_by_one  # nothing a row holds
    done = ""
    for value in values:
        if value is not last:
            done = text(value)
            last = value
        append(done)
    return texts


def text(value: Any) -> str:
    """One value as COPY text."""
    if value is None:
        return NULL
    kind = type(value)
    if kind is str or isinstance(value, str):
        return value.translate(_ESCAPES) if _SPECIAL.search(value) else value
    if kind is bool:
        return "t" if value else "f"
    if kind is int:
        return str(value)
    if kind is Decimal:
        if not value.is_finite():
            raise Unformattable(value)
        return str(value)
    if kind is float:
        if not math.isfinite(value):
            raise Unformattable(value)
        return repr(value)
    if kind is dt.datetime or kind is dt.date or kind is dt.time:
        return value.isoformat()
    raise Unformattable(value)
