"""The operations a migration plan is made of.

Each operation is plain data: it says in words what it does (``describe``) and
applies itself through a :class:`~metamodel.ddl.Migrator` (``apply``). The
planner decides which operations a change needs; the migrator runs them in
one transaction, or captures their SQL for a preview.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, ForeignKeyConstraint, Index, MetaData, Table, Text, func, update
from sqlalchemy.schema import AddConstraint
from sqlalchemy.sql.elements import quoted_name
from sqlalchemy.types import TypeEngine

from .identifiers import physical_name
from .messages import Message

if TYPE_CHECKING:
    from .ddl import Migrator

# Rows converted per round trip when a column changes type.
CONVERT_BATCH = 5000


@dataclass
class Operation:
    def describe(self) -> str:
        raise NotImplementedError

    def apply(self, m: Migrator) -> None:
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        return {"op": type(self).__name__, "description": self.describe()}


@dataclass
class CreateTable(Operation):
    table: Table
    what: str

    def describe(self):
        return Message("create {what} (table {table})", what=self.what, table=self.table.name)

    def apply(self, m):
        # Foreign keys are added later, once every table of the plan exists.
        columns = [c._copy() for c in self.table.columns]
        m.op.create_table(m.name(self.table.name), *columns)


@dataclass
class RenameTable(Operation):
    old: str
    new: str
    what: str

    def describe(self):
        return Message(
            "rename {what} (table {old} to {new}), keeping its records",
            what=self.what,
            old=self.old,
            new=self.new,
        )

    def apply(self, m):
        m.op.rename_table(m.name(self.old), m.name(self.new))


@dataclass
class Note(Operation):
    """A step with no DDL of its own, said so the plan reads completely."""

    words: str

    def describe(self):
        return self.words

    def apply(self, m):
        pass


@dataclass
class AddColumn(Operation):
    table: str
    column: Column
    what: str

    def describe(self):
        return Message("add {what}", what=self.what)

    def apply(self, m):
        column = self.column._copy()
        column.nullable = True
        m.op.add_column(m.name(self.table), column)


@dataclass
class RenameColumn(Operation):
    table: str
    old: str
    new: str
    what: str

    def describe(self):
        return Message("rename {what}, keeping its values", what=self.what)

    def apply(self, m):
        m.op.alter_column(m.name(self.table), m.name(self.old), new_column_name=m.name(self.new))


@dataclass
class SetNullable(Operation):
    table: str
    column: str
    nullable: bool
    existing_type: TypeEngine
    what: str

    def describe(self):
        if self.nullable:
            return Message("allow a value in {what}", what=self.what)
        return Message("require a value in {what}", what=self.what)

    def apply(self, m):
        m.alter_column(
            self.table, self.column, nullable=self.nullable, existing_type=self.existing_type
        )


@dataclass
class Backfill(Operation):
    table: Table
    column: str
    value: Any
    what: str

    def describe(self):
        return Message(
            "fill {what} with {value} in every existing record",
            what=self.what,
            value=repr(self.value),
        )

    def apply(self, m):
        column = self.table.c[self.column]
        m.execute(update(self.table).where(column.is_(None)).values({column: self.value}))


@dataclass
class ConvertColumn(Operation):
    """A type change: copy every value, converted, into a column of the new type.

    Values are converted in Python by the same code the planner used to check
    them, so what was checked is exactly what is written.
    """

    old_table: Table
    column: str
    new_column: Column
    convert: Callable[[Any], Any]
    what: str
    rows: int = 0

    def describe(self):
        return Message("convert {what} ({rows} values)", what=self.what, rows=self.rows)

    def apply(self, m):
        table_name = self.old_table.name
        temporary = physical_name(self.column, prefix="_new_")
        scratch = self.new_column._copy()
        scratch.name = temporary
        scratch.key = temporary
        scratch.nullable = True
        m.op.add_column(m.name(table_name), scratch)
        scratch_table = Table(
            table_name,
            MetaData(),
            self.old_table.c.id._copy(),
            self.old_table.c[self.column]._copy(),
            scratch._copy(),
        )
        m.copy_converted(scratch_table, self.column, temporary, self.convert)
        m.op.drop_column(m.name(table_name), m.name(self.column))
        m.op.alter_column(m.name(table_name), temporary, new_column_name=m.name(self.column))


@dataclass
class DropIndex(Operation):
    index: Index

    def describe(self):
        return Message("drop index {index}", index=self.index.name)

    def apply(self, m):
        m.drop_index(self.index)


@dataclass
class CreateIndex(Operation):
    index: Index

    def describe(self):
        said = {
            "index": self.index.name,
            "table": self.index.table.name,
            "columns": ", ".join(c.name for c in self.index.columns),
        }
        if self.index.unique:
            return Message("create unique index {index} on {table} ({columns})", **said)
        return Message("create index {index} on {table} ({columns})", **said)

    def apply(self, m):
        m.create_index(self.index)


@dataclass
class CreateExtension(Operation):
    """A PostgreSQL extension the plan needs (``IF NOT EXISTS``: one serves the database)."""

    name: str
    schema: str
    purpose: str

    def describe(self):
        return Message(
            "install the PostgreSQL extension {name} in {schema} ({purpose})",
            name=self.name,
            schema=self.schema,
            purpose=self.purpose,
        )

    def apply(self, m):
        name, schema = m.quote(self.name), m.quote(self.schema)
        m.execute_sql(f"CREATE EXTENSION IF NOT EXISTS {name} SCHEMA {schema}")


@dataclass
class CreateTrigramIndex(Operation):
    """A search index on PostgreSQL: GIN over the trigrams of ``lower(column)``."""

    name: str
    table: str
    column: str
    schema: str  # where pg_trgm's operator classes are
    what: str

    def describe(self):
        return Message(
            "create search index {index} on {table} (trigrams of {what})",
            index=self.name,
            table=self.table,
            what=self.what,
        )

    def apply(self, m):
        table = Table(m.name(self.table), MetaData(), Column(m.name(self.column), Text))
        searched = func.lower(table.c[self.column]).label("searched")
        opclass = f"{m.quote(self.schema)}.gin_trgm_ops"
        index = Index(
            quoted_name(self.name, quote=True),
            searched,
            postgresql_using="gin",
            postgresql_ops={"searched": opclass},
        )
        m.create_index(index)


@dataclass
class DropSearchIndex(Operation):
    name: str

    def describe(self):
        return Message("drop search index {index}", index=self.name)

    def apply(self, m):
        m.execute_sql(f"DROP INDEX {m.quote(self.name)}")


@dataclass
class CreateSearchTable(Operation):
    """A search index on SQLite: an FTS5 trigram table, its triggers, filled from the table."""

    name: str
    entity: str
    columns: tuple[str, ...]
    statements: list[str]

    def describe(self):
        return Message(
            "create search index {index} on '{entity}' ({columns}) and fill it from every record",
            index=self.name,
            entity=self.entity,
            columns=", ".join(self.columns),
        )

    def apply(self, m):
        for statement in self.statements:
            m.execute_sql(statement)


@dataclass
class DropSearchTable(Operation):
    name: str
    triggers: tuple[str, ...]

    def describe(self):
        return Message("drop search index {index}", index=self.name)

    def apply(self, m):
        for trigger in self.triggers:
            m.execute_sql(f"DROP TRIGGER IF EXISTS {m.quote(trigger)}")
        m.execute_sql(f"DROP TABLE IF EXISTS {m.quote(self.name)}")


@dataclass
class DropForeignKey(Operation):
    constraint: ForeignKeyConstraint

    def describe(self):
        return Message("drop foreign key {key}", key=self.constraint.name)

    def apply(self, m):
        m.op.drop_constraint(
            m.name(self.constraint.name), m.name(self.constraint.table.name), type_="foreignkey"
        )


@dataclass
class CreateForeignKey(Operation):
    constraint: ForeignKeyConstraint

    def describe(self):
        return Message(
            "create foreign key {key} to {table}",
            key=self.constraint.name,
            table=self.constraint.referred_table.name,
        )

    def apply(self, m):
        m.execute(AddConstraint(self.constraint))


@dataclass
class DropColumn(Operation):
    table: str
    column: str
    what: str
    values: int = 0

    def describe(self):
        return Message(
            "destroy {what}: {values} values are deleted for good",
            what=self.what,
            values=self.values,
        )

    def apply(self, m):
        m.op.drop_column(m.name(self.table), m.name(self.column))


@dataclass
class DropTable(Operation):
    table: str
    what: str
    rows: int = 0

    def describe(self):
        return Message(
            "destroy {what}: {rows} records are deleted for good", what=self.what, rows=self.rows
        )

    def apply(self, m):
        m.op.drop_table(m.name(self.table))
