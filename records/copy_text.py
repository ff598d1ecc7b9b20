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
        columns = [_column(rows, index) for index in range(len(rows[0]))]
    except Unformattable:
        return None
    lines = ["\t".join(cells) for cells in zip(*columns, strict=True)]
    lines.append("")
    return "\n".join(lines).encode()


def _column(rows: list[list[Any]], index: int) -> list[str]:
    texts: list[str] = []
    append = texts.append
    last: Any = _column  # nothing a row holds
    done = ""
    for row in rows:
        value = row[index]
        if value is last:
            append(done)
            continue
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
