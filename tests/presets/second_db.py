"""A second clean database of the kind under test, for what goes from one to another."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from ..conftest import POSTGRES_SERVER


@contextmanager
def second_db_url(db_kind: str, folder: Path) -> Iterator[str]:
    if db_kind == "sqlite":
        yield f"sqlite:///{folder / 'other.db'}"
        return
    schema = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
