"""Hypothesis strategies for app documents and record values (see test_migration_properties).

Every field definition drawn here is valid for the document format, and every value
is drawn as a user might type it; the test runs it through the field type's
``coerce`` before it stores it, so what reaches the database is always valid for
the definition it was written under.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from metamodel import field_types
from metamodel.field_types import (
    DEFAULT_TEXT_LENGTH,
    ValueProblem,
    decimal_precision,
    decimal_scale,
)
from metamodel.sqltypes import UTC

# The field types the test exercises (all with a column of their own).
FIELD_TYPES = (
    "text",
    "long_text",
    "integer",
    "decimal",
    "currency",
    "percent",
    "boolean",
    "date",
    "datetime",
    "select",
    "multiselect",
    "email",
    "rating",
    "reference",
)
DECIMAL_TYPES = ("decimal", "currency", "percent")
# Types that may be unique or indexed (the others are not indexable).
UNIQUE_TYPES = frozenset(FIELD_TYPES) - {"long_text", "multiselect"}
OPTION_POOL = ("a", "b", "c", "1", "0", "2", "yes", "no", "2026-03-01", "a@b.co")

# Text a user may type that some other type can read: numbers, words for true and
# false, dates, e-mail addresses, option values, with and without stray blanks.
INTERESTING_TEXT = (
    "",
    "a",
    "b",
    "c",
    "0",
    "1",
    "2",
    "12",
    " 7 ",
    "-4",
    "+5",
    "12.0",
    "3.50",
    "0.125",
    "1e3",
    "007",
    "yes",
    "No",
    "true",
    "f",
    "是",
    "2026-03-01",
    "2026-02-30",
    "2026-03-01T09:30:00Z",
    "2026-03-01T00:00:00+08:00",
    "2026-03-01 00:00:00",
    "a@b.co",
    "x.y@example.com",
    " a@b.co",
    "客户 A",
    "x" * 30,
)
TEXT_ALPHABET = st.characters(
    min_codepoint=32, max_codepoint=0x9FFF, exclude_categories=("Cs", "Cc", "Co", "Cn")
)
EMAILS = ("a@b.co", "x.y@example.com", "sales@acme.cn", "張@例子.中国")


def text_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(INTERESTING_TEXT),
        st.text(TEXT_ALPHABET, max_size=12),
    )


def decimal_values(doc: dict) -> st.SearchStrategy[Decimal]:
    scale = decimal_scale(doc)
    whole = min(decimal_precision(doc) - scale, 9)
    top = 10**whole - 1
    return st.one_of(
        st.sampled_from([Decimal(0), Decimal(1), Decimal(2)]),
        st.integers(-top, top).map(Decimal),
        st.integers(-(10 ** (whole + scale)) + 1, 10 ** (whole + scale) - 1).map(
            lambda n: Decimal(n).scaleb(-scale)
        ),
    )


def datetime_values() -> st.SearchStrategy[dt.datetime]:
    return st.one_of(
        st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31)).map(
            lambda d: dt.datetime.combine(d, dt.time(0), UTC)
        ),
        st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2040, 12, 31), timezones=st.just(UTC)),
    )


def raw_values(doc: dict, reference_ids: list[int]) -> st.SearchStrategy[Any]:
    """Values for a field of definition ``doc``, before coercion (mostly valid)."""
    kind = doc["type"]
    if kind in ("text", "long_text"):
        return text_values()
    if kind == "integer":
        return st.one_of(st.sampled_from([0, 1, 2, -1, 7]), st.integers(-(10**6), 10**6))
    if kind in DECIMAL_TYPES:
        return decimal_values(doc)
    if kind == "boolean":
        return st.booleans()
    if kind == "date":
        return st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31))
    if kind == "datetime":
        return datetime_values()
    options = [o["value"] for o in doc.get("options", [])]
    if kind == "select":
        return st.sampled_from(options)
    if kind == "multiselect":
        return st.lists(st.sampled_from(options), unique=True, max_size=len(options))
    if kind == "email":
        return st.one_of(
            st.sampled_from(EMAILS),
            st.from_regex(r"[a-z]{1,6}@[a-z]{1,6}\.(com|cn)", fullmatch=True),
        )
    if kind == "rating":
        return st.integers(0, doc.get("max", 5))
    if kind == "reference":
        return st.sampled_from(reference_ids) if reference_ids else st.none()
    raise AssertionError(f"no values for {kind}")


def as_option(value: Any) -> str | None:
    """A stored value as the option a select holding it would need, if it can be one."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, dt.datetime):
        text = value.isoformat().replace("+00:00", "Z")
    elif isinstance(value, int | dt.date | str):
        text = value.isoformat() if isinstance(value, dt.date) else str(value)
    else:
        return None
    return text if 1 <= len(text) <= 100 else None


