"""The system tables (metamodel.store) on the database under test."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import insert, inspect, select

from metamodel import store
from metamodel.db import make_engine
from metamodel.sqltypes import UTC
from metamodel.system_tables import notifications

NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def columns_of(engine, table: str) -> set[str]:
    with engine.connect() as conn:
        return {column["name"] for column in inspect(conn).get_columns(table)}


def test_a_database_of_an_earlier_release_gets_the_columns_added_since(engine):
    store.ensure_system_tables(engine)
    with engine.begin() as conn:
        # As an earlier release made it: no message_parts yet, and a notification.
        conn.exec_driver_sql("ALTER TABLE crm_notifications DROP COLUMN message_parts")
        conn.exec_driver_sql(
            "INSERT INTO crm_notifications (user_id, kind, message, created_at) "
            "VALUES (1, 'comment', 'li commented', '2026-11-22 09:30:00')"
        )
    assert "message_parts" not in columns_of(engine, "crm_notifications")
    store.ensure_system_tables(engine)
    assert "message_parts" in columns_of(engine, "crm_notifications")
    with engine.begin() as conn:
        old = conn.execute(select(notifications)).one()
        assert (old.message, old.message_parts) == ("li commented", None)
        parts = {"template": "{user} commented", "params": {"user": "li"}}
        conn.execute(
            insert(notifications).values(
                user_id=1,
                kind="comment",
                message="li commented",
                message_parts=parts,
                created_at=NOW,
            )
        )
        kept = conn.execute(select(notifications.c.message_parts).order_by(notifications.c.id))
        assert kept.scalars().all() == [None, parts]
    store.ensure_system_tables(engine)  # again: nothing to add, nothing lost
    with engine.connect() as conn:
        assert conn.execute(select(notifications.c.id)).scalars().all() == [1, 2]


def test_two_processes_starting_at_once_both_find_the_column(db_url, engine):
    store.ensure_system_tables(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE crm_notifications DROP COLUMN message_parts")
    others = [make_engine(db_url) for _ in range(2)]
    failures: list[BaseException] = []
    start = threading.Barrier(len(others))

    def upgrade(other):
        start.wait()
        try:
            store.ensure_system_tables(other)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=upgrade, args=(other,)) for other in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.dispose()
    assert failures == []
    assert "message_parts" in columns_of(engine, "crm_notifications")
