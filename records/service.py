"""The record service: create, read, update, delete, restore — every path, one set of rules.

Each call runs in one transaction: validation, permission checks, computed
fields, child rows, links, the audit entry and the propagation to records that
depend on this one all commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, update

from metamodel import field_types
from metamodel.db import IMMEDIATE
from metamodel.errors import NotFound, Problem
from metamodel.messages import Label, Message
from metamodel.model import EntityModel, FieldModel
from metamodel.registry import Registry
from metamodel.sqltypes import UTC
from metamodel.system_tables import files as files_table
from metamodel.system_tables import users

from . import access, audit
from . import files as stored_files
from .actor import Actor
from .autonumber import next_value
from .computed import compute, dependents_reads
from .errors import Forbidden, RecordConflict, StaleVersion, ValidationFailed
from .query import (
    ListQuery,
    check_readable,
    compile_rule,
    count,
    order_by,
    page_bounds,
    search_condition,
    visible,
)
from .rule_data import rule_data
from .runtime import EntityRuntime, attach_schema, build_runtime
from .serialize import Serialiser, as_json
from .statements import ID, IDS, statements
from .timeline import timeline as build_timeline
from .validation import blank, problems_from

IGNORED_INPUT = {
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "version",
    "deleted_at",
}
MAX_PROPAGATION_DEPTH = 8
FILE_TYPES = ("file", "signature")


class Records:
    def __init__(
        self,
        engine: Engine,
        registry: Registry | None = None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        files_root: str | Path | None = None,
    ):
        self.engine = engine
        self.registry = registry or Registry(engine)
        self.clock = clock or (lambda: dt.datetime.now(UTC))
        self.files_root = Path(files_root) if files_root else Path("instance") / "uploads"
        self._runtimes: dict[tuple[str, int, str], EntityRuntime] = {}
        # Checks every edit and delete must pass (the workflow engine's locks): each is
        # called with (conn, actor, runtime, current record, the names of the changed
        # fields, or None for a delete) and raises to refuse. system_update is not guarded.
        self.guards: list[Callable[[Connection, Actor, EntityRuntime, dict, set | None], None]] = []

    # --- transactions and metadata ------------------------------------------------

    # Each transaction first catches up with publishes made by any process (one
    # tiny query, run inside the transaction, so on SQLite the metadata and the
    # rows read come from one snapshot): a metadata change is seen by the next
    # call. ``fresh=True`` skips it, for a caller that has itself just caught up
    # for this unit of work (e.g. once per HTTP request, before the view runs).

    @contextmanager
    def writing(self, *, fresh: bool = False) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                if not fresh:
                    self.registry.refresh(conn)
                yield conn

    @contextmanager
    def reading(self, *, fresh: bool = False) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            if not fresh:
                self.registry.refresh(conn)
            yield conn

    def runtime(self, app: str, entity: str, conn: Connection | None = None) -> EntityRuntime:
        published = self.registry.app(app, conn)
        key = (app, published.seq, entity)
        runtime = self._runtimes.get(key)
        if runtime is not None:
            return runtime
        if entity not in published.model.entities:
            raise NotFound(Message("app '{app}' has no entity '{entity}'", app=app, entity=entity))
        runtime = build_runtime(published, entity, lambda child: self.runtime(app, child, conn))
        attach_schema(
            runtime, {name: self._rows_validator(child) for name, child in runtime.children.items()}
        )
        self._runtimes[key] = runtime
        return runtime

    def tables_for(self, entity: EntityModel) -> Table:
        return self.registry.table(entity.app.name, entity.name)

    def context(self, actor: Actor) -> dict:
        now = self.clock()
        return {"user": actor.context(), "now": now, "today": now.date()}

    # --- public operations -------------------------------------------------------

    def create(
        self, actor: Actor, app: str, entity: str, data: Any, *, fresh: bool = False
    ) -> dict:
        with self.writing(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            record_id = self._create(conn, actor, runtime, data)
            return self._serialise(conn, actor, runtime, self._load(conn, runtime, record_id))

    def create_many(
        self, actor: Actor, app: str, entity: str, items: list[Any], *, fresh: bool = False
    ) -> list[int]:
        """All or nothing; problems point at ``/items/N/field``."""
        with self.writing(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            access.require(actor, runtime.entity, "create")
            ids, problems = [], []
            for index, item in enumerate(items):
                try:
                    with conn.begin_nested():
                        ids.append(
                            self._create(conn, actor, runtime, item, prefix=f"/items/{index}")
                        )
                except (ValidationFailed, RecordConflict) as error:
                    problems += error.problems
            if problems:
                raise ValidationFailed(problems)
            return ids

    def get(
        self, actor: Actor, app: str, entity: str, record_id: int, *, fresh: bool = False
    ) -> dict:
        with self.reading(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            record = self._load(conn, runtime, record_id)
            self._require(conn, actor, runtime, "read", record)
            return self._serialise(conn, actor, runtime, record)

    def update(
        self,
        actor: Actor,
        app: str,
        entity: str,
        record_id: int,
        data: Any,
        *,
        expected_version: int | None = None,
        fresh: bool = False,
    ) -> dict:
        with self.writing(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            current = self._load(conn, runtime, record_id, lock=True)
            self._require(conn, actor, runtime, "update", current)
            if expected_version is not None and current["version"] != expected_version:
                raise StaleVersion(
                    current["version"], self._serialise(conn, actor, runtime, current)
                )
            self._update(conn, actor, runtime, current, data)
            return self._serialise(conn, actor, runtime, self._load(conn, runtime, record_id))

    def delete(
        self, actor: Actor, app: str, entity: str, record_id: int, *, fresh: bool = False
    ) -> None:
        with self.writing(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            current = self._load(conn, runtime, record_id, lock=True)
            self._require(conn, actor, runtime, "delete", current)
            self._soft_delete(conn, actor, runtime, current, comment=None)

    def restore(
        self, actor: Actor, app: str, entity: str, record_id: int, *, fresh: bool = False
    ) -> dict:
        with self.writing(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            current = self._load(conn, runtime, record_id, lock=True, deleted=True)
            self._require(conn, actor, runtime, "delete", current)
            self._check_unique(conn, runtime, current, record_id, prefix="")
            now = self.clock()
            table = runtime.table
            conn.execute(
                update(table)
                .where(table.c.id == record_id)
                .values(
                    deleted_at=None,
                    version=table.c.version + 1,
                    updated_at=now,
                    updated_by=actor.id,
                )
            )
            audit.record_event(
                conn,
                app=app,
                entity=entity,
                record_id=record_id,
                action="restore",
                actor=actor,
                changes={},
                at=now,
            )
            restored = self._load(conn, runtime, record_id)
            self._propagate(conn, runtime, restored, restored, set(), 0)
            return self._serialise(conn, actor, runtime, restored)

    def list(
        self,
        actor: Actor,
        app: str,
        entity: str,
        query: ListQuery | None = None,
        *,
        count_cap: int | None = None,
        fresh: bool = False,
    ) -> dict:
        """A page of what ``actor`` may read: items, total (maybe estimated), page, per_page.

        The total is counted up to ``count_cap`` (default ``COUNT_CAP``); past it, it
        is the cap and ``total_is_estimate`` says so.
        """
        return self.pages(
            actor, app, entity, [query or ListQuery()], count_cap=count_cap, fresh=fresh
        )[0]

    def pages(
        self,
        actor: Actor,
        app: str,
        entity: str,
        queries: list[ListQuery],
        *,
        count_cap: int | None = None,
        fresh: bool = False,
    ) -> list[dict]:
        """A page for each query, as ``list`` gives it, read in one transaction.

        A board asks for one page per column: their records are serialised
        together (child rows in one query). A page shorter than asked for is the
        last, so its total is known without counting.
        """
        bounds = [page_bounds(query) for query in queries]
        with self.reading(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            if runtime.entity.is_child:
                raise NotFound(
                    Message(
                        "rows of {entity} are read with their parent record",
                        entity=runtime.entity.named,
                    )
                )
            context = self.context(actor)
            pages = []
            for query, (offset, limit) in zip(queries, bounds, strict=True):
                check_readable(actor, runtime.entity, query)
                selected = visible(actor, runtime, self.tables_for, context)
                if query.filter is not None:
                    selected = selected.where(
                        compile_rule(query.filter, runtime, self.tables_for, context, "/filter")
                    )
                if query.q:
                    selected = selected.where(search_condition(conn, runtime, query.q, actor))
                rows = conn.execute(
                    selected.order_by(*order_by(runtime.entity, runtime.table, query.sort))
                    .offset(offset)
                    .limit(limit)
                )
                records = [dict(row._mapping) for row in rows]
                if len(records) < limit and (records or offset == 0):
                    total, estimate = offset + len(records), False
                else:
                    total, estimate = count(conn, selected, count_cap)
                pages.append((query, records, total, estimate))
            items = self.serialise_many(
                conn, actor, runtime, [r for _, records, _, _ in pages for r in records]
            )
        found, start = [], 0
        for query, records, total, estimate in pages:
            found.append(
                {
                    "items": items[start : start + len(records)],
                    "total": total,
                    "total_is_estimate": estimate,
                    "page": query.page,
                    "per_page": query.per_page,
                }
            )
            start += len(records)
        return found

    def upload(
        self, actor: Actor, app: str, entity: str, field: str, stream, name: str, mime: str
    ) -> dict:
        """Store a file for ``entity.field``; returns the descriptor a record then names."""
        with self.writing() as conn:
            runtime = self.runtime(app, entity, conn)
            fld = runtime.entity.fields.get(field)
            if fld is None or fld.type_name not in FILE_TYPES:
                raise NotFound(
                    Message(
                        "{entity} has no file field '{field}'",
                        entity=runtime.entity.named,
                        field=field,
                    )
                )
            if not (
                access.may(actor, runtime.entity, "create")
                or access.may(actor, runtime.entity, "update")
            ):
                raise Forbidden(
                    Message(
                        "you may not add files to {entity} records", entity=runtime.entity.named
                    )
                )
            return stored_files.save_upload(
                conn, self.files_root, fld, actor, stream, name, mime
            ).descriptor()

    def open_file(self, actor: Actor, file_id: int) -> stored_files.StoredFile:
        """A stored file, if ``actor`` may read the record it belongs to (or uploaded it)."""
        with self.reading() as conn:
            stored, (app, entity, record_id) = stored_files.find(conn, self.files_root, file_id)
            if record_id is None:
                uploader = conn.execute(
                    select(files_table.c.created_by).where(files_table.c.id == file_id)
                ).scalar()
                if uploader != actor.id and not actor.is_admin:
                    raise NotFound(Message("there is no file {file_id}", file_id=file_id))
                return stored
            runtime = self.runtime(app, entity, conn)
            record = self._load(conn, runtime, record_id, deleted=None)

            def data_for(rule):
                return rule_data(conn, runtime.entity, record, rule, self.tables_for)

            if not access.may(actor, runtime.entity, "read", record, self.context(actor), data_for):
                raise NotFound(Message("there is no file {file_id}", file_id=file_id))
            return stored

    def timeline(
        self, actor: Actor, app: str, entity: str, record_id: int, *, fresh: bool = False
    ) -> list[dict]:
        """The record's 360 view: related records of its timeline sources and its history."""
        with self.reading(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            record = self._load(conn, runtime, record_id)
            self._require(conn, actor, runtime, "read", record)
            return build_timeline(conn, self, actor, runtime, record_id)

    def history(
        self, actor: Actor, app: str, entity: str, record_id: int, *, fresh: bool = False
    ) -> list[dict]:
        with self.reading(fresh=fresh) as conn:
            runtime = self.runtime(app, entity, conn)
            record = self._load(conn, runtime, record_id, deleted=None)
            self._require(conn, actor, runtime, "read", record)
            hidden = {
                f.name for f in runtime.entity.fields.values() if not access.readable(actor, f)
            }
            events = audit.events(conn, app, entity, record_id)
            for event in events:
                event["changes"] = {k: v for k, v in event["changes"].items() if k not in hidden}
            return events

    def _require(self, conn, actor: Actor, runtime: EntityRuntime, verb: str, record: dict) -> None:
        """May ``actor`` ``verb`` this record? Row rules read references as the SQL filter does."""

        def data_for(rule):
            return rule_data(conn, runtime.entity, record, rule, self.tables_for)

        access.require(actor, runtime.entity, verb, record, self.context(actor), data_for)

    # --- loading -----------------------------------------------------------------

    def _load(
        self,
        conn,
        runtime: EntityRuntime,
        record_id: Any,
        *,
        lock=False,
        deleted: bool | None = False,
    ) -> dict:
        if (
            not isinstance(record_id, int)
            or isinstance(record_id, bool)
            or not 0 < record_id < 2**63
        ):
            raise NotFound(
                Message(
                    "there is no {entity} with id {id}",
                    entity=runtime.entity.named,
                    id=repr(record_id),
                )
            )
        prepared = statements(runtime)
        query = (
            prepared.load_locked if lock and conn.dialect.name == "postgresql" else prepared.load
        )
        row = conn.execute(query, {ID: record_id}).first()
        if row is None:
            raise NotFound(
                Message(
                    "there is no {entity} with id {id}", entity=runtime.entity.named, id=record_id
                )
            )
        record = dict(row._mapping)
        if deleted is False and record["deleted_at"] is not None:
            raise NotFound(
                Message(
                    "{entity} {id} is in the recycle bin", entity=runtime.entity.named, id=record_id
                )
            )
        if deleted is True and record["deleted_at"] is None:
            raise RecordConflict(
                Message(
                    "{entity} {id} is not in the recycle bin",
                    entity=runtime.entity.named,
                    id=record_id,
                )
            )
        return record

    def _children(
        self, conn, runtime: EntityRuntime, parent_ids: list[int]
    ) -> dict[str, dict[int, list[dict]]]:
        found: dict[str, dict[int, list[dict]]] = {}
        for name, child in runtime.children.items():
            rows = conn.execute(statements(child).rows_of, {IDS: parent_ids})
            by_parent: dict[int, list[dict]] = {pid: [] for pid in parent_ids}
            for row in rows:
                by_parent[row.parent_id].append(dict(row._mapping))
            found[name] = by_parent
        return found

    def _links(
        self, conn, runtime: EntityRuntime, ids: list[int]
    ) -> dict[str, dict[int, list[int]]]:
        found: dict[str, dict[int, list[int]]] = {}
        for name, query in statements(runtime).links.items():
            by_source: dict[int, list[int]] = {i: [] for i in ids}
            for source, target in conn.execute(query, {IDS: ids}):
                by_source[source].append(target)
            found[name] = by_source
        return found

    def _serialise(self, conn, actor: Actor, runtime: EntityRuntime, record: dict) -> dict:
        return self.serialise_many(conn, actor, runtime, [record])[0]

    def serialise_many(
        self, conn, actor: Actor, runtime: EntityRuntime, records: list[dict]
    ) -> list[dict]:
        """Records as JSON; child rows and links come in bulk, a fixed number of queries."""
        ids = [r["id"] for r in records]
        children = self._children(conn, runtime, ids) if runtime.children and ids else {}
        links = self._links(conn, runtime, ids) if ids else {}
        serialiser = self._serialiser(actor, runtime)
        return [serialiser.record(record, children, links) for record in records]

    @staticmethod
    def _serialiser(actor: Actor, runtime: EntityRuntime) -> Serialiser:
        """The serialiser for what ``actor`` may read (one per set of hidden fields)."""
        restricted = runtime.cache.get("read_restricted")
        if restricted is None:
            restricted = runtime.cache["read_restricted"] = [
                f for f in runtime.entity.fields.values() if f.doc.get("read_roles")
            ]
        hidden = frozenset(f.name for f in restricted if not access.readable(actor, f))
        key = ("serialiser", hidden)
        serialiser = runtime.cache.get(key)
        if serialiser is None:
            serialiser = runtime.cache[key] = Serialiser(runtime.entity, hidden)
        return serialiser

    @staticmethod
    def _row_json(child: EntityRuntime, row: dict) -> dict:
        item = {"id": row["id"]}
        item.update({f.name: row.get(f.name) for f in child.entity.fields.values() if f.has_column})
        return item

    # --- validation --------------------------------------------------------------

    def _rows_validator(self, child: EntityRuntime):
        def validate(value):
            if not isinstance(value, list):
                raise ValidationError("must be a list of rows")
            rows, errors = [], {}
            for index, row in enumerate(value):
                if not isinstance(row, dict):
                    errors[index] = ["must be an object of field values"]
                    continue
                data = {
                    k: v
                    for k, v in row.items()
                    if k not in IGNORED_INPUT | {"parent_id", "row_order"}
                }
                computed = {f.name for f in child.entity.fields.values() if f.computed}
                data = {k: v for k, v in data.items() if k not in computed}
                try:
                    loaded = child.schema.load(data)
                except ValidationError as error:
                    errors[index] = error.messages
                    continue
                missing = {
                    f.name: ["is required"]
                    for f in child.writable
                    if f.required and blank(loaded.get(f.name)) and f.doc.get("default") is None
                }
                if missing:
                    errors[index] = missing
                    continue
                loaded["id"] = row.get("id") if isinstance(row.get("id"), int) else None
                rows.append(loaded)
            if errors:
                raise ValidationError(errors)
            return rows

        return validate

    def _validated(
        self,
        conn,
        actor: Actor,
        runtime: EntityRuntime,
        data: Any,
        current: dict | None,
        prefix: str,
    ) -> dict:
        if not isinstance(data, dict):
            raise ValidationFailed(
                [Problem(prefix or "", Message("must be an object of field values"))]
            )
        problems: list[Problem] = []
        given = {k: v for k, v in data.items() if k not in IGNORED_INPUT}
        owner = given.pop("owner", None)
        if owner is not None:
            owner = self._owner(conn, owner, prefix, problems)
        handed_over = owner is not None and owner != (current or {}).get("owner", actor.id)
        if handed_over and not actor.is_admin:
            problems.append(
                Problem(
                    f"{prefix}/owner", Message("only an admin may hand a record to another owner")
                )
            )
        writable = {f.name for f in runtime.writable}
        for name in list(given):
            fld = runtime.entity.fields.get(name)
            if fld is None or name in writable:
                if fld is not None and not access.writable(actor, fld):
                    if current is None or given[name] != as_json({name: current.get(name)})[name]:
                        problems.append(
                            Problem(f"{prefix}/{name}", Message("you may not change this field"))
                        )
                    given.pop(name)
                continue
            unchanged = (
                current is not None and given[name] == as_json({name: current.get(name)})[name]
            )
            if not unchanged and not blank(given[name]):
                problems.append(
                    Problem(
                        f"{prefix}/{name}", Message("is computed or read-only and cannot be set")
                    )
                )
            given.pop(name)
        try:
            values = runtime.schema.load(given)
        except ValidationError as error:
            problems += problems_from(error.messages, prefix)
            values = {}
        values.pop("id", None)
        for name in [
            n
            for n in values
            if n in runtime.entity.fields and runtime.entity.fields[n].type_name in FILE_TYPES
        ]:
            try:
                values[name] = stored_files.claim(
                    conn,
                    runtime.entity.fields[name],
                    actor,
                    values[name] or [],
                    (current or {}).get("id"),
                    f"{prefix}/{name}",
                )
            except ValidationFailed as error:
                problems += error.problems
        if owner is not None and not problems:
            values["owner"] = owner
        if current is None:
            for fld in runtime.writable:
                if fld.name not in values and fld.doc.get("default") is not None:
                    values[fld.name] = self._default(fld, actor)
        merged = {**(current or {}), **values}
        given_values = {name for name, value in given.items() if not blank(value)}
        for fld in runtime.writable:
            if (
                fld.required
                and fld.has_column
                and fld.name not in given_values
                and blank(merged.get(fld.name))
            ):
                problems.append(Problem(f"{prefix}/{fld.name}", Message("is required")))
        if not problems:
            problems += self._check_references(conn, runtime, values, prefix)
            problems += self._unique_problems(
                conn, runtime, merged, (current or {}).get("id"), prefix, values
            )
        if problems:
            raise ValidationFailed(problems)
        return values

    @staticmethod
    def _user_exists(conn, user_id: int) -> bool:
        return conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is not None

    @staticmethod
    def _owner(conn, value: Any, prefix: str, problems: list[Problem]) -> int | None:
        """The owner a caller asks for, if it is an existing user's id."""
        try:
            owner = field_types.coerce_id(value, {})
        except field_types.ValueProblem as problem:
            problems.append(Problem(f"{prefix}/owner", problem.message))
            return None
        if not Records._user_exists(conn, owner):
            problems.append(
                Problem(f"{prefix}/owner", Message("there is no user with id {id}", id=owner))
            )
            return None
        return owner

    def _default(self, fld: FieldModel, actor: Actor) -> Any:
        default = fld.doc["default"]
        now = self.clock()
        kind = fld.value_spec["type"]
        if default == "$user":
            return actor.id
        if default in ("$now", "$today"):
            if kind == "date":
                return now.date()
            return now if default == "$now" else dt.datetime.combine(now.date(), dt.time(0), UTC)
        return fld.coerce(default)

    def _check_references(
        self, conn, runtime: EntityRuntime, values: dict, prefix: str
    ) -> list[Problem]:
        problems = []
        for name, value in values.items():
            fld = runtime.entity.fields.get(name)
            if fld is None or value is None:
                continue
            if fld.type_name in ("reference", "multi_reference"):
                target = fld.target
                table = self.tables_for(target)
                wanted = [value] if fld.type_name == "reference" else list(value)
                found = set(
                    conn.execute(
                        select(table.c.id).where(
                            table.c.id.in_(wanted), table.c.deleted_at.is_(None)
                        )
                    ).scalars()
                )
                for missing in [v for v in wanted if v not in found]:
                    problems.append(
                        Problem(
                            f"{prefix}/{name}",
                            Message(
                                "there is no {entity} with id {id}", entity=target.named, id=missing
                            ),
                        )
                    )
            elif fld.type_name == "user" and not self._user_exists(conn, value):
                problems.append(
                    Problem(f"{prefix}/{name}", Message("there is no user with id {id}", id=value))
                )
        return problems

    def _unique_problems(self, conn, runtime, merged, record_id, prefix, changed) -> list[Problem]:
        problems = []
        table = runtime.table
        for fld in runtime.entity.fields.values():
            if not fld.unique or fld.type_name == "autonumber" or fld.name not in changed:
                continue
            value = merged.get(fld.name)
            if value is None:
                continue
            query = select(table.c.id).where(
                table.c[fld.name] == value, table.c.deleted_at.is_(None)
            )
            if record_id is not None:
                query = query.where(table.c.id != record_id)
            other = conn.execute(query.limit(1)).scalar()
            if other is not None:
                problems.append(
                    Problem(
                        f"{prefix}/{fld.name}",
                        Message(
                            "{value} is already used by {entity} {id}",
                            value=repr(value),
                            entity=runtime.entity.named,
                            id=other,
                        ),
                    )
                )
        return problems

    def _check_unique(self, conn, runtime, record, record_id, prefix) -> None:
        changed = {f.name for f in runtime.entity.fields.values()}
        problems = self._unique_problems(conn, runtime, record, record_id, prefix, changed)
        if problems:
            raise RecordConflict(problems[0].message, problems=problems)

    # --- writing -----------------------------------------------------------------

    def _create(
        self, conn, actor: Actor, runtime: EntityRuntime, data: Any, prefix: str = ""
    ) -> int:
        access.require(actor, runtime.entity, "create")
        if runtime.entity.is_child:
            raise Forbidden(
                Message(
                    "rows of {entity} are created with their parent record",
                    entity=runtime.entity.named,
                )
            )
        values = self._validated(conn, actor, runtime, data, None, prefix)
        now = self.clock()
        context = self.context(actor)
        row = {k: v for k, v in values.items() if self._is_column(runtime, k)}
        row.update(
            created_at=now, updated_at=now, created_by=actor.id, updated_by=actor.id, version=1
        )
        row.setdefault("owner", actor.id)
        for state_field, initial in self._initial_states(runtime).items():
            row.setdefault(state_field, initial)
        for fld in runtime.autonumbers:
            scope = f"{runtime.app_name}.{runtime.name}.{fld.name}"
            row[fld.name] = next_value(conn, scope, fld.doc["pattern"], now.date())
        child_rows = self._computed_children(conn, actor, runtime, values, context=context)
        row.update(compute(conn, runtime, row, self.tables_for, child_rows, context))
        record_id = conn.execute(statements(runtime).insert, row).scalar_one()
        row["id"] = record_id
        self._attach_files(conn, runtime, record_id, values)
        self._write_children(conn, actor, runtime, record_id, child_rows, now)
        self._write_links(conn, runtime, record_id, values)
        changes = {
            k: [None, v]
            for k, v in as_json({k: row.get(k) for k in self._field_names(runtime)}).items()
            if v not in (None, [])
        }
        changes.update(
            {name: [[], as_json({"x": rows})["x"]] for name, rows in child_rows.items() if rows}
        )
        audit.record_event(
            conn,
            app=runtime.app_name,
            entity=runtime.name,
            record_id=record_id,
            action="create",
            actor=actor,
            changes=changes,
            at=now,
        )
        self._propagate(conn, runtime, None, row, set(row), 0)
        return record_id

    def _update(self, conn, actor: Actor, runtime: EntityRuntime, current: dict, data: Any) -> None:
        values = self._validated(conn, actor, runtime, data, current, "")
        now = self.clock()
        merged = {**current, **{k: v for k, v in values.items() if self._is_column(runtime, k)}}
        old_children = self._children(conn, runtime, [current["id"]]) if runtime.children else {}
        child_rows = self._computed_children(
            conn, actor, runtime, values, old_children, current["id"]
        )
        all_children = {
            name: child_rows.get(name, [r for r in old_children[name][current["id"]]])
            for name in runtime.children
        }
        merged.update(
            compute(conn, runtime, merged, self.tables_for, all_children, self.context(actor))
        )
        changes = audit.diff(current, merged, self._field_names(runtime))
        for name, rows in child_rows.items():
            before = [
                self._row_json(runtime.children[name], r) for r in old_children[name][current["id"]]
            ]
            after = [self._row_json(runtime.children[name], r) for r in rows]
            if as_json({"x": before}) != as_json({"x": after}):
                changes[name] = [as_json({"x": before})["x"], as_json({"x": after})["x"]]
        old_links = self._links(conn, runtime, [current["id"]])
        for name, linked in old_links.items():
            if name in values and list(values[name] or []) != linked[current["id"]]:
                changes[name] = [linked[current["id"]], list(values[name] or [])]
        if "owner" in values and values["owner"] != current["owner"]:
            changes["owner"] = [current["owner"], values["owner"]]
        if not changes:
            return
        for guard in self.guards:
            guard(conn, actor, runtime, current, set(changes))
        table = runtime.table
        columns = {
            k: merged[k]
            for k in merged
            if self._is_column(runtime, k) and k not in ("id", "version")
        }
        columns.update(updated_at=now, updated_by=actor.id, version=current["version"] + 1)
        result = conn.execute(
            update(table)
            .where(table.c.id == current["id"], table.c.version == current["version"])
            .values(columns)
        )
        if result.rowcount != 1:
            raise StaleVersion(
                conn.execute(
                    select(table.c.version).where(table.c.id == current["id"])
                ).scalar_one()
            )
        for name in child_rows:
            self._replace_children(
                conn,
                actor,
                runtime,
                name,
                current["id"],
                child_rows[name],
                old_children[name][current["id"]],
                now,
            )
        self._write_links(conn, runtime, current["id"], values, replace=True)
        self._attach_files(conn, runtime, current["id"], values)
        audit.record_event(
            conn,
            app=runtime.app_name,
            entity=runtime.name,
            record_id=current["id"],
            action="update",
            actor=actor,
            changes=changes,
            at=now,
        )
        self._propagate(conn, runtime, current, merged, set(changes), 0)

    def system_update(
        self,
        conn,
        actor: Actor,
        runtime: EntityRuntime,
        record_id: int,
        values: dict,
        comment: str | None = None,
        *,
        current: dict | None = None,
    ) -> dict:
        """Set fields no form may set (a workflow's state, its ``set``): audited, recomputed.

        ``current`` is the record's row as the caller read it under the lock it holds
        (``FOR UPDATE`` on PostgreSQL, SQLite's write transaction): given, it is not read
        again. Only the computed fields whose inputs changed are computed again. Returns
        the row as written: new ``version``, ``updated_at`` and ``updated_by`` included.
        """
        if current is None:
            current = self._load(conn, runtime, record_id, lock=True)
        elif current.get("id") != record_id:
            raise ValueError(f"the row given is not {runtime.name} {record_id}")
        coerced = {}
        for name, value in values.items():
            fld = runtime.entity.fields[name]
            coerced[name] = None if value is None else fld.coerce(value)
        merged = {**current, **coerced}
        # Child rows and links are not changed here: no rollup of child rows needs them.
        inputs = set(audit.diff(current, merged, coerced))
        merged.update(
            compute(
                conn,
                runtime,
                merged,
                self.tables_for,
                None,
                self.context(actor),
                changed=inputs,
            )
        )
        changes = audit.diff(current, merged, self._field_names(runtime))
        if not changes:
            return merged
        now = self.clock()
        table = runtime.table
        columns = {k: merged[k] for k in changes if self._is_column(runtime, k)}
        columns.update(updated_at=now, updated_by=actor.id, version=current["version"] + 1)
        conn.execute(update(table).where(table.c.id == record_id).values(columns))
        merged.update(columns)
        audit.record_event(
            conn,
            app=runtime.app_name,
            entity=runtime.name,
            record_id=record_id,
            action="update",
            actor=actor,
            changes=changes,
            comment=comment,
            at=now,
        )
        written: set[tuple[str, str, int]] = set()
        self._propagate(conn, runtime, current, merged, set(changes), 0, written)
        if (runtime.app_name, runtime.name, record_id) in written:
            # A lookup or rollup of this record, moved by what the change moved elsewhere.
            merged = self._load(conn, runtime, record_id)
        return merged

    def _soft_delete(
        self, conn, actor: Actor, runtime: EntityRuntime, current: dict, comment: str | None
    ) -> None:
        for guard in self.guards:
            guard(conn, actor, runtime, current, None)
        record_id = current["id"]
        now = self.clock()
        for other, reference in runtime.references_to_me:
            other_runtime = self.runtime(runtime.app_name, other.name, conn)
            table = other_runtime.table
            ids = list(
                conn.execute(
                    select(table.c.id)
                    .where(table.c[reference.name] == record_id, table.c.deleted_at.is_(None))
                    .order_by(table.c.id)
                ).scalars()
            )
            if not ids:
                continue
            rule = reference.doc.get("on_delete", "restrict")
            if rule == "restrict":
                listed = ", ".join(map(str, ids[:20])) + (" …" if len(ids) > 20 else "")
                raise RecordConflict(
                    Message(
                        "{count} {other} record(s) refer to this {entity} through '{field}' "
                        "(ids {ids}); delete them or point them elsewhere first",
                        count=len(ids),
                        other=other.named,
                        entity=runtime.entity.named,
                        field=Label(reference.label, reference.name),
                        ids=listed,
                    )
                )
            for other_id in ids:
                why = f"{runtime.name} {record_id} was deleted"
                if rule == "set_null":
                    self.system_update(
                        conn, actor, other_runtime, other_id, {reference.name: None}, comment=why
                    )
                else:
                    self._soft_delete(
                        conn,
                        actor,
                        other_runtime,
                        self._load(conn, other_runtime, other_id, lock=True),
                        comment=why,
                    )
        table = runtime.table
        conn.execute(
            update(table)
            .where(table.c.id == record_id)
            .values(
                deleted_at=now, version=table.c.version + 1, updated_at=now, updated_by=actor.id
            )
        )
        audit.record_event(
            conn,
            app=runtime.app_name,
            entity=runtime.name,
            record_id=record_id,
            action="delete",
            actor=actor,
            changes={},
            comment=comment,
            at=now,
        )
        self._propagate(conn, runtime, current, current, set(), 0)

    # --- children, links, computed -------------------------------------------------

    def _computed_children(
        self, conn, actor, runtime, values, old_children=None, parent_id=None, context=None
    ) -> dict[str, list[dict]]:
        """Validated child rows with their computed fields, for the child tables given."""
        context = context or self.context(actor)
        result = {}
        for name, child in runtime.children.items():
            if name not in values:
                if old_children is None:
                    result[name] = []
                continue
            rows = []
            for row in values[name] or []:
                row = dict(row)
                for fld in child.writable:
                    if (
                        fld.name not in row
                        and row.get("id") is None
                        and fld.doc.get("default") is not None
                    ):
                        row[fld.name] = self._default(fld, actor)
                row.update(compute(conn, child, row, self.tables_for, {}, context))
                rows.append(row)
            result[name] = rows
            values.pop(name, None)
        return result

    def _write_children(self, conn, actor, runtime, parent_id, child_rows, now) -> None:
        for name, rows in child_rows.items():
            child = runtime.children[name]
            # Rows with the same columns go in with one executemany.
            batches: dict[tuple[str, ...], list[dict]] = {}
            for order, row in enumerate(rows):
                values = {k: v for k, v in row.items() if self._is_column(child, k)}
                values.update(
                    parent_id=parent_id,
                    row_order=order,
                    created_at=now,
                    updated_at=now,
                    created_by=actor.id,
                    updated_by=actor.id,
                    owner=actor.id,
                    version=1,
                )
                values.pop("id", None)
                batches.setdefault(tuple(values), []).append(values)
            for batch in batches.values():
                conn.execute(statements(child).insert_rows, batch)

    def _replace_children(self, conn, actor, runtime, name, parent_id, rows, old_rows, now) -> None:
        child = runtime.children[name]
        table = child.table
        keep = {row["id"] for row in rows if row.get("id") in {old["id"] for old in old_rows}}
        conn.execute(
            delete(table).where(
                table.c.parent_id == parent_id, table.c.id.not_in(keep) if keep else True
            )
        )
        for order, row in enumerate(rows):
            values = {k: v for k, v in row.items() if self._is_column(child, k) and k != "id"}
            values.update(row_order=order, updated_at=now, updated_by=actor.id)
            if row.get("id") in keep:
                conn.execute(update(table).where(table.c.id == row["id"]).values(values))
            else:
                values.update(
                    parent_id=parent_id,
                    created_at=now,
                    created_by=actor.id,
                    owner=actor.id,
                    version=1,
                )
                conn.execute(insert(table).values(values))

    def _write_links(self, conn, runtime, record_id, values, replace=False) -> None:
        for fld in runtime.entity.fields.values():
            if fld.type_name != "multi_reference" or fld.name not in values:
                continue
            link = runtime.published.link_table(runtime.name, fld.name)
            if replace:
                conn.execute(delete(link).where(link.c.source_id == record_id))
            targets = values[fld.name] or []
            if targets:
                conn.execute(
                    insert(link),
                    [
                        {"source_id": record_id, "target_id": t, "position": i}
                        for i, t in enumerate(targets)
                    ],
                )

    def _propagate(
        self,
        conn,
        runtime: EntityRuntime,
        before: dict | None,
        after: dict,
        changed: set[str],
        depth: int,
        written: set[tuple[str, str, int]] | None = None,
    ) -> None:
        """Bring lookups, formulas and rollups that read this record up to date.

        One that reads none of the ``changed`` fields is left alone (a new, deleted or
        restored record, ``before`` None or nothing named changed, reaches them all).
        ``written``, when given, collects (app, entity, id) of each record rewritten.
        """
        if depth >= MAX_PROPAGATION_DEPTH:
            return
        selective = before is not None and bool(changed)

        def unread(reads: frozenset[str] | None) -> bool:
            return selective and reads is not None and changed.isdisjoint(reads)

        rollup_reads, formula_reads = dependents_reads(runtime)
        for other, lookup in runtime.lookups_of_me:
            if unread(frozenset({lookup.doc["field"]})):
                continue
            other_runtime = self.runtime(runtime.app_name, other.name, conn)
            via = other_runtime.table.c[lookup.doc["via"]]
            ids = list(
                conn.execute(select(other_runtime.table.c.id).where(via == after["id"])).scalars()
            )
            self._refresh(conn, other_runtime, ids, depth + 1, written)
        for (other, _formula, via), reads in zip(
            runtime.formulas_reading_me, formula_reads, strict=True
        ):
            if unread(reads):
                continue
            other_runtime = self.runtime(runtime.app_name, other.name, conn)
            column = other_runtime.table.c[via]
            ids = list(
                conn.execute(
                    select(other_runtime.table.c.id).where(column == after["id"])
                ).scalars()
            )
            self._refresh(conn, other_runtime, ids, depth + 1, written)
        # Each parent is refreshed once, whichever of its rollups read the change: a
        # refresh computes all of them.
        parents: dict[str, set[int]] = {}
        for (parent, rollup), reads in zip(runtime.rollups_over_me, rollup_reads, strict=True):
            # E.g. a deal's state is no concern of its account's open pipeline, filtered
            # on the deal's stage and summing its amount; a change of stage is.
            if unread(reads):
                continue
            back = rollup.rollup_children()[1].name
            ids = parents.setdefault(parent.name, set())
            ids.update(v for v in ((before or {}).get(back), after.get(back)) if v is not None)
        for name, ids in parents.items():
            self._refresh(
                conn, self.runtime(runtime.app_name, name, conn), sorted(ids), depth + 1, written
            )

    def _refresh(
        self,
        conn,
        runtime: EntityRuntime,
        ids: list[int],
        depth: int,
        written: set[tuple[str, str, int]] | None = None,
    ) -> None:
        """Recompute the computed fields of records ``ids``; write the ones that changed."""
        if not ids or not runtime.has_computed:
            return
        prepared = statements(runtime)
        names = [f.name for f in runtime.lookups + runtime.rollups + runtime.formulas]
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            records = [dict(r._mapping) for r in conn.execute(prepared.load_many, {IDS: batch})]
            children = self._children(conn, runtime, batch) if runtime.children else {}
            for record in records:
                rows = {name: by_parent[record["id"]] for name, by_parent in children.items()}
                values = compute(conn, runtime, record, self.tables_for, rows, None)
                changed = {
                    n for n in names if as_json({n: values[n]}) != as_json({n: record.get(n)})
                }
                if not changed:
                    continue
                conn.execute(prepared.update, {ID: record["id"], **{n: values[n] for n in changed}})
                if written is not None:
                    written.add((runtime.app_name, runtime.name, record["id"]))
                self._propagate(
                    conn, runtime, record, {**record, **values}, changed, depth, written
                )

    # --- small helpers -----------------------------------------------------------

    @staticmethod
    def _attach_files(conn, runtime: EntityRuntime, record_id: int, values: dict) -> None:
        for name, value in values.items():
            fld = runtime.entity.fields.get(name)
            if fld is not None and fld.type_name in FILE_TYPES and value:
                stored_files.attach(conn, value, record_id)

    @staticmethod
    def _is_column(runtime: EntityRuntime, name: str) -> bool:
        return name in runtime.table.c

    @staticmethod
    def _field_names(runtime: EntityRuntime) -> list[str]:
        return [f.name for f in runtime.entity.fields.values() if f.has_column]

    @staticmethod
    def _initial_states(runtime: EntityRuntime) -> dict[str, str]:
        states = {}
        for workflow in runtime.entity.app.list_of("workflows"):
            if workflow.get("entity") == runtime.name:
                initial = next((s["name"] for s in workflow["states"] if s.get("initial")), None)
                if initial:
                    states[workflow["state_field"]] = initial
        return states

    def count_live(self, conn, runtime: EntityRuntime) -> int:
        table = runtime.table
        return conn.execute(
            select(func.count()).select_from(table).where(table.c.deleted_at.is_(None))
        ).scalar_one()


__all__ = ["Records", "field_types"]
