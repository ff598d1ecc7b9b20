"""COPY text made by ``copy_text``: what psycopg would send, value for value.

The format is PostgreSQL's, so the round trip talks to the PostgreSQL server
whichever database the suite runs on.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy.engine import make_url

from records.copy_text import copy_text, text

from ..conftest import POSTGRES_SERVER

COLUMNS = {
    "id": "bigint",
    "title": "varchar(255)",
    "notes": "text",
    "whole": "integer",
    "big": "bigint",
    "flag": "boolean",
    "amount": "numeric(18, 2)",
    "ratio": "double precision",
    "day": "date",
    "at": "time",
    "stamped": "timestamptz",
    "plain_stamp": "timestamp",
    "doc": "json",
}
CHINA = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 22, 18, 30, 5, 123456, tzinfo=dt.UTC)
AWKWARD_TEXTS = [
    "",
    " leading and trailing ",
    "tab\there",
    "new\nline",
    "carriage\rreturn\r\n",
    "only\rcarriage returns\r",
    "back\\slash",
    "\\N",
    "\\.",
    "ends with a backslash\\",
    "华东精工机械有限公司 🚀",
    "comma, quote \" and 'single'",
]


def rows() -> list[list]:
    made = []
    for number, awkward in enumerate(AWKWARD_TEXTS, start=1):
        made.append(
            [
                number,
                awkward,
                awkward * 2,
                -(2**31) if number == 1 else number,
                2**62 + number,
                number % 2 == 0,
                Decimal("-0.00") if number == 1 else Decimal(f"{number}1234567890.5{number % 10}"),
                1e-7 * number if number % 3 else 12345.678,
                dt.date(1999 + number, number, 28),
                dt.time(number, 59, 59, 999999 if number % 2 else 0),
                NOW.astimezone(CHINA) if number % 2 else NOW + dt.timedelta(days=number),
                dt.datetime(2026, 1, number, 23, 59),
                json.dumps({"a": [1, "\t"], "b": awkward}, ensure_ascii=False),
            ]
        )
    made.append([99] + [None] * (len(COLUMNS) - 1))
    # A value object repeated down a column (the import's timestamps) is formatted once.
    made.append([100, "repeated", None, 1, 1, True, Decimal("1E+2"), 0.0, None, None, NOW])
    made.append([101, "repeated", None, 1, 1, True, Decimal("1E+2"), 0.0, None, None, NOW])
    for row in made[-2:]:
        row += [None, None]
    return made


@pytest.fixture
def server():
    url = make_url(POSTGRES_SERVER)
    with psycopg.connect(
        host=url.host, port=url.port, dbname=url.database, user=url.username or None
    ) as conn:
        conn.execute("SET TIME ZONE 'Asia/Shanghai'")  # offsets must be written, not assumed
        yield conn
        conn.rollback()


def copied(conn, table: str, fill) -> list[tuple]:
    declared = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    conn.execute(f"CREATE TEMP TABLE {table} ({declared})")
    statement = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        fill(copy)
    return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def test_the_server_reads_back_what_psycopg_itself_would_have_sent(server):
    values = rows()
    data = copy_text(values)
    assert data is not None
    ours = copied(server, f"ours_{uuid.uuid4().hex[:8]}", lambda copy: copy.write(data))

    def by_psycopg(copy):
        for row in values:
            copy.write_row(row)

    theirs = copied(server, f"theirs_{uuid.uuid4().hex[:8]}", by_psycopg)
    assert ours == theirs
    assert [row[1] for row in ours[: len(AWKWARD_TEXTS)]] == AWKWARD_TEXTS
    assert ours[-3][1:] == (None,) * (len(COLUMNS) - 1)
    assert ours[-1][10] == ours[-2][10] == NOW


def test_each_kind_of_value_as_text():
    assert text(None) == "\\N"
    assert text("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert text("\\N") == "\\\\N"
    assert (text(True), text(False), text(0), text(-12)) == ("t", "f", "0", "-12")
    assert text(Decimal("1234.50")) == "1234.50"
    assert text(dt.date(2026, 5, 1)) == "2026-05-01"
    assert text(NOW.astimezone(CHINA)) == "2026-11-23T02:30:05.123456+08:00"


@pytest.mark.parametrize(
    "odd", [Decimal("NaN"), Decimal("Infinity"), float("inf"), b"bytes", [1], {"a": 1}, 1 + 2j]
)
def test_values_it_does_not_format_leave_the_batch_to_psycopg(odd):
    assert copy_text([[1, "fine"], [2, odd]]) is None


def test_no_rows_is_no_text():
    assert copy_text([]) == b""
