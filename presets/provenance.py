"""Where an app came from: the preset imports recorded beside its versions.

An upgrade merges a preset's new version into the app against the version the
app was imported from (the common ancestor). The app's own versions cannot say
which that was once users have changed the app, so each import keeps the preset
as shipped (``crm_preset_imports``), in the import's transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select

from metamodel import store
from metamodel.sqltypes import UTC
from metamodel.system_tables import preset_imports
from metamodel.versions import digest


def without_sample_data(document: dict) -> dict:
    """The app part of a preset: what is published, and what a later merge starts from."""
    return {key: value for key, value in document.items() if key != "sample_data"}


def record_import(
    conn: Connection,
    *,
    preset: dict,
    seq: int | None,
    sample_records: dict[str, int] | None,
    author: str | None,
) -> None:
    conn.execute(
        insert(preset_imports).values(
            app=preset["name"],
            seq=seq,
            version=preset["version"],
            document=without_sample_data(preset),
            sample_records=sample_records or None,
            author=author,
            created_at=dt.datetime.now(UTC),
        )
    )


def find_base(conn: Connection, app: str, shipped: dict) -> tuple[dict | None, str]:
    """The preset version ``app`` was imported from, and how it was found.

    The last recorded import; else a version of the app identical to ``shipped``
    (published as is by ``crm app apply``, sample data aside); else None: no
    common ancestor is known.
    """
    row = conn.execute(
        select(preset_imports.c.document, preset_imports.c.version)
        .where(preset_imports.c.app == app)
        .order_by(preset_imports.c.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        return row.document, f"the app was imported from version {row.version} of the preset"
    wanted = digest(without_sample_data(shipped))
    for stored in store.history(conn, app):
        if digest(without_sample_data(stored.document)) == wanted:
            return shipped, f"version #{stored.seq} of the app is this version of the preset"
    return None, (
        "there is no record of the preset version the app came from: everything that differs "
        "is kept as it is in the app, and the preset only adds"
    )


def sample_data_imported(conn: Connection, app: str) -> dt.datetime | None:
    """When a preset's sample data was imported into ``app`` (None: never)."""
    rows = conn.execute(
        select(preset_imports.c.sample_records, preset_imports.c.created_at)
        .where(preset_imports.c.app == app)
        .order_by(preset_imports.c.id)
    )
    return next((when for counts, when in rows if counts), None)
