"""Migration benchmark: adding a field is O(1) in table size; a checked type change scales.

For each database (SQLite, PostgreSQL):

(a) add a field: publish a version that adds one nullable field to an entity
    of 10,000 rows and of N rows (a fresh database or schema for each size),
    ``--repeat`` times in a row (each a new version adding one more field); the
    median is compared, and the ratio large / small must stay under 3.
(b) type change: on the N-row table, publish a version that turns ``code_text``
    from ``text`` into ``integer`` (every value converts): rows per second.
    The plan alone (which scans the data to check the conversion) is timed
    too, as a breakdown.
(c) memory during (b): the process's peak resident set size (``ru_maxrss``,
    with the kernel's high-water mark reset right before (b)), and the peak of
    Python allocations (``tracemalloc``). ``tracemalloc`` slows allocation
    heavy code down a lot, so it runs in a second, identical conversion (of
    ``code_copy``, a column holding the same digits) instead of the timed one.

Filling the table (one INSERT ... SELECT from generate_series or a recursive
CTE, then VACUUM ANALYZE / a WAL checkpoint so no background work lingers)
is timed separately and is not part of any measurement.

    python -m bench.migrations [--db sqlite|postgresql|both] [--rows 1000000]

Prints a table and writes ``bench/results/migrations-<db>.json``; exits 1 when
an add-field ratio reaches the target, 2 when a migration misbehaves.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import platform
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, inspect, text

from metamodel import operations as ops
from metamodel.db import make_engine
from metamodel.errors import CrmError
from metamodel.identifiers import table_name
from metamodel.publish import Outcome, apply_document, plan_document

from .harness import POSTGRESQL_URL, RESULTS, run_databases

APP = "bench_migrations"
ENTITY = "item"
SMALL = 10_000
TARGET_RATIO = 3.0
# Digits stored in code_text / code_copy for row g (1-based): 1 to 8 digits.
MODULUS = 100_000_000
MULTIPLIER = 7919


class BenchError(Exception):
    """A migration did not do what the benchmark expects."""


# --- documents ------------------------------------------------------------------


def document(version: str, *, extras: int = 0, integers: frozenset[str] = frozenset()) -> dict:
    """The benchmark app: one entity, ``extras`` added fields, ``integers`` retyped."""

    def digits(name: str) -> dict[str, Any]:
        if name in integers:
            return {"name": name, "type": "integer"}
        return {"name": name, "type": "text", "max_length": 20}

    fields = [
        {"name": "title", "type": "text", "max_length": 100},
        digits("code_text"),
        digits("code_copy"),
        {"name": "qty", "type": "integer"},
    ]
    fields += [{"name": f"extra_{i}", "type": "text"} for i in range(1, extras + 1)]
    return {
        "format": "crm-app/1",
        "name": APP,
        "version": version,
        "label": "Migration benchmark",
        "entities": [
            {"name": ENTITY, "label": "Item", "title_field": "title", "fields": fields},
        ],
    }


# --- databases ------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(db: str) -> Iterator[Engine]:
    """An engine on an empty SQLite file or PostgreSQL schema, removed afterwards."""
    if db == "sqlite":
        directory = tempfile.mkdtemp(prefix="bench-migrations-")
        engine = make_engine(f"sqlite:///{directory}/bench.db")
        try:
            yield engine
        finally:
            engine.dispose()
            shutil.rmtree(directory, ignore_errors=True)
        return
    schema = f"bench_migrations_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRESQL_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(f"{POSTGRESQL_URL}?options=-csearch_path%3D{schema}")
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def fill(engine: Engine, rows: int) -> float:
    """Insert ``rows`` records in one statement; returns the seconds it took."""
    table = str(table_name(APP, ENTITY))
    columns = "created_at, updated_at, version, title, code_text, code_copy, qty"
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        statement = f"""
            INSERT INTO "{table}" ({columns})
            SELECT now(), now(), 1, 'Item ' || g,
                   ((g * {MULTIPLIER}) % {MODULUS})::text,
                   ((g * {MULTIPLIER}) % {MODULUS})::text,
                   g % 1000
            FROM generate_series(1::bigint, :rows) AS g
        """
        with engine.begin() as conn:
            conn.execute(text(statement), {"rows": rows})
        # Leave autovacuum nothing to do: it would otherwise hold a lock that
        # the migration's ALTER TABLE has to wait for.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text(f'VACUUM ANALYZE "{table}"')
            )
    else:
        statement = f"""
            WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < :rows)
            INSERT INTO "{table}" ({columns})
            SELECT strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now'),
                   1, 'Item ' || g,
                   CAST((g * {MULTIPLIER}) % {MODULUS} AS TEXT),
                   CAST((g * {MULTIPLIER}) % {MODULUS} AS TEXT),
                   g % 1000
            FROM seq
        """
        with engine.begin() as conn:
            conn.execute(text(statement), {"rows": rows})
        # Outside any transaction (the engine's BEGIN IMMEDIATE would block it).
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    return time.perf_counter() - started


def expected_sum(rows: int) -> int:
    return sum((g * MULTIPLIER) % MODULUS for g in range(1, rows + 1))


def column_facts(engine: Engine, column: str, summed: bool = True) -> tuple[int, int, int, str]:
    """(rows, non-null values of ``column``, their sum, the column's type)."""
    table = str(table_name(APP, ENTITY))
    total = f'sum("{column}")' if summed else "0"
    with engine.connect() as conn:
        rows, values, total = conn.execute(
            text(f'SELECT count(*), count("{column}"), {total} FROM "{table}"')
        ).one()
        kind = next(c["type"] for c in inspect(conn).get_columns(table) if c["name"] == column)
    return rows, values, int(total or 0), str(kind)


# --- measuring --------------------------------------------------------------------


def timed_apply(engine: Engine, doc: dict, expected_op: type) -> tuple[float, Outcome]:
    started = time.perf_counter()
    outcome = apply_document(engine, doc, author="bench")
    seconds = time.perf_counter() - started
    kinds = [type(operation) for operation in outcome.plan.operations]
    if not outcome.changed or expected_op not in kinds:
        raise BenchError(
            f"version {doc['version']} did not {expected_op.__name__}: {outcome.plan.words()}"
        )
    return seconds, outcome


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux), so ru_maxrss restarts from now."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def max_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def add_field_run(
    db: str, rows: int, options: argparse.Namespace, convert: bool, log
) -> dict[str, Any]:
    repeat = options.repeat
    result: dict[str, Any] = {"rows": rows}
    with fresh_database(db) as engine:
        apply_document(engine, document("1.0.0"), author="bench")
        result["fill_seconds"] = fill(engine, rows)
        log(f"  {rows:>9,} rows filled in {result['fill_seconds']:.1f} s")
        samples = []
        for i in range(1, repeat + 1):
            seconds, _ = timed_apply(engine, document(f"1.{i}.0", extras=i), ops.AddColumn)
            samples.append(seconds)
        result["add_field_seconds"] = samples
        result["add_field_median"] = statistics.median(samples)
        log(f"  add a field: {', '.join(f'{s * 1000:.1f}' for s in samples)} ms")
        counted, extra_values, _, _ = column_facts(engine, f"extra_{repeat}", summed=False)
        if counted != rows or extra_values:
            raise BenchError(f"after adding fields: {counted} rows, {extra_values} values")
        if convert:
            result["type_change"] = type_change(engine, rows, options, log)
    return result


