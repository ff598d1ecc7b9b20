"""The physical schema of an app: SQLAlchemy tables built from its model.

The same builder serves the runtime (tables for queries) and the planner (the
schema before and after a change, whose difference is the migration). Archived
entities and fields keep their tables and columns, nullable and unindexed, so
their data survives until an explicit purge.

Uniqueness is a partial unique index over live records (the recycle bin does
not block a value). Foreign keys are real, named constraints on PostgreSQL; on
SQLite there are none, because referential actions belong to the record
service there (see ``db.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Table,
)
from sqlalchemy.sql.elements import quoted_name

from .identifiers import CHILD_COLUMNS, column_name, physical_name, table_name
from .model import AppModel, EntityModel, FieldModel
from .sqltypes import UtcDateTime
from .system_tables import users

ON_DELETE = {"restrict": "RESTRICT", "set_null": "SET NULL", "cascade": "CASCADE"}


@dataclass
class Archive:
    """What a document no longer declares but the database still holds."""

    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    fields: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict | None) -> Archive:
        data = data or {}
        return cls(
            dict(data.get("entities", {})), {k: dict(v) for k, v in data.get("fields", {}).items()}
        )

    def to_json(self) -> dict[str, Any]:
        return {"entities": self.entities, "fields": {k: v for k, v in self.fields.items() if v}}

    def copy(self) -> Archive:
        return Archive.from_json(self.to_json())

    @property
    def empty(self) -> bool:
        return not self.entities and not any(self.fields.values())


def _id_type():
    # INTEGER PRIMARY KEY is SQLite's rowid alias; BIGINT keeps PostgreSQL roomy.
    return BigInteger().with_variant(Integer, "sqlite")


def system_columns() -> list[Column]:
    return [
        Column("id", _id_type(), primary_key=True, autoincrement=True),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("created_by", BigInteger),
        Column("updated_by", BigInteger),
        Column("owner", BigInteger),
        Column("version", Integer, nullable=False, default=1),
        Column("deleted_at", UtcDateTime),
    ]


def index_name(kind: str, table, columns) -> quoted_name:
    return physical_name(str(table), *columns, prefix=f"{kind}_")


class SchemaBuilder:
    """Builds every table of one app (and stubs of what it references) into a MetaData."""

    def __init__(self, app: AppModel, archive: Archive | None = None, dialect: str = "sqlite"):
        self.app = app
        self.archive = archive or Archive()
        self.dialect = dialect
        self.metadata = MetaData()
        users.to_metadata(self.metadata)
        # (app, entity) -> Table
        self.tables: dict[tuple[str, str], Table] = {}
        self.link_tables: dict[tuple[str, str, str], Table] = {}
        # Foreign keys wait until every table exists: references may form cycles.
        self._pending_keys: list[tuple[Table, str, EntityModel | None, str, str]] = []

    @property
    def foreign_keys(self) -> bool:
        return self.dialect == "postgresql"

    def build(self) -> SchemaBuilder:
        for entity in self.app.entities.values():
            self._entity_table(entity, archived_fields=self.archive.fields.get(entity.name, {}))
        for name, entity_doc in self.archive.entities.items():
            # Beside the other entities, so that its references and lookups still resolve.
            archived = AppModel.from_document(beside(self.app, entity_doc, self.archive))
            self._entity_table(
                archived.entities[name],
                archived_fields=self.archive.fields.get(name, {}),
                archived=True,
            )
        if self.foreign_keys:
            for table, column, target, target_name, on_delete in self._pending_keys:
                self._foreign_key(table, column, self._referenced(target, target_name), on_delete)
        return self

    def table(self, entity: str) -> Table:
        return self.tables[(self.app.name, entity)]

    # --- internals -------------------------------------------------------------

    def _referenced(self, target: EntityModel | None, target_name: str) -> Table:
        """The referenced table: ours when built, else a stub with just an id."""
        if target_name == "crm_users":
            return self.metadata.tables["crm_users"]
        if target is not None and target.app is self.app:
            name = target.table_name
        elif "." in target_name:
            name = table_name(*target_name.split(".", 1))
        else:
            name = table_name(self.app.name, target_name)
        if name in self.metadata.tables:
            return self.metadata.tables[name]
        return Table(name, self.metadata, Column("id", _id_type(), primary_key=True))

    def _entity_table(
        self, entity: EntityModel, archived_fields: dict, archived: bool = False
    ) -> Table:
        table = Table(entity.table_name, self.metadata, *system_columns())
        table.info["entity"] = entity.name
        table.info["archived"] = archived
        self._index(table, ["owner"])
        self._recycle_bin_index(table)
        if entity.is_child:
            table.append_column(Column("parent_id", BigInteger, nullable=False))
            table.append_column(Column("row_order", Integer, nullable=False))
            self._index(table, ["parent_id"])
            parent = entity.parent
            if parent is not None and not archived:
                self._pending_keys.append(
                    (table, "parent_id", parent[0], parent[0].name, "cascade")
                )
        for fld in entity.fields.values():
            if fld.has_column if not archived else _safe_has_column(fld):
                self._field_column(table, fld, archived=archived)
            elif fld.type_name == "multi_reference" and not archived:
                self._link_table(entity, fld)
        archived_model = AppModel.from_document(
            {
                **self.app.doc,
                "entities": [{**entity.doc, "fields": list(archived_fields.values())}],
                "workflows": [],
            }
        )
        for fld in archived_model.entities[entity.name].fields.values():
            if fld.type_name == "multi_reference":
                self._link_table(entity, fld, archived=True)
            elif _safe_has_column(fld):
                self._field_column(table, fld, archived=True)
        if not archived:
            for spec in entity.indexes:
                self._index(table, list(spec["fields"]), unique=bool(spec.get("unique")))
        _drop_covered_indexes(table)
        self.tables[(self.app.name, entity.name)] = table
        return table

    def _field_column(self, table: Table, fld: FieldModel, archived: bool) -> None:
        column = Column(
            column_name(fld.name), fld.column_type(), nullable=archived or not fld.required
        )
        column.info["field"] = fld.name
        column.info["archived"] = archived
        table.append_column(column)
        if archived:
            return
        if fld.unique:
            self._index(table, [fld.name], unique=True)
        elif fld.indexed and fld.type.indexable:
            self._index(table, [fld.name])
        if fld.type_name == "user":
            self._pending_keys.append((table, fld.name, None, "crm_users", "set_null"))
        elif fld.type_name == "reference":  # a lookup of a reference copies a value, no key
            on_delete = fld.doc.get("on_delete", "restrict")
            self._pending_keys.append((table, fld.name, fld.target, fld.doc["target"], on_delete))

    def _link_table(self, entity: EntityModel, fld: FieldModel, archived: bool = False) -> None:
        name = fld.link_table_name
        if name in self.metadata.tables:
            return
        link = Table(
            name,
            self.metadata,
            Column("source_id", BigInteger, primary_key=True),
            Column("target_id", BigInteger, primary_key=True),
            Column("position", Integer, nullable=False, default=0),
        )
        link.info.update(entity=entity.name, field=fld.name, archived=archived)
        self._index(link, ["target_id"])
        if not archived:
            self._pending_keys.append((link, "source_id", entity, entity.name, "cascade"))
            self._pending_keys.append((link, "target_id", fld.target, fld.doc["target"], "cascade"))
        self.link_tables[(self.app.name, entity.name, fld.name)] = link

    def _index(self, table: Table, columns: list[str], unique: bool = False) -> None:
        kind = "uq" if unique else "ix"
        name = index_name(kind, table.name, columns)
        where = {}
        if unique and "deleted_at" in table.c:
            where = {
                "sqlite_where": table.c.deleted_at.is_(None),
                "postgresql_where": table.c.deleted_at.is_(None),
            }
        Index(name, *(table.c[c] for c in columns), unique=unique, **where)

    def _recycle_bin_index(self, table: Table) -> None:
        """An index of the deleted records only, for the recycle bin and its purge.

        Live records all have no deletion time: over them an index on ``deleted_at``
        would be one long run of nulls that no query wants, yet every new record
        would have to be entered in it.
        """
        where = table.c.deleted_at.is_not(None)
        Index(
            index_name("ix", table.name, ["deleted_at"]),
            table.c.deleted_at,
            sqlite_where=where,
            postgresql_where=where,
        )

    def _foreign_key(self, table: Table, column: str, target: Table, on_delete: str) -> None:
        name = physical_name(str(table.name), column, prefix="fk_")
        table.append_constraint(
            ForeignKeyConstraint(
                [table.c[column]], [target.c.id], name=name, ondelete=ON_DELETE[on_delete]
            )
        )


def beside(app: AppModel, entity_doc: dict, archived: Archive | None = None) -> dict:
    """An app document holding ``entity_doc`` and every other entity the app knows."""
    name = entity_doc["name"]
    others = [*app.doc.get("entities", []), *(archived.entities.values() if archived else [])]
    seen = {name}
    entities = [entity_doc]
    for other in others:
        if other.get("name") not in seen:
            seen.add(other.get("name"))
            entities.append(other)
    return {**app.doc, "entities": entities, "workflows": []}


def _drop_covered_indexes(table: Table) -> None:
    """Leave out a plain index whose columns begin another plain index's columns.

    An index on ``(stage, amount)`` serves every query an index on ``stage`` would,
    and each index costs every write; so ``indexed: true`` on a field that a
    declared index already begins with adds nothing to the database.
    """

    def plain(index: Index) -> bool:
        return not index.unique and index.dialect_options["postgresql"].get("where") is None

    keys = {index: tuple(c.name for c in index.columns) for index in table.indexes if plain(index)}
    for index, columns in keys.items():
        if any(
            other is not index and len(wider) > len(columns) and wider[: len(columns)] == columns
            for other, wider in keys.items()
        ):
            table.indexes.discard(index)


def _safe_has_column(fld: FieldModel) -> bool:
    try:
        return fld.has_column
    except (KeyError, AttributeError, TypeError):
        # An archived computed field whose sources are gone: keep its values as text.
        return False


def build_schema(
    app: AppModel, archive: Archive | None = None, dialect: str = "sqlite"
) -> SchemaBuilder:
    return SchemaBuilder(app, archive, dialect).build()


def entity_columns() -> tuple[str, ...]:
    return tuple(c.name for c in system_columns()) + CHILD_COLUMNS
