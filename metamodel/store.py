"""The versioned store: apps and every version ever published, in system tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, inspect, select, update
from sqlalchemy.exc import OperationalError

from .db import IMMEDIATE
from .errors import NotFound
from .sqltypes import UTC
from .system_tables import app_versions, apps, meta_state, system_metadata
from .tables import Archive


@dataclass(frozen=True)
class StoredVersion:
    app: str
    seq: int
    version: str
    document: dict[str, Any]
    archive: Archive
    digest: str
    plan: dict[str, Any]
    action: str
    author: str | None
    created_at: dt.datetime
    comment: str | None


def ensure_system_tables(bind: Engine | Connection) -> None:
    """Create the system tables that are missing (safe to run again)."""
    if isinstance(bind, Engine):
        # It reads (what exists) before it writes: on SQLite, take the write lock first,
        # so processes starting together queue instead of failing (metamodel.db).
        with bind.connect() as conn, conn.execution_options(**{IMMEDIATE: True}).begin():
            ensure_system_tables(conn)
        return
    system_metadata.create_all(bind, checkfirst=True)
    _add_missing_columns(bind)
    if bind.execute(select(meta_state.c.id)).first() is None:
        bind.execute(insert(meta_state).values(id=1, generation=0))


def _add_missing_columns(conn: Connection) -> None:
    """Give a database made by an earlier release the columns added since, empty.

    A column added to a system table after release is nullable (its old rows have
    no value), so adding it loses nothing. Two processes may start on the same
    database at once: the second finds the column there.
    """
    names = [table.name for table in system_metadata.sorted_tables]
    present = {
        name: {column["name"] for column in columns}
        for (_schema, name), columns in inspect(conn).get_multi_columns(filter_names=names).items()
    }
    quote = conn.dialect.identifier_preparer.quote
    for table in system_metadata.sorted_tables:
        for column in table.columns:
            if column.name in present.get(table.name, {column.name}):
                continue
            if not column.nullable:
                raise RuntimeError(f"{table.name}.{column.name} must be nullable to be added")
            kind = column.type.compile(conn.dialect)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    f"ALTER TABLE {quote(table.name)} "
                    f"ADD COLUMN IF NOT EXISTS {quote(column.name)} {kind}"
                )
                continue
            try:
                conn.exec_driver_sql(
                    f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {kind}"
                )
            except OperationalError as error:
                if "duplicate column" not in str(error):
                    raise


def _stored(row) -> StoredVersion:
    return StoredVersion(
        app=row.app,
        seq=row.seq,
        version=row.version,
        document=row.document,
        archive=Archive.from_json(row.archived),
        digest=row.digest,
        plan=row.plan,
        action=row.action,
        author=row.author,
        created_at=row.created_at,
        comment=row.comment,
    )


def current(conn: Connection, app: str) -> StoredVersion | None:
    query = (
        select(app_versions)
        .join(
            apps, (apps.c.name == app_versions.c.app) & (apps.c.current_seq == app_versions.c.seq)
        )
        .where(apps.c.name == app)
    )
    row = conn.execute(query).first()
    return _stored(row) if row else None


def current_seqs(conn: Connection) -> dict[str, int]:
    return dict(conn.execute(select(apps.c.name, apps.c.current_seq)).all())


def at_seq(conn: Connection, app: str, seq: int) -> StoredVersion:
    row = conn.execute(
        select(app_versions).where(app_versions.c.app == app, app_versions.c.seq == seq)
    ).first()
    if row is None:
        raise NotFound(f"app '{app}' has no version #{seq}")
    return _stored(row)


def all_current(conn: Connection) -> list[StoredVersion]:
    return [current(conn, name) for name in sorted(current_seqs(conn))]


def history(conn: Connection, app: str) -> list[StoredVersion]:
    rows = conn.execute(
        select(app_versions).where(app_versions.c.app == app).order_by(app_versions.c.seq.desc())
    ).all()
    if not rows:
        raise NotFound(f"there is no app named '{app}'")
    return [_stored(row) for row in rows]


def find_version(conn: Connection, app: str, version: str) -> StoredVersion:
    """The latest stored version ``version`` of ``app`` (or ``#seq``)."""
    if version.startswith("#") and version[1:].isdigit():
        return at_seq(conn, app, int(version[1:]))
    for stored in history(conn, app):
        if stored.version == version:
            return stored
    raise NotFound(f"app '{app}' has no version {version}")


# Asked on every request: built once, so each call finds its compiled form at once
# (building the statement cost twice as much as running it).
_GENERATION = select(meta_state.c.generation).where(meta_state.c.id == 1)


def generation(conn: Connection) -> int:
    return conn.execute(_GENERATION).scalar_one()


def take_publish_lock(conn: Connection) -> None:
    """Serialise publishes: the row lock is held until the transaction ends."""
    conn.execute(
        update(meta_state)
        .where(meta_state.c.id == 1)
        .values(generation=meta_state.c.generation + 1)
    )


def record(
    conn: Connection,
    *,
    document: dict,
    archive: Archive,
    digest: str,
    plan: dict,
    action: str,
    author: str | None,
    comment: str | None = None,
) -> StoredVersion:
    name = document["name"]
    now = dt.datetime.now(UTC)
    previous = conn.execute(select(apps.c.current_seq).where(apps.c.name == name)).scalar()
    last = conn.execute(
        select(app_versions.c.seq)
        .where(app_versions.c.app == name)
        .order_by(app_versions.c.seq.desc())
        .limit(1)
    ).scalar()
    seq = (last or 0) + 1
    if previous is None:
        conn.execute(insert(apps).values(name=name, current_seq=seq, updated_at=now))
    conn.execute(
        insert(app_versions).values(
            app=name,
            seq=seq,
            version=document["version"],
            document=document,
            digest=digest,
            archived=archive.to_json(),
            plan=plan,
            action=action,
            author=author,
            created_at=now,
            comment=comment,
        )
    )
    conn.execute(update(apps).where(apps.c.name == name).values(current_seq=seq, updated_at=now))
    return at_seq(conn, name, seq)
