"""The migration planner: what changing an app's document does to the database.

``make_plan`` diffs the current document (and what it archived) against a new
one and returns a :class:`Plan`: operations in the order they run, problems
that refuse the change (naming the records that block it) and warnings. It
reads the database for those checks but never writes; ``migrate.py`` applies.

Nothing a user entered may be lost: removed entities and fields are archived
(data kept, restorable by declaring them again), renames keep data, type
changes convert every value or are refused, and required/unique are refused
while records break them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Index, Table, func, select

from . import operations as ops
from .conversions import can_convert, convert, to_plain
from .data_checks import (
    EXAMPLES,
    conversion_failures,
    duplicate_values,
    example_ids,
    misfit_count,
    missing_values,
    row_count,
)
from .drift import drift_problems
from .errors import Problem
from .field_types import DEFAULT_TOKENS, ValueProblem
from .identifiers import column_name
from .model import AppModel, EntityModel, FieldModel
from .sqltypes import UTC
from .tables import Archive, SchemaBuilder, build_schema

# Keys that change how a field looks or who may touch it, never what its values may be.
PRESENTATION_KEYS = {
    "label",
    "help",
    "description",
    "read_only",
    "read_roles",
    "write_roles",
    "default",
    "indexed",
    "unique",
    "required",
    "renamed_from",
    "name",
    "currency",
}


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


@dataclass
class _EntityPair:
    """An entity of the new document and where its table comes from."""

    new: EntityModel
    old: EntityModel | None  # None: a new table
    old_table: Table | None
    how: str  # "same", "renamed", "restored" or "new"


class _Planner:
    def __init__(self, conn: Connection, old: AppModel, archive: Archive, new: AppModel):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.old, self.new = old, new
        self.old_archive = archive
        self.archive = archive.copy()
        self.before = build_schema(old, archive, self.dialect)
        self.plan = Plan(app=new.name)
        # Operations by phase, so constraints come off first and go on last.
        self.table_ops: list[ops.Operation] = []
        self.column_ops: list[ops.Operation] = []
        # Tables rebuilt by batch mode or columns retyped: their indexes are recreated.
        self.touched_tables: set[str] = set()
        self.touched_columns: set[tuple[str, str]] = set()

    def refuse(self, path: str, message: str) -> None:
        self.plan.problems.append(Problem(path, message))

    # --- driver -----------------------------------------------------------------

    def run(self) -> Plan:
        self.plan.problems.extend(drift_problems(self.conn, self.before, self.old))
        if self.plan.problems:
            return self.plan
        pairs = self._pair_entities()
        for pair in pairs:
            self._plan_entity(pair)
        after = build_schema(self.new, self.archive, self.dialect)
        self._check_new_tables_free(pairs, after)
        index_drops, index_creates = self._diff_indexes(after)
        key_drops, key_creates = self._diff_foreign_keys(after)
        self.plan.operations = (
            key_drops + index_drops + self.table_ops + self.column_ops + index_creates + key_creates
        )
        self.plan.archive = self.archive
        return self.plan

    # --- entities ----------------------------------------------------------------

    def _archived_entity(self, name: str) -> EntityModel:
        doc = self.old_archive.entities[name]
        model = AppModel.from_document({**self.old.doc, "entities": [doc], "workflows": []})
        return model.entities[name]

    def _pair_entities(self) -> list[_EntityPair]:
        pairs: list[_EntityPair] = []
        claimed: set[str] = set()
        for entity in self.new.entities.values():
            source = entity.name
            renamed_from = entity.doc.get("renamed_from")
            if source not in self.old.entities and source not in self.old_archive.entities:
                if renamed_from and renamed_from not in self.new.entities:
                    source = renamed_from
            if source in self.old.entities:
                old = self.old.entities[source]
                how = "same" if source == entity.name else "renamed"
            elif source in self.old_archive.entities:
                old, how = self._archived_entity(source), "restored"
                del self.archive.entities[source]
            else:
                pairs.append(_EntityPair(entity, None, None, "new"))
                continue
            claimed.add(source)
            table = self.before.tables[(self.old.name, source)]
            pairs.append(_EntityPair(entity, old, table, how))
            if source != entity.name and source in self.archive.fields:
                self.archive.fields[entity.name] = self.archive.fields.pop(source)
        for name, entity in self.old.entities.items():
            if name not in claimed:
                self._archive_entity(entity)
        return pairs

    def _archive_entity(self, entity: EntityModel) -> None:
        table = self.before.tables[(self.old.name, entity.name)]
        rows = row_count(self.conn, table)
        doc = dict(entity.doc)
        synthetic = [f.doc for f in entity.fields.values() if f.synthetic]
        if synthetic:
            doc["fields"] = list(doc.get("fields", [])) + synthetic
        self.archive.entities[entity.name] = doc
        self.table_ops.append(
            ops.Note(
                f"archive entity '{entity.name}': its {rows} records are hidden and kept; "
                "declare it again to restore it, or purge it to delete them"
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
                f"'{entity.name}' cannot switch between a child table and an entity of its own; "
                "create a new entity instead",
            )
            return
        if pair.how in ("renamed", "restored"):
            old_name = str(pair.old_table.name)
            if pair.how == "restored":
                self.table_ops.append(
                    ops.Note(
                        f"restore entity '{entity.name}' with its {row_count(self.conn, pair.old_table)} records"
                    )
                )
            if old_name != str(entity.table_name):
                self.table_ops.append(
                    ops.RenameTable(
                        old_name,
                        str(entity.table_name),
                        f"entity '{pair.old.name}' to '{entity.name}'",
                    )
                )
        self._plan_fields(pair)

    def _create_entity(self, entity: EntityModel) -> None:
        after = build_schema(self.new, None, self.dialect)
        self.table_ops.append(ops.CreateTable(after.table(entity.name), f"entity '{entity.name}'"))
        for fld in entity.fields.values():
            if fld.type_name == "multi_reference":
                link = after.link_tables[(self.new.name, entity.name, fld.name)]
                self.table_ops.append(ops.CreateTable(link, f"links of '{entity.name}.{fld.name}'"))

    # --- fields ------------------------------------------------------------------

    def _old_fields(self, pair: _EntityPair) -> tuple[dict[str, FieldModel], dict[str, FieldModel]]:
        """The old entity's active fields, and its archived ones, by name."""
        archived_docs = self.old_archive.fields.get(pair.old.name, {})
        if pair.how == "restored":
            archived_docs = {**archived_docs}
        archived_model = AppModel.from_document(
            {
                **self.old.doc,
                "entities": [{**pair.old.doc, "fields": list(archived_docs.values())}],
                "workflows": [],
            }
        ).entities[pair.old.name]
        return dict(pair.old.fields), dict(archived_model.fields)

    def _plan_fields(self, pair: _EntityPair) -> None:
        entity, table = pair.new, pair.old_table
        active, archived = self._old_fields(pair)
        archive_slot = self.archive.fields.setdefault(entity.name, {})
        claimed: set[str] = set()
        for fld in entity.fields.values():
            source = fld.name
            renamed_from = fld.doc.get("renamed_from")
            if (
                source not in active
                and source not in archived
                and renamed_from
                and renamed_from not in entity.fields
            ):
                source = renamed_from
            if source in active:
                old = active[source]
            elif source in archived:
                old = archived[source]
                archive_slot.pop(source, None)
                self.column_ops.append(
                    ops.Note(f"restore field '{entity.name}.{fld.name}' with its values")
                )
            else:
                self._add_field(pair, fld)
                continue
            claimed.add(source)
            self._change_field(pair, old, fld)
        for name, old in active.items():
            if name not in claimed:
                self._archive_field(table, entity, old, archive_slot)
        del table  # the old table is only read through pair from here on

    def _archive_field(
        self, table: Table, entity: EntityModel, old: FieldModel, slot: dict
    ) -> None:
        slot[old.name] = old.doc
        if not old.has_column:
            self.column_ops.append(
                ops.Note(f"archive field '{entity.name}.{old.name}': its links are kept")
            )
            return
        values = table.c[old.name]
        count = self.conn.execute(select(func.count()).where(values.is_not(None))).scalar_one()
        self.column_ops.append(
            ops.Note(
                f"archive field '{entity.name}.{old.name}': its {count} values are hidden and kept; "
                "declare it again to restore it, or purge it to delete them"
            )
        )
        if not table.c[old.name].nullable:
            self._set_nullable(
                str(entity.table_name),
                old.name,
                True,
                table.c[old.name].type,
                f"'{entity.name}.{old.name}' (archived)",
            )

    def _set_nullable(
        self, table: str, column: str, nullable: bool, existing_type, what: str
    ) -> None:
        self.column_ops.append(ops.SetNullable(table, column, nullable, existing_type, what))
        if self.dialect == "sqlite":
            self.touched_tables.add(table)

    def _add_field(self, pair: _EntityPair, fld: FieldModel) -> None:
        entity = pair.new
        what = f"field '{entity.name}.{fld.name}'"
        if fld.type_name == "multi_reference":
            after = build_schema(self.new, None, self.dialect)
            link = after.link_tables[(self.new.name, entity.name, fld.name)]
            self.column_ops.append(ops.CreateTable(link, f"links of {what}"))
            return
        if not fld.has_column:
            return
        after_table = build_schema(self.new, None, self.dialect).table(entity.name)
        column = after_table.c[fld.name]
        self.column_ops.append(
            ops.AddColumn(str(entity.table_name), column, f"{what} ({fld.type_name})")
        )
        if not fld.required:
            return
        rows = row_count(self.conn, pair.old_table)
        if rows:
            default = fld.doc.get("default")
            if default is None or default == "$user":
                self.refuse(
                    fld.pointer + "/required",
                    f"{rows} existing {entity.name} records would have no value for the new required "
                    f"field '{fld.name}'; give it a default to fill them, or make it optional",
                )
                return
            value = _default_value(default, fld)
            fill_table = Table(entity.table_name, _metadata(), column._copy())
            self.column_ops.append(ops.Backfill(fill_table, fld.name, value, what))
        self._set_nullable(str(entity.table_name), fld.name, False, column.type, what)

    def _change_field(self, pair: _EntityPair, old: FieldModel, new: FieldModel) -> None:
        entity, table = pair.new, pair.old_table
        what = f"field '{entity.name}.{new.name}'"
        table_name = str(entity.table_name)
        if old.has_column != new.has_column or (old.type_name == "multi_reference") != (
            new.type_name == "multi_reference"
        ):
            self.refuse(
                new.pointer + "/type",
                f"'{new.name}' cannot change from {old.type_name} to {new.type_name}: "
                "the data is stored differently; add a new field instead",
            )
            return
        if new.type_name == "multi_reference":
            self._change_links(pair, old, new)
            return
        if not new.has_column:
            if old.doc.get("target") != new.doc.get("target"):
                self.refuse(
                    new.pointer + "/target",
                    f"'{new.name}' cannot change its target; add a new field instead",
                )
            return
        if old.name != new.name:
            self.column_ops.append(
                ops.RenameColumn(
                    table_name,
                    old.name,
                    new.name,
                    f"field '{entity.name}.{old.name}' to '{new.name}'",
                )
            )
        column = table.c[old.name]
        converted = self._convert_if_needed(pair, old, new, column)
        if converted is False:
            return
        was_required = not column.nullable
        if new.required and (not was_required or converted):
            self._require(pair, old, new, column, what, converted)
        elif was_required and not new.required:
            self._set_nullable(table_name, new.name, True, new.column_type(), what)
        if new.unique and not old.unique:
            duplicates = duplicate_values(self.conn, table, column)
            if duplicates:
                self.refuse(
                    new.pointer + "/unique",
                    f"'{new.name}' cannot become unique: "
                    + "; ".join(
                        f"{value!r} is held by records {', '.join(map(str, ids))}"
                        for value, ids in duplicates
                    ),
                )

    def _require(self, pair, old, new, column, what, converted) -> None:
        missing = missing_values(self.conn, pair.old_table, column)
        if missing:
            count, ids = missing
            self.refuse(
                new.pointer + "/required",
                f"'{new.name}' cannot become required: {count} records have no value "
                f"(ids {', '.join(map(str, ids))}); fill them in first",
            )
            return
        self._set_nullable(str(pair.new.table_name), new.name, False, new.column_type(), what)

    def _convert_if_needed(self, pair, old: FieldModel, new: FieldModel, column) -> bool | None:
        """Plan a type change; True when the column is rebuilt, False when refused."""
        table = pair.old_table
        column_changed = repr(old.column_type()) != repr(new.column_type())
        type_changed = old.value_spec["type"] != new.value_spec["type"]
        if not column_changed and not type_changed:
            if _value_rules(old) != _value_rules(new) and not new.computed:
                misfits = misfit_count(self.conn, table, column, new.coerce)
                if misfits:
                    self.plan.warnings.append(
                        f"{misfits} {pair.new.name} records hold a value of '{new.name}' that the new "
                        "definition does not allow; they keep it, and must correct it when next edited"
                    )
            return None
        if not can_convert(old, new):
            self.refuse(
                new.pointer + "/type",
                f"'{new.name}' cannot change from {old.type_name} to {new.type_name}; add a new field instead",
            )
            return False
        failures, rows = conversion_failures(
            self.conn, table, column, lambda v: convert(v, old, new)
        )
        if failures:
            listed = "; ".join(
                f"record {row_id} ({to_plain(value)!r}): {message}"
                for row_id, value, message in failures
            )
            count = f"at least {EXAMPLES}" if len(failures) >= EXAMPLES else str(len(failures))
            self.refuse(
                new.pointer + "/type",
                f"{count} {pair.new.name} record(s) hold values of '{new.name}' that do not convert "
                f"to {new.value_spec['type']}: {listed}",
            )
            return False
        if not column_changed:
            self.column_ops.append(
                ops.Note(
                    f"check field '{pair.new.name}.{new.name}': all {rows} values are valid {new.type_name}"
                )
            )
            return None
        after_column = build_schema(self.new, None, self.dialect).table(pair.new.name).c[new.name]
        rename_table = Table(
            pair.new.table_name, _metadata(), table.c.id._copy(), _renamed(column, new.name)
        )
        self.column_ops.append(
            ops.ConvertColumn(
                rename_table,
                new.name,
                after_column,
                lambda v: convert(v, old, new),
                f"field '{pair.new.name}.{new.name}' from {old.type_name} to {new.type_name}",
                rows,
            )
        )
        self.touched_columns.add((str(pair.new.table_name), new.name))
        return True

    def _change_links(self, pair, old: FieldModel, new: FieldModel) -> None:
        if old.doc.get("target") != new.doc.get("target"):
            self.refuse(
                new.pointer + "/target",
                f"'{new.name}' cannot change its target; add a new field instead",
            )
            return
        old_link, new_link = str(old.link_table_name), str(new.link_table_name)
        if old_link != new_link:
            self.column_ops.append(
                ops.RenameTable(old_link, new_link, f"links of '{pair.new.name}.{new.name}'")
            )

    # --- tables that must not exist yet -------------------------------------------

    def _check_new_tables_free(self, pairs: list[_EntityPair], after: SchemaBuilder) -> None:
        from sqlalchemy import inspect

        existing = set(inspect(self.conn).get_table_names())
        for operation in self.table_ops + self.column_ops:
            if isinstance(operation, ops.CreateTable) and operation.table.name in existing:
                self.refuse(
                    "",
                    f"the database already has a table named {operation.table.name} that this app "
                    "does not know; rename the entity or remove the table",
                )

    # --- indexes and foreign keys ------------------------------------------------

    def _diff_indexes(self, after: SchemaBuilder):
        old = _indexes(self.before)
        new = _indexes(after)
        touched = self._touched(new) | self._touched(old)
        drops = [
            ops.DropIndex(index)
            for name, (sig, index) in old.items()
            if name not in new or new[name][0] != sig or name in touched
        ]
        creates = [
            ops.CreateIndex(index)
            for name, (sig, index) in new.items()
            if name not in old or old[name][0] != sig or name in touched
        ]
        return drops, creates

    def _touched(self, indexes) -> set[str]:
        return {
            name
            for name, (sig, _) in indexes.items()
            if sig[0] in self.touched_tables
            or any((sig[0], c) in self.touched_columns for c in sig[1])
        }

    def _diff_foreign_keys(self, after: SchemaBuilder):
        old, new = _foreign_keys(self.before), _foreign_keys(after)
        drops = [
            ops.DropForeignKey(fk)
            for name, (sig, fk) in old.items()
            if name not in new or new[name][0] != sig
        ]
        creates = [
            ops.CreateForeignKey(fk)
            for name, (sig, fk) in new.items()
            if name not in old or old[name][0] != sig
        ]
        return drops, creates


