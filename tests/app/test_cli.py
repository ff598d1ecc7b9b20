"""The crm command: exit codes and output as interfaces.md says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from metamodel.db import make_engine

from ..metamodel.test_search_index import drop_the_index

EXAMPLE = Path(__file__).parents[2].parent / "shared" / "examples" / "sales_pipeline.json"


@pytest.fixture
def crm(db_url, tmp_path):
    runner = CliRunner()
    env = {"CRM_DATABASE_URL": db_url, "CRM_INSTANCE_PATH": str(tmp_path / "instance")}

    def run(*args, input=None):
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


def write(tmp_path, name, doc) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_validate_accepts_the_example_and_prints_pointers_for_errors(crm, tmp_path):
    ok = crm("app", "validate", str(EXAMPLE))
    assert ok.exit_code == 0, ok.output
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["entities"][0]["fields"][0]["name"] = "select"
    bad = crm("app", "validate", write(tmp_path, "bad.json", doc))
    assert bad.exit_code == 1
    assert "/entities/0/fields/0/name: " in bad.output


def test_malformed_json_is_a_clear_error_with_line_and_column(crm, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "crm-app/1",\n  "name": \n}', encoding="utf-8")
    result = crm("app", "validate", str(path))
    assert result.exit_code == 1
    assert "line 4, column 1" in result.output
    assert "Traceback" not in result.output


def test_apply_plan_list_history_export_and_revert(crm, tmp_path):
    assert crm("init", "--admin-password", "secret").exit_code == 0
    asked = crm("app", "apply", str(EXAMPLE), input="n\n")
    assert asked.exit_code == 1 and "nothing applied" in asked.output
    applied = crm("app", "apply", str(EXAMPLE), "--yes")
    assert applied.exit_code == 0, applied.output
    assert "create entity 'deal'" in applied.output
    again = crm("app", "apply", str(EXAMPLE), "--yes")
    assert again.exit_code == 0 and "nothing to change" in again.output
    assert crm("app", "list").output.startswith("sales_pipeline\t1.0.0\tSales pipeline")

    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["version"] = "1.1.0"
    doc["entities"][0]["fields"].append({"name": "wechat_id", "type": "text"})
    changed = write(tmp_path, "v11.json", doc)
    plan = crm("app", "plan", changed, "--sql")
    assert plan.exit_code == 0
    assert "add field 'account.wechat_id' (text)" in plan.output
    assert 'ADD COLUMN "wechat_id"' in plan.output
    assert crm("app", "apply", changed, "--yes").exit_code == 0

    history = crm("app", "history", "sales_pipeline").output.splitlines()
    assert [line.split("\t")[1] for line in history] == ["1.1.0", "1.0.0"]
    exported = crm("app", "export", "sales_pipeline")
    assert json.loads(exported.output)["version"] == "1.1.0"
    reverted = crm("app", "revert", "sales_pipeline", "1.0.0", "--yes")
    assert reverted.exit_code == 0, reverted.output
    assert "archive field 'account.wechat_id'" in reverted.output
    assert "version 1.1.1" in reverted.output


def test_applying_the_same_document_again_builds_a_missing_search_index(crm, db_url):
    assert crm("app", "apply", str(EXAMPLE), "--yes").exit_code == 0
    engine = make_engine(db_url)
    try:
        drop_the_index(engine)  # as in a database applied before search indexes existed
    finally:
        engine.dispose()
    plan = crm("app", "plan", str(EXAMPLE), "--sql")
    assert plan.exit_code == 0, plan.output
    assert "  - create search index" in plan.output
    assert ("USING fts5(" if db_url.startswith("sqlite") else "gin_trgm_ops") in plan.output
    repaired = crm("app", "apply", str(EXAMPLE), "--yes")
    assert repaired.exit_code == 0 and "applied sales_pipeline 1.0.0 (#2)" in repaired.output
    assert "nothing to change" in crm("app", "apply", str(EXAMPLE), "--yes").output
    history = crm("app", "history", "sales_pipeline").output.splitlines()
    assert [line.split("\t")[2] for line in history] == ["repair", "apply"]


def test_refusals_exit_1_with_the_reason(crm, tmp_path):
    assert crm("app", "apply", str(EXAMPLE), "--yes").exit_code == 0
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["entities"][0]["fields"].append({"name": "wechat_id", "type": "text"})
    result = crm("app", "apply", write(tmp_path, "same-version.json", doc), "--yes")
    assert result.exit_code == 1
    assert (
        "/version: the document changed, so its version must be higher than 1.0.0" in result.output
    )
    missing = crm("app", "history", "nope")
    assert missing.exit_code == 1 and "there is no app named 'nope'" in missing.output


def test_purge_without_yes_only_says_what_would_go(crm, tmp_path):
    assert crm("app", "apply", str(EXAMPLE), "--yes").exit_code == 0
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["version"] = "1.1.0"
    doc["entities"][0]["fields"] = [f for f in doc["entities"][0]["fields"] if f["name"] != "notes"]
    assert crm("app", "apply", write(tmp_path, "v11.json", doc), "--yes").exit_code == 0
    dry = crm("app", "purge", "sales_pipeline", "account.notes")
    assert (
        "destroy field 'account.notes': 0 values" in dry.output
        and "nothing destroyed" in dry.output
    )
    done = crm("app", "purge", "sales_pipeline", "account.notes", "--yes")
    assert done.exit_code == 0 and "purged account.notes" in done.output


def test_user_create_refuses_an_existing_username(crm):
    assert crm("init", "--admin-password", "x").exit_code == 0
    created = crm(
        "user", "create", "wang", "--role", "sales", "--password", "pw", "--manager", "admin"
    )
    assert created.exit_code == 0, created.output
    again = crm("user", "create", "wang", "--role", "sales")
    assert again.exit_code == 1 and "already exists" in again.output
    usage = crm("user", "create", "li")
    assert usage.exit_code == 2
