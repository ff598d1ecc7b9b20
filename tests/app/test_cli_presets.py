"""``crm preset list|import`` and ``crm app export --with-records``, as interfaces.md says."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from app.cli import main
from metamodel.db import make_engine
from presets.catalog import list_presets, load_preset
from records.actor import SYSTEM
from records.query import ListQuery
from records.service import Records

from ..presets.second_db import second_db_url
from ..presets.shop import customised, shop, shop_v11, write


def runner_for(db_url, tmp_path):
    runner = CliRunner()
    env = {"CRM_DATABASE_URL": db_url, "CRM_INSTANCE_PATH": str(tmp_path / "instance")}

    def run(*args, input=None):
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


@pytest.fixture
def crm(db_url, tmp_path):
    return runner_for(db_url, tmp_path)


def customers(db_url) -> dict[str, dict]:
    engine = make_engine(db_url)
    try:
        page = Records(engine).list(SYSTEM, "shop", "customer", ListQuery(per_page=200))
        return {item["name"]: item for item in page["items"]}
    finally:
        engine.dispose()


def test_list_prints_name_industry_and_description(crm):
    result = crm("preset", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split("\t")[0] for line in lines] == [info.name for info in list_presets()]
    b2b = next(line for line in lines if line.startswith("b2b_sales\t"))
    _, industry, description = b2b.split("\t")
    assert industry == "b2b_sales" and description.startswith("Accounts with value tiers")


def sample_counts(name: str) -> dict[str, int]:
    return {entity: len(rows) for entity, rows in load_preset(name)["sample_data"].items() if rows}


def test_dry_run_import_and_import_again(crm):
    counts = sample_counts("sales_pipeline")
    total = sum(counts.values())
    version = load_preset("sales_pipeline")["version"]

    dry = crm("preset", "import", "sales_pipeline", "--with-sample-data", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert f"plan for sales_pipeline {version}:" in dry.output
    assert "create entity 'deal'" in dry.output
    each = ", ".join(f"{entity} {count}" for entity, count in counts.items())
    assert f"sample records: {total} ({each})" in dry.output
    assert dry.output.rstrip().endswith("dry run: nothing was changed")
    assert crm("app", "list").output.strip() == "no apps installed"

    done = crm("preset", "import", "sales_pipeline", "--with-sample-data")
    assert done.exit_code == 0, done.output
    assert f"imported sales_pipeline {version} (#1) with {total} sample records" in done.output

    again = crm("preset", "import", "sales_pipeline", "--with-sample-data")
    assert again.exit_code == 0, again.output
    assert f"sales_pipeline {version}: nothing to change" in again.output
    assert "none is added again" in again.output
    assert len(crm("app", "history", "sales_pipeline").output.splitlines()) == 1


def test_a_broken_preset_prints_pointers_and_changes_nothing(crm, tmp_path):
    broken = shop()
    broken["entities"][0]["fields"][1]["type"] = "dropdown"
    result = crm("preset", "import", str(write(tmp_path / "broken.json", broken)))
    assert result.exit_code == 1
    assert "/entities/0/fields/1/type: " in result.output
    assert "Traceback" not in result.output
    assert crm("app", "list").output.strip() == "no apps installed"


def test_a_refused_last_sample_record_installs_nothing(crm, tmp_path):
    preset = shop()
    preset["sample_data"]["purchase"].append({"amount": "5"})
    path = write(tmp_path / "shop.json", preset)
    result = crm("preset", "import", str(path), "--with-sample-data")
    assert result.exit_code == 1
    assert "/sample_data/purchase/1/title: is required" in result.output
    assert crm("app", "list").output.strip() == "no apps installed"


def test_an_upgrade_keeps_the_users_changes_and_prints_the_conflicts(crm, db_url, tmp_path):
    v1 = str(write(tmp_path / "v1.json", shop()))
    assert crm("preset", "import", v1, "--with-sample-data").exit_code == 0
    mine = customised(shop())
    assert crm("app", "apply", str(write(tmp_path / "mine.json", mine)), "--yes").exit_code == 0
    engine = make_engine(db_url)
    acme = customers(db_url)["Acme Ltd"]
    Records(engine).update(SYSTEM, "shop", "customer", acme["id"], {"wechat": "acme_wx"})
    engine.dispose()
    newer = str(write(tmp_path / "v11.json", shop_v11()))

    dry = crm("preset", "import", newer, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "shop 1.0.1: merging version 1.1.0 of the preset" in dry.output
    assert "  ! conflict /entities/0/fields/2/label: " in dry.output
    assert "add field 'customer.email' (email)" in dry.output
    assert "dry run: nothing was changed" in dry.output

    refused = crm("preset", "import", newer, input="n\n")
    assert refused.exit_code == 1 and "nothing applied" in refused.output

    upgraded = crm("preset", "import", newer, input="y\n")
    assert upgraded.exit_code == 0, upgraded.output
    assert "  + /entities/0/fields: the preset removes field 'phone'" in upgraded.output
    assert "1 conflict: the app's own values were kept" in upgraded.output
    assert "upgraded shop from 1.0.1 to 1.1.0 (#3)" in upgraded.output
    document = json.loads(crm("app", "export", "shop").output)
    labels = {f["name"]: f.get("label") for f in document["entities"][0]["fields"]}
    assert labels["city"] == "Town" and labels["tier"] == "Level" and "wechat" in labels
    assert customers(db_url)["Acme Ltd"]["wechat"] == "acme_wx"

    again = crm("preset", "import", newer, "--yes")
    assert again.exit_code == 0 and "shop 1.1.0: nothing to change" in again.output


def test_an_upgrade_whose_merge_is_invalid_is_refused(crm, tmp_path):
    assert crm("preset", "import", str(write(tmp_path / "v1.json", shop()))).exit_code == 0
    mine = customised(shop())
    mine["views"][0]["columns"].append("phone")  # the preset is about to remove it
    assert crm("app", "apply", str(write(tmp_path / "mine.json", mine)), "--yes").exit_code == 0
    result = crm("preset", "import", str(write(tmp_path / "v11.json", shop_v11())), "--yes")
    assert result.exit_code == 1
    assert "! conflict /entities/0/fields/2/label" in result.output
    assert "/views/0/columns/3: " in result.output
    assert "1.0.1" in crm("app", "list").output


def test_export_with_records_imports_into_a_fresh_database(crm, db_kind, tmp_path):
    assert crm("preset", "import", "sales_pipeline", "--with-sample-data").exit_code == 0
    target = tmp_path / "exported.json"

    exported = crm("app", "export", "sales_pipeline", "--with-records", "-o", str(target))

    assert exported.exit_code == 0, exported.output
    counts = sample_counts("sales_pipeline")
    total = sum(counts.values())
    assert f"exported {total} records as sample data" in exported.output
    assert "note: owners are not exported" in exported.output
    document = json.loads(target.read_text(encoding="utf-8"))
    assert {k: len(v) for k, v in document["sample_data"].items()} == counts
    assert crm("app", "validate", str(target)).exit_code == 0
    with second_db_url(db_kind, tmp_path) as other_url:
        other = runner_for(other_url, tmp_path)
        imported = other("preset", "import", str(target), "--with-sample-data")
        assert imported.exit_code == 0, imported.output
        assert f"with {total} sample records" in imported.output


def test_export_of_an_unknown_app_is_refused(crm):
    assert crm("init", "--admin-password", "secret").exit_code == 0
    result = crm("app", "export", "nothing", "--with-records")
    assert result.exit_code == 1 and "there is no app named 'nothing'" in result.output
