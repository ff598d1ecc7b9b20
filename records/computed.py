"""Computed fields: formulas, lookups and rollups, evaluated on save.

Formulas run through the JsonLogic evaluator, which keeps Decimals exact, so
money is never a float. Lookups copy a field of the referenced record;
rollups aggregate child rows or the records that reference this one. The
service calls :func:`compute` before each write and propagates to the records
that depend on the one it wrote.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, select

from metamodel import field_types
from metamodel.errors import Problem
from metamodel.field_types import ValueProblem
from metamodel.jsonlogic import RuleError, evaluate, truthy
from metamodel.model import FieldModel

from .errors import ValidationFailed
from .rule_data import rule_data
from .runtime import EntityRuntime


def compute(
    conn: Connection,
    runtime: EntityRuntime,
    record: dict[str, Any],
    tables_for,
    child_rows: dict[str, list[dict]] | None = None,
    context: dict | None = None,
) -> dict[str, Any]:
    """The values of every computed field of ``record`` (which is not modified)."""
    values = dict(record)
    for fld in runtime.lookups:
        values[fld.name] = lookup_value(conn, fld, values, tables_for)
    for fld in runtime.rollups:
        values[fld.name] = rollup_value(conn, fld, values, tables_for, child_rows or {})
    for fld in runtime.formulas:
        data = rule_data(conn, runtime.entity, values, fld.doc["expression"], tables_for)
        values[fld.name] = formula_value(fld, data, context)
    return {f.name: values[f.name] for f in runtime.lookups + runtime.rollups + runtime.formulas}


def lookup_value(conn, fld: FieldModel, values: dict, tables_for) -> Any:
    via = fld.entity.fields[fld.doc["via"]]
    target_id = values.get(via.name)
    if target_id is None:
        return None
    table = tables_for(via.target)
    return conn.execute(select(table.c[fld.doc["field"]]).where(table.c.id == target_id)).scalar()


def rollup_value(conn, fld: FieldModel, values: dict, tables_for, child_rows: dict) -> Any:
    child_entity, back_reference = fld.rollup_children()
    aggregate = fld.doc["aggregate"]
    source = fld.doc.get("field")
    rule = fld.doc.get("filter")
    if back_reference is None:
        rows = child_rows.get(fld.doc["via"], [])
    else:
        if values.get("id") is None:
            return _aggregate(aggregate, [], fld)
        table = tables_for(child_entity)
        rows = [
            dict(row._mapping)
            for row in conn.execute(
                select(table).where(
                    table.c[back_reference.name] == values["id"], table.c.deleted_at.is_(None)
                )
            )
        ]
    if rule is not None:
        rows = [
            row
            for row in rows
            if _holds(rule, rule_data(conn, child_entity, row, rule, tables_for))
        ]
    picked = [row.get(source) for row in rows] if source else rows
    return _aggregate(aggregate, picked, fld)


def _holds(rule, row: dict) -> bool:
    try:
        return truthy(evaluate(rule, row))
    except RuleError:
        return False


def _aggregate(aggregate: str, picked: list, fld: FieldModel) -> Any:
    if aggregate == "count":
        return len(picked)
    present = [value for value in picked if value is not None]
    if aggregate in ("min", "max") and present and not all(_numeric(v) for v in present):
        # Dates, datetimes and texts order as themselves (e.g. the last contact date).
        return fit((min if aggregate == "min" else max)(present), fld)
    numbers = [n for n in (_number(value) for value in present) if n is not None]
    if aggregate == "sum":
        result = sum(numbers, Decimal(0))
    elif not numbers:
        return None
    elif aggregate == "avg":
        result = sum(numbers, Decimal(0)) / len(numbers)
    else:
        result = min(numbers) if aggregate == "min" else max(numbers)
    return fit(result, fld)


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return Decimal(int(value))
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def formula_value(fld: FieldModel, values: dict, context: dict | None) -> Any:
    try:
        result = evaluate(fld.doc["expression"], values, context)
    except RuleError:
        return None
    return fit(result, fld)


def fit(result: Any, fld: FieldModel) -> Any:
    """A computed result as a value of the field's column: rounded half up to its scale."""
    if result is None:
        return None
    spec = fld.value_spec
    kind = field_types.get(spec["type"]).storage
    if kind == field_types.DECIMAL or kind == field_types.INTEGER:
        if isinstance(result, bool) or (isinstance(result, str) and not result.strip()):
            return None
        number = _number(result)
        if number is None or not number.is_finite():
            return None
        scale = 0 if kind == field_types.INTEGER else field_types.decimal_scale(spec)
        digits = 18 if kind == field_types.INTEGER else field_types.decimal_precision(spec) - scale
        if abs(number) >= Decimal(10) ** digits:
            raise ValidationFailed(
                [Problem(f"/{fld.name}", f"is computed as {number}, too large to store")]
            )
        rounded = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
        return int(rounded) if kind == field_types.INTEGER else rounded
    if kind == field_types.BOOLEAN:
        return truthy(result)
    if kind == field_types.STRING and not isinstance(result, str):
        result = _js_text(result)
    try:
        return field_types.get(spec["type"]).coerce(result, {**spec, "_converting": True})
    except ValueProblem:
        return None


def _js_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
