"""Property: publishing any sequence of changes keeps every value, or changes nothing.

A hypothesis state machine publishes a first version of an app (1-3 entities with
fields of varied types: text, long_text, integer, decimal, currency, percent,
boolean, date, datetime, select, multiselect, email, rating, reference), then, step
by step, inserts records (values valid for the definition current at the time,
through the field type's ``coerce``), now and then moves one to the recycle bin,
and publishes a new version with one to three changes: fields added (sometimes
required, with or without a default), removed, restored (under their name or a new
one), renamed, retyped, made required, unique or indexed or not, text lengths
changed, references retargeted; entities added, removed, restored and renamed.

A model keeps every value inserted (by entity, record and column) and predicts from
the rules of "Changing a published app" what each version must do: every value
converted by ``conversions.convert`` from its old definition to its new one,
archived fields keeping theirs, restored ones bringing them back; or a refusal that
points at the field and names the records behind it. After every publish the test
checks the prediction: an applied version left every value readable where the model
says, with the stored document and archive, and the columns' nullability, indexes
and (PostgreSQL) foreign keys to match; a refused one left the database (schema,
rows and stored versions, as ``builders.snapshot`` sees them) exactly as it was.
At the end of each example, planning the last version again must plan nothing.

Each example runs on a database of its own: a fresh SQLite file, or with ``--db
postgresql`` a fresh PostgreSQL schema, dropped afterwards. Document sequences that
found bugs are replayed through the same model in ``KNOWN_SEQUENCES``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    create_engine,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import text as sql

from metamodel import publish, store
from metamodel.conversions import can_convert, convert
from metamodel.db import make_engine
from metamodel.errors import InvalidDocument, PlanRefused, Problem
from metamodel.field_types import DEFAULT_TEXT_LENGTH, ValueProblem
from metamodel.identifiers import table_name
from metamodel.model import AppModel, FieldModel
from metamodel.operations import Note
from metamodel.sqltypes import UTC, UtcDateTime

from ..conftest import POSTGRES_SERVER
from . import strategies as gen
from .builders import APP, snapshot, virtual_tables

# Derandomized, so every run tries the same examples. Each example takes about a
# second, so shrinking a failure would take minutes: it is off unless asked for
# (CRM_SHRINK=1); the failure report lists every step and document as it ran.
SETTINGS = settings(
    max_examples=25,
    stateful_step_count=6,  # the first version, then five changed ones
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate]
    + ([Phase.shrink] if os.environ.get("CRM_SHRINK") else []),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the model ----------------------------------------------------------------------


@dataclass
class Entity:
    """An entity as the database holds it after the last published version."""

    name: str
    fields: dict[str, dict]  # declared fields (for an archived entity: those it had)
    archived: dict[str, dict]  # archived fields: definition when archived
    rows: dict[int, dict[str, Any]]  # record id -> column -> value, every column
    deleted: set[int] = field(default_factory=set)  # records in the recycle bin
    active: bool = True


@dataclass
class Draft:
    """A field of the next version, and the published column it comes from (if any)."""

    doc: dict
    origin: str | None

    @property
    def name(self) -> str:
        return self.doc["name"]


@dataclass
class DraftEntity:
    name: str
    origin: str | None  # the published (or archived) entity it comes from
    fields: list[Draft]


@dataclass
class Reason:
    """Why the model expects a version to be refused."""

    kind: str  # "type", "convert", "target", "required", "unique"
    entity: str
    field: str
    pointer: str
    ids: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.kind} {self.entity}.{self.field} {self.ids}"


def field_model(entity: str, doc: dict) -> FieldModel:
    app = AppModel.from_document(
        {
            "format": "crm-app/1",
            "name": APP,
            "version": "0.0.0",
            "entities": [{"name": entity, "fields": [doc]}],
        }
    )
    return app.entities[entity].fields[doc["name"]]


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, and for decimals with the same digits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Decimal):
        return str(a) == str(b)
    return a == b


def plain(value: Any) -> Any:
    if isinstance(value, dt.date | Decimal):
        return f"{type(value).__name__}({value})"
    return value


def quick_snapshot(engine) -> dict[str, Any]:
    """``builders.snapshot(engine)``, reflected in one pass (much faster on PostgreSQL).

    Every example checks once that both agree (see ``teardown``).
    """
    state: dict[str, Any] = {}
    with engine.connect() as conn:
        inspector = inspect(conn)
        columns = inspector.get_multi_columns()
        indexes = inspector.get_multi_indexes()
        metadata = MetaData()
        metadata.reflect(conn)
        skipped = virtual_tables(conn)
        for (schema, name), found in sorted(columns.items(), key=lambda item: item[0][1]):
            if name in skipped:
                continue
            table = metadata.tables[name]
            order = list(table.primary_key.columns) or [next(iter(table.columns))]
            rows = conn.execute(select(table).order_by(*order)).all()
            state[name] = (
                [(c["name"], str(c["type"]), c["nullable"]) for c in found],
                sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in indexes[(schema, name)]
                ),
                [tuple(map(repr, row)) for row in rows],
            )
    return state


def tally(what: str) -> None:
    """Count ``what`` in hypothesis' statistics (--hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(what)


