"""The recycle bin: records deleted softly, which whoever may delete them may restore.

The record service lists live records only, so the bin has its own query,
built from the same permission rules the service applies to a restore: the
``delete`` grant (``delete:own`` limits it to the user's own records) and the
row rules of the user's roles, compiled by the service's rule compiler.
"""

from __future__ import annotations

from sqlalchemy import false, or_, select

from records import access
from records.actor import Actor
from records.errors import Forbidden
from records.query import compile_rule, count
from records.service import Records


def deleted_page(
    service: Records, actor: Actor, app: str, entity: str, page: int, per_page: int
) -> dict:
    """A page of the bin, most recently deleted first: items, total, total_is_estimate."""
    with service.reading() as conn:
        runtime = service.runtime(app, entity, conn)
        extent = access.grant(actor, runtime.entity, "delete")
        if extent is None:
            raise Forbidden(f"you may not delete or restore {entity} records")
        table = runtime.table
        query = select(table).where(table.c.deleted_at.is_not(None))
        if extent == "own":
            query = query.where(table.c.owner == actor.id)
        rules = access.row_rules_for(actor, runtime.entity)
        if rules is not None:
            context = service.context(actor)
            compiled = [
                compile_rule(rule, runtime, service.tables_for, context, "/row_rules")
                for rule in rules
            ]
            query = query.where(or_(*compiled) if compiled else false())
        total, estimate = count(conn, query)
        rows = conn.execute(
            query.order_by(table.c.deleted_at.desc(), table.c.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        records = [dict(row._mapping) for row in rows]
        return {
            "items": service.serialise_many(conn, actor, runtime, records),
            "total": total,
            "total_is_estimate": estimate,
        }
