"""The search index: what lets a substring search skip the rows that cannot match.

The list's search finds records whose text holds what the user typed anywhere
in it (``lower(col) LIKE '%…%'``), which no ordinary index can answer: it reads
every row. Both databases have an index made for it, built from trigrams (the
three-character pieces of the text):

- PostgreSQL: one GIN index on ``lower(col) gin_trgm_ops`` (extension pg_trgm)
  per searched column; the search's own ``lower(col) LIKE`` uses it as it is.
- SQLite: one FTS5 table per entity with the trigram tokenizer over its
  searched columns, kept in step with the entity's table by triggers. The
  search asks it for candidate ids and applies the same LIKE to those, so it
  finds exactly what reading every row finds.

Searched columns are an entity's stored text-like fields: the types marked
``searchable`` in ``field_types``, and lookups and formulas whose value is one.
Archived fields and entities are not indexed, like every other index, nor are
child tables, which are never listed on their own.

The FTS table is contentless (``content=''``) rather than external-content:
an external-content table must name its columns as the entity's table does,
and FTS5 reserves ``rank`` and ``rowid``, both fine field names. Its triggers
pass the old values when a row changes or goes, as a contentless table needs.

The index holds nothing a user entered, so the planner does not derive it from
the previous document as it does the rest of the schema: it compares what the
new version needs with what the live database holds. A database made before
search indexes existed, or whose index was dropped, gets it on its next apply,
even of the same document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Select, bindparam, select, text
from sqlalchemy.sql import column, table
from sqlalchemy.sql.elements import quoted_name

from . import field_types
from . import operations as ops
from .errors import Problem
from .identifiers import physical_name
from .messages import Message
from .model import AppModel, EntityModel, FieldModel
from .tables import index_name

TRIGRAM_EXTENSION = "pg_trgm"
TRIGRAM_PREFIX = "trgm"
# FTS5 reserves some column names (rank, rowid): the FTS table's columns carry a prefix.
FTS_COLUMN = "f_"
# A trigram index holds three-character pieces: a shorter needle has none to look up.
MIN_INDEXED_CHARS = 3
# The triggers that keep an FTS table in step, by the event they follow.
FTS_EVENTS = ("insert", "update", "delete")


def searched_fields(entity: EntityModel) -> list[FieldModel]:
    """The fields whose stored text a search looks into."""
    return [
        f
        for f in entity.fields.values()
        if f.has_column and field_types.get(f.value_spec["type"]).searchable
    ]


def indexed_columns(entity: EntityModel) -> tuple[str, ...]:
    """The columns the search index of ``entity`` covers (none for a child table)."""
    if entity.is_child:
        return ()
    return tuple(f.name for f in searched_fields(entity))


def trigram_index_name(table_name: str, column_name: str) -> quoted_name:
    return index_name(TRIGRAM_PREFIX, table_name, [column_name])


def fts_table_name(table_name: str) -> quoted_name:
    return physical_name(str(table_name), prefix="fts_")


def fts_triggers(fts_name: str) -> tuple[str, ...]:
    return tuple(str(physical_name(fts_name, event)) for event in FTS_EVENTS)


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


@dataclass(frozen=True)
class FtsIndex:
    """An entity's FTS5 trigram table and the triggers that keep it in step (SQLite)."""

    table: str
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(fts_table_name(self.table))

    def definition(self) -> dict[str, str]:
        """Each object's CREATE statement by name, exactly as sqlite_master keeps it."""
        fts, source = _quote(self.name), _quote(self.table)
        indexed = ", ".join(_quote(FTS_COLUMN + c) for c in self.columns)

        def values(row: str) -> str:
            return ", ".join([f"{row}.id", *(f"{row}.{_quote(c)}" for c in self.columns)])

        added = f"INSERT INTO {fts}(rowid, {indexed}) VALUES ({values('new')});"
        removed = f"INSERT INTO {fts}({fts}, rowid, {indexed}) VALUES ('delete', {values('old')});"
        watched = ", ".join(_quote(c) for c in self.columns)
        on_insert, on_update, on_delete = fts_triggers(self.name)
        return {
            self.name: f"CREATE VIRTUAL TABLE {fts} USING fts5({indexed}, "
            "content='', columnsize=0, tokenize='trigram')",
            on_insert: _trigger(on_insert, "AFTER INSERT", source, added),
            on_update: _trigger(
                on_update, f"AFTER UPDATE OF {watched}", source, f"{removed} {added}"
            ),
            on_delete: _trigger(on_delete, "AFTER DELETE", source, removed),
        }

    def fill(self) -> str:
        indexed = ", ".join(_quote(FTS_COLUMN + c) for c in self.columns)
        sources = ", ".join(_quote(c) for c in self.columns)
        return (
            f"INSERT INTO {_quote(self.name)}(rowid, {indexed}) "
            f"SELECT id, {sources} FROM {_quote(self.table)}"
        )


