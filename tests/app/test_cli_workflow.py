"""``crm workflow tick``: escalates overdue approval tasks once, at the moment --now names."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from app.cli_workflow import parse_moment
from metamodel.db import make_engine
from metamodel.errors import CrmError
from metamodel.sqltypes import UTC
from metamodel.system_tables import users
from records.actor import Actor
from records.service import Records
from workflow_engine import Workflows

from .smtp_sink import SmtpSink
from .test_cli import EXAMPLE

APP = "sales_pipeline"
# The discount request is made at this moment; its manager step is due 24 hours later.
ASKED = dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def env(db_url, tmp_path):
    return {"CRM_DATABASE_URL": db_url, "CRM_INSTANCE_PATH": str(tmp_path / "instance")}


@pytest.fixture
def crm(env):
    runner = CliRunner()

    def run(*args, **more_env):
        return runner.invoke(main, list(args), env={**env, **more_env}, catch_exceptions=False)

    return run


@pytest.fixture
def asked(crm, db_url):
    """A 10% discount request of li's, made at ASKED, waiting for boss or wang."""
    assert crm("init", "--admin-password", "pw").exit_code == 0
    assert crm("app", "apply", str(EXAMPLE), "--yes").exit_code == 0
    for args in (
        ("root", "--role", "admin", "--email", "root@example.com"),
        ("boss", "--role", "sales_manager"),
        ("wang", "--role", "sales_manager", "--manager", "boss"),
        ("li", "--role", "sales", "--manager", "wang"),
    ):
        created = crm("user", "create", *args, "--password", "pw")
        assert created.exit_code == 0, created.output
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == "li")).one()
        li = Actor(row.id, row.username, frozenset(row.roles))
        records = Records(engine, clock=lambda: ASKED)
        account = records.create(li, APP, "account", {"name": "Acme"})
        deal = records.create(
            li, APP, "deal", {"title": "Big order", "account": account["id"], "discount_pct": 10}
        )
        Workflows(records).fire(li, APP, "deal", deal["id"], "request_discount")
        yield deal["id"]
    finally:
        engine.dispose()


def test_tick_escalates_overdue_tasks_once(crm, asked):
    early = crm("workflow", "tick", "--now", "2025-03-04T08:59:00Z")
    assert (early.exit_code, early.output) == (0, "escalated 0 overdue tasks\n")
    late = crm("workflow", "tick", "--now", "2025-03-04T10:00:00+01:00")  # 09:00 UTC: not past
    assert late.output == "escalated 0 overdue tasks\n"
    due = crm("workflow", "tick", "--now", "2025-03-04T09:30:00Z")
    assert (due.exit_code, due.output) == (0, "escalated 2 overdue tasks\n")  # boss's and wang's
    again = crm("workflow", "tick", "--now", "2025-03-05T09:00:00")
    assert (again.exit_code, again.output) == (0, "escalated 0 overdue tasks\n")


def test_escalations_are_mailed_when_mail_is_on(crm, asked):
    with SmtpSink() as sink:
        done = crm(
            "workflow",
            "tick",
            "--now",
            "2025-03-05",
            CRM_MAIL__ENABLED="true",
            CRM_MAIL__SMTP_HOST="127.0.0.1",
            CRM_MAIL__SMTP_PORT=str(sink.port),
            CRM_MAIL__SENDER="crm@example.com",
        )
    assert done.output == "escalated 2 overdue tasks\n"
    # Both admins get the step; only root has an address.
    (mail,) = sink.received
    assert mail.rcpt_to == ["root@example.com"]
    assert mail.message["Subject"].startswith("Approval overdue: the approval of deal 'Big order'")


def test_tick_refuses_a_bad_moment_and_a_database_without_tables(crm):
    bad = crm("workflow", "tick", "--now", "next tuesday")
    assert bad.exit_code == 1
    assert "/now: 'next tuesday' is not an ISO 8601 moment" in bad.output
    bare = crm("workflow", "tick")
    assert bare.exit_code == 1
    assert "the system tables are missing: run 'crm init' first" in bare.output
    assert crm("init", "--admin-password", "pw").exit_code == 0
    assert crm("workflow", "tick").output == "escalated 0 overdue tasks\n"


def test_moments_without_an_offset_are_utc():
    assert parse_moment("2025-03-04T09:30") == dt.datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    assert parse_moment("2025-03-04T11:30+02:00") == dt.datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
    with pytest.raises(CrmError):
        parse_moment("")


def test_user_create_stores_an_email_address_and_refuses_a_bad_one(crm, db_url):
    assert crm("init", "--admin-password", "pw").exit_code == 0
    bad = crm("user", "create", "li", "--role", "sales", "--email", "li-at-example")
    assert bad.exit_code == 1
    assert "/email: 'li-at-example' is not an e-mail address" in bad.output
    good = crm("user", "create", "li", "--role", "sales", "--email", " li@example.com ")
    assert good.exit_code == 0, good.output
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            email = conn.execute(select(users.c.email).where(users.c.username == "li")).scalar()
    finally:
        engine.dispose()
    assert email == "li@example.com"
