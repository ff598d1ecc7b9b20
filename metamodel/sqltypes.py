"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no exact numeric type (NUMERIC affinity stores REAL), so decimals are
stored there as integers scaled by 10**scale: exact, and still ordered and summed
correctly by SQL. PostgreSQL gets native NUMERIC. Datetimes are UTC on both.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, DateTime, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

UTC = dt.UTC


class ExactDecimal(TypeDecorator):
    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 2):
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if dialect.name != "sqlite":
            return number
        scaled = number.scaleb(self.scale)
        if scaled != scaled.to_integral_value():
            # Callers validate scale first; refusing here guards against silent rounding.
            raise ValueError(f"{number} has more than {self.scale} decimal places")
        return int(scaled)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale)
        return Decimal(value)

    def __repr__(self) -> str:
        return f"ExactDecimal({self.precision}, {self.scale})"


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes in and out; naive input is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type():
    # None is "no value" (SQL NULL), not the JSON literal null: required checks see it.
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
