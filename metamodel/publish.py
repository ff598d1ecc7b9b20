"""Publishing app documents: validate, plan, migrate and record, all or nothing.

Every function here takes an Engine and runs in one transaction (apply_document
may instead join a transaction the caller holds). A refused
change raises (InvalidDocument, PlanRefused) after rolling back, so the
database and the stored versions are exactly as before. Publishes are
serialised by a lock on the metadata generation row, which every process
also reads to learn that its cached metadata is stale.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError

from . import store
from .ddl import Migrator
from .errors import CrmError, InvalidDocument, NotFound, PlanRefused, Problem
from .messages import Message
from .model import AppModel
from .operations import DropColumn, DropTable, Operation
from .plan import Plan, make_plan
from .tables import build_schema
from .validate import validate_document
from .versions import digest, is_newer, next_patch


@dataclass
class Outcome:
    app: str
    version: str
    plan: Plan
    changed: bool
    seq: int | None = None
    sql: list[str] = field(default_factory=list)


class _Unchanged(Exception):
    """Raised inside the transaction to roll back the lock when nothing changes."""


def installed_apps(conn: Connection) -> Callable[[str], dict | None]:
    def document(name: str) -> dict | None:
        stored = store.current(conn, name)
        return stored.document if stored else None

    return document


def _external_models(conn: Connection) -> Callable[[str], AppModel | None]:
    cache: dict[str, AppModel | None] = {}

    def model(name: str) -> AppModel | None:
        if name not in cache:
            stored = store.current(conn, name)
            cache[name] = AppModel.from_document(stored.document) if stored else None
        return cache[name]

    return model


def _prepare(conn: Connection, document: dict) -> tuple[store.StoredVersion | None, Plan]:
    problems = validate_document(document, external=installed_apps(conn))
    if problems:
        raise InvalidDocument(problems)
    current = store.current(conn, document["name"])
    external = _external_models(conn)
    old = AppModel.from_document(current.document, external) if current else None
    new = AppModel.from_document(document, external)
    plan = make_plan(conn, old, current.archive if current else None, new)
    return current, plan


def _run(conn: Connection, operations: list[Operation], capture: bool = False) -> list[str]:
    migrator = Migrator(conn)
    statements = migrator.record() if capture else []
    try:
        for operation in operations:
            operation.apply(migrator)
    except DBAPIError as error:
        raise PlanRefused([Problem("", f"the database refused the change: {error.orig}")]) from None
    finally:
        migrator.stop_recording()
    return statements


def plan_document(engine: Engine, document: dict, *, sql: bool = False) -> Outcome:
    """The plan for publishing ``document``; changes nothing.

    With ``sql`` the plan is also run inside a transaction that is rolled
    back, recording the exact SQL it sends.
    """
    store.ensure_system_tables(engine)
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            current, plan = _prepare(conn, document)
            statements: list[str] = []
            if sql and not plan.refused:
                statements = _run(conn, plan.operations, capture=True)
        finally:
            transaction.rollback()
    unchanged = current is not None and current.digest == digest(document)
    if current is not None and not unchanged and not is_newer(document["version"], current.version):
        plan.problems.insert(0, _version_problem(current.version))
    changed = not unchanged or not plan.empty
    return Outcome(document["name"], document["version"], plan, changed, sql=statements)


def _version_problem(current: str) -> Problem:
    return Problem(
        "/version", f"the document changed, so its version must be higher than {current}"
    )


def apply_document(
    engine: Engine,
    document: dict,
    *,
    author: str | None = None,
    action: str = "apply",
    comment: str | None = None,
    conn: Connection | None = None,
) -> Outcome:
    """Publish ``document`` in a transaction of its own, or inside the caller's ``conn``.

    With ``conn`` (a connection in a transaction) the publish runs in a savepoint
    and commits only with the caller's transaction, so the caller can make more
    changes that stand or fall with it (a preset's sample data). A refusal rolls
    back the savepoint and raises; the caller's transaction stays usable.
    """
    try:
        if conn is not None:
            store.ensure_system_tables(conn)
            with conn.begin_nested():
                stored, plan = _apply(conn, document, author, action, comment)
        else:
            store.ensure_system_tables(engine)
            with engine.begin() as own:
                stored, plan = _apply(own, document, author, action, comment)
    except _Unchanged:
        return Outcome(document["name"], document["version"], Plan(document["name"]), changed=False)
    return Outcome(document["name"], document["version"], plan, changed=True, seq=stored.seq)


def _apply(
    conn: Connection, document: dict, author: str | None, action: str, comment: str | None
) -> tuple[store.StoredVersion, Plan]:
    store.take_publish_lock(conn)
    current, plan = _prepare(conn, document)
    unchanged = current is not None and current.digest == digest(document)
    if unchanged and plan.empty:
        raise _Unchanged
    if current is not None and not unchanged and not is_newer(document["version"], current.version):
        raise PlanRefused([_version_problem(current.version)])
    if plan.refused:
        raise PlanRefused(plan.problems)
    _run(conn, plan.operations)
    if unchanged:
        # The same document over a database that lacks what it needs (the search
        # index of a database made before there was one): a repair, recorded as a
        # version of its own so that every process reloads and finds the index.
        action, comment = "repair", "build what the database lacks for this version"
    stored = store.record(
        conn,
        document=document,
        archive=plan.archive,
        digest=digest(document),
        plan=plan.as_json(),
        action=action,
        author=author,
        comment=comment,
    )
    return stored, plan


def revert(engine: Engine, app: str, version: str, *, author: str | None = None) -> Outcome:
    """Publish the content of an earlier version again, as a new version."""
    with engine.connect() as conn:
        target = store.find_version(conn, app, version)
        current = store.current(conn, app)
        later = [v.document for v in reversed(store.history(conn, app)) if v.seq > target.seq]
    document = copy.deepcopy(target.document)
    document["version"] = next_patch(current.version)
    _carry_renames(document, later)
    return apply_document(
        engine, document, author=author, action="revert", comment=f"revert to {target.version}"
    )


def _lineage(name: str, versions: list[list[dict]]) -> str:
    """What an item called ``name`` is called after ``versions``, following renamed_from."""
    for items in versions:
        if any(item["name"] == name for item in items):
            continue
        for item in items:
            if item.get("renamed_from") == name:
                name = item["name"]
                break
    return name


def _carry_renames(document: dict, later: list[dict]) -> None:
    """Mark the renames made since ``document`` so that reverting them keeps the data."""
    entity_versions = [doc.get("entities", []) for doc in later]
    for entity in document.get("entities", []):
        name = entity["name"]
        now_called = _lineage(name, entity_versions)
        if now_called != name:
            entity["renamed_from"] = now_called
        field_versions = []
        for entities in entity_versions:
            name = _lineage(name, [entities])
            field_versions.append(
                next((e.get("fields", []) for e in entities if e["name"] == name), [])
            )
        for fld in entity.get("fields", []):
            field_now = _lineage(fld["name"], field_versions)
            if field_now != fld["name"]:
                fld["renamed_from"] = field_now


def purge(
    engine: Engine,
    app: str,
    entity: str,
    field_name: str | None = None,
    *,
    confirm: bool = False,
    author: str | None = None,
) -> Outcome:
    """Destroy an archived entity or field and its data; without ``confirm``, only say what."""
    store.ensure_system_tables(engine)
    with engine.connect() as conn, conn.begin() as transaction:
        store.take_publish_lock(conn)
        current = store.current(conn, app)
        if current is None:
            raise NotFound(f"there is no app named '{app}'")
        archive = current.archive.copy()
        model = AppModel.from_document(current.document, _external_models(conn))
        schema = build_schema(model, current.archive, conn.dialect.name)
        operations = _purge_operations(conn, schema, archive, entity, field_name)
        plan = Plan(app, operations=operations, archive=archive)
        if confirm:
            _run(conn, operations)
            stored = store.record(
                conn,
                document=current.document,
                archive=archive,
                digest=current.digest,
                plan=plan.as_json(),
                action="purge",
                author=author,
                comment="purge " + ".".join(filter(None, [entity, field_name])),
            )
            transaction.commit()
            return Outcome(app, current.version, plan, changed=True, seq=stored.seq)
        transaction.rollback()
    return Outcome(app, current.version, plan, changed=False)


def _purge_operations(
    conn, schema, archive, entity: str, field_name: str | None
) -> list[Operation]:
    if field_name is None:
        if entity not in archive.entities:
            raise CrmError(
                f"'{entity}' is not an archived entity; only archived entities can be purged",
                path="",
            )
        table = schema.tables[(schema.app.name, entity)]
        rows = conn.execute(select(func.count()).select_from(table)).scalar_one()
        del archive.entities[entity]
        archive.fields.pop(entity, None)
        links = [t for key, t in schema.link_tables.items() if key[1] == entity]
        return [
            DropTable(str(t.name), Message("links of '{field}'", field=entity)) for t in links
        ] + [DropTable(str(table.name), Message("entity '{entity}'", entity=entity), rows)]
    archived = archive.fields.get(entity, {})
    if field_name not in archived:
        raise CrmError(
            f"'{entity}.{field_name}' is not an archived field; only archived fields can be purged"
        )
    del archived[field_name]
    link = schema.link_tables.get((schema.app.name, entity, field_name))
    if link is not None:
        rows = conn.execute(select(func.count()).select_from(link)).scalar_one()
        return [
            DropTable(
                str(link.name), Message("links of '{field}'", field=f"{entity}.{field_name}"), rows
            )
        ]
    table = schema.tables[(schema.app.name, entity)]
    column = table.c[field_name]
    values = conn.execute(select(func.count()).where(column.is_not(None))).scalar_one()
    what = Message("field '{field}'", field=f"{entity}.{field_name}")
    return [DropColumn(str(table.name), field_name, what, values)]
