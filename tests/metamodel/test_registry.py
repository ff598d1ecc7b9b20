"""The runtime registry: lazy, cached per version, and one cheap query per request."""

from __future__ import annotations

from sqlalchemy import event

from metamodel import publish
from metamodel.db import make_engine
from metamodel.registry import Registry

from .builders import bump, document, entity, field, fields_of


def count_statements(engine):
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


def test_a_publish_in_one_process_is_seen_by_the_next_request_in_another(db_url):
    writer, reader = make_engine(db_url), make_engine(db_url)
    try:
        doc = document(entity("item", field("title")))
        publish.apply_document(writer, doc)
        registry = Registry(reader)
        assert registry.refresh() is True
        assert "title" in registry.table("shop", "item").c
        changed = bump(doc, "1.1.0")
        fields_of(changed, "item").append(field("colour"))
        publish.apply_document(writer, changed)
        assert registry.refresh() is True
        assert "colour" in registry.table("shop", "item").c
    finally:
        writer.dispose()
        reader.dispose()


def test_an_unchanged_generation_costs_one_query_and_no_rebuild(engine):
    publish.apply_document(engine, document(entity("item", field("title"))))
    registry = Registry(engine)
    registry.refresh()
    first = registry.app("shop")
    statements = count_statements(engine)
    with engine.connect() as conn:
        for _ in range(5):
            assert registry.refresh(conn) is False
    assert [s.split()[0] for s in statements if s != "BEGIN"] == ["SELECT"] * 5
    assert registry.app("shop") is first


def test_tables_are_built_lazily_and_only_once_per_version(engine):
    publish.apply_document(engine, document(entity("item", field("title"))))
    registry = Registry(engine)
    registry.refresh()
    assert registry._built == {}
    table = registry.table("shop", "item")
    assert registry.table("shop", "item") is table
    assert list(registry._built) == [("shop", 1)]
