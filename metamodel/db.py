"""Engines that behave alike on SQLite and PostgreSQL.

pysqlite never opens a transaction before DDL, so by default CREATE and ALTER
commit on their own and a failed migration would leave half a schema behind.
Taking over BEGIN makes DDL transactional on SQLite as it is on PostgreSQL:
a plan applies wholly or not at all on both.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# Execution option: begin the transaction holding the write lock (SQLite).
IMMEDIATE = "crm_immediate"


def make_engine(url: str, **kwargs) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Referential actions (restrict / set_null / cascade) are the record
        # service's job because deletes go to a recycle bin; SQLite's own
        # enforcement would also cascade through the DROP in batch migrations.
        cursor.execute("PRAGMA foreign_keys = OFF")
        cursor.execute("PRAGMA busy_timeout = 30000")
        if parsed.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # Readers use a deferred BEGIN so they never wait for each other. A
        # transaction that reads before it writes asks for IMMEDIATE, which takes
        # the write lock up front: two such writers then queue instead of one
        # failing with "database is locked" when it upgrades its lock.
        immediate = connection.get_execution_options().get(IMMEDIATE)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def is_sqlite(bind) -> bool:
    return bind.dialect.name == "sqlite"
