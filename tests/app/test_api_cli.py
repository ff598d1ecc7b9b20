"""``crm user create --token``: the token is printed alone on the last line, and it works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from app import create_app
from app.cli import main
from metamodel import publish, store
from metamodel.db import make_engine

EXAMPLE = Path(__file__).parents[2].parent / "shared" / "examples" / "sales_pipeline.json"


@pytest.fixture
def crm(db_url, tmp_path, monkeypatch):
    """Run ``crm``; the apps it makes are kept so their engines can be closed."""
    env = {"CRM_DATABASE_URL": db_url, "CRM_INSTANCE_PATH": str(tmp_path / "instance")}
    made = []

    def create():
        made.append(create_app())
        return made[-1]

    monkeypatch.setattr(main, "create_app", create)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    yield run
    for app in made:
        app.extensions["crm"].engine.dispose()


def test_user_create_with_token_prints_a_working_token_last(crm, db_url, tmp_path):
    engine = make_engine(db_url)
    store.ensure_system_tables(engine)
    publish.apply_document(engine, json.loads(EXAMPLE.read_text(encoding="utf-8")))
    engine.dispose()

    created = crm("user", "create", "li", "--role", "sales", "--token")
    assert created.exit_code == 0, created.output
    *before, token = created.output.splitlines()
    assert any("created user 'li'" in line for line in before)
    assert token.startswith("crm_") and " " not in token and len(token) >= 40
    plain = crm("user", "create", "wang", "--role", "sales_manager", "--password", "pw")
    assert plain.exit_code == 0 and plain.output.splitlines() == ["created user 'wang'"]

    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "api"), "secret_key": "test"}
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/api/v1/records/sales_pipeline/account", json={"name": "Acme"}, headers=headers
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert client.get("/api/v1/records/sales_pipeline/deal", headers=headers).status_code == 200
    refused = client.delete(
        f"/api/v1/records/sales_pipeline/account/{created.get_json()['id']}", headers=headers
    )
    assert refused.status_code == 403
    app.extensions["crm"].engine.dispose()
