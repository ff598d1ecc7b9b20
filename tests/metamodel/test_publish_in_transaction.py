"""apply_document inside a transaction the caller holds: it stands or falls with it."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, inspect, select

from metamodel import store
from metamodel.errors import PlanRefused
from metamodel.publish import apply_document
from metamodel.system_tables import sequences

from .builders import document, entity, field


def shop(version: str = "1.0.0", *fields) -> dict:
    return document(entity("item", field("title"), *fields), version=version, name="shop")


def test_a_publish_rolled_back_by_the_caller_leaves_nothing(engine):
    store.ensure_system_tables(engine)
    with engine.connect() as conn:
        transaction = conn.begin()
        outcome = apply_document(engine, shop(), conn=conn)
        assert outcome.changed and outcome.seq == 1
        assert "shop__item" in inspect(conn).get_table_names()
        transaction.rollback()
    assert "shop__item" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert store.current(conn, "shop") is None


def test_a_refused_publish_keeps_the_callers_transaction_usable(engine):
    apply_document(engine, shop())
    with engine.connect() as conn, conn.begin():
        conn.execute(insert(sequences).values(key="mine", value=1))
        with pytest.raises(PlanRefused):
            apply_document(engine, shop("1.0.0", field("note")), conn=conn)
        unchanged = apply_document(engine, shop(), conn=conn)
        assert not unchanged.changed
        added = apply_document(engine, shop("1.1.0", field("note")), conn=conn)
        assert added.changed
    with engine.connect() as conn:
        assert conn.execute(select(sequences.c.value)).scalar() == 1
        assert store.current(conn, "shop").version == "1.1.0"
