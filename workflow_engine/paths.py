"""Reading a record the way a rule does: dotted paths follow references.

``account.account_manager`` on a deal reads the deal's ``account`` reference,
loads that account and reads its ``account_manager``. Guards and step
conditions see referenced records nested, as every rule of the project does
(``records.rule_data``); field approvers read one value along a path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from metamodel.jsonlogic import evaluate, truthy
from metamodel.model import EntityModel
from records.rule_data import rule_data


def value_at(conn: Connection, tables_for, entity: EntityModel, record: dict, path: str) -> Any:
    """The value at ``path`` (``field`` or ``reference.field...``); None where a link is empty."""
    head, _, rest = path.partition(".")
    value = record.get(head)
    if not rest:
        return value
    fld = entity.fields.get(head)
    if value is None or fld is None or fld.type_name != "reference" or fld.target is None:
        return None
    table = tables_for(fld.target)
    row = conn.execute(
        select(table).where(table.c.id == value, table.c.deleted_at.is_(None))
    ).first()
    if row is None:
        return None
    return value_at(conn, tables_for, fld.target, dict(row._mapping), rest)


def holds(conn: Connection, tables_for, entity, record: dict, rule, context: dict) -> bool:
    """Does ``rule`` hold for ``record``? No rule always holds."""
    if rule is None:
        return True
    data = rule_data(conn, entity, record, rule, tables_for)
    return truthy(evaluate(rule, data, context))
