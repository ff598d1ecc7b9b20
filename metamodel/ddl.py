"""Running migration operations: Alembic's Operations API on a live connection.

SQLite cannot alter a column in place, so nullability changes go through
Alembic's batch mode (copy the table, swap it in); everything else is a plain
ALTER on both databases. The migrator can also record every statement it
sends, which is how a plan previews its SQL: run inside a transaction that is
rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, Table, bindparam, event, select
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlalchemy.sql.elements import quoted_name

from .operations import CONVERT_BATCH


def _quote_reflected(_inspector, _table, column_info):
    # Columns reflected for batch mode must reach SQL quoted, like every other name.
    column_info["name"] = quoted_name(column_info["name"], quote=True)


class Migrator:
    def __init__(self, connection: Connection):
        self.conn = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self.op = Operations(MigrationContext.configure(connection))
        self.statements: list[str] | None = None

    @staticmethod
    def name(value) -> quoted_name:
        return quoted_name(str(value), quote=True)

    def execute(self, statement) -> None:
        self.conn.execute(statement)

    def execute_sql(self, sql: str) -> None:
        """Run SQL text as it is, without bind parameters (a ``:`` in it is just text)."""
        self.conn.exec_driver_sql(sql)

    def quote(self, name) -> str:
        """``name`` as a quoted identifier, for SQL text."""
        return self.conn.dialect.identifier_preparer.quote_identifier(str(name))

    def alter_column(self, table: str, column: str, **kwargs: Any) -> None:
        if not self.sqlite:
            self.op.alter_column(self.name(table), self.name(column), **kwargs)
            return
        with self.op.batch_alter_table(
            self.name(table),
            recreate="always",
            reflect_kwargs={"listeners": [("column_reflect", _quote_reflected)]},
        ) as batch:
            batch.alter_column(self.name(column), **kwargs)

    def create_index(self, index) -> None:
        self.conn.execute(CreateIndex(index))

    def drop_index(self, index) -> None:
        self.conn.execute(DropIndex(index))

    def copy_converted(
        self, table: Table, source: str, target: str, convert: Callable[[Any], Any]
    ) -> None:
        """Write ``convert(value)`` of every row's ``source`` into ``target``, in batches."""
        ids, values = table.c.id, table.c[source]
        statement = (
            table.update().where(ids == bindparam("row_id")).values({target: bindparam("value")})
        )
        last = None
        while True:
            query = (
                select(ids, values).where(values.is_not(None)).order_by(ids).limit(CONVERT_BATCH)
            )
            if last is not None:
                query = query.where(ids > last)
            rows = self.conn.execute(query).all()
            if not rows:
                return
            self.conn.execute(
                statement, [{"row_id": row_id, "value": convert(value)} for row_id, value in rows]
            )
            last = rows[-1][0]

    def record(self) -> list[str]:
        """Start recording every statement sent; returns the list it fills."""
        self.statements = []

        def remember(_conn, _cursor, statement, parameters, _context, executemany):
            text = statement.strip()
            if executemany:
                text += f"  -- for {len(parameters)} rows"
            self.statements.append(text)

        event.listen(self.conn, "before_cursor_execute", remember)
        self._remember = remember
        return self.statements

    def stop_recording(self) -> None:
        if self.statements is not None:
            event.remove(self.conn, "before_cursor_execute", self._remember)
