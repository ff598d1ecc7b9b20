"""What every benchmark shares: percentiles, and running once per database with one report.

Each benchmark's ``run(db, options, log)`` returns a result dict with ``passed``;
:func:`run_databases` runs it on each database asked for, stamps the
environment, prints the table, writes ``bench/results/<name>-<db>.json`` and
turns the outcome into the exit status: 0 all passed, 1 a target missed,
2 the benchmark saw something it should not (its ``refusal`` exception; the
other databases still run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import text

from metamodel.db import make_engine

RESULTS = Path(__file__).resolve().parent / "results"
POSTGRESQL_URL = "postgresql+psycopg://127.0.0.1:5432/test"


def percentile(samples: list[float], q: float) -> float:
    """The sample at quantile ``q`` (nearest rank), as every table here reports it."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "cpus": os.cpu_count(),
    }


def _print(line: str) -> None:
    print(line, flush=True)


def run_databases(
    name: str,
    options: argparse.Namespace,
    run: Callable[[str, argparse.Namespace, Callable[[str], None]], dict[str, Any]],
    print_table: Callable[[dict[str, Any]], None],
    refusal: type[Exception] | tuple[type[Exception], ...],
    refusal_text: str,
    *,
    passed: Callable[[dict[str, Any]], bool] = lambda result: result["passed"],
    log: Callable[[str], None] = _print,
) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    databases = ["sqlite", "postgresql"] if options.db == "both" else [options.db]
    status = 0
    for db in databases:
        print(f"{db}:", flush=True)
        try:
            result = run(db, options, log)
        except refusal as error:
            print(f"  {refusal_text}: {error}", file=sys.stderr, flush=True)
            status = 2
            continue
        result["environment"] = {**environment(), **result.get("environment", {})}
        print_table(result)
        (RESULTS / f"{name}-{db}.json").write_text(json.dumps(result, indent=2) + "\n")
        if not passed(result) and status == 0:
            status = 1
    return status


@contextlib.contextmanager
def fresh_database(db: str, label: str, postgresql_url: str = POSTGRESQL_URL) -> Iterator[str]:
    """The URL of an empty SQLite file or PostgreSQL schema, removed afterwards."""
    if db == "sqlite":
        directory = tempfile.mkdtemp(prefix=f"bench-{label}-")
        try:
            yield f"sqlite:///{directory}/bench.db"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    schema = f"bench_{label}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgresql_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield f"{postgresql_url}?options=-csearch_path%3D{schema}"
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()
