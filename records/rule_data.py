"""A record as a rule reads it, the same in Python as in SQL.

A rule that follows a reference (``account.tier``) sees that reference as the
referenced record's data, nested; a rule that does not sees its id. This is
the convention of the SQL compiler (``metamodel.jsonlogic.sql``), so a row
rule gives the same answer when a page is listed in SQL and when one record is
opened in Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from metamodel.jsonlogic.sql import followed_references
from metamodel.model import EntityModel


def rule_data(conn: Connection, entity: EntityModel, record: dict, rule: Any, tables_for) -> dict:
    paths = sorted(followed_references(rule, entity), key=lambda path: path.count("."))
    return follow(conn, entity, record, paths, tables_for) if paths else record


def follow(
    conn: Connection,
    entity: EntityModel,
    record: dict,
    paths: list[str],
    tables_for,
    cache: dict | None = None,
) -> dict:
    """``record`` with the references at ``paths`` (shallowest first) read as nested data.

    ``cache`` (table, id) -> row, when given, keeps the records read for the next
    call (an import reading the same few accounts for every row).
    """
    data = dict(record)
    for path in paths:
        *parents, last = path.split(".")
        holder: Any = data
        owner = entity
        for segment in parents:
            holder = holder.get(segment) if isinstance(holder, dict) else None
            owner = owner.fields[segment].target
        if not isinstance(holder, dict) or isinstance(holder.get(last), dict):
            continue
        target_id = holder.get(last)
        if target_id is None:
            continue
        table = tables_for(owner.fields[last].target)
        key = (table, target_id)
        if cache is not None and key in cache:
            found = cache[key]
        else:
            row = conn.execute(select(table).where(table.c.id == target_id)).first()
            found = dict(row._mapping) if row is not None else None
            if cache is not None:
                cache[key] = found
        # A copy: following a deeper path writes into it.
        holder[last] = dict(found) if found is not None else None
    return data
