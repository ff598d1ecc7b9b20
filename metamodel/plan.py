"""The migration planner: what changing an app's document does to the database.

``make_plan`` diffs the current document (and what it archived) against a new
one and returns a :class:`Plan`: operations in the order they run, problems
that refuse the change (naming the records that block it) and warnings. It
reads the database for those checks but never writes; ``publish.py`` applies.

Nothing a user entered may be lost: removed entities and fields are archived
(data kept, restorable by declaring them again), renames keep data, type
changes convert every value or are refused, and required/unique are refused
while records break them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Index, MetaData, Table, inspect

from . import operations as ops
from .conversions import can_convert, converter, to_plain
from .data_checks import (
    EXAMPLES,
    conversion_failures,
    converted_duplicates,
    converted_empty,
    duplicate_values,
    live_row_count,
    misfit_count,
    missing_values,
    row_count,
    value_count,
)
from .drift import drift_problems
from .errors import Problem
from .field_types import DEFAULT_TOKENS, ValueProblem
from .identifiers import column_name
from .messages import Message
from .model import AppModel, EntityModel, FieldModel
from .search_index import plan_search_index
from .sqltypes import UTC
from .tables import Archive, SchemaBuilder, beside, build_schema

# Keys that change how a field looks or who may touch it, never what its values may be.
PRESENTATION_KEYS = {
    "label", "help", "description", "read_only", "read_roles", "write_roles", "default",
    "indexed", "unique", "required", "renamed_from", "name", "currency",
}  # fmt: skip


@dataclass
class Plan:
    app: str
    operations: list[ops.Operation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    archive: Archive = field(default_factory=Archive)

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    @property
    def empty(self) -> bool:
        return not self.operations

    def words(self) -> list[str]:
        return [operation.describe() for operation in self.operations]

    def as_json(self) -> dict[str, Any]:
        return {
            "operations": [operation.as_json() for operation in self.operations],
            "warnings": list(self.warnings),
            "problems": [problem.as_dict() for problem in self.problems],
        }


def empty_app(name: str) -> AppModel:
    return AppModel.from_document({"format": "crm-app/1", "name": name, "version": "0.0.0"})


def make_plan(
    conn: Connection, old: AppModel | None, old_archive: Archive | None, new: AppModel
) -> Plan:
    return _Planner(conn, old or empty_app(new.name), old_archive or Archive(), new).run()


def source_of(name: str, renamed_from: str | None, known: set[str], declared: set[str]) -> str:
    """Which old name a new entity or field continues: itself, or what it was renamed from.

    ``known`` holds the old names (active or archived), ``declared`` the new ones; a
    ``renamed_from`` counts only when the new name is new and the old one is gone.
    """
    if name not in known and renamed_from and renamed_from not in declared:
        return renamed_from
    return name


@dataclass
class _EntityPair:
    """An entity of the new document and the table it continues (None: a new table)."""

    new: EntityModel
    old: EntityModel | None
    old_table: Table | None
    how: str  # "same", "renamed", "restored" or "new"


def _model_of(app: AppModel, entity_doc: dict, archived: Archive | None = None) -> EntityModel:
    """An archived entity's (or fields') document, read beside the app's other
    entities, live and archived, whose references and lookups it may follow."""
    return AppModel.from_document(beside(app, entity_doc, archived)).entities[entity_doc["name"]]


class _Planner:
    def __init__(self, conn: Connection, old: AppModel, archive: Archive, new: AppModel):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.old, self.new = old, new
        self.old_archive = archive
        self.archive = archive.copy()
        self.before = build_schema(old, archive, self.dialect)
        # The new document's tables, for what it adds; the final schema comes at the end.
        self.fresh = build_schema(new, None, self.dialect)
        self.plan = Plan(app=new.name)
        # Operations by phase, so constraints come off first and go on last.
        self.table_ops: list[ops.Operation] = []
        self.column_ops: list[ops.Operation] = []
        # Tables rebuilt by batch mode, columns retyped: their indexes are recreated.
        self.touched_tables: set[str] = set()
        self.touched_columns: set[tuple[str, str]] = set()
        # Old entity name -> new name, so a reference to a renamed entity is not a retarget.
        self.renamed_entities: dict[str, str] = {}

    def refuse(self, path: str, message: str) -> None:
        self.plan.problems.append(Problem(path, message))

    def run(self) -> Plan:
        self.plan.problems.extend(drift_problems(self.conn, self.before, self.old))
        if self.plan.problems:
            return self.plan
        for pair in self._pair_entities():
            self._plan_entity(pair)
        after = build_schema(self.new, self.archive, self.dialect)
        self._check_new_tables_free()
        index_drops, index_creates = self._diff_indexes(after)
        key_drops, key_creates = self._diff_foreign_keys(after)
        tables = [str(t.name) for t in (*self.before.tables.values(), *after.tables.values())]
        search = plan_search_index(
            self.conn, self.new, tables, self.touched_tables, self.touched_columns
        )
        self.plan.problems.extend(search.problems)
        self.plan.warnings.extend(search.warnings)
        # The search index comes off before tables change (its triggers name their
        # columns) and goes on once they are in their final shape.
        self.plan.operations = (
            key_drops
            + index_drops
            + search.drops
            + self.table_ops
            + self.column_ops
            + index_creates
            + search.creates
            + key_creates
        )
        self.plan.archive = self.archive
        return self.plan

    # --- entities ----------------------------------------------------------------

    def _pair_entities(self) -> list[_EntityPair]:
        pairs: list[_EntityPair] = []
        claimed: set[str] = set()
        known = set(self.old.entities) | set(self.old_archive.entities)
        for entity in self.new.entities.values():
            source = source_of(
                entity.name, entity.doc.get("renamed_from"), known, set(self.new.entities)
            )
            if source in self.old.entities:
                old = self.old.entities[source]
                how = "same" if source == entity.name else "renamed"
            elif source in self.old_archive.entities:
                old = _model_of(self.old, self.old_archive.entities[source], self.old_archive)
                how = "restored"
                del self.archive.entities[source]
            else:
                pairs.append(_EntityPair(entity, None, None, "new"))
                continue
            claimed.add(source)
            self.renamed_entities[source] = entity.name
            pairs.append(_EntityPair(entity, old, self.before.table(source), how))
            if source != entity.name and source in self.archive.fields:
                self.archive.fields[entity.name] = self.archive.fields.pop(source)
        for name, entity in self.old.entities.items():
            if name not in claimed:
                self._archive_entity(entity)
        self._follow_renames_in_archive()
        return pairs

    def _follow_renames_in_archive(self) -> None:
        """Archived references keep pointing at their target under its new name.

        The old and the new archive share these documents, so a field restored in
        this same plan is compared with its target as it is called now.
        """
        renamed = {old: new for old, new in self.renamed_entities.items() if old != new}
        if not renamed:
            return
        archived_fields = [f for fields in self.archive.fields.values() for f in fields.values()]
        for entity_doc in self.archive.entities.values():
            archived_fields += entity_doc.get("fields", [])
        for doc in archived_fields:
            if doc.get("target") in renamed:
                doc["target"] = renamed[doc["target"]]

    def _archive_entity(self, entity: EntityModel) -> None:
        table = self.before.table(entity.name)
        rows = row_count(self.conn, table)
        # Archived columns are nullable (tables.py): a restored entity may leave some out.
        for column in table.columns:
            if column.info.get("field") and not column.nullable:
                what = Message("'{field}' (archived)", field=f"{entity.name}.{column.name}")
                self._set_nullable(entity, column.name, True, column.type, what)
        doc = dict(entity.doc)
        synthetic = [f.doc for f in entity.fields.values() if f.synthetic]
        if synthetic:
            doc["fields"] = list(doc.get("fields", [])) + synthetic
        self.archive.entities[entity.name] = doc
        self.table_ops.append(
            ops.Note(
                Message(
                    "archive entity '{entity}': its {rows} records are hidden and kept; "
                    "declare it again to restore it, or purge it to delete them",
                    entity=entity.name,
                    rows=rows,
                )
            )
        )

    def _plan_entity(self, pair: _EntityPair) -> None:
        entity = pair.new
        if pair.how == "new":
            self._create_entity(entity)
            return
        if pair.old.is_child != entity.is_child:
            self.refuse(
                entity.pointer + "/child",
                Message(
                    "'{entity}' cannot switch between a child table and an entity of its own; "
                    "create a new entity instead",
                    entity=entity.name,
                ),
            )
            return
        if pair.how == "restored":
            rows = row_count(self.conn, pair.old_table)
            self.table_ops.append(
                ops.Note(
                    Message(
                        "restore entity '{entity}' with its {rows} records",
                        entity=entity.name,
                        rows=rows,
                    )
                )
            )
        old_name, new_name = str(pair.old_table.name), str(entity.table_name)
        if old_name != new_name:
            what = Message("entity '{old}' to '{new}'", old=pair.old.name, new=entity.name)
            self.table_ops.append(ops.RenameTable(old_name, new_name, what))
        self._plan_fields(pair)

    def _create_entity(self, entity: EntityModel) -> None:
        self.table_ops.append(
            ops.CreateTable(
                self.fresh.table(entity.name), Message("entity '{entity}'", entity=entity.name)
            )
        )
        for fld in entity.fields.values():
            if fld.type_name == "multi_reference":
                link = self.fresh.link_tables[(self.new.name, entity.name, fld.name)]
                what = Message("links of '{field}'", field=f"{entity.name}.{fld.name}")
                self.table_ops.append(ops.CreateTable(link, what))

    # --- fields ------------------------------------------------------------------

    def _plan_fields(self, pair: _EntityPair) -> None:
        entity = pair.new
        active = dict(pair.old.fields)
        archived_docs = self.old_archive.fields.get(pair.old.name, {})
        archived_entity = {**pair.old.doc, "fields": list(archived_docs.values())}
        archived = dict(_model_of(self.old, archived_entity, self.old_archive).fields)
        slot = self.archive.fields.setdefault(entity.name, {})
        claimed: set[str] = set()
        known = set(active) | set(archived)
        for fld in entity.fields.values():
            source = source_of(fld.name, fld.doc.get("renamed_from"), known, set(entity.fields))
            if source in active:
                old = active[source]
            elif source in archived:
                old = archived[source]
                slot.pop(source, None)
                what = Message(
                    "restore field '{field}' with its values", field=f"{entity.name}.{fld.name}"
                )
                self.column_ops.append(ops.Note(what))
            else:
                self._add_field(pair, fld)
                continue
            claimed.add(source)
            self._change_field(pair, old, fld)
        for name, old in active.items():
            if name not in claimed:
                self._archive_field(pair, old, slot)

    def _archive_field(self, pair: _EntityPair, old: FieldModel, slot: dict) -> None:
        entity, table = pair.new, pair.old_table
        slot[old.name] = old.doc
        name = f"{entity.name}.{old.name}"
        if not old.has_column:
            self.column_ops.append(
                ops.Note(Message("archive field '{field}': its links are kept", field=name))
            )
            return
        count = value_count(self.conn, table.c[old.name])
        self.column_ops.append(
            ops.Note(
                Message(
                    "archive field '{field}': its {count} values are hidden and kept; "
                    "declare it again to restore it, or purge it to delete them",
                    field=name,
                    count=count,
                )
            )
        )
        column = table.c[old.name]
        if not column.nullable:
            self._set_nullable(
                entity, old.name, True, column.type, Message("'{field}' (archived)", field=name)
            )

    def _set_nullable(self, entity: EntityModel, column: str, nullable: bool, type_, what: str):
        table = str(entity.table_name)
        self.column_ops.append(ops.SetNullable(table, column, nullable, type_, what))
        if self.dialect == "sqlite":
            self.touched_tables.add(table)

    def _add_field(self, pair: _EntityPair, fld: FieldModel) -> None:
        entity = pair.new
        name = f"{entity.name}.{fld.name}"
        what = Message("field '{field}'", field=name)
        if fld.type_name == "multi_reference":
            link = self.fresh.link_tables[(self.new.name, entity.name, fld.name)]
            self.column_ops.append(
                ops.CreateTable(link, Message("links of field '{field}'", field=name))
            )
            return
        if not fld.has_column:
            return
        column = self.fresh.table(entity.name).c[fld.name]
        table_name = str(entity.table_name)
        added = Message("field '{field}' ({type})", field=name, type=fld.type_name)
        self.column_ops.append(ops.AddColumn(table_name, column, added))
        if not fld.required:
            return
        rows = row_count(self.conn, pair.old_table)
        if rows:
            default = fld.doc.get("default")
            if default is None or default == "$user":
                self.refuse(
                    fld.pointer + "/required",
                    Message(
                        "{rows} existing {entity} records would have no value for the new "
                        "required field '{field}'; give it a default to fill them, or make it "
                        "optional",
                        rows=rows,
                        entity=entity.name,
                        field=fld.name,
                    ),
                )
                return
            live = live_row_count(self.conn, pair.old_table) if fld.unique else 0
            if live > 1:
                self.refuse(
                    fld.pointer + "/unique",
                    Message(
                        "the {rows} existing {entity} records would all get the default "
                        "{default}, but '{field}' must be unique; add it optional first",
                        rows=live,
                        entity=entity.name,
                        default=repr(default),
                        field=fld.name,
                    ),
                )
                return
            fill_table = Table(entity.table_name, MetaData(), column._copy())
            value = _default_value(default, fld)
            self.column_ops.append(ops.Backfill(fill_table, fld.name, value, what))
        self._set_nullable(entity, fld.name, False, column.type, what)

    def _change_field(self, pair: _EntityPair, old: FieldModel, new: FieldModel) -> None:
        entity, table = pair.new, pair.old_table
        what = Message("field '{field}'", field=f"{entity.name}.{new.name}")
        links = (old.type_name == "multi_reference", new.type_name == "multi_reference")
        if old.has_column != new.has_column or links[0] != links[1]:
            self.refuse(
                new.pointer + "/type",
                Message(
                    "'{field}' cannot change from {old} to {new}: "
                    "the data is stored differently; add a new field instead",
                    field=new.name,
                    old=old.type_name,
                    new=new.type_name,
                ),
            )
            return
        old_target = self.renamed_entities.get(old.doc.get("target"), old.doc.get("target"))
        if old_target != new.doc.get("target") and old.type_name == new.type_name:
            # Existing ids name records of the old target: they mean nothing in the new one.
            message = Message(
                "'{field}' cannot change its target; add a new field instead", field=new.name
            )
            self.refuse(new.pointer + "/target", message)
            return
        if not new.has_column:
            if new.type_name == "multi_reference":
                self._rename_links(pair, old, new)
            return
        if old.name != new.name:
            renamed = Message(
                "field '{field}' to '{new}'", field=f"{entity.name}.{old.name}", new=new.name
            )
            self.column_ops.append(
                ops.RenameColumn(str(entity.table_name), old.name, new.name, renamed)
            )
        column = table.c[old.name]
        converted = self._convert_if_needed(pair, old, new, column)
        if converted is False:
            return
        was_required = not column.nullable
        if new.required and (converted or not was_required):
            self._require(pair, new, column, what, converter(old, new) if converted else None)
        elif was_required and not new.required:
            self._set_nullable(entity, new.name, True, new.column_type(), what)
        if new.unique and not old.unique:
            self._check_unique(pair, new, column)

    def _require(self, pair: _EntityPair, new: FieldModel, column: Column, what: str, convert=None):
        missing = missing_values(self.conn, pair.old_table, column)
        emptied = converted_empty(self.conn, pair.old_table, column, convert) if convert else []
        if missing or emptied:
            count, ids = missing or (0, [])
            count += len(emptied)
            ids = sorted(ids + emptied)[:EXAMPLES]
            self.refuse(
                new.pointer + "/required",
                Message(
                    "'{field}' cannot become required: {count} records have no value "
                    "(ids {ids}); fill them in first",
                    field=new.name,
                    count=count,
                    ids=", ".join(map(str, ids)),
                ),
            )
            return
        self._set_nullable(pair.new, new.name, False, new.column_type(), what)

    def _check_unique(self, pair: _EntityPair, new: FieldModel, column: Column) -> None:
        duplicates = duplicate_values(self.conn, pair.old_table, column)
        if duplicates:
            shared = "; ".join(
                f"{to_plain(value)!r} is held by records {', '.join(map(str, ids))}"
                for value, ids in duplicates
            )
            self.refuse(
                new.pointer + "/unique",
                Message("'{field}' cannot become unique: {shared}", field=new.name, shared=shared),
            )

    def _convert_if_needed(self, pair, old: FieldModel, new: FieldModel, column) -> bool | None:
        """Plan a type change: True when the column is rebuilt, False when refused."""
        entity, table = pair.new, pair.old_table
        column_changed = repr(old.column_type()) != repr(new.column_type())
        type_changed = old.value_spec["type"] != new.value_spec["type"]
        if not column_changed and not type_changed:
            self._warn_misfits(pair, old, new, column)
            return None
        if not can_convert(old, new):
            self.refuse(
                new.pointer + "/type",
                Message(
                    "'{field}' cannot change from {old} to {new}; add a new field instead",
                    field=new.name,
                    old=old.type_name,
                    new=new.type_name,
                ),
            )
            return False
        convert = converter(old, new)
        failures, rows = conversion_failures(self.conn, table, column, convert)
        if failures:
            listed = "; ".join(
                f"record {row_id} ({to_plain(value)!r}): {message}"
                for row_id, value, message in failures
            )
            count = (
                Message("at least {count}", count=EXAMPLES)
                if len(failures) >= EXAMPLES
                else len(failures)
            )
            self.refuse(
                new.pointer + "/type",
                Message(
                    "{count} {entity} record(s) hold values of '{field}' that do not "
                    "convert to {type}: {listed}",
                    count=count,
                    entity=entity.name,
                    field=new.name,
                    type=new.value_spec["type"],
                    listed=listed,
                ),
            )
            return False
        if new.unique:
            collisions = converted_duplicates(self.conn, table, column, convert)
            if collisions:
                shared = "; ".join(
                    f"records {', '.join(map(str, ids))} would all hold {to_plain(value)!r}"
                    for value, ids in collisions
                )
                self.refuse(
                    new.pointer + "/unique",
                    Message("'{field}' must stay unique: {shared}", field=new.name, shared=shared),
                )
                return False
        target = self.fresh.table(entity.name).c[new.name]
        source = Table(
            entity.table_name, MetaData(), table.c.id._copy(), _renamed(column, new.name)
        )
        what = Message(
            "field '{field}' from {old} to {new}",
            field=f"{entity.name}.{new.name}",
            old=old.type_name,
            new=new.type_name,
        )
        self.column_ops.append(ops.ConvertColumn(source, new.name, target, convert, what, rows))
        self.touched_columns.add((str(entity.table_name), new.name))
        return True

    def _warn_misfits(self, pair, old: FieldModel, new: FieldModel, column) -> None:
        """Narrower rules (options, limits) keep existing values, but the plan says how many."""
        if _value_rules(old) == _value_rules(new) or new.computed:
            return
        misfits = misfit_count(self.conn, pair.old_table, column, new.coerce)
        if misfits:
            self.plan.warnings.append(
                Message(
                    "{count} {entity} records hold a value of '{field}' that the new "
                    "definition does not allow; they keep it, and must correct it when next "
                    "edited",
                    count=misfits,
                    entity=pair.new.name,
                    field=new.name,
                )
            )

    def _rename_links(self, pair: _EntityPair, old: FieldModel, new: FieldModel) -> None:
        old_link, new_link = str(old.link_table_name), str(new.link_table_name)
        if old_link != new_link:
            what = Message("links of '{field}'", field=f"{pair.new.name}.{new.name}")
            self.column_ops.append(ops.RenameTable(old_link, new_link, what))

    # --- tables that must not exist yet -------------------------------------------

    def _check_new_tables_free(self) -> None:
        existing = set(inspect(self.conn).get_table_names())
        for operation in self.table_ops + self.column_ops:
            if isinstance(operation, ops.CreateTable) and operation.table.name in existing:
                self.refuse(
                    "",
                    Message(
                        "the database already has a table named {table} that this "
                        "app does not know; rename the entity or remove the table",
                        table=operation.table.name,
                    ),
                )

    # --- indexes and foreign keys ------------------------------------------------

    def _diff_indexes(self, after: SchemaBuilder):
        old, new = _indexes(self.before), _indexes(after)
        touched = self._touched(new) | self._touched(old)
        drops = [
            ops.DropIndex(index)
            for name, (signature, index) in old.items()
            if name not in new or new[name][0] != signature or name in touched
        ]
        creates = [
            ops.CreateIndex(index)
            for name, (signature, index) in new.items()
            if name not in old or old[name][0] != signature or name in touched
        ]
        return drops, creates

    def _touched(self, indexes) -> set[str]:
        return {
            name
            for name, (signature, _) in indexes.items()
            if signature[0] in self.touched_tables
            or any((signature[0], column) in self.touched_columns for column in signature[1])
        }

    def _diff_foreign_keys(self, after: SchemaBuilder):
        old, new = _foreign_keys(self.before), _foreign_keys(after)
        drops = [
            ops.DropForeignKey(key)
            for name, (signature, key) in old.items()
            if name not in new or new[name][0] != signature
        ]
        creates = [
            ops.CreateForeignKey(key)
            for name, (signature, key) in new.items()
            if name not in old or old[name][0] != signature
        ]
        return drops, creates


def _indexes(schema: SchemaBuilder) -> dict[str, tuple[tuple, Index]]:
    found = {}
    for table in schema.metadata.tables.values():
        if table.name == "crm_users":
            continue
        for index in table.indexes:
            partial = index.dialect_options["postgresql"].get("where") is not None
            columns = tuple(c.name for c in index.columns)
            found[str(index.name)] = (
                (str(table.name), columns, bool(index.unique), partial),
                index,
            )
    return found


def _foreign_keys(schema: SchemaBuilder):
    found = {}
    for table in schema.metadata.tables.values():
        for key in table.foreign_key_constraints:
            columns = tuple(c.name for c in key.columns)
            signature = (str(table.name), columns, str(key.referred_table.name), key.ondelete)
            found[str(key.name)] = (signature, key)
    return found


def _value_rules(fld: FieldModel) -> dict[str, Any]:
    return {k: v for k, v in fld.value_spec.items() if k not in PRESENTATION_KEYS}


def _default_value(default, fld: FieldModel):
    if isinstance(default, str) and default in DEFAULT_TOKENS:
        now = dt.datetime.now(UTC)
        return now.date() if fld.value_spec["type"] == "date" else now
    try:
        return fld.coerce(default)
    except ValueProblem:
        return default


def _renamed(column: Column, name: str) -> Column:
    copy = column._copy()
    copy.name = copy.key = column_name(name)
    return copy
