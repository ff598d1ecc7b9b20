"""Fixtures shared by every test.

The database under test is SQLite unless ``--db postgresql`` (or the environment
variable CRM_TEST_DB=postgresql) selects PostgreSQL. Every test that asks for
``db_url`` or ``engine`` gets a clean database of its own: a fresh SQLite file,
or a fresh PostgreSQL schema named in the URL, so subprocesses see it too. A
module that sets up something costly once asks ``new_database()`` for databases
its tests share, dropped when the module ends.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import create_engine, text

from metamodel.db import make_engine

POSTGRES_SERVER = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test"
)


def pytest_addoption(parser):
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql"),
        default=os.environ.get("CRM_TEST_DB", "sqlite"),
        help="database the tests run on (default: sqlite, or $CRM_TEST_DB)",
    )


def pytest_report_header(config):
    return f"database: {config.getoption('--db')}"


@pytest.fixture(scope="session")
def db_kind(pytestconfig) -> str:
    return pytestconfig.getoption("--db")


@pytest.fixture
def db_url(db_kind, tmp_path):
    with fresh_database(db_kind, tmp_path / "test.db") as url:
        yield url


@contextmanager
def fresh_database(db_kind: str, sqlite_file) -> Iterator[str]:
    """The URL of a clean database: the SQLite file given, or a new PostgreSQL schema."""
    if db_kind == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    schema = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def new_database(db_kind, tmp_path_factory):
    """``new_database()``: the URL of another clean database, kept until the module ends.

    For a module that sets up something costly (publishing an app) once and runs
    many tests against it; each call is a database of its own.
    """
    with ExitStack() as stack:
        folder = tmp_path_factory.mktemp("module_db")
        numbers = itertools.count()

        def make() -> str:
            return stack.enter_context(fresh_database(db_kind, folder / f"{next(numbers)}.db"))

        yield make


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, driven by Playwright: one per session (never a downloaded browser).

    One Playwright per process: its synchronous API runs an event loop of its own,
    so a second one started while this one lives would be refused.
    """
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()