def _trigger(name: str, event: str, table: str, body: str) -> str:
    return f"CREATE TRIGGER {_quote(name)} {event} ON {table} BEGIN {body} END"


def fts_index(entity: EntityModel) -> FtsIndex | None:
    columns = indexed_columns(entity)
    return FtsIndex(str(entity.table_name), columns) if columns else None


# --- at query time ---------------------------------------------------------------------


def fts_ready(conn: Connection, entity: EntityModel) -> bool:
    """Does the database hold the FTS table of ``entity`` exactly as its model defines it?"""
    index = fts_index(entity) if conn.dialect.name == "sqlite" else None
    if index is None:
        return False
    wanted = index.definition()
    return _sqlite_objects(conn, wanted) == wanted


def fts_candidates(entity: EntityModel, columns: Iterable[str], needle: str) -> Select:
    """Ids of records whose ``columns`` may hold ``needle`` (3+ characters), by the FTS table.

    A superset, folded for case more widely than ``lower``: the caller rechecks.
    The needle is one FTS5 string (double quotes doubled), so no character in it
    is query syntax.
    """
    name = fts_table_name(entity.table_name)
    fts = table(name, column(name), column("rowid"))
    chosen = " ".join(FTS_COLUMN + c for c in columns)
    phrase = '"' + needle.replace('"', '""') + '"'
    return select(fts.c.rowid).where(fts.c[name].match(f"{{{chosen}}} : {phrase}"))


# --- planning ----------------------------------------------------------------------------