def _indexes(schema: SchemaBuilder) -> dict[str, tuple[tuple, Index]]:
    found = {}
    for table in schema.metadata.tables.values():
        if table.name == "crm_users" or len(table.c) == 1:
            continue
        for index in table.indexes:
            where = index.dialect_options["postgresql"].get("where") is not None
            signature = (
                str(table.name),
                tuple(c.name for c in index.columns),
                bool(index.unique),
                where,
            )
            found[str(index.name)] = (signature, index)
    return found


def _foreign_keys(schema: SchemaBuilder):
    found = {}
    for table in schema.metadata.tables.values():
        for constraint in table.foreign_key_constraints:
            signature = (
                str(table.name),
                tuple(c.name for c in constraint.columns),
                str(constraint.referred_table.name),
                constraint.ondelete,
            )
            found[str(constraint.name)] = (signature, constraint)
    return found


def _value_rules(fld: FieldModel) -> dict[str, Any]:
    return {k: v for k, v in fld.value_spec.items() if k not in PRESENTATION_KEYS}


def _default_value(default, fld: FieldModel):
    import datetime as dt

    if default in DEFAULT_TOKENS:
        now = dt.datetime.now(UTC)
        return now.date() if fld.value_spec["type"] == "date" else now
    try:
        return fld.coerce(default)
    except ValueProblem:
        return default


def _renamed(column, name: str):
    copy = column._copy()
    copy.name = copy.key = column_name(name)
    return copy


def _metadata():
    from sqlalchemy import MetaData

    return MetaData()


__all__ = ["Plan", "example_ids", "make_plan"]
