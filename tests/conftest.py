"""Fixtures shared by every test.

The database under test is SQLite unless ``--db postgresql`` (or the environment
variable CRM_TEST_DB=postgresql) selects PostgreSQL. Every test that asks for
``db_url`` or ``engine`` gets a clean database of its own: a fresh SQLite file,
or a fresh PostgreSQL schema named in the URL, so subprocesses see it too.
"""

from __future__ import annotations

import os
import uuid

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
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
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


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
