"""Importing a preset as an app: all or nothing, once, and upgrades that keep users' changes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select, text

from metamodel import store
from metamodel.errors import NotFound, PlanRefused
from metamodel.publish import apply_document
from metamodel.system_tables import app_versions, audit_log, preset_imports
from presets.catalog import PresetError
from presets.importing import ImportRefused, plan_import, run_import
from records.actor import SYSTEM
from records.query import ListQuery
from records.service import Records

from .shop import customised, shop, shop_v11, write


def tables(engine) -> list[str]:
    return sorted(name for name in inspect(engine).get_table_names() if name.startswith("shop__"))


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def current(engine):
    with engine.connect() as conn:
        return store.current(conn, "shop")


def items(engine, entity: str) -> list[dict]:
    page = Records(engine).list(SYSTEM, "shop", entity, ListQuery(sort="id", per_page=200))
    return page["items"]


def assert_nothing_installed(engine) -> None:
    store.ensure_system_tables(engine)
    assert current(engine) is None
    assert tables(engine) == []
    assert count(engine, app_versions) == 0
    assert count(engine, preset_imports) == 0
    assert count(engine, audit_log) == 0


# --- a new app --------------------------------------------------------------------------


def test_a_preset_becomes_an_app_with_its_sample_data(engine):
    plan = run_import(engine, shop(), with_sample_data=True, author="li")

    assert plan.applied and not plan.upgrade and plan.outcome.changed
    assert plan.sample_counts == {"customer": 2, "purchase": 1}
    stored = current(engine)
    assert stored.version == "1.0.0" and stored.action == "preset" and stored.author == "li"
    assert "sample_data" not in stored.document  # sample data is not part of the app
    customers = items(engine, "customer")
    assert [c["name"] for c in customers] == ["Acme Ltd", "王强贸易"]
    assert items(engine, "purchase")[0]["customer"] == customers[0]["id"]


def test_importing_the_same_preset_again_changes_nothing(engine):
    run_import(engine, shop(), with_sample_data=True)

    again = run_import(engine, shop(), with_sample_data=True)

    assert not again.changed and not again.outcome.changed
    assert again.merge.taken == [] and again.merge.conflicts == []
    assert "none is added again" in again.sample_note
    assert count(engine, app_versions) == 1
    assert count(engine, preset_imports) == 1
    assert len(items(engine, "customer")) == 2


def test_sample_data_asked_for_later_is_added_once(engine):
    run_import(engine, shop())
    assert items(engine, "customer") == []

    later = run_import(engine, shop(), with_sample_data=True)

    assert later.changed and not later.outcome.changed
    assert later.sample_counts == {"customer": 2, "purchase": 1}
    assert count(engine, app_versions) == 1
    assert not run_import(engine, shop(), with_sample_data=True).changed
    assert len(items(engine, "customer")) == 2


def test_a_dry_run_does_everything_and_keeps_nothing(engine):
    plan = plan_import(engine, shop(), with_sample_data=True)

    assert plan.changed and not plan.applied
    assert "create entity 'customer' (table shop__customer)" in plan.outcome.plan.words()
    assert plan.sample_counts == {"customer": 2, "purchase": 1}
    assert_nothing_installed(engine)


def test_an_app_published_as_the_preset_needs_no_record_of_the_import(engine):
    apply_document(engine, shop())  # e.g. crm app apply presets/shop.json
    again = run_import(engine, shop())
    assert not again.changed
    assert "is this version of the preset" in again.base


# --- all or nothing -----------------------------------------------------------------------


def test_a_refused_last_sample_record_leaves_nothing_behind(engine):
    preset = shop()
    preset["sample_data"]["purchase"].append({"amount": "5"})  # the title is required

    with pytest.raises(PresetError) as caught:
        run_import(engine, preset, with_sample_data=True)

    assert [p.path for p in caught.value.problems] == ["/sample_data/purchase/1/title"]
    assert_nothing_installed(engine)
    # and the same preset imports cleanly once it is fixed
    preset["sample_data"]["purchase"][1]["title"] = "Second order"
    assert run_import(engine, preset, with_sample_data=True).sample_counts["purchase"] == 2


def test_a_refused_sample_record_in_an_upgrade_keeps_the_app_as_it_was(engine):
    run_import(engine, shop())
    newer = shop_v11()
    newer["sample_data"]["purchase"][0]["customer"] = {"$ref": "customer", "name": "Nobody"}

    with pytest.raises(PresetError) as caught:
        run_import(engine, newer, with_sample_data=True)

    assert caught.value.path == "/sample_data/purchase/0/customer"
    assert current(engine).version == "1.0.0"
    assert count(engine, app_versions) == 1 and count(engine, preset_imports) == 1
    assert items(engine, "customer") == []
    assert "email" not in [c["name"] for c in inspect(engine).get_columns("shop__customer")]


def test_a_broken_preset_is_refused_with_pointers(engine, tmp_path):
    broken = shop()
    broken["entities"][0]["fields"][1]["type"] = "dropdown"
    broken["sample_data"]["customer"][0]["nickname"] = "Ace"
    path = write(tmp_path / "broken.json", broken)

    with pytest.raises(PresetError) as caught:
        run_import(engine, str(path), with_sample_data=True)

    paths = [p.path for p in caught.value.problems]
    assert "/entities/0/fields/1/type" in paths
    assert "/sample_data/customer/0/nickname" in paths
    assert_nothing_installed(engine)


def test_an_unknown_preset_is_not_found(engine):
    with pytest.raises(NotFound):
        run_import(engine, "crm_for_cats")


# --- upgrades -------------------------------------------------------------------------------


@pytest.fixture
def customised_shop(engine):
    """The shop imported with its sample data, then changed by its users, with data."""
    run_import(engine, shop(), with_sample_data=True)
    apply_document(engine, customised(current(engine).document))
    records = Records(engine)
    acme = items(engine, "customer")[0]
    records.update(SYSTEM, "shop", "customer", acme["id"], {"wechat": "acme_wx"})
    records.create(SYSTEM, "shop", "customer", {"name": "Bronze Bar", "tier": "bronze"})
    return engine


def field(document: dict, name: str) -> dict:
    return next(f for f in document["entities"][0]["fields"] if f["name"] == name)


def test_an_upgrade_keeps_what_users_changed_and_reports_conflicts(customised_shop):
    engine = customised_shop

    plan = run_import(engine, shop_v11(), with_sample_data=True)

    assert plan.upgrade and plan.previous_version == "1.0.1"
    doc = current(engine).document
    assert doc["version"] == plan.version == "1.1.0"
    # the users' changes
    assert field(doc, "tier")["label"] == "Level"
    assert [o["value"] for o in field(doc, "tier")["options"]] == [
        "gold",
        "silver",
        "platinum",
        "bronze",
    ]
    assert field(doc, "wechat") == {"name": "wechat", "type": "text"}
    assert "wechat" in doc["forms"][0]["layout"][0]["fields"]
    # the preset's changes
    assert field(doc, "name")["label"] == {"en": "Customer name", "zh": "客户名称"}
    assert field(doc, "email")["type"] == "email"
    assert "email" in doc["forms"][0]["layout"][0]["fields"]
    assert "phone" not in [f["name"] for f in doc["entities"][0]["fields"]]
    # the conflict: both relabelled the city; the users' label stays
    assert field(doc, "city")["label"] == "Town"
    [conflict] = plan.merge.conflicts
    assert conflict.path == "/entities/0/fields/2/label"
    assert '"Town"' in conflict.message and '"City of business"' in conflict.message
    assert "the preset removes field 'phone'" in [c.message for c in plan.merge.taken]
    # no data is lost: the users' values, and the phone numbers kept in the archive
    by_name = {c["name"]: c for c in items(engine, "customer")}
    assert by_name["Acme Ltd"]["wechat"] == "acme_wx"
    assert by_name["Bronze Bar"]["tier"] == "bronze"
    assert len(by_name) == 3  # the sample data went in with the first import, not again
    with engine.connect() as conn:
        phones = conn.execute(text("SELECT phone FROM shop__customer ORDER BY id")).scalars()
        assert next(iter(phones)) == "+8613800138000"
    assert any(w.startswith("archive field 'customer.phone'") for w in plan.outcome.plan.words())


def test_an_upgrade_imported_twice_changes_nothing_the_second_time(customised_shop):
    engine = customised_shop
    run_import(engine, shop_v11())
    versions = count(engine, app_versions)

    again = run_import(engine, shop_v11(), with_sample_data=True)

    assert not again.changed
    assert again.merge.conflicts == []  # settled by the first upgrade: the users' label stays
    assert count(engine, app_versions) == versions
    assert field(current(engine).document, "city")["label"] == "Town"


def test_a_dry_run_of_an_upgrade_shows_the_merge_and_keeps_nothing(customised_shop):
    engine = customised_shop
    plan = plan_import(engine, shop_v11())
    assert [c.path for c in plan.merge.conflicts] == ["/entities/0/fields/2/label"]
    assert "add field 'customer.email' (email)" in plan.outcome.plan.words()
    assert current(engine).version == "1.0.1"


def test_a_merge_that_does_not_validate_is_refused(customised_shop):
    engine = customised_shop
    doc = current(engine).document
    doc["version"] = "1.0.2"
    # the users show the phone number the preset is about to remove
    doc["views"][0]["columns"].append("phone")
    apply_document(engine, doc)

    with pytest.raises(ImportRefused) as caught:
        run_import(engine, shop_v11())

    assert [p.path for p in caught.value.problems] == ["/views/0/columns/3"]
    assert caught.value.merge.conflicts  # what went into the merge is there to show
    assert current(engine).version == "1.0.2"


def test_an_upgrade_the_planner_refuses_changes_nothing(customised_shop):
    engine = customised_shop
    newer = shop_v11()
    field(newer, "city")["required"] = True  # Bronze Bar has no city
    with pytest.raises(PlanRefused):
        run_import(engine, newer)
    assert current(engine).version == "1.0.1"
    assert count(engine, preset_imports) == 1