def type_change(engine: Engine, rows: int, options: argparse.Namespace, log) -> dict[str, Any]:
    repeat, profile = options.repeat, options.profile
    result: dict[str, Any] = {"rows": rows}
    doc = document("2.0.0", extras=repeat, integers=frozenset({"code_text"}))

    started = time.perf_counter()
    preview = plan_document(engine, doc)
    result["plan_seconds"] = time.perf_counter() - started
    if preview.plan.refused:
        raise BenchError(f"the type change was refused: {preview.plan.problems}")
    log(f"  plan (checks every value): {result['plan_seconds']:.1f} s")

    result["rss_before_mb"] = current_rss_mb()
    result["process_peak_rss_before_mb"] = max_rss_mb()
    result["rss_peak_reset"] = reset_peak_rss()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    seconds, _ = timed_apply(engine, doc, ops.ConvertColumn)
    if profiler:
        profiler.disable()
    result["peak_rss_mb"] = max_rss_mb()
    result["seconds"] = seconds
    result["rows_per_second"] = rows / seconds
    result["profiled"] = profile
    log(f"  text -> integer: {seconds:.1f} s, {rows / seconds:,.0f} rows/s")
    if profiler:
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = f"migrations-{engine.dialect.name}"
        stats.dump_stats(RESULTS / f"{name}.prof")
        (RESULTS / f"{name}-profile.txt").write_text(stream.getvalue())
        log(f"  profile: {RESULTS / f'{name}-profile.txt'}")

    counted, values, total, kind = column_facts(engine, "code_text")
    expected = expected_sum(rows)
    if counted != rows or values != rows or total != expected or "INT" not in kind.upper():
        raise BenchError(
            f"after the type change: {counted} rows, {values} values, sum {total} "
            f"(expected {expected}), type {kind}"
        )

    result["tracemalloc_peak_mb"] = result["tracemalloc_seconds"] = None
    if options.skip_tracemalloc:
        return result
    # The same conversion again, on code_copy, with tracemalloc watching.
    doc = document("2.1.0", extras=repeat, integers=frozenset({"code_text", "code_copy"}))
    tracemalloc.start()
    try:
        traced_seconds, _ = timed_apply(engine, doc, ops.ConvertColumn)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result["tracemalloc_peak_mb"] = peak / 2**20
    result["tracemalloc_seconds"] = traced_seconds
    log(f"  tracemalloc pass: {traced_seconds:.1f} s, Python peak {peak / 2**20:.1f} MiB")
    counted, values, total, _ = column_facts(engine, "code_copy")
    if values != rows or total != expected:
        raise BenchError(f"after converting code_copy: {values} values, sum {total}")
    return result


