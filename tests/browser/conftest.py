"""Pages in a real browser: Debian's Chromium driven by Playwright, against a live server.

The browser is launched once per session from /usr/bin/chromium (never a
downloaded one; the ``browser`` fixture is in tests/conftest.py); each test
gets its own database, app and server on a free port. Screenshots of the
main pages go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from werkzeug.serving import make_server

from app import accounts, create_app
from metamodel import publish, store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT.parent / "shared" / "examples" / "sales_pipeline.json"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
FAST_HASH = "pbkdf2:sha256:1"
PASSWORD = "secret-pw"
PEOPLE = {
    "root": ["admin"],
    "li": ["sales"],
    "wang": ["sales_manager"],
    "chen": ["finance"],
}

expect.set_options(timeout=10_000)


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def example_doc() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def web_app(db_url, tmp_path, example_doc):
    app = create_app(
        {
            "database_url": db_url,
            "instance_path": str(tmp_path / "instance"),
            "secret_key": "browser-tests",
        }
    )
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example_doc)
    with engine.begin() as conn:
        for name, roles in PEOPLE.items():
            accounts.create_user(conn, name, roles, password=PASSWORD, method=FAST_HASH)
    yield app
    engine.dispose()


@pytest.fixture
def live_server(web_app):
    with LiveServer(web_app) as server:
        yield server


@pytest.fixture
def context(browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    yield context
    context.close()


class Console:
    """What the page reported: CSP violations and script errors fail the test that reads them."""

    def __init__(self, page: Page):
        self.errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture
def page(context) -> Page:
    page = context.new_page()
    page.console = Console(page)
    yield page
    page.close()


def sign_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/sign-in")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit].primary")
    expect(page.locator("#sign-out")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Written aside, then moved: the two databases' runs go side by side (scripts/run-tests).
    aside = SCREENSHOTS / f".{name}-{os.getpid()}.png"
    page.screenshot(path=str(aside), full_page=True)
    os.replace(aside, SCREENSHOTS / f"{name}.png")
