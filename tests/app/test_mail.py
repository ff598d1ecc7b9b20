"""E-mail notifications: sent after the commit to a real (local) SMTP server, never in the way.

The server is tests/app/smtp_sink.py on 127.0.0.1; the API drives the discount
approval of the sales_pipeline example. wang, boss and li have e-mail addresses,
chen has none.
"""

from __future__ import annotations

import json
import logging
import socket

import pytest
from sqlalchemy import update

from app import accounts
from app.mail import Mailer, MailSettings, mailer_from
from metamodel import publish, store
from metamodel.errors import CrmError
from metamodel.system_tables import users
from workflow_engine.notifications import Notice

from .smtp_sink import SmtpSink
from .test_api import EXAMPLE, Caller, assert_error, make_app

FAST = "pbkdf2:sha256:1"
PEOPLE = [
    ("root", ["admin"], None, None),
    ("boss", ["sales_manager"], None, "boss@example.com"),
    ("wang", ["sales_manager"], "boss", "wang@example.com"),
    ("li", ["sales"], "wang", "li@example.com"),
    ("chen", ["finance"], None, None),
]


@pytest.fixture
def sink():
    with SmtpSink() as sink:
        yield sink


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mail_settings(port: int, **more) -> dict:
    return {
        "enabled": True,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "sender": "CRM <crm@example.com>",
        "timeout": 5,
        **more,
    }


@pytest.fixture
def start(db_url, tmp_path):
    """``start(**mail)``: the app with the example published, and the people's callers."""
    made = []

    def start(**mail):
        app = make_app(db_url, tmp_path, mail=mail) if mail else make_app(db_url, tmp_path)
        engine = app.extensions["crm"].engine
        made.append(engine)
        store.ensure_system_tables(engine)
        publish.apply_document(engine, json.loads(EXAMPLE.read_text(encoding="utf-8")))
        tokens = {}
        with engine.begin() as conn:
            for name, roles, manager, email in PEOPLE:
                accounts.create_user(
                    conn, name, roles, password="pw", manager=manager, email=email, method=FAST
                )
                tokens[name] = accounts.issue_token(conn, accounts.user_id(conn, name))
        client = app.test_client()
        return app, {name: Caller(client, token) for name, token in tokens.items()}

    yield start
    for engine in made:
        engine.dispose()


def sent(app) -> None:
    """Wait for the e-mails queued so far: the mailer's thread sends them after the request."""
    assert app.extensions["crm.workflows"].deliver.flush(timeout=30)


def new_deal(as_, discount: int) -> int:
    account = as_["root"].post("/account", json={"name": "Acme"}).get_json()["id"]
    response = as_["li"].post(
        "/deal", json={"title": "Big order", "account": account, "discount_pct": discount}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def test_mail_is_off_by_default(start):
    app, _ = start()
    assert app.extensions["crm.workflows"].deliver is None
    assert mailer_from({"mail": {"enabled": False, "smtp_port": "junk"}}, None) is None


def test_assignments_and_decisions_are_mailed(start, sink):
    app, as_ = start(**mail_settings(sink.port))
    deal = new_deal(as_, 20)
    fired = as_["li"].post(f"/deal/{deal}/transitions/request_discount")
    assert fired.status_code == 200, fired.get_data(as_text=True)
    sent(app)
    assigned = sorted(sink.received, key=lambda r: r.rcpt_to)
    assert [r.rcpt_to for r in assigned] == [["boss@example.com"], ["wang@example.com"]]
    mail = assigned[1]
    assert mail.mail_from == "crm@example.com"
    assert mail.message["To"] == "wang <wang@example.com>"
    assert mail.message["From"] == "CRM <crm@example.com>"
    assert mail.message["Subject"] == (
        "Approval needed: li asks you to approve deal 'Big order' "
        f"(#{deal}): Request discount approval (step Manager)"
    )
    assert mail.message["X-CRM-Notification"] == "assigned"
    body = mail.message.get_content()
    assert f"Record: sales_pipeline / deal #{deal}" in body
    assert "Open: " not in body  # no site_url: nowhere to link to

    sink.received.clear()
    task = as_["wang"].get("/api/v1/approvals?mine=1").get_json()["items"][0]["id"]
    assert as_["wang"].post(f"/api/v1/approvals/{task}/approve").status_code == 200
    sent(app)
    # The finance step: chen has no address, so nobody is mailed about it.
    assert sink.received == []
    finance = as_["chen"].get("/api/v1/approvals?mine=1").get_json()["items"][0]["id"]
    assert as_["chen"].post(f"/api/v1/approvals/{finance}/reject").status_code == 200
    sent(app)
    (rejected,) = sink.received
    assert rejected.rcpt_to == ["li@example.com"]
    assert rejected.message["Subject"].startswith("Rejected: deal 'Big order'")


def test_each_reader_is_mailed_in_their_language(start, sink):
    app, as_ = start(**mail_settings(sink.port, site_url="https://crm.example.com"))
    engine = app.extensions["crm"].engine
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.username == "wang").values(language="zh"))
    deal = new_deal(as_, 20)
    assert as_["li"].post(f"/deal/{deal}/transitions/request_discount").status_code == 200
    sent(app)
    mails = {r.rcpt_to[0]: r.message for r in sink.received}
    wang = mails["wang@example.com"]
    assert wang["Subject"] == (
        f"待您审批: li 请您审批商机“Big order”（#{deal}）：申请折扣审批（步骤 Manager）"
    )
    body = wang.get_content()
    assert f"记录：sales_pipeline / deal #{deal}" in body
    assert "您以 wang 的身份收到这封邮件；它也在您的通知中。" in body
    assert f"打开：https://crm.example.com/a/sales_pipeline/deal/{deal}" in body
    # boss chose no language: the configured default, English.
    assert mails["boss@example.com"]["Subject"].startswith("Approval needed: li asks you")