def explained(problem: Problem, reason: Reason) -> bool:
    """Does the refusal ``problem`` state ``reason``, naming its records where it has any?"""
    if not problem.path.startswith(reason.pointer + "/"):
        return False
    suffix = problem.path[len(reason.pointer) + 1 :]
    if reason.kind in ("type", "convert") and suffix != "type":
        return False
    if reason.kind == "target" and suffix != "target":
        return False
    if reason.kind in ("required", "unique") and suffix != reason.kind:
        return False
    if reason.kind == "convert" or (reason.kind in ("required", "unique") and reason.ids):
        named = {int(n) for n in re.findall(r"\d+", problem.message)}
        return bool(named & set(reason.ids))
    return True


class AppMigrations(RuleBasedStateMachine):
    db_kind = "sqlite"
    admin = None  # an AUTOCOMMIT engine on the PostgreSQL server
    directory: Path | None = None
    # Whether an insert names the fields it leaves empty (None) or leaves them out.
    explicit_nulls = st.booleans()

    def __init__(self):
        super().__init__()
        self.entities: dict[str, Entity] = {}
        self.aliases: dict[str, str] = {}  # an entity's former name -> its next name
        self.serial = 0
        self.version = 0
        self.focus: list[Draft] = []  # fields the version being drafted changed
        self.clean = True  # False while a step runs, and after one that failed
        self.versions: list[tuple[str, list[DraftEntity]]] = []  # applied: version, drafts
        self.log: list[str] = []
        self.schema = None
        if self.db_kind == "postgresql":
            self.schema = "p_" + uuid.uuid4().hex[:16]
            with self.admin.connect() as conn:
                conn.execute(sql(f'CREATE SCHEMA "{self.schema}"'))
            url = f"{POSTGRES_SERVER}?options=-csearch_path%3D{self.schema}"
        else:
            self.path = self.directory / f"{uuid.uuid4().hex}.db"
            url = f"sqlite:///{self.path}"
        self.engine = make_engine(url)

    def teardown(self):
        try:
            if self.clean:
                self.check_replan()
                assert quick_snapshot(self.engine) == snapshot(self.engine)
        finally:
            self.close()

    def say(self, words: str) -> None:
        self.log.append(words)
        if currently_in_test_context():
            note(words)

    def check_replan(self) -> None:
        """Publishing the last version's content again plans nothing."""
        with self.engine.connect() as conn:
            stored = store.current(conn, APP) if self.version else None
        if stored is None:
            return
        again = publish.plan_document(self.engine, {**stored.document, "version": "99.0.0"})
        assert not again.plan.problems, again.plan.problems
        assert all(isinstance(op, Note) for op in again.plan.operations), again.plan.words()

    def close(self) -> None:
        self.engine.dispose()
        if self.schema:
            with self.admin.connect() as conn:
                conn.execute(sql(f'DROP SCHEMA "{self.schema}" CASCADE'))
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}_{self.serial}"

    # --- steps ------------------------------------------------------------------------

    @initialize(data=st.data())
    def first_version(self, data):
        names = [self.fresh("e") for _ in range(data.draw(st.integers(1, 3), label="entities"))]
        drafts = []
        for name in names:
            count = data.draw(st.integers(1, 4), label=f"fields of {name}")
            fields = [
                Draft(data.draw(gen.field_docs(self.fresh("f"), names)), None) for _ in range(count)
            ]
            drafts.append(DraftEntity(name, None, fields))
        self.publish(drafts, "first version")

    @precondition(lambda self: self.version > 0)
    @rule(data=st.data())
    def publish_a_change(self, data):
        """Insert records, now and then move one to the recycle bin, then publish a change."""
        for _ in range(data.draw(st.integers(0, 3), label="inserts first")):
            self.insert(data)
        if self.deletable() and data.draw(st.integers(0, 3), label="delete one") == 0:
            self.move_a_record_to_the_recycle_bin(data)
        if len(self.versions) > 1 and data.draw(st.integers(0, 7), label="revert") == 0:
            index = data.draw(st.integers(0, len(self.versions) - 2), label="revert to")
            tally("revert")
            version = self.versions[index][0]
            self.publish(self.reverted(index), f"revert to {version}", revert_to=version)
            return
        drafts = self.drafts()
        said = []
        self.focus = []
        for _ in range(data.draw(st.sampled_from([1, 2, 2, 3]), label="changes")):
            kinds = [
                name
                for name, (possible, _) in CHANGES.items()
                if possible(self, drafts)
                for _ in range(WEIGHTS.get(name, 1))
            ]
            kind = data.draw(st.sampled_from(kinds), label="change")
            tally(kind)
            said.append(CHANGES[kind][1](self, data, drafts))
        self.publish(drafts, "; ".join(said))

    # --- records ------------------------------------------------------------------------

    def insert(self, data):
        name = data.draw(st.sampled_from(self.active_names()), label="insert into")
        entity = self.entities[name]
        explicit_nulls = data.draw(self.explicit_nulls, label="explicit nulls")
        rows: list[dict[str, Any]] = []
        for _ in range(data.draw(st.integers(1, 3), label="records")):
            row = self.draw_record(data, entity, rows)
            if row is not None:
                rows.append(row)
        if rows:
            self.write(name, rows, explicit_nulls)

    def write(self, name: str, rows: list[dict[str, Any]], explicit_nulls: bool) -> None:
        """Insert records (valid values by field, None for none) and remember what they hold."""
        self.clean = False
        entity = self.entities[name]
        table = self.table(entity, archived=False, system=True)
        now = dt.datetime.now(UTC)
        ids = []
        with self.engine.begin() as conn:
            for row in rows:
                values = {k: v for k, v in row.items() if v is not None or explicit_nulls}
                statement = insert(table).values(
                    created_at=now, updated_at=now, version=1, **values
                )
                ids.append(conn.execute(statement.returning(table.c.id)).scalar_one())
        inserted = dict(zip(ids, rows, strict=True))
        self.say(f"insert into {name} (explicit nulls: {explicit_nulls}): {inserted}")
        stored = self.read(entity)
        for row_id, row in zip(ids, rows, strict=True):
            for column, value in row.items():
                assert same(stored[row_id][column], value), (
                    f"{name}.{column} of record {row_id}: wrote {value!r}, "
                    f"read {stored[row_id][column]!r}"
                )
            entity.rows[row_id] = {column: stored[row_id][column] for column in stored[row_id]}
        self.clean = True

    def deletable(self) -> list[tuple[str, int]]:
        return [
            (e.name, row_id)
            for e in self.entities.values()
            if e.active
            for row_id in sorted(set(e.rows) - e.deleted)
        ]

    def move_a_record_to_the_recycle_bin(self, data):
        self.delete(*data.draw(st.sampled_from(self.deletable()), label="delete"))

    def delete(self, name: str, row_id: int) -> None:
        table = Table(
            table_name(APP, name),
            MetaData(),
            Column("id", Integer, primary_key=True),
            Column("deleted_at", UtcDateTime),
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(table).where(table.c.id == row_id).values(deleted_at=dt.datetime.now(UTC))
            )
        self.entities[name].deleted.add(row_id)
        self.say(f"record {name} {row_id} moved to the recycle bin")

    def draw_record(self, data, entity: Entity, batch: list[dict]) -> dict[str, Any] | None:
        row: dict[str, Any] = {}
        for name, doc in entity.fields.items():
            value = None
            if doc.get("required") or data.draw(st.integers(0, 3), label="has value") > 0:
                ids = (
                    sorted(self.entities[doc["target"]].rows) if doc["type"] == "reference" else []
                )
                raw = data.draw(gen.raw_values(doc, ids), label=name)
                try:
                    value = None if raw is None else field_model(entity.name, doc).coerce(raw)
                except ValueProblem:
                    value = None
            if value is not None and doc.get("unique"):
                live = [r[name] for i, r in entity.rows.items() if i not in entity.deleted]
                if any(same(value, other) for other in live + [r[name] for r in batch]):
                    value = None
            if value is None and doc.get("required"):
                return None
            row[name] = value
        return row

    def table(self, entity: Entity, archived: bool = True, system: bool = False) -> Table:
        """The entity's table, typed as its (and its archived fields') definitions say."""
        columns = [Column("id", Integer, primary_key=True)]
        if system:
            columns += [
                Column("created_at", UtcDateTime),
                Column("updated_at", UtcDateTime),
                Column("version", Integer),
            ]
        docs = list(entity.fields.values()) + (list(entity.archived.values()) if archived else [])
        for doc in docs:
            columns.append(Column(doc["name"], field_model(entity.name, doc).column_type()))
        return Table(table_name(APP, entity.name), MetaData(), *columns)

    def read(self, entity: Entity) -> dict[int, dict[str, Any]]:
        table = self.table(entity)
        with self.engine.connect() as conn:
            rows = conn.execute(select(table)).all()
        return {row.id: {k: v for k, v in row._mapping.items() if k != "id"} for row in rows}

    # --- the next version ---------------------------------------------------------------

    def active_names(self) -> list[str]:
        return [name for name, e in self.entities.items() if e.active]

    def drafts(self) -> list[DraftEntity]:
        return [
            DraftEntity(
                e.name, e.name, [Draft(copy.deepcopy(doc), name) for name, doc in e.fields.items()]
            )
            for e in self.entities.values()
            if e.active
        ]

    def target_now(self, target: str, drafts: list[DraftEntity]) -> str | None:
        """What the next version calls the entity a published definition calls ``target``."""
        while target in self.aliases:
            target = self.aliases[target]
        return next((d.name for d in drafts if d.origin == target), None)

    def document(self, drafts: list[DraftEntity]) -> dict:
        entities = []
        for draft in drafts:
            fields = []
            for fld in draft.fields:
                doc = dict(fld.doc)
                if fld.origin is not None and fld.origin != fld.name:
                    doc["renamed_from"] = fld.origin
                fields.append(doc)
            entity = {"name": draft.name, "fields": fields}
            if draft.origin is not None and draft.origin != draft.name:
                entity["renamed_from"] = draft.origin
            entities.append(entity)
        return {
            "format": "crm-app/1",
            "name": APP,
            "version": f"1.{self.version}.0",
            "entities": entities,
        }

    def publish_entities(self, entities: list[dict], what: str) -> None:
        """Publish entity definitions, pairing them with what exists as the rules say."""
        self.publish(self.pairing(entities), what)

    def pairing(self, entities: list[dict]) -> list[DraftEntity]:
        """Entity definitions as drafts: what each continues, by name, else renamed_from."""
        drafts = []
        for entity in entities:
            origin = entity["name"]
            if origin not in self.entities:
                origin = entity.get("renamed_from")
            source = self.entities.get(origin)
            known = {**source.archived, **source.fields} if source else {}
            fields = []
            for doc in entity["fields"]:
                before = doc["name"] if doc["name"] in known else doc.get("renamed_from")
                doc = {k: v for k, v in doc.items() if k != "renamed_from"}
                fields.append(Draft(doc, before if before in known else None))
            drafts.append(DraftEntity(entity["name"], origin if source else None, fields))
        return drafts

    def reverted(self, index: int) -> list[DraftEntity]:
        """Version ``index`` again: each entity and field continues what it became since."""
        drafts = []
        for then in self.versions[index][1]:
            entity = then.name
            names = {f.name: f.name for f in then.fields}  # field then -> field now
            for _, version in self.versions[index + 1 :]:
                after = next((d for d in version if d.origin == entity), None)
                if after is None:
                    continue  # not declared (archived): keeps its name
                for was, now in names.items():
                    names[was] = next((f.name for f in after.fields if f.origin == now), now)
                entity = after.name
            source = self.entities.get(entity)
            known = {**source.fields, **source.archived} if source else {}
            fields = [
                Draft(copy.deepcopy(f.doc), names[f.name] if names[f.name] in known else None)
                for f in then.fields
            ]
            drafts.append(DraftEntity(then.name, entity if source else None, fields))
        return drafts

    def values_of(self, draft: DraftEntity, fld: Draft) -> list[Any]:
        source = self.entities.get(draft.origin) if draft.origin else None
        if source is None or fld.origin is None:
            return []
        return [row[fld.origin] for row in source.rows.values() if row[fld.origin] is not None]

    # --- what publishing must do ------------------------------------------------------

    def predict(self, drafts: list[DraftEntity]) -> tuple[dict[str, Entity], list[Reason]]:
        reasons: list[Reason] = []
        result: dict[str, Entity] = {}
        claimed = set()
        for e_index, draft in enumerate(drafts):
            source = self.entities[draft.origin] if draft.origin else None
            if source is not None:
                claimed.add(draft.origin)
            rows = source.rows if source else {}
            deleted = set(source.deleted) if source else set()
            before = {**source.archived, **source.fields} if source else {}
            new_rows: dict[int, dict[str, Any]] = {row_id: {} for row_id in rows}
            used = set()
            for f_index, fld in enumerate(draft.fields):
                pointer = f"/entities/{e_index}/fields/{f_index}"
                if fld.origin is None:
                    default = fld.doc.get("default")
                    value = None
                    if fld.doc.get("required") and default is not None:
                        value = field_model(draft.name, fld.doc).coerce(default)
                    values = {row_id: value for row_id in rows}
                else:
                    used.add(fld.origin)
                    values = self.converted(
                        draft, fld, source.name, before[fld.origin], rows, pointer, drafts, reasons
                    )
                self.check_rules(draft, fld, values, deleted, pointer, reasons)
                for row_id in rows:
                    new_rows[row_id][fld.name] = values[row_id]
            archived = {}
            for name, doc in before.items():
                if name not in used:
                    archived[name] = doc
                    for row_id in rows:
                        new_rows[row_id][name] = rows[row_id][name]
            result[draft.name] = Entity(
                draft.name, {f.name: f.doc for f in draft.fields}, archived, new_rows, deleted
            )
        for name, entity in self.entities.items():
            if name not in claimed:
                result[name] = Entity(
                    name, entity.fields, entity.archived, entity.rows, entity.deleted, False
                )
        return result, reasons

    def converted(self, draft, fld, source_name, old_doc, rows, pointer, drafts, reasons):
        current = {row_id: row[fld.origin] for row_id, row in rows.items()}
        old, new = field_model(source_name, old_doc), field_model(draft.name, fld.doc)
        why = Reason("type", draft.name, fld.name, pointer)
        if old_doc["type"] == fld.doc["type"] == "reference":
            if self.target_now(old_doc["target"], drafts) != fld.doc["target"]:
                # Its ids would name records of another entity.
                reasons.append(Reason("target", draft.name, fld.name, pointer))
            return current
        if old.value_spec["type"] == new.value_spec["type"] and repr(old.column_type()) == repr(
            new.column_type()
        ):
            return current
        if not can_convert(old, new):
            reasons.append(why)
            return current
        values, failures = {}, []
        for row_id, value in current.items():
            try:
                values[row_id] = convert(value, old, new)
            except ValueProblem:
                failures.append(row_id)
                values[row_id] = value
        if failures:
            reasons.append(Reason("convert", draft.name, fld.name, pointer, failures))
        return values

    def check_rules(self, draft, fld, values, deleted, pointer, reasons) -> None:
        if fld.doc.get("required"):
            missing = [row_id for row_id, value in values.items() if value is None]
            if missing:
                ids = missing if fld.origin is not None else []
                reasons.append(Reason("required", draft.name, fld.name, pointer, ids))
        if fld.doc.get("unique"):
            holders = defaultdict(list)
            for row_id, value in values.items():
                if value is not None and row_id not in deleted:
                    holders[tuple(value) if isinstance(value, list) else value].append(row_id)
            shared = [row_id for ids in holders.values() if len(ids) > 1 for row_id in ids]
            if shared:
                ids = shared if fld.origin is not None else []
                reasons.append(Reason("unique", draft.name, fld.name, pointer, ids))

    # --- publishing and checking ---------------------------------------------------------

    def publish(self, drafts: list[DraftEntity], what: str, revert_to: str | None = None) -> None:
        """Publish the drafts (or revert to an earlier version, which they say again)."""
        self.clean = False
        self.version += 1
        doc = self.document(drafts)
        expected, reasons = self.predict(drafts)
        self.say(f"publish {doc['version']} ({what}): {json.dumps(doc)}")
        before = quick_snapshot(self.engine) if reasons else None
        try:
            if revert_to is None:
                publish.apply_document(self.engine, doc)
            else:
                publish.revert(self.engine, APP, revert_to)
        except (InvalidDocument, PlanRefused) as error:
            assert reasons, (
                f"{doc['version']} ({what}) was refused, but every value fits it: "
                + "; ".join(map(str, error.problems))
            )
            assert isinstance(error, PlanRefused), error.problems
            assert quick_snapshot(self.engine) == before, (
                f"refused {doc['version']} changed the database"
            )
            assert any(
                explained(problem, reason) for problem in error.problems for reason in reasons
            ), (
                f"{doc['version']} ({what}) was refused for {'; '.join(map(str, error.problems))}"
                f" but should have been for {'; '.join(map(str, reasons))}"
            )
            self.say(f"refused as expected: {'; '.join(map(str, reasons))}")
            tally("refused: " + ", ".join(sorted({r.kind for r in reasons})))
            self.clean = True
            return
        assert not reasons, (
            f"{doc['version']} ({what}) applied, but should have been refused: "
            + "; ".join(map(str, reasons))
        )
        if revert_to is not None:
            with self.engine.connect() as conn:
                doc = store.current(conn, APP).document
            self.say(f"reverted as {json.dumps(doc)}")
            as_published = [
                (d.name, d.origin, [(f.doc, f.origin) for f in d.fields]) for d in drafts
            ]
            pairs = [
                (d.name, d.origin, [(f.doc, f.origin) for f in d.fields])
                for d in self.pairing(doc["entities"])
            ]
            assert pairs == as_published, f"the revert to {revert_to} continued other things"
        for draft in drafts:
            if draft.origin is not None and draft.origin != draft.name:
                self.aliases[draft.origin] = draft.name
        self.versions.append((doc["version"], drafts))
        self.entities = expected
        tally("applied")
        self.check_database(doc)
        self.clean = True

    def check_database(self, doc: dict) -> None:
        with self.engine.connect() as conn:
            stored = store.current(conn, APP)
        assert stored.document == doc
        archived_entities = {name for name, e in self.entities.items() if not e.active}
        assert set(stored.archive.entities) == archived_entities
        for name, entity in self.entities.items():
            assert set(stored.archive.fields.get(name, {})) == set(entity.archived), (
                f"archived fields of {name}"
            )
        for name, entity in self.entities.items():
            stored_rows = self.read(entity)
            assert set(stored_rows) == set(entity.rows), f"records of {name}"
            for row_id, row in entity.rows.items():
                for column, value in row.items():
                    found = stored_rows[row_id][column]
                    assert same(found, value), (
                        f"{name}.{column} of record {row_id} is {plain(found)!r}, "
                        f"expected {plain(value)!r}"
                    )
        active = {str(table_name(APP, n)): e for n, e in self.entities.items() if e.active}
        with self.engine.connect() as conn:
            inspector = inspect(conn)
            columns = inspector.get_multi_columns(filter_names=list(active))
            indexes = inspector.get_multi_indexes(filter_names=list(active))
            keys = {}
            if self.db_kind == "postgresql":
                keys = inspector.get_multi_foreign_keys(filter_names=list(active))
        for (schema, physical), found in columns.items():
            entity, name = active[physical], active[physical].name
            nullable = {c["name"]: c["nullable"] for c in found}
            for field_name, field_doc in entity.fields.items():
                assert nullable[field_name] == (not field_doc.get("required")), (
                    f"{name}.{field_name} is {'' if nullable[field_name] else 'not '}nullable"
                )
            for field_name in entity.archived:
                assert nullable[field_name], f"archived {name}.{field_name} is not nullable"
            # Unique fields have a unique index, indexed fields and references an index;
            # archived fields none.
            stored = set(entity.fields) | set(entity.archived)
            found_indexes = {
                (i["column_names"][0], bool(i["unique"]))
                for i in indexes[(schema, physical)]
                if len(i["column_names"]) == 1 and i["column_names"][0] in stored
            }
            assert found_indexes == {
                (f, bool(d.get("unique")))
                for f, d in entity.fields.items()
                if d.get("unique") or d.get("indexed") or d["type"] == "reference"
            }, f"indexes of {name}: {found_indexes}"
            if self.db_kind == "postgresql":
                found_keys = {
                    (tuple(k["constrained_columns"]), k["referred_table"])
                    for k in keys[(schema, physical)]
                }
                assert found_keys == {
                    ((f,), str(table_name(APP, d["target"])))
                    for f, d in entity.fields.items()
                    if d["type"] == "reference"
                }, f"foreign keys of {name}: {found_keys}"
        assert len(columns) == len(active), f"tables missing: {set(active)} {list(columns)}"

    # --- changes (each edits the drafts and says what it did) ---------------------------

    def fields_where(self, drafts, test=lambda draft, fld: True):
        return [(d, f) for d in drafts for f in d.fields if test(d, f)]

    def pick_field(self, data, drafts, test=lambda draft, fld: True) -> tuple[DraftEntity, Draft]:
        """A field, often one this version already changed: changes meet there."""
        pairs = self.fields_where(drafts, test)
        focused = [p for p in pairs if any(p[1] is f for f in self.focus)]
        if focused and data.draw(st.booleans(), label="same field again"):
            pairs = focused
        draft, fld = data.draw(st.sampled_from(pairs), label="field")
        self.focus.append(fld)
        return draft, fld

    def add_field(self, data, drafts):
        draft = data.draw(st.sampled_from(drafts), label="entity")
        doc = data.draw(gen.field_docs(self.fresh("f"), [d.name for d in drafts]), label="new")
        draft.fields.append(Draft(doc, None))
        self.focus.append(draft.fields[-1])
        return f"add {draft.name}.{doc['name']} ({doc['type']})"

    def remove_field(self, data, drafts):
        draft, fld = self.pick_field(data, drafts, lambda d, f: len(d.fields) > 1)
        draft.fields.remove(fld)
        return f"remove {draft.name}.{fld.name}"

    def restorable(self, draft: DraftEntity, drafts) -> list[tuple[str, dict]]:
        if draft.origin is None:
            return []
        source = self.entities[draft.origin]
        taken = {f.origin for f in draft.fields} | {f.name for f in draft.fields}
        found = []
        for name, doc in {**source.fields, **source.archived}.items():
            if name in taken:
                continue
            doc = copy.deepcopy(doc)
            if doc["type"] == "reference":
                target = self.target_now(doc["target"], drafts)
                if target is None:
                    continue
                doc["target"] = target
            found.append((name, doc))
        return found

    def restore_field(self, data, drafts):
        draft = data.draw(
            st.sampled_from([d for d in drafts if self.restorable(d, drafts)]), label="entity"
        )
        name, doc = data.draw(st.sampled_from(self.restorable(draft, drafts)), label="restore")
        if data.draw(st.booleans(), label="under a new name"):
            doc["name"] = self.fresh("f")
        draft.fields.append(Draft(doc, name))
        self.focus.append(draft.fields[-1])
        return f"restore {draft.name}.{name} as {doc['name']}"

    def rename_field(self, data, drafts):
        draft, fld = self.pick_field(data, drafts)
        old = fld.name
        fld.doc["name"] = self.fresh("f")
        return f"rename {draft.name}.{old} to {fld.name}"

    def change_type(self, data, drafts):
        draft, fld = self.pick_field(data, drafts)
        targets = [d.name for d in drafts]
        kinds = [k for k in gen.FIELD_TYPES if k != fld.doc["type"]]
        kind = data.draw(st.sampled_from(kinds), label="new type")
        seen = []
        for value in self.values_of(draft, fld):
            for item in value if isinstance(value, list) else [value]:
                option = gen.as_option(item)
                if option is not None and option not in seen:
                    seen.append(option)
        doc = {"name": fld.name, "type": kind}
        doc.update(data.draw(gen.type_keys(kind, targets, tuple(seen)), label="keys"))
        if fld.doc.get("required"):
            doc["required"] = True
        for key in ("unique", "indexed"):
            if fld.doc.get(key) and kind in gen.UNIQUE_TYPES:
                doc[key] = True
        old_type = fld.doc["type"]
        fld.doc = doc
        return f"change {draft.name}.{fld.name} from {old_type} to {json.dumps(doc)}"

    def retarget(self, data, drafts):
        draft, fld = self.pick_field(data, drafts, lambda d, f: f.doc["type"] == "reference")
        others = [d.name for d in drafts if d.name != fld.doc["target"]]
        fld.doc["target"] = data.draw(st.sampled_from(others), label="target")
        return f"point {draft.name}.{fld.name} at {fld.doc['target']}"

    def toggle_required(self, data, drafts):
        draft, fld = self.pick_field(data, drafts)
        if fld.doc.get("required"):
            del fld.doc["required"]
            return f"{draft.name}.{fld.name} is optional"
        fld.doc["required"] = True
        return f"{draft.name}.{fld.name} is required"

    def toggle_unique(self, data, drafts, key="unique"):
        draft, fld = self.pick_field(data, drafts, lambda d, f: f.doc["type"] in gen.UNIQUE_TYPES)
        if fld.doc.get(key):
            del fld.doc[key]
            return f"{draft.name}.{fld.name} is not {key}"
        fld.doc[key] = True
        return f"{draft.name}.{fld.name} is {key}"

    def toggle_indexed(self, data, drafts):
        return self.toggle_unique(data, drafts, "indexed")

    def change_max_length(self, data, drafts):
        draft, fld = self.pick_field(data, drafts, lambda d, f: f.doc["type"] == "text")
        now = fld.doc.get("max_length", DEFAULT_TEXT_LENGTH)
        length = data.draw(
            st.sampled_from([n for n in (3, 5, 10, 40, 255, 4000) if n != now]), label="length"
        )
        fld.doc["max_length"] = length
        return f"{draft.name}.{fld.name} holds at most {length} characters"

    def add_entity(self, data, drafts):
        name = self.fresh("e")
        targets = [d.name for d in drafts] + [name]
        count = data.draw(st.integers(1, 3), label="fields")
        fields = [
            Draft(data.draw(gen.field_docs(self.fresh("f"), targets), label="new"), None)
            for _ in range(count)
        ]
        drafts.append(DraftEntity(name, None, fields))
        self.focus.extend(fields)
        return f"add entity {name}"

    def removable(self, drafts) -> list[DraftEntity]:
        return [
            d
            for d in drafts
            if not any(
                f.doc["type"] == "reference" and f.doc["target"] == d.name
                for other in drafts
                if other is not d
                for f in other.fields
            )
        ]

    def remove_entity(self, data, drafts):
        draft = data.draw(st.sampled_from(self.removable(drafts)), label="entity")
        drafts.remove(draft)
        return f"remove entity {draft.name}"

    def rename_entity(self, data, drafts):
        draft = data.draw(st.sampled_from(drafts), label="entity")
        old = draft.name
        draft.name = self.fresh("e")
        for other in drafts:
            for fld in other.fields:
                if fld.doc["type"] == "reference" and fld.doc["target"] == old:
                    fld.doc["target"] = draft.name
        self.focus.extend(draft.fields)
        return f"rename entity {old} to {draft.name}"

    def archived_entities(self, drafts) -> list[str]:
        claimed = {d.origin for d in drafts}
        return [n for n, e in self.entities.items() if not e.active and n not in claimed]

    def restore_entity(self, data, drafts):
        name = data.draw(st.sampled_from(self.archived_entities(drafts)), label="restore")
        new_name = name if data.draw(st.booleans(), label="same name") else self.fresh("e")
        draft = DraftEntity(new_name, name, [])
        drafts.append(draft)
        source = self.entities[name]
        for field_name, doc in {**source.fields, **source.archived}.items():
            # Mostly as it was archived; now and then with a field left out, or with a
            # field that was archived before the entity was.
            keep = 9 if field_name in source.fields else 4
            if data.draw(st.integers(0, 9), label=f"restore {field_name}") >= keep:
                continue
            doc = copy.deepcopy(doc)
            if doc["type"] == "reference":
                target = name if doc["target"] == name else self.target_now(doc["target"], drafts)
                if target is None:
                    continue
                doc["target"] = new_name if target == name else target
            draft.fields.append(Draft(doc, field_name))
        if not draft.fields:
            draft.fields.append(Draft({"name": self.fresh("f"), "type": "text"}, None))
        self.focus.extend(draft.fields)
        return f"restore entity {name} as {new_name}"


