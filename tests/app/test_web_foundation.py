"""The web app's foundation: sign-in and lock-out, CSRF, headers, languages, error pages."""

from __future__ import annotations

import gc
import re

import pytest

from app import accounts, create_app
from metamodel import publish, store

from .test_api import EXAMPLE, FAST_HASH

PASSWORD = "pw-123456"


@pytest.fixture
def web_app(db_url, tmp_path):
    import json

    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "i"), "secret_key": "t"}
    )
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, json.loads(EXAMPLE.read_text(encoding="utf-8")))
    with engine.begin() as conn:
        accounts.create_user(conn, "li", ["sales"], password=PASSWORD, method=FAST_HASH)
        accounts.create_user(conn, "chen", ["finance"], password=PASSWORD, method=FAST_HASH)
    yield app
    engine.dispose()


@pytest.fixture
def client(web_app):
    return web_app.test_client()


def csrf_token(client, path="/sign-in") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def sign_in(client, username="li", password=PASSWORD, next_=None):
    url = "/sign-in" + (f"?next={next_}" if next_ else "")
    return client.post(
        url, data={"username": username, "password": password, "csrf_token": csrf_token(client)}
    )


def test_pages_need_a_signed_in_user(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_sign_in_then_out(client):
    response = sign_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Sales pipeline" in client.get("/").get_data(as_text=True)
    token = csrf_token(client, "/")
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_sign_in_without_the_csrf_token_is_refused(client):
    response = client.post("/sign-in", data={"username": "li", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "javascript:x"])
def test_sign_in_never_sends_the_user_to_another_site(client, target):
    response = sign_in(client, next_=target)
    assert response.headers["Location"] == "/"


def test_repeated_failures_lock_the_account_for_a_while(client):
    for _ in range(5):
        response = sign_in(client, password="wrong")
        assert response.status_code == 401
        assert "Wrong username or password." in response.get_data(as_text=True)
    # Even the right password is refused while locked, and the message says why.
    response = sign_in(client)
    assert response.status_code == 401
    assert "locked" in response.get_data(as_text=True)
    # Other users are not affected.
    assert sign_in(client, "chen").status_code == 302


def test_unknown_users_get_the_same_answer_as_wrong_passwords(client):
    response = sign_in(client, "nobody", "x")
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)


def test_every_page_carries_the_security_headers(client):
    response = client.get("/sign-in")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie


def test_production_cookies_are_secure(db_url, tmp_path):
    app = create_app(
        {
            "database_url": db_url,
            "instance_path": str(tmp_path / "p"),
            "secret_key": "t",
            "secure_cookies": True,
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    app.extensions["crm"].engine.dispose()


def test_what_start_up_made_is_kept_out_of_the_collectors_full_passes(db_url, tmp_path):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "p"), "secret_key": "t"}
    )
    # The app's own objects are among the frozen, so a full collection skips them.
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(app) and not any(found is app for found in gc.get_objects())
    app.extensions["crm"].engine.dispose()


def test_the_language_follows_the_switch_and_is_remembered_for_the_user(client, web_app):
    sign_in(client)
    token = csrf_token(client, "/")
    client.post("/language", data={"language": "zh", "next": "/", "csrf_token": token})
    page = client.get("/").get_data(as_text=True)
    assert "退出登录" in page and "销售管道" in page
    # A new session of the same user starts in Chinese.
    other = web_app.test_client()
    sign_in(other)
    assert "退出登录" in other.get("/").get_data(as_text=True)


def test_the_browser_language_is_the_default(client):
    page = client.get("/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录" in page.get_data(as_text=True)


def test_unknown_pages_get_a_friendly_page_and_unknown_api_paths_json(client):
    sign_in(client)
    page = client.get("/no/such/page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Back to the home page" in page.get_data(as_text=True)
    api = client.get("/api/v1/nothing")
    assert api.status_code == 404 and api.mimetype == "application/json"


def test_a_failure_shows_the_500_page(web_app):
    @web_app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    web_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = web_app.test_client()
    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)


def test_the_api_accepts_the_session_but_only_with_the_csrf_token(client):
    sign_in(client)
    assert client.get("/api/v1/apps").status_code == 200
    body = {"name": "Acme"}
    refused = client.post("/api/v1/records/sales_pipeline/account", json=body)
    assert refused.status_code == 400
    token = csrf_token(client, "/")
    created = client.post(
        "/api/v1/records/sales_pipeline/account", json=body, headers={"X-CSRFToken": token}
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["name"] == "Acme"
