"""What a rule compiled to SQL is made of: branches, guards and a few SQL functions.

A compiled value is a :data:`Term`: a list of branches ``(guard, value)`` whose
guards are mutually exclusive and together always hold, so exactly one branch
applies to each record. A guard is a SQL boolean that is never NULL (only
``IS NULL``, ``IS TRUE``, comparisons of non-null values and their ``AND``, ``OR``
and ``NOT``), or a Python bool when it is known at compile time. Because no guard
is ever NULL, ``NOT`` is safe everywhere: SQL's three-valued logic never leaks
into a result.

A branch's value is one of

* :class:`Lit`, a value known at compile time (the JavaScript value, possibly
  ``UNDEFINED``): literals, context variables, and the NULL of a column;
* :class:`Col`, a column (or correlated subquery) that is not NULL where its
  guard holds, of a known kind: ``string``, ``integer``, ``decimal``, ``date`` or
  ``datetime``. Booleans never appear as columns: a boolean column is split into
  the branches ``IS TRUE`` → true and ``IS FALSE`` → false, so everything a rule
  can do with a boolean is decided at compile time;
* :class:`Opaque`, a value whose truth is known but that cannot be compared (the
  list ``missing`` returns).

A nullable column ``x`` is thus ``[(x IS NULL, Lit(None)), (x IS NOT NULL, Col(x))]``
and a comparison ``(x, "<", 1)`` is worked out branch by branch: the evaluator
itself decides the NULL branch (``null < 1`` is true in JavaScript) and SQL only
ever compares values that are not NULL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, and_, false, literal, not_, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

from .errors import RuleError
from .values import truthy

STRING, INTEGER, DECIMAL, DATE, DATETIME = "string", "integer", "decimal", "date", "datetime"
NUMBERS = (INTEGER, DECIMAL)
TEMPORAL = (DATE, DATETIME)

# Past this many branches a rule is refused rather than compiled into huge SQL.
MAX_BRANCHES = 512

Guard = ColumnElement | bool


@dataclass(frozen=True, eq=False)
class Lit:
    value: Any


@dataclass(frozen=True, eq=False)
class Col:
    expr: ColumnElement
    kind: str
    type: TypeEngine  # literals compared with the column are bound through it
    what: str  # names the value in messages: "'amount'"
    # The declared range of an integer field (min and max), for arithmetic; None: unknown.
    bounds: tuple[int, int] | None = None


@dataclass(frozen=True, eq=False)
class Opaque:
    truthy: bool
    what: str


Value = Lit | Col | Opaque
Term = list[tuple[Guard, Value]]


# --- guards ---------------------------------------------------------------------


def conj(*guards: Guard) -> Guard:
    parts = []
    for guard in guards:
        if guard is True:
            continue
        if guard is False:
            return False
        parts.append(guard)
    if not parts:
        return True
    return parts[0] if len(parts) == 1 else and_(*parts)


def disj(*guards: Guard) -> Guard:
    parts = []
    for guard in guards:
        if guard is False:
            continue
        if guard is True:
            return True
        parts.append(guard)
    if not parts:
        return False
    return parts[0] if len(parts) == 1 else or_(*parts)


def neg(guard: Guard) -> Guard:
    return (not guard) if isinstance(guard, bool) else not_(guard)


def to_sql(guard: Guard) -> ColumnElement:
    if guard is True:
        return true()
    if guard is False:
        return false()
    return guard


# --- terms ----------------------------------------------------------------------


def literal_term(value: Any) -> Term:
    return [(True, Lit(value))]


def predicate_term(guard: Guard) -> Term:
    """The boolean a comparison returns: true where ``guard`` holds, false elsewhere."""
    if isinstance(guard, bool):
        return literal_term(guard)
    return [(guard, Lit(True)), (neg(guard), Lit(False))]


def checked(term: Term) -> Term:
    """``term`` without impossible branches, refused when it grew too large."""
    term = [(guard, value) for guard, value in term if guard is not False]
    check_size(len(term))
    return term


def check_size(count: int) -> None:
    if count > MAX_BRANCHES:
        raise RuleError("the rule is too complex to be used as a filter")


def value_truth(value: Value) -> Guard:
    """JsonLogic truthiness of one branch's value."""
    if isinstance(value, Lit):
        return truthy(value.value)
    if isinstance(value, Opaque):
        return value.truthy
    if value.kind == STRING:
        return value.expr != literal("", String())
    if value.kind in NUMBERS:
        return value.expr != literal(0, value.type)
    return True  # a date or datetime is a non-empty string


def term_truth(term: Term) -> Guard:
    return disj(*(conj(guard, value_truth(value)) for guard, value in term))


def bindable(text: str) -> str:
    """``text`` as a SQL string literal may hold it, else RuleError."""
    if "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text):
        raise RuleError(f"the string {text!r} cannot be used in a filter (NUL or lone surrogate)")
    return text


def text_literal(text: str) -> ColumnElement:
    return literal(bindable(text), String())


# --- SQL functions that differ between SQLite and PostgreSQL ----------------------


class code_point_order(FunctionElement):
    """Text ordered by code point (PostgreSQL: the "C" collation; SQLite: BINARY)."""

    type = String()
    inherit_cache = True


@compiles(code_point_order)
def _code_point_order(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(code_point_order, "postgresql")
def _code_point_order_pg(element, compiler, **kw):
    return f'({compiler.process(element.clauses, **kw)} COLLATE "C")'


class position(FunctionElement):
    """``position(haystack, needle)``: 1-based, 0 when absent, 1 for an empty needle."""

    type = Integer()
    inherit_cache = True


@compiles(position)
def _position(element, compiler, **kw):
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(position, "postgresql")
def _position_pg(element, compiler, **kw):
    return f"strpos({compiler.process(element.clauses, **kw)})"


class iso_date(FunctionElement):
    """A date as the rule sees it: ``YYYY-MM-DD``."""

    type = String()
    inherit_cache = True


@compiles(iso_date)
def _iso_date(element, compiler, **kw):
    # SQLite stores dates as exactly this text.
    return compiler.process(element.clauses, **kw)


@compiles(iso_date, "postgresql")
def _iso_date_pg(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD')"


class iso_datetime(FunctionElement):
    """A datetime as the rule sees it: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds)."""

    type = String()
    inherit_cache = True


@compiles(iso_datetime)
def _iso_datetime(element, compiler, **kw):
    # SQLite stores naive UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'.
    text = compiler.process(element.clauses, **kw)
    return f"(substr({text}, 1, 10) || 'T' || substr({text}, 12, 8) || 'Z')"


@compiles(iso_datetime, "postgresql")
def _iso_datetime_pg(element, compiler, **kw):
    text = compiler.process(element.clauses, **kw)
    return f"to_char({text} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


class whole_seconds(FunctionElement):
    """A datetime truncated to the second (what the rule sees of it), still ordered."""

    inherit_cache = True


@compiles(whole_seconds)
def _whole_seconds(element, compiler, **kw):
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 19)"


@compiles(whole_seconds, "postgresql")
def _whole_seconds_pg(element, compiler, **kw):
    return f"date_trunc('second', {compiler.process(element.clauses, **kw)})"


def iso_text(value: Col) -> ColumnElement:
    """The text a rule sees of a string, date or datetime column."""
    if value.kind == DATE:
        return iso_date(value.expr)
    if value.kind == DATETIME:
        return iso_datetime(value.expr)
    return value.expr