# How much likelier than the others a change is, when it is possible at all.
WEIGHTS = {"change type": 4, "restore field": 2, "restore entity": 2}
CHANGES = {
    "add field": (lambda m, drafts: bool(drafts), AppMigrations.add_field),
    "remove field": (
        lambda m, drafts: bool(m.fields_where(drafts, lambda d, f: len(d.fields) > 1)),
        AppMigrations.remove_field,
    ),
    "restore field": (
        lambda m, drafts: any(m.restorable(d, drafts) for d in drafts),
        AppMigrations.restore_field,
    ),
    "rename field": (lambda m, drafts: bool(m.fields_where(drafts)), AppMigrations.rename_field),
    "change type": (lambda m, drafts: bool(m.fields_where(drafts)), AppMigrations.change_type),
    "toggle required": (
        lambda m, drafts: bool(m.fields_where(drafts)),
        AppMigrations.toggle_required,
    ),
    "toggle unique": (
        lambda m, drafts: bool(
            m.fields_where(drafts, lambda d, f: f.doc["type"] in gen.UNIQUE_TYPES)
        ),
        AppMigrations.toggle_unique,
    ),
    "toggle indexed": (
        lambda m, drafts: bool(
            m.fields_where(drafts, lambda d, f: f.doc["type"] in gen.UNIQUE_TYPES)
        ),
        AppMigrations.toggle_indexed,
    ),
    "change max_length": (
        lambda m, drafts: bool(m.fields_where(drafts, lambda d, f: f.doc["type"] == "text")),
        AppMigrations.change_max_length,
    ),
    "retarget reference": (
        lambda m, drafts: (
            len(drafts) > 1
            and bool(m.fields_where(drafts, lambda d, f: f.doc["type"] == "reference"))
        ),
        AppMigrations.retarget,
    ),
    "add entity": (lambda m, drafts: len(drafts) < 4, AppMigrations.add_entity),
    "remove entity": (
        lambda m, drafts: len(drafts) > 1 and bool(m.removable(drafts)),
        AppMigrations.remove_entity,
    ),
    "rename entity": (lambda m, drafts: bool(drafts), AppMigrations.rename_entity),
    "restore entity": (
        lambda m, drafts: bool(m.archived_entities(drafts)),
        AppMigrations.restore_entity,
    ),
}


