"""Drift: does the live database still look like the published version says?

Someone may have dropped a column by hand, or restored an old backup. Planning
against a schema that is not there would fail halfway or lose data, so a plan
first compares the tables it expects with the tables it finds.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect

from .errors import Problem
from .model import AppModel
from .tables import SchemaBuilder


def drift_problems(conn: Connection, expected: SchemaBuilder, app: AppModel) -> list[Problem]:
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    drifted = f"the database has drifted from version {app.version}"
    problems: list[Problem] = []
    for table in list(expected.tables.values()) + list(expected.link_tables.values()):
        name = str(table.name)
        if name not in existing:
            problems.append(Problem("", f"{drifted}: table {name} is missing"))
            continue
        found = {column["name"]: column for column in inspector.get_columns(name)}
        for column in table.columns:
            actual = found.get(str(column.name))
            if actual is None:
                problems.append(Problem("", f"{drifted}: column {name}.{column.name} is missing"))
            elif not column.nullable and actual["nullable"] and not column.primary_key:
                message = f"{drifted}: column {name}.{column.name} accepts empty values"
                problems.append(Problem("", message))
    return problems
