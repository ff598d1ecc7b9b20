"""Listing records: filter (JsonLogic compiled to SQL), search, sort, pages, counts.

What a user may read is part of the query itself (``:own`` and row rules), so
pages and counts never include records the user cannot see. Counts stay cheap
on big tables: past ``COUNT_CAP`` matching rows the total is an estimate, and
the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, false, func, or_, select, true

from metamodel.errors import Problem
from metamodel.jsonlogic import RuleError, variables
from metamodel.model import EntityModel

from . import access
from .actor import Actor
from .errors import Forbidden, ValidationFailed
from .runtime import EntityRuntime

COUNT_CAP = 10_000
MAX_PER_PAGE = 200
MAX_PAGE = 10**9
SORTABLE_SYSTEM = ("id", "created_at", "updated_at", "owner", "version")
SEARCHABLE = ("text", "long_text", "email", "phone", "url", "select", "autonumber")


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
        raise Forbidden(f"you may not read {runtime.name} records")
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
            raise ValidationFailed([Problem(path, f"you may not read '{name}'")])


def _sort_names(sort: str | None) -> set[str]:
    return {part.strip().lstrip("-+") for part in (sort or "").split(",") if part.strip()}


def search_condition(entity: EntityModel, table, text: str, actor: Actor | None = None):
    needle = text.replace("\x00", "").strip().lower()
    if not needle:
        return true()
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    columns = [
        table.c[f.name]
        for f in entity.fields.values()
        if f.has_column
        and f.value_spec["type"] in SEARCHABLE
        and (actor is None or access.readable(actor, f))
    ]
    if not columns:
        return false()
    return or_(*(func.lower(c).like(f"%{escaped}%", escape="\\") for c in columns))


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


def count(conn: Connection, query: Select) -> tuple[int, bool]:
    """The number of rows ``query`` returns, or an estimate past COUNT_CAP."""
    capped = query.with_only_columns(query.selected_columns[0]).order_by(None).limit(COUNT_CAP + 1)
    found = conn.execute(select(func.count()).select_from(capped.subquery())).scalar_one()
    if found <= COUNT_CAP:
        return found, False
    return found - 1, True


def page_bounds(query: ListQuery) -> tuple[int, int]:
    problems = []
    if not isinstance(query.page, int) or not 1 <= query.page <= MAX_PAGE:
        problems.append(Problem("/page", f"must be a whole number from 1 to {MAX_PAGE}"))
    if not isinstance(query.per_page, int) or not 1 <= query.per_page <= MAX_PER_PAGE:
        problems.append(Problem("/per_page", f"must be a whole number from 1 to {MAX_PER_PAGE}"))
    if problems:
        raise ValidationFailed(problems)
    return (query.page - 1) * query.per_page, query.per_page