def test_a_refused_action_sends_nothing(start, sink):
    app, as_ = start(**mail_settings(sink.port))
    deal = new_deal(as_, 0)
    assert_error(as_["li"].post(f"/deal/{deal}/transitions/request_discount"), 409)
    sent(app)
    assert sink.received == []


def test_an_smtp_server_that_is_down_does_not_undo_the_action(start, caplog):
    app, as_ = start(**mail_settings(free_port()))
    deal = new_deal(as_, 10)
    with caplog.at_level(logging.WARNING, logger="app.mail"):
        fired = as_["li"].post(f"/deal/{deal}/transitions/request_discount")
        sent(app)
    assert fired.status_code == 200, fired.get_data(as_text=True)
    assert fired.get_json()["state"] == "pending"
    assert "2 of 2 notification e-mails not sent: SMTP server 127.0.0.1" in caplog.text
    notes = as_["wang"].get("/api/v1/notifications").get_json()["items"]
    assert [n["kind"] for n in notes] == ["assigned"]  # saved in the app all the same


def test_the_action_does_not_wait_for_a_slow_mail_server(start, caplog):
    with socket.socket() as silent:  # takes the connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        app, as_ = start(**mail_settings(silent.getsockname()[1], timeout=60))
        deal = new_deal(as_, 10)
        with caplog.at_level(logging.WARNING, logger="app.mail"):
            fired = as_["li"].post(f"/deal/{deal}/transitions/request_discount")
            # The answer came while the server has not even greeted the mailer.
            assert fired.status_code == 200, fired.get_data(as_text=True)
            assert app.extensions["crm.workflows"].deliver.outbox.pending() == 1
            assert "not sent" not in caplog.text
            connection, _ = silent.accept()
            connection.close()  # the server hangs up: the mailer gives up, and says so
            sent(app)
    assert "2 of 2 notification e-mails not sent" in caplog.text


def test_a_broken_channel_is_logged_after_the_commit(start, caplog):
    app, as_ = start()
    flow = app.extensions["crm.workflows"]

    def broken(notices):
        raise RuntimeError("channel down")

    flow.deliver = broken
    deal = new_deal(as_, 10)
    with caplog.at_level(logging.ERROR, logger="workflow_engine.engine"):
        fired = as_["li"].post(f"/deal/{deal}/transitions/request_discount")
    assert fired.status_code == 200
    assert "2 notifications were saved but not delivered" in caplog.text


def test_mail_settings_are_checked(db_url, tmp_path):
    with pytest.raises(CrmError) as port:
        MailSettings.parse(mail_settings(70000))
    assert port.value.path == "/mail/smtp_port"
    with pytest.raises(CrmError) as sender:
        MailSettings.parse(mail_settings(25, sender="nobody"))
    assert sender.value.path == "/mail/sender"
    with pytest.raises(CrmError) as tls:
        MailSettings.parse(mail_settings(25, starttls="yes"))
    assert tls.value.path == "/mail/starttls"
    assert MailSettings.parse(mail_settings(25, sender="crm@localhost")).sender == "crm@localhost"
    for bad in ("crm.example.com", "ftp://crm.example.com", "https://", 3):
        with pytest.raises(CrmError) as site:
            MailSettings.parse(mail_settings(25, site_url=bad))
        assert site.value.path == "/mail/site_url"
    site = MailSettings.parse(mail_settings(25, site_url=" https://crm.example.com/ "))
    assert site.site_url == "https://crm.example.com"
    with pytest.raises(CrmError, match="not a port number"):
        make_app(db_url, tmp_path, mail=mail_settings("25x"))


def test_the_mailer_skips_users_without_an_address(start, sink):
    app, _ = start()
    engine = app.extensions["crm"].engine
    with engine.connect() as conn:
        ids = {name: accounts.user_id(conn, name) for name in ("wang", "chen")}
    mailer = Mailer(MailSettings.parse(mail_settings(sink.port)), engine)
    mailer(
        [
            Notice(ids["chen"], "assigned", "to chen", "sales_pipeline", "deal", 1, 1),
            Notice(ids["wang"], "cc", "only for information", "sales_pipeline", "deal", 1, 1),
            Notice(ids["wang"], "escalated", "x" * 300, "sales_pipeline", "deal", 1, None),
        ]
    )
    assert mailer.flush(timeout=30)
    (mail,) = sink.received
    assert mail.rcpt_to == ["wang@example.com"]
    subject = mail.message["Subject"]
    assert subject.startswith("Approval overdue: xxx") and subject.endswith("…")
    assert len(subject) == 150
