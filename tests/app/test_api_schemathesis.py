"""The live OpenAPI description, fuzzed by schemathesis against the app (WSGI, no network).

Every operation of the description is called with generated requests, as the
admin, after publishing the example app and entering a few records (and an
approval) for the generated ids to find. No answer may be a server error, and
every answer must be what the description says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from app import accounts, create_app
from metamodel import publish, store
from records import import_jobs
from records.actor import Actor
from records.service import Records
from workflow_engine import Workflows

EXAMPLE = Path(__file__).parents[2].parent / "shared" / "examples" / "sales_pipeline.json"
APP = "sales_pipeline"


@pytest.fixture
def api_app(db_url, tmp_path):
    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "instance"), "secret_key": "test"}
    )
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, json.loads(EXAMPLE.read_text(encoding="utf-8")))
    with engine.begin() as conn:
        accounts.create_user(conn, "root", ["admin"], password="pw", method="pbkdf2:sha256:1")
        user_id = accounts.user_id(conn, "root")
        token = accounts.issue_token(conn, user_id, "schemathesis")
    admin = Actor(user_id, "root", frozenset({"admin"}))
    records = Records(engine)
    account = records.create(admin, APP, "account", {"name": "Acme", "annual_revenue": "12.50"})
    contact = records.create(admin, APP, "contact", {"full_name": "王芳", "account": account["id"]})
    records.create(
        admin,
        APP,
        "deal",
        {
            "title": "CNC",
            "account": account["id"],
            "amount": "880000",
            "probability": 60,
            "discount_pct": 10,
            "lines": [{"product": "CNC-500", "quantity": 2, "unit_price": "440000"}],
        },
    )
    records.create(
        admin,
        APP,
        "interaction",
        {"subject": "call", "account": account["id"], "contact": contact["id"], "channel": "phone"},
    )
    # Deal 1 asks for a discount: with no sales manager, the approval's task 1 is the
    # admin's, so the workflow operations' examples (record 1, task 1) find them.
    Workflows(records).fire(admin, APP, "deal", 1, "request_discount")
    yield app, token
    # The fuzzer starts real import jobs: let them end before the database goes.
    assert import_jobs.wait_for_jobs(timeout=60)
    engine.dispose()


# schemathesis' pytest integration (``from_fixture`` + ``parametrize``) fails on
# pytest 9 (it sets ``Function._nodeid``), so each operation gets a Hypothesis
# test of its own here, built from schemathesis' strategies.
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 8}


def test_every_operation_answers_as_described(api_app):
    app, token = api_app
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def call(case):
                case.call_and_validate(
                    headers=headers, checks=[not_a_server_error, response_schema_conformance]
                )

            try:
                call()
            except (Exception, BaseExceptionGroup) as error:  # every operation gets its turn
                failures.append(f"{operation.label} ({mode}): {type(error).__name__}:\n{error}")
    assert not failures, "\n\n".join(failures)
