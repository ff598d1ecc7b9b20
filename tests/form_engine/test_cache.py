"""Form classes are built lazily, once per metadata version."""

from __future__ import annotations

import copy

from form_engine import FormCache, field_for
from metamodel import publish
from metamodel.registry import Registry

from .conftest import model


def test_the_same_version_gives_the_same_class(cache, sales, sales_doc):
    first = cache.form_class(sales, "deal")
    assert cache.form_class(sales, "deal") is first
    # Another model of the same document (a registry that rebuilt it) is the same version.
    assert cache.form_class(model(copy.deepcopy(sales_doc)), "deal") is first
    assert cache.spec(sales, "deal").classes["en"] is first
    assert cache.form_class(sales, "deal", language="zh") is not first


def test_a_changed_document_gives_a_new_class(cache, sales_doc):
    before = cache.form_class(model(sales_doc), "deal")
    changed = copy.deepcopy(sales_doc)
    changed["version"] = "1.1.0"
    deal = next(e for e in changed["entities"] if e["name"] == "deal")
    deal["fields"].append({"name": "source", "type": "text"})
    changed["forms"][0]["layout"][0]["fields"].append("source")
    after = cache.form_class(model(changed), "deal")
    assert after is not before
    assert field_for(after(), "source").name == "source"
    assert "source" not in before()._fields


def test_specs_are_keyed_by_form(cache, sales):
    assert cache.spec(sales, "contact") is not cache.spec(sales, "contact", "web_enquiry")
    assert cache.spec(sales, "contact", "web_enquiry") is cache.spec(
        sales, "contact", "web_enquiry"
    )


def test_nothing_is_built_until_asked():
    cache = FormCache()
    assert cache._specs == {}


def test_published_apps_are_versioned_by_their_stored_digest(engine, sales_doc):
    publish.apply_document(engine, sales_doc)
    registry = Registry(engine)
    registry.refresh()
    cache = FormCache()
    published = registry.app("sales_pipeline")
    first = cache.form_class(published, "deal")
    assert cache.version(published) == published.stored.digest
    registry.refresh()
    assert cache.form_class(registry.app("sales_pipeline"), "deal") is first

    changed = copy.deepcopy(sales_doc)
    changed["version"] = "1.1.0"
    deal = next(e for e in changed["entities"] if e["name"] == "deal")
    deal["fields"].append({"name": "source", "type": "text"})
    changed["forms"][0]["layout"][0]["fields"].append("source")
    publish.apply_document(engine, changed)
    assert registry.refresh()
    after = cache.form_class(registry.app("sales_pipeline"), "deal")
    assert after is not first
    assert field_for(after(), "source").data is None
