"""Behind a reverse proxy: the lock-out and the rate limit see the client the proxy names.

The test client plays the proxy (REMOTE_ADDR 127.0.0.1) and sends X-Forwarded-For
as nginx would: whatever the client wrote, then the address the proxy saw.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app
from metamodel.errors import CrmError
from metamodel.system_tables import sign_in_failures

from .test_pages_records import PUBLIC, make_app, post
from .web import csrf_token

CLIENT, OTHER = "203.0.113.7", "198.51.100.2"


@pytest.fixture
def start(db_url, tmp_path):
    made = []

    def start(**config):
        app = make_app(db_url, tmp_path / str(len(made)), **config)
        made.append(app)
        return app

    yield start
    for app in made:
        app.extensions["crm"].engine.dispose()


def failed_sign_in_from(app, forwarded_for: str) -> str:
    """Fail to sign in with X-Forwarded-For set; the address the failure was recorded under."""
    client = app.test_client()
    data = {"username": "li", "password": "wrong", "csrf_token": csrf_token(client)}
    response = client.post("/sign-in", data=data, headers={"X-Forwarded-For": forwarded_for})
    assert response.status_code == 401
    with app.extensions["crm"].engine.connect() as conn:
        return conn.execute(select(sign_in_failures.c.remote_addr)).scalar_one()


def submit_from(app, forwarded_for: str) -> int:
    """A public form submitted by a new visitor behind the proxy; the status it got."""
    visitor = app.test_client()
    headers = {"X-Forwarded-For": forwarded_for}
    return post(visitor, PUBLIC, {"full_name": "Visitor"}, headers=headers).status_code


def test_without_proxy_settings_the_forwarded_headers_are_ignored(start):
    app = start(public_forms={"max_submissions": 1})
    assert not isinstance(app.wsgi_app, ProxyFix)
    # A client cannot claim another address: the connection's own one counts.
    assert failed_sign_in_from(app, CLIENT) == "127.0.0.1"
    assert submit_from(app, CLIENT) == 302
    assert submit_from(app, OTHER) == 429


def test_behind_one_proxy_the_client_is_the_address_it_forwards(start):
    app = start(proxy={"x_for": 1}, public_forms={"max_submissions": 1})
    # What the client wrote itself comes first and is not believed; the proxy's last value is.
    assert failed_sign_in_from(app, f"{OTHER}, {CLIENT}") == CLIENT
    assert submit_from(app, CLIENT) == 302
    assert submit_from(app, CLIENT) == 429
    assert submit_from(app, f"{OTHER}, {CLIENT}") == 429
    # Another client behind the same proxy has a limit of its own.
    assert submit_from(app, OTHER) == 302


def test_the_number_of_proxies_comes_from_the_environment_too(start, monkeypatch):
    monkeypatch.setenv("CRM_PROXY__X_FOR", "2")
    monkeypatch.setenv("CRM_PROXY__X_PROTO", "1")
    app = start()
    assert isinstance(app.wsgi_app, ProxyFix)
    assert (app.wsgi_app.x_for, app.wsgi_app.x_proto, app.wsgi_app.x_host) == (2, 1, 0)
    # Two proxies: the client is the second value from the right.
    assert failed_sign_in_from(app, f"10.9.9.9, {CLIENT}, 10.0.0.2") == CLIENT


@pytest.mark.parametrize(
    ("proxy", "path", "words"),
    [
        ({"x_for": -1}, "/proxy/x_for", "proxy.x_for must be the number of proxies"),
        ({"x_for": "one"}, "/proxy/x_for", "not 'one'"),
        ({"x_proto": True}, "/proxy/x_proto", "not True"),
        ({"x_host": 11}, "/proxy/x_host", "(0 to 10)"),
        ({"x_forwarded_for": 1}, "/proxy/x_forwarded_for", "is not a proxy setting; use x_for"),
        (2, "/proxy", "proxy must be a mapping"),
    ],
)
def test_invalid_proxy_settings_are_refused_at_start_up(db_url, tmp_path, proxy, path, words):
    config = {"database_url": db_url, "instance_path": str(tmp_path / "i"), "proxy": proxy}
    with pytest.raises(CrmError) as refused:
        create_app(config)
    assert refused.value.path == path
    assert words in refused.value.message


def test_an_invalid_number_in_the_environment_is_refused(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_PROXY__X_FOR", "all")
    with pytest.raises(CrmError) as refused:
        create_app({"database_url": db_url, "instance_path": str(tmp_path / "i")})
    assert refused.value.path == "/proxy/x_for" and "not 'all'" in refused.value.message
