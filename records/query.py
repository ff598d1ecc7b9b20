"""Listing records: filter (JsonLogic compiled to SQL), search, sort, pages, counts.

What a user may read is part of the query itself (``:own`` and row rules), so
pages and counts never include records the user cannot see. Counts stay cheap
on big tables: past ``COUNT_CAP`` matching rows the total is an estimate, and
the result says so.

Search looks for the typed text, case-insensitively, anywhere in the readable
text fields (``lower(col) LIKE``, through the search index where there is one:
``metamodel/search_index.py``), and among the options of the readable choice
fields by value and by label in every language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, cast, exists, false, func, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB, array

from metamodel.errors import Problem
from metamodel.jsonlogic import RuleError, variables
from metamodel.messages import Message
from metamodel.model import EntityModel, FieldModel
from metamodel.search_index import (
    MIN_INDEXED_CHARS,
    fts_candidates,
    fts_ready,
    searched_fields,
)

from . import access
from .actor import Actor
from .errors import Forbidden, ValidationFailed
from .runtime import EntityRuntime

COUNT_CAP = 10_000
MAX_PER_PAGE = 200
MAX_PAGE = 10**9
SORTABLE_SYSTEM = ("id", "created_at", "updated_at", "owner", "version")
CHOICE_TYPES = ("select", "multiselect")


@dataclass
class ListQuery:
    filter: Any = None
    q: str | None = None
    sort: str | None = None
    page: int = 1
    per_page: int = 50


def compile_rule(rule, runtime: EntityRuntime, tables_for, context: dict | None, path: str):
    from metamodel.jsonlogic.sql import compile_filter

    try:
        return compile_filter(
            rule, runtime.entity, runtime.table, context=context, table_for=tables_for
        )
    except RuleError as error:
        raise ValidationFailed([Problem(path, str(error))]) from None


def visible(actor: Actor, runtime: EntityRuntime, tables_for, context: dict) -> Select:
    """Live records of the entity that ``actor`` may read."""
    table = runtime.table
    extent = access.grant(actor, runtime.entity, "read")
    if extent is None:
        raise Forbidden(Message("you may not read {entity} records", entity=runtime.entity.named))
    query = select(table).where(table.c.deleted_at.is_(None))
    if extent == "own":
        query = query.where(table.c.owner == actor.id)
    rules = access.row_rules_for(actor, runtime.entity)
    if rules is not None:
        compiled = [
            compile_rule(rule, runtime, tables_for, context, "/row_rules") for rule in rules
        ]
        query = query.where(or_(*compiled) if compiled else false())
    return query


def check_readable(actor: Actor, entity: EntityModel, query: ListQuery) -> None:
    """Filtering or sorting by a field one may not read would reveal it: refuse."""
    hidden = {f.name for f in entity.fields.values() if not access.readable(actor, f)}
    if not hidden:
        return
    used = {name.split(".")[0] for name, _ in variables(query.filter)} if query.filter else set()
    for path, names in (("/filter", used), ("/sort", _sort_names(query.sort))):
        for name in sorted(names & hidden):
            raise ValidationFailed(
                [Problem(path, Message("you may not read '{field}'", field=name))]
            )


def _sort_names(sort: str | None) -> set[str]:
    return {part.strip().lstrip("-+") for part in (sort or "").split(",") if part.strip()}


def search_condition(
    conn: Connection, runtime: EntityRuntime, text: str, actor: Actor | None = None
):
    """Records whose readable fields hold ``text``: typed text anywhere, or an option's name."""
    entity, table = runtime.entity, runtime.table
    typed = text.replace("\x00", "").strip()
    if not typed:
        return true()
    conditions = []
    texts = [f for f in searched_fields(entity) if actor is None or access.readable(actor, f)]
    if texts:
        conditions.append(text_condition(conn, runtime, texts, typed))
    for fld in entity.fields.values():
        kind = fld.value_spec["type"]
        if kind not in CHOICE_TYPES or not fld.has_column:
            continue
        if actor is not None and not access.readable(actor, fld):
            continue
        values = matching_options(fld, typed)
        if values:
            conditions.append(_holds_option(conn, table.c[fld.name], kind, values))
    return or_(*conditions) if conditions else false()


