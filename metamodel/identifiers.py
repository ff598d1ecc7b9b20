"""What a metadata name may be, and how it becomes a database identifier.

Names of apps, entities, fields and the rest are identifiers: lower-case ASCII,
at most 30 characters, not a key word either database reserves, not a system
column. Physical names (tables, indexes, constraints) are derived from them
deterministically and always reach SQL as force-quoted identifiers, so no
metadata string is ever spliced into SQL text.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy.sql.elements import quoted_name

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
MAX_LENGTH = 30
# PostgreSQL truncates identifiers beyond 63 bytes; SQLite has no limit.
MAX_PHYSICAL_LENGTH = 63

# PostgreSQL 16, appendix C: the words marked "reserved" and
# "reserved (can be function or type)" in the PostgreSQL column.
POSTGRESQL_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "binary",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "natural",
        "not",
        "notnull",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "overlaps",
        "placing",
        "primary",
        "references",
        "returning",
        "right",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "system_user",
        "table",
        "tablesample",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
    ]
)

# SQLite's documented list of key words (lang_keywords.html), all 147 of them.
SQLITE_KEYWORDS = frozenset(
    [
        "abort",
        "action",
        "add",
        "after",
        "all",
        "alter",
        "always",
        "analyze",
        "and",
        "as",
        "asc",
        "attach",
        "autoincrement",
        "before",
        "begin",
        "between",
        "by",
        "cascade",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "commit",
        "conflict",
        "constraint",
        "create",
        "cross",
        "current",
        "current_date",
        "current_time",
        "current_timestamp",
        "database",
        "default",
        "deferrable",
        "deferred",
        "delete",
        "desc",
        "detach",
        "distinct",
        "do",
        "drop",
        "each",
        "else",
        "end",
        "escape",
        "except",
        "exclude",
        "exclusive",
        "exists",
        "explain",
        "fail",
        "filter",
        "first",
        "following",
        "for",
        "foreign",
        "from",
        "full",
        "generated",
        "glob",
        "group",
        "groups",
        "having",
        "if",
        "ignore",
        "immediate",
        "in",
        "index",
        "indexed",
        "initially",
        "inner",
        "insert",
        "instead",
        "intersect",
        "into",
        "is",
        "isnull",
        "join",
        "key",
        "last",
        "left",
        "like",
        "limit",
        "match",
        "materialized",
        "natural",
        "no",
        "not",
        "nothing",
        "notnull",
        "null",
        "nulls",
        "of",
        "offset",
        "on",
        "or",
        "order",
        "others",
        "outer",
        "over",
        "partition",
        "plan",
        "pragma",
        "preceding",
        "primary",
        "query",
        "raise",
        "range",
        "recursive",
        "references",
        "regexp",
        "reindex",
        "release",
        "rename",
        "replace",
        "restrict",
        "returning",
        "right",
        "rollback",
        "row",
        "rows",
        "savepoint",
        "select",
        "set",
        "table",
        "temp",
        "temporary",
        "then",
        "ties",
        "to",
        "transaction",
        "trigger",
        "unbounded",
        "union",
        "unique",
        "update",
        "using",
        "vacuum",
        "values",
        "view",
        "virtual",
        "when",
        "where",
        "window",
        "with",
        "without",
    ]
)

# Columns every entity table has; a field may not take these names.
SYSTEM_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "owner",
    "version",
    "deleted_at",
)
# Columns a child entity's table has on top of the system columns.
CHILD_COLUMNS = ("parent_id", "row_order")
RESERVED_FIELD_NAMES = frozenset(SYSTEM_COLUMNS + CHILD_COLUMNS)


def identifier_problem(name: object, *, field: bool = False) -> str | None:
    """Why ``name`` is not a legal identifier, or None when it is."""
    if not isinstance(name, str):
        return "must be a string"
    if len(name) > MAX_LENGTH:
        return f"'{name}' is {len(name)} characters long; at most {MAX_LENGTH} are allowed"
    if not IDENTIFIER.match(name):
        return (
            f"'{name}' is not a valid name: use lower-case letters, digits and '_', "
            "starting with a letter"
        )
    if name in POSTGRESQL_RESERVED:
        return (
            f"'{name}' is a reserved word in PostgreSQL; choose another name (e.g. '{name}_name')"
        )
    if name in SQLITE_KEYWORDS:
        return f"'{name}' is a key word in SQLite; choose another name (e.g. '{name}_name')"
    if field and name in RESERVED_FIELD_NAMES:
        return f"'{name}' is a system column every record has; choose another name"
    return None


def physical_name(*parts: str, prefix: str = "") -> quoted_name:
    """The database name for ``parts`` joined by ``__``, always quoted.

    Names that would pass PostgreSQL's 63-byte limit are shortened with a hash of
    the full name, so they stay unique and deterministic.
    """
    full = prefix + "__".join(parts)
    if len(full) > MAX_PHYSICAL_LENGTH:
        digest = hashlib.sha1(full.encode()).hexdigest()[:10]
        full = full[: MAX_PHYSICAL_LENGTH - 11] + "_" + digest
    return quoted_name(full, quote=True)


def table_name(app: str, entity: str) -> quoted_name:
    return physical_name(app, entity)


def link_table_name(app: str, entity: str, field: str) -> quoted_name:
    return physical_name(app, entity, field)


def column_name(field: str) -> quoted_name:
    return quoted_name(field, quote=True)