def run(db: str, options: argparse.Namespace, log) -> dict[str, Any]:
    rows, repeat = options.rows, options.repeat
    load_before = os.getloadavg()
    log(f"{db}: add a field to {SMALL:,} rows")
    small = add_field_run(db, SMALL, options, False, log)
    log(f"{db}: add a field to {rows:,} rows, then change a type")
    large = add_field_run(db, rows, options, True, log)
    ratio = large["add_field_median"] / small["add_field_median"]
    return {
        "benchmark": "migrations",
        "database": db,
        "rows": rows,
        "repeat": repeat,
        "add_field": {
            "small": small,
            "large": {k: v for k, v in large.items() if k != "type_change"},
            "ratio": ratio,
            "target_ratio": TARGET_RATIO,
            "passed": ratio < TARGET_RATIO,
        },
        "type_change": large["type_change"],
        "environment": {
            "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__,
            "platform": platform.platform(),
            "server": server_version(db),
            "cpus": os.cpu_count(),
            # Other work on the machine makes timings noisy; this says how busy it was.
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
    }


def server_version(db: str) -> str:
    if db == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    engine = make_engine(POSTGRESQL_URL)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()


# --- reporting ----------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    add, change = result["add_field"], result["type_change"]
    env = result["environment"]
    small, large = add["small"], add["large"]
    verdict = "PASS" if add["passed"] else "FAIL"

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:,.1f} ms"

    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.1f} MiB"

    rows = [
        ("database", result["environment"]["server"]),
        (
            "machine load (1 min) before / after",
            f"{env['load_average_before'][0]:.2f} / {env['load_average_after'][0]:.2f}"
            f" on {env['cpus']} CPUs",
        ),
        ("fill 10,000 rows (not measured)", f"{small['fill_seconds']:.2f} s"),
        (f"fill {large['rows']:,} rows (not measured)", f"{large['fill_seconds']:.2f} s"),
        (
            f"add field, {small['rows']:,} rows (median of {result['repeat']})",
            ms(small["add_field_median"]),
        ),
        (
            f"add field, {large['rows']:,} rows (median of {result['repeat']})",
            ms(large["add_field_median"]),
        ),
        (f"ratio (target < {add['target_ratio']:g})", f"{add['ratio']:.2f}  {verdict}"),
        (
            f"text -> integer, {change['rows']:,} rows",
            f"{change['seconds']:.2f} s" + ("  (under cProfile)" if change["profiled"] else ""),
        ),
        ("  of which the plan's value check", f"~{change['plan_seconds']:.2f} s (timed alone)"),
        ("  rows/s", f"{change['rows_per_second']:,.0f}"),
        (
            "peak RSS during the type change",
            mb(change["peak_rss_mb"])
            + ("" if change["rss_peak_reset"] else "  (process lifetime)"),
        ),
        (
            "  RSS before it / process peak before it",
            f"{mb(change['rss_before_mb'])} / {mb(change['process_peak_rss_before_mb'])}",
        ),
        ("tracemalloc peak (repeat run)", mb(change["tracemalloc_peak_mb"])),
    ]
    if change["tracemalloc_seconds"] is not None:
        rows.append(
            ("  that run's time under tracemalloc", f"{change['tracemalloc_seconds']:.2f} s")
        )
    width = max(len(label) for label, _ in rows)
    title = f"Migrations on {result['database']}"
    lines = [title, "=" * len(title)]
    lines += [f"{label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.migrations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000, help="the large table's rows")
    parser.add_argument("--repeat", type=int, default=5, help="add-field samples per size")
    parser.add_argument(
        "--profile", action="store_true", help="run the timed type change under cProfile"
    )
    parser.add_argument(
        "--skip-tracemalloc",
        action="store_true",
        help="skip the second conversion run under tracemalloc (several times slower)",
    )
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    return run_databases(
        "migrations",
        args,
        run,
        lambda result: print(report(result), flush=True),
        (BenchError, CrmError),
        "FAILED",
        passed=lambda result: result["add_field"]["passed"],
        log=log,
    )


if __name__ == "__main__":
    sys.exit(main())