def text_condition(conn: Connection, runtime: EntityRuntime, fields: list[FieldModel], typed: str):
    """Records where one of ``fields`` holds ``typed``, in any case (``lower``)."""
    table = runtime.table
    needle = typed.lower()
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    likes = or_(*(func.lower(table.c[f.name]).like(f"%{escaped}%", escape="\\") for f in fields))
    # A trigram index has nothing to look up for one or two characters: those
    # read every row. On PostgreSQL the LIKE itself uses the index (a GIN index
    # on lower(col)); on SQLite the FTS table names the candidates, which the
    # LIKE then checks, so what is found stays exactly what it matches.
    indexed = {f.name for f in searched_fields(runtime.entity)}
    if (
        len(needle) < MIN_INDEXED_CHARS
        or any(f.name not in indexed for f in fields)
        or not _fts_ready(conn, runtime)
    ):
        return likes
    candidates = fts_candidates(runtime.entity, [f.name for f in fields], needle)
    return and_(table.c.id.in_(candidates), likes)


def _fts_ready(conn: Connection, runtime: EntityRuntime) -> bool:
    """Has the database the entity's FTS table, as this metadata version defines it?

    Asked once per version: a database applied before search indexes existed has
    none until its next apply (which records a version), and searches without.
    """
    if conn.dialect.name != "sqlite":
        return False
    ready = runtime.cache.get("fts_ready")
    if ready is None:
        ready = runtime.cache["fts_ready"] = fts_ready(conn, runtime.entity)
    return ready


def matching_options(fld: FieldModel, typed: str) -> list[str]:
    """The option values of a choice field whose value or label (any language) holds ``typed``."""
    needle = typed.casefold()
    found = []
    for option in fld.value_spec.get("options", []):
        label = option.get("label")
        names = [option["value"], *([label] if isinstance(label, str) else (label or {}).values())]
        if any(needle in name.casefold() for name in names):
            found.append(option["value"])
    return found


def _holds_option(conn: Connection, column, kind: str, values: list[str]):
    if kind == "select":
        return column.in_(values)
    # A multiselect holds a JSON list of values.
    if conn.dialect.name == "postgresql":
        return cast(column, JSONB).op("?|")(array(values))
    chosen = func.json_each(column).table_valued("value")
    return exists().where(chosen.c.value.in_(values))


def order_by(entity: EntityModel, table, sort: str | None):
    """ORDER BY clauses for ``sort``, then the id: newest first when nothing else is asked.

    The id breaks ties in the direction of the last sort key, so that a sort on an
    indexed field is one walk of the index (``-amount`` with an index on
    ``(stage, amount)``: SQLite's indexes end with the row id, so a filter on the
    stage and a sort on the amount need neither a sort of the rows nor a second
    pass to order equal amounts; PostgreSQL orders the few equal amounts as it goes).
    """
    clauses = []
    descending = True
    for part in (sort or "").split(","):
        name = part.strip()
        if not name:
            continue
        descending = name.startswith("-")
        name = name.lstrip("-+")
        fld = entity.fields.get(name)
        if name not in SORTABLE_SYSTEM and (
            fld is None or not fld.has_column or fld.storage == "json"
        ):
            raise ValidationFailed(
                [Problem("/sort", f"cannot sort by '{name}': not a stored field")]
            )
        column = table.c[name]
        clauses.append(column.desc() if descending else column.asc())
    clauses.append(table.c.id.desc() if descending else table.c.id.asc())
    return clauses


def count(conn: Connection, query: Select, cap: int | None = None) -> tuple[int, bool]:
    """The number of rows ``query`` returns, or ``cap`` (default COUNT_CAP) and True past it."""
    cap = COUNT_CAP if cap is None else cap
    capped = query.with_only_columns(query.selected_columns[0]).order_by(None).limit(cap + 1)
    found = conn.execute(select(func.count()).select_from(capped.subquery())).scalar_one()
    if found <= cap:
        return found, False
    return cap, True


def page_bounds(query: ListQuery) -> tuple[int, int]:
    problems = []
    if not isinstance(query.page, int) or not 1 <= query.page <= MAX_PAGE:
        problems.append(Problem("/page", f"must be a whole number from 1 to {MAX_PAGE}"))
    if not isinstance(query.per_page, int) or not 1 <= query.per_page <= MAX_PER_PAGE:
        problems.append(Problem("/per_page", f"must be a whole number from 1 to {MAX_PER_PAGE}"))
    if problems:
        raise ValidationFailed(problems)
    return (query.page - 1) * query.per_page, query.per_page