# --- known sequences ------------------------------------------------------------------
# Document sequences the state machine found (shrunk by hand), replayed through the
# same model so they run on every CI run whatever the examples above happen to try.
# Steps: ("publish", [entity, ...]), ("insert", entity, [record, ...]) where a record
# names the values it sets (None: written as an explicit null), or ("delete", entity,
# id) to move a record to the recycle bin.


def _e(name, *fields, **extra):
    return {"name": name, "fields": list(fields), **extra}


def _f(name, kind="text", **extra):
    return {"name": name, "type": kind, **extra}


A, B, C = (
    _e("e_a", _f("f_t")),
    _e("e_b", _f("f_t")),
    _e("e_c", _f("f_r", "reference", target="e_a")),
)
KNOWN_SEQUENCES = {
    "retargeting a reference is refused": [
        ("publish", [A, B, C]),
        ("insert", "e_a", [{"f_t": "A"}]),
        ("insert", "e_b", [{"f_t": "B"}]),
        ("insert", "e_c", [{"f_r": 1}]),
        ("publish", [A, B, _e("e_c", _f("f_r", "reference", target="e_b"))]),
    ],
    "restoring an entity restores the fields it had archived": [
        ("publish", [_e("e_a", _f("f_t"), _f("f_c")), B]),
        ("insert", "e_a", [{"f_t": "A", "f_c": "X"}]),
        ("publish", [_e("e_a", _f("f_t")), B]),
        ("publish", [B]),
        ("publish", [_e("e_a", _f("f_t"), _f("f_c")), B]),
    ],
    "a field made optional as its entity is restored accepts empty values": [
        ("publish", [_e("e_a", _f("f_t", required=True), _f("f_c")), B]),
        ("insert", "e_a", [{"f_t": "A"}]),
        ("publish", [B]),
        ("publish", [_e("e_a", _f("f_t"), _f("f_c")), B]),
        ("insert", "e_a", [{"f_c": "X"}]),
    ],
    "a required field left out as its entity is restored is archived and optional": [
        ("publish", [_e("e_a", _f("f_t", required=True), _f("f_c")), B]),
        ("publish", [B]),
        ("publish", [_e("e_a", _f("f_c")), B]),
        ("insert", "e_a", [{"f_c": "X"}]),
    ],
    "a null in a JSON column is no value for required": [
        ("publish", [_e("e_a", _f("f_t"), _f("f_m", "multiselect", options=[{"value": "x"}]))]),
        ("insert", "e_a", [{"f_t": "A", "f_m": None}]),
        (
            "publish",
            [
                _e(
                    "e_a",
                    _f("f_t"),
                    _f("f_m", "multiselect", options=[{"value": "x"}], required=True),
                )
            ],
        ),
    ],
    "a new unique field cannot give two records the same default": [
        ("publish", [_e("e_a", _f("f_t"))]),
        ("insert", "e_a", [{"f_t": "A"}, {"f_t": "B"}]),
        ("publish", [_e("e_a", _f("f_t"), _f("f_c", required=True, unique=True, default="n/a"))]),
    ],
    "a reference archived before its target was renamed can be restored": [
        ("publish", [A, _e("e_c", _f("f_t"), _f("f_r", "reference", target="e_a"))]),
        ("insert", "e_a", [{"f_t": "A"}]),
        ("insert", "e_c", [{"f_t": "C", "f_r": 1}]),
        ("publish", [A, _e("e_c", _f("f_t"))]),
        ("publish", [_e("e_d", _f("f_t"), renamed_from="e_a"), _e("e_c", _f("f_t"))]),
        (
            "publish",
            [_e("e_d", _f("f_t")), _e("e_c", _f("f_t"), _f("f_r", "reference", target="e_d"))],
        ),
    ],
    "an entity archived before its reference's target was renamed can be restored": [
        ("publish", [A, _e("e_c", _f("f_r", "reference", target="e_a"))]),
        ("insert", "e_a", [{"f_t": "A"}]),
        ("insert", "e_c", [{"f_r": 1}]),
        ("publish", [A]),
        ("publish", [_e("e_d", _f("f_t"), renamed_from="e_a")]),
        ("publish", [_e("e_d", _f("f_t")), _e("e_c", _f("f_r", "reference", target="e_d"))]),
    ],
    "records in the recycle bin do not share a new unique field's default": [
        ("publish", [_e("e_a", _f("f_t"))]),
        ("insert", "e_a", [{"f_t": "A"}, {"f_t": "B"}]),
        ("delete", "e_a", 1),
        ("publish", [_e("e_a", _f("f_t"), _f("f_c", required=True, unique=True, default="n/a"))]),
    ],
    "a new required multiselect is filled with its default": [
        ("publish", [_e("e_a", _f("f_t"))]),
        ("insert", "e_a", [{"f_t": "A"}]),
        (
            "publish",
            [
                _e(
                    "e_a",
                    _f("f_t"),
                    _f(
                        "f_m", "multiselect", options=[{"value": "x"}], required=True, default=["x"]
                    ),
                )
            ],
        ),
    ],
    "a type change that makes unique values collide names the records": [
        ("publish", [_e("e_a", _f("f_c", unique=True))]),
        ("insert", "e_a", [{"f_c": "7"}, {"f_c": "007"}]),
        ("publish", [_e("e_a", _f("f_c", "integer", unique=True))]),
    ],
    "a type change that empties a required field names the records": [
        ("publish", [_e("e_a", _f("f_m", "multiselect", options=[{"value": "x"}], required=True))]),
        ("insert", "e_a", [{"f_m": []}, {"f_m": ["x"]}]),
        ("publish", [_e("e_a", _f("f_m", "select", options=[{"value": "x"}], required=True))]),
    ],
    "text becoming e-mail stores the converted addresses": [
        ("publish", [_e("e_a", _f("f_m"))]),
        ("insert", "e_a", [{"f_m": " a@b.co "}]),
        ("publish", [_e("e_a", _f("f_m", "email"))]),
    ],
}


