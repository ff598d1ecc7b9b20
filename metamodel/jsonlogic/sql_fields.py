"""Reading a field, a system column or a dotted path through references, for SQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Boolean, Table, select

from .. import field_types
from ..model import EntityModel, FieldModel
from ..sqltypes import UtcDateTime
from ..tables import entity_columns
from .errors import RuleError
from .sql_values import DATE, DATETIME, DECIMAL, INTEGER, STRING, Col, Lit, Term, checked, conj
from .variables import variables

TableFor = Callable[[EntityModel], Table]

_KINDS = {
    field_types.STRING: STRING,
    field_types.INTEGER: INTEGER,
    field_types.DECIMAL: DECIMAL,
    field_types.DATE: DATE,
    field_types.DATETIME: DATETIME,
    field_types.REFERENCE: INTEGER,
}


@dataclass
class Reads:
    """The reference paths a rule follows (``account``) and reads bare, as an id."""

    followed: set[str] = field(default_factory=set)
    bare: set[str] = field(default_factory=set)


def read_path(
    entity: EntityModel, table: Table, table_for: TableFor, path: str, default: Any, reads: Reads
) -> Term:
    """The value of ``{"var": [path, default]}`` (default None when not given).

    Each reference on the way is a correlated scalar subquery on an alias of the
    target's table; when the path stops at an empty reference the value is the
    default, as the evaluator gives it.
    """
    base, source, reference = table, table, None
    segments = path.split(".")
    for index, name in enumerate(segments):
        fld = _field(entity, base, name, path)
        column = source.c[name]
        if reference is None:
            expr = column
        else:
            query = select(column).where(source.c.id == reference)
            expr = query.correlate(table).scalar_subquery()
        here = ".".join(segments[: index + 1])
        if index == len(segments) - 1:
            break
        if fld is None or fld.storage != field_types.REFERENCE or fld.target is None:
            raise RuleError(f"'{path}': '{here}' is not a reference field that can be followed")
        reads.followed.add(here)
        entity, reference = fld.target, expr
        base = table_for(entity)
        source = base.alias()
    if fld is not None and fld.storage == field_types.REFERENCE:
        reads.bare.add(path)
    nullable = reference is not None or column.nullable
    branches: Term = []
    if reference is not None and default is not None:
        branches.append((reference.is_(None), Lit(default)))
        null = conj(reference.is_not(None), expr.is_(None))
    else:
        null = expr.is_(None) if nullable else False
    branches.append((null, Lit(None)))
    present = expr.is_not(None) if nullable else True
    if isinstance(column.type, Boolean):
        branches += [(expr.is_(True), Lit(True)), (expr.is_(False), Lit(False))]
    else:
        kind = _kind(fld, column, path)
        bind_type = BigInteger() if kind == INTEGER else column.type
        bounds = _declared_bounds(fld) if kind == INTEGER else None
        branches.append((present, Col(expr, kind, bind_type, f"'{path}'", bounds)))
    return checked(branches)


def followed_references(rule: Any, entity: EntityModel) -> set[str]:
    """The reference paths ``rule`` reads through (``"account"``, ``"account.parent"``).

    In the record's rule data each of these holds the referenced record's data
    instead of its id (see the module docstring).
    """
    paths: set[str] = set()
    for name, _ in variables(rule):
        current: EntityModel | None = entity
        segments = name.split(".")
        for index, segment in enumerate(segments[:-1]):
            found = current.fields.get(segment) if current is not None else None
            if found is None or found.storage != field_types.REFERENCE or found.target is None:
                break
            paths.add(".".join(segments[: index + 1]))
            current = found.target
    return paths


def _field(entity: EntityModel, table: Table, name: str, path: str) -> FieldModel | None:
    """The field ``name`` of ``entity``, or None for a system column; else RuleError."""
    fld = entity.fields.get(name)
    if fld is not None:
        if not fld.has_column:
            raise RuleError(f"'{path}': the field '{name}' ({fld.type_name}) has no column")
        return fld
    if name not in entity_columns() or name not in table.c:
        raise RuleError(f"'{path}': entity '{entity.name}' has no field '{name}'")
    return None


def _kind(fld, column, path: str) -> str:
    if fld is None:  # a system column
        return DATETIME if isinstance(column.type, UtcDateTime) else INTEGER
    kind = _KINDS.get(fld.storage)
    if kind is None:
        raise RuleError(f"'{path}' ({fld.type_name}) cannot be used in a filter")
    return kind


def _declared_bounds(fld) -> tuple[int, int] | None:
    """The range an integer field's values are validated to, if it declares one."""
    if fld is None or fld.computed:
        return None  # a rollup's sum is not bounded by its source's min and max
    spec = fld.value_spec
    if fld.type_name == "rating":
        return 0, spec.get("max", 5)
    low, high = spec.get("min"), spec.get("max")
    if isinstance(low, int) and isinstance(high, int):
        return low, high
    return None