@dataclass
class SearchChanges:
    """What brings the search index in step with a new version: before and after the rest."""

    drops: list[ops.Operation] = field(default_factory=list)
    creates: list[ops.Operation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def plan_search_index(
    conn: Connection,
    app: AppModel,
    tables: Iterable[str],
    touched_tables: set[str],
    touched_columns: set[tuple[str, str]],
) -> SearchChanges:
    """The search index ``app`` needs against the one the database has.

    ``tables`` are the entity tables the plan knows, before and after (so the
    index of a renamed or archived entity is found); the touched tables and
    columns are rebuilt by the plan, which takes their index down with them.
    """
    wanted = {str(e.table_name): e for e in app.entities.values() if indexed_columns(e)}
    tables = set(tables) | set(wanted)
    if not tables:
        return SearchChanges()
    if conn.dialect.name == "postgresql":
        return _plan_trigram(conn, wanted, tables, touched_columns)
    return _plan_fts(conn, wanted, tables, touched_tables, touched_columns)


def _plan_fts(conn, wanted, tables, touched_tables, touched_columns) -> SearchChanges:
    changes = SearchChanges()
    for table_name in sorted(tables):
        entity = wanted.get(table_name)
        index = fts_index(entity) if entity is not None else None
        expected = index.definition() if index else {}
        name = str(fts_table_name(table_name))
        objects = [name, *fts_triggers(name)]
        live = _sqlite_objects(conn, objects)
        if name in live and not live[name].startswith("CREATE VIRTUAL TABLE"):
            changes.problems.append(
                Problem(
                    "",
                    f"the database already has a table named {name} that this app does not "
                    "know; its search index needs the name: remove the table",
                )
            )
            continue
        touched = table_name in touched_tables or any(
            (table_name, c) in touched_columns for c in (index.columns if index else ())
        )
        stale = bool(live) and (live != expected or touched)
        if stale:
            changes.drops.append(ops.DropSearchTable(name, tuple(objects[1:])))
        if index is not None and (stale or live != expected):
            statements = [*expected.values(), index.fill()]
            changes.creates.append(
                ops.CreateSearchTable(name, entity.name, index.columns, statements)
            )
    return changes


def _sqlite_objects(conn: Connection, names: Iterable[str]) -> dict[str, str]:
    """The CREATE statements of the named tables and triggers that exist."""
    found = conn.execute(
        text("SELECT name, sql FROM sqlite_master WHERE name IN :names").bindparams(
            bindparam("names", expanding=True)
        ),
        {"names": list(names)},
    )
    return {name: (sql or "").strip() for name, sql in found}


def _plan_trigram(conn, wanted, tables, touched_columns) -> SearchChanges:
    changes = SearchChanges()
    expected = {
        str(trigram_index_name(table_name, c)): (entity, table_name, c)
        for table_name, entity in wanted.items()
        for c in indexed_columns(entity)
    }
    found = conn.execute(
        text(
            "SELECT indexname FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename IN :tables"
        ).bindparams(bindparam("tables", expanding=True)),
        {"tables": sorted(tables)},
    ).scalars()
    live = {name for name in found if name.startswith(TRIGRAM_PREFIX + "_")}
    rebuilt = {name for name, (_, t, c) in expected.items() if (t, c) in touched_columns}
    stale = (live - set(expected)) | (live & rebuilt)
    changes.drops = [ops.DropSearchIndex(name) for name in sorted(stale)]
    missing = sorted((set(expected) - live) | rebuilt)
    if not missing:
        return changes
    schema, install, reason = _trigram_schema(conn)
    if schema is None:
        changes.warnings.append(
            Message(
                "search is not indexed: {reason}; search still works, by reading every record",
                reason=reason,
            )
        )
        return changes
    if install:
        changes.creates.append(
            ops.CreateExtension(TRIGRAM_EXTENSION, schema, Message("trigram indexes for search"))
        )
    for name in missing:
        entity, table_name, column_name = expected[name]
        changes.creates.append(
            ops.CreateTrigramIndex(
                name,
                table_name,
                column_name,
                schema,
                Message("'{field}'", field=f"{entity.name}.{column_name}"),
            )
        )
    return changes


def _trigram_schema(conn: Connection) -> tuple[str | None, bool, str]:
    """Where pg_trgm is (or will be installed), whether the plan installs it, else why not."""
    installed = conn.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = :name"
        ),
        {"name": TRIGRAM_EXTENSION},
    ).scalar()
    if installed is not None:
        return installed, False, ""
    row = conn.execute(
        text(
            "SELECT "
            "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = :name) AS available, "
            "EXISTS (SELECT 1 FROM pg_available_extension_versions "
            "        WHERE name = :name AND trusted) AS trusted, "
            "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser, "
            "has_database_privilege(current_database(), 'CREATE') AS may_create, "
            "(SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace "
            " WHERE nspname = 'public') AS public_writable, "
            "current_schema() AS current"
        ),
        {"name": TRIGRAM_EXTENSION},
    ).one()
    if not row.available:
        return None, False, f"the PostgreSQL server does not have the extension {TRIGRAM_EXTENSION}"
    if not (row.superuser or (row.trusted and row.may_create)):
        return (
            None,
            False,
            f"the extension {TRIGRAM_EXTENSION} is not installed and this database user may "
            f"not install it (an administrator can: CREATE EXTENSION {TRIGRAM_EXTENSION})",
        )
    # One extension serves every schema of the database: it goes to public, which
    # outlives any one app's schema, when this user may write there.
    return ("public" if row.public_writable else row.current), True, ""