def replay(machine: AppMigrations, steps: list[tuple]) -> None:
    for step in steps:
        if step[0] == "publish":
            machine.publish_entities(copy.deepcopy(step[1]), "as listed")
            continue
        if step[0] == "delete":
            machine.delete(step[1], step[2])
            continue
        _, name, records = step
        fields = machine.entities[name].fields
        rows = [
            {
                f: None if record.get(f) is None else field_model(name, doc).coerce(record[f])
                for f, doc in fields.items()
            }
            for record in records
        ]
        explicit_nulls = any(value is None for record in records for value in record.values())
        machine.write(name, rows, explicit_nulls)


@pytest.fixture
def machine_class(db_kind, tmp_path):
    admin = None
    if db_kind == "postgresql":
        admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    yield type(
        "AppMigrations",
        (AppMigrations,),
        {"db_kind": db_kind, "admin": admin, "directory": tmp_path},
    )
    if admin is not None:
        admin.dispose()


def test_every_published_change_keeps_every_value_or_changes_nothing(machine_class):
    run_state_machine_as_test(machine_class, settings=SETTINGS)


@pytest.mark.parametrize("steps", KNOWN_SEQUENCES.values(), ids=list(KNOWN_SEQUENCES))
def test_known_sequences_keep_every_value_or_change_nothing(machine_class, steps):
    machine = machine_class()
    try:
        replay(machine, steps)
    except BaseException as error:
        error.add_note("steps as run:\n" + "\n".join(machine.log))
        machine.close()
        raise
    machine.teardown()