@st.composite
def options(draw, seen: tuple[str, ...] = ()) -> list[dict]:
    """Options of a select: from a pool, and most of the values the field already holds."""
    pool = list(dict.fromkeys([*seen, *OPTION_POOL]))
    chosen = [value for value in seen if draw(st.integers(0, 9)) > 0]
    chosen += draw(st.lists(st.sampled_from(pool), max_size=3))
    chosen = list(dict.fromkeys(chosen)) or [draw(st.sampled_from(pool))]
    return [{"value": value} for value in chosen]


@st.composite
def type_keys(draw, kind: str, targets: list[str], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The type-specific keys of a new definition of type ``kind``."""
    keys: dict[str, Any] = {}
    if kind == "text" and draw(st.booleans()):
        keys["max_length"] = draw(st.sampled_from([5, 10, 40, DEFAULT_TEXT_LENGTH, 1000]))
    elif kind in DECIMAL_TYPES:
        scale = draw(st.sampled_from([None, 0, 1, 2, 4]))
        if scale is not None:
            keys["scale"] = scale
        if kind == "currency":
            keys["currency"] = draw(st.sampled_from(["CNY", "USD"]))
        elif kind == "decimal" and draw(st.booleans()):
            keys["precision"] = draw(st.sampled_from([6, 10, 18]))
    elif kind in ("select", "multiselect"):
        keys["options"] = draw(options(seen))
    elif kind == "rating" and draw(st.booleans()):
        keys["max"] = draw(st.integers(3, 10))
    elif kind == "reference":
        keys["target"] = draw(st.sampled_from(targets))
    return keys


DEFAULTS = {
    "text": "n/a",
    "long_text": "n/a",
    "integer": 0,
    "decimal": "1.5",
    "currency": 0,
    "percent": 10,
    "boolean": False,
    "date": "2026-01-01",
    "datetime": "2026-01-01T00:00:00Z",
    "email": "a@b.co",
    "rating": 3,
}


def _fits(value: Any, doc: dict) -> bool:
    try:
        field_types.get(doc["type"]).coerce(value, doc)
    except ValueProblem:
        return False
    return True


@st.composite
def field_docs(draw, name: str, targets: list[str], kinds=FIELD_TYPES) -> dict[str, Any]:
    """A new field: any type, sometimes required (with or without a default) or unique."""
    kind = draw(st.sampled_from([k for k in kinds if k != "reference" or targets]))
    doc: dict[str, Any] = {"name": name, "type": kind, **draw(type_keys(kind, targets))}
    if draw(st.integers(0, 5)) == 0:
        doc["required"] = True
        if kind in ("select", "multiselect"):
            default = doc["options"][0]["value"]
            doc_default = default if kind == "select" else [default]
        else:
            doc_default = DEFAULTS.get(kind)
        if doc_default is not None and _fits(doc_default, doc) and draw(st.booleans()):
            doc["default"] = doc_default
    if kind in UNIQUE_TYPES:
        for key in ("unique", "indexed"):
            if draw(st.integers(0, 5)) == 0:
                doc[key] = True
    return doc
