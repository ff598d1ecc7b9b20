"""Import benchmark: CSV rows per second with validation, and memory that stays flat.

For each database (SQLite, PostgreSQL), on the ``sales_pipeline`` app
(``presets/sales_pipeline.json``, with its index on the deals' stage and amount;
``--document`` names another):

(a) throughput: import a CSV of ``--rows`` valid deals (default 100,000) that name
    five accounts by title (one of them Chinese), through ``records.importing``:
    every cell checked by its field type, references resolved by title, the
    lookup (account tier) and the formula (weighted amount) computed per row, an
    audit entry per record (naming the file and row), the accounts' rollup (open
    pipeline) refreshed at the end. Rows per second against the target of 20,000,
    by the wall clock and by the process's CPU time (the database server's CPU is
    not in the latter).
(b) memory: the process's peak RSS (``ru_maxrss``, the kernel's high-water mark
    reset just before the import), that of the read-ahead process that reads and
    converts the file beside it (``RUSAGE_CHILDREN``: the largest child so far; its
    CPU time is reported too) and the ``tracemalloc`` peak, at ``--rows`` and
    at ``--big`` rows (default 1,000,000). Flat means the big peak stays within
    1.5x the small one. ``tracemalloc`` slows allocation-heavy code a lot, so its
    peak comes from a second import of the same file, not from the timed one.

The CSV files are generated into a temporary directory and removed afterwards.
Each import is checked: the row count, and every account's rollup against a sum
computed by SQL. Because the machine may be shared, a fixed pure-Python workload
is timed too (``calibration``) so runs on different days can be compared.

    python -m bench.records_import [--db sqlite|postgresql|both] [--rows 100000]
                                   [--big 1000000] [--skip-tracemalloc] [--profile]
                                   [--document PATH]

Prints a table and writes ``bench/results/records_import-<db>.json``; exits 1
when the throughput target or the flat-memory check is missed, 2 when an import
misbehaves.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import io
import json
import os
import platform
import pstats
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from metamodel import publish
from metamodel.db import make_engine
from metamodel.errors import CrmError
from records.actor import Actor
from records.importing import import_file
from records.service import Records

from .harness import POSTGRESQL_URL, RESULTS, run_databases

APP = "sales_pipeline"
PRESET = Path(__file__).resolve().parents[1] / "presets" / "sales_pipeline.json"
TARGET_ROWS_PER_SECOND = 20_000
FLAT_RATIO = 1.5
ACCOUNTS = ["华东精工机械有限公司", "Northwind Retail", "Contoso", "Fabrikam", "Tailspin Toys"]
STAGES = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
ADMIN = Actor(None, "bench", frozenset({"admin"}))


class BenchError(Exception):
    """An import did not do what the benchmark expects."""


# --- data -----------------------------------------------------------------------------


def write_csv(path: Path, rows: int) -> None:
    """``rows`` valid deals; dates alternate ISO and the 2026/5/1 form Excel writes."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ["Title", "Account", "Stage", "Amount", "Probability", "Expected close", "折扣"]
        )
        for i in range(rows):
            month, day = i % 12 + 1, i % 28 + 1
            close = f"2027-{month:02d}-{day:02d}" if i % 2 else f"2027/{month}/{day}"
            writer.writerow(
                [
                    f"Deal {i}",
                    ACCOUNTS[i % len(ACCOUNTS)],
                    STAGES[i % len(STAGES)],
                    f"{(i * 7919) % 1_000_000}.{i % 100:02d}",
                    i % 101,
                    close,
                    i % 30,
                ]
            )


def document(path: Path = PRESET) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.pop("sample_data", None)
    # The file heads the discount column in Chinese: a label in another language.
    for entity in doc["entities"]:
        if entity["name"] == "deal":
            for fld in entity["fields"]:
                if fld["name"] == "discount_pct":
                    fld["label"] = {"en": "Discount", "zh": "折扣"}
    return doc


@contextlib.contextmanager
def fresh_database(db: str, directory: Path) -> Iterator[Engine]:
    """An engine on an empty SQLite file or PostgreSQL schema, removed afterwards."""
    if db == "sqlite":
        path = directory / f"bench-{uuid.uuid4().hex[:8]}.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = f"bench_import_{uuid.uuid4().hex[:12]}"
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


def prepare(engine: Engine, path: Path = PRESET) -> Records:
    publish.apply_document(engine, document(path))
    records = Records(engine)
    for name in ACCOUNTS:
        records.create(ADMIN, APP, "account", {"name": name})
    settle(engine)
    return records


def settle(engine: Engine) -> None:
    """PostgreSQL: write out what earlier runs left dirty (their checkpoint would land
    inside this run's timing otherwise). Skipped without the privilege to ask."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
    except DBAPIError:
        pass


def check(records: Records, expected_rows: int) -> None:
    """Every row is there, and every account's open pipeline is the SQL sum of its deals."""
    with records.reading() as conn:
        deals = records.runtime(APP, "deal", conn).table
        accounts = records.runtime(APP, "account", conn).table
        count = conn.execute(
            select(func.count()).select_from(deals).where(deals.c.deleted_at.is_(None))
        ).scalar_one()
        if count != expected_rows:
            raise BenchError(f"{count} deals after the import; expected {expected_rows}")
        sums = dict(
            conn.execute(
                select(deals.c.account, func.sum(deals.c.amount))
                .where(deals.c.stage.not_in(["won", "lost"]), deals.c.deleted_at.is_(None))
                .group_by(deals.c.account)
            ).all()
        )
        for account_id, stored in conn.execute(select(accounts.c.id, accounts.c.open_deal_value)):
            want = sums.get(account_id) or Decimal(0)
            if stored != want:
                raise BenchError(f"account {account_id}: open pipeline {stored}, SQL says {want}")


# --- measuring --------------------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux), so ru_maxrss restarts from now."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def max_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak RSS of this process, or (RUSAGE_CHILDREN) of the largest child so far:
    the read-ahead process, whose pages are largely this process's, shared."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(who).ru_maxrss * scale / 2**20


def calibration() -> float:
    """Seconds of CPU for a fixed pure-Python workload: how fast this machine runs Python."""
    started = time.process_time()
    total = 0
    for i in range(5_000_000):
        total += i % 7
    return time.process_time() - started


def server_cpu_seconds() -> float | None:
    """CPU time so far of every PostgreSQL process on this machine (None: none to read).

    The server does the other half of a PostgreSQL import (parsing COPY, checking,
    indexing, logging); the difference across an import shows what it cost.
    Other databases' work on the same server is counted too: the bench expects a
    quiet machine anyway.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
                if not comm.read().startswith("postgres"):
                    continue
            with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime and stime, in ticks
        found = True
    return total / tick if found else None


def timed_import(
    records: Records, path: Path, profile: Path | None = None, server: bool = False
) -> dict[str, Any]:
    reset = reset_peak_rss()
    children = os.times()
    server_before = server_cpu_seconds() if server else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profiler = cProfile.Profile()
        result = profiler.runcall(import_file, records, ADMIN, APP, "deal", path)
        profiler.dump_stats(str(profile))
    else:
        result = import_file(records, ADMIN, APP, "deal", path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server_after = server_cpu_seconds() if server_before is not None else None
    after = os.times()
    child_cpu = (after.children_user - children.children_user) + (
        after.children_system - children.children_system
    )
    if result.imported != result.rows or result.error_count:
        raise BenchError(f"imported {result.imported} of {result.rows}: {result.errors[:3]}")
    return {
        "rows": result.imported,
        "seconds": wall,
        "cpu_seconds": cpu,
        "rows_per_second": result.imported / wall,
        "rows_per_cpu_second": result.imported / cpu,
        "read_ahead_cpu_seconds": child_cpu,
        "server_cpu_seconds": None if server_after is None else server_after - server_before,
        "rows_per_cpu_second_with_read_ahead": result.imported / (cpu + child_cpu),
        "peak_rss_mb": max_rss_mb(),
        "read_ahead_peak_rss_mb": max_rss_mb(resource.RUSAGE_CHILDREN),
        "rss_peak_reset": reset,
        "profiled": profile is not None,
    }


def traced_import(records: Records, path: Path) -> dict[str, Any]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = import_file(records, ADMIN, APP, "deal", path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if result.error_count:
        raise BenchError(f"the traced import failed: {result.errors[:3]}")
    return {"tracemalloc_peak_mb": peak / 2**20, "seconds": time.perf_counter() - started}


def one_size(db: str, rows: int, directory: Path, options, log) -> dict[str, Any]:
    path = directory / f"deals-{rows}.csv"
    started = time.perf_counter()
    write_csv(path, rows)
    log(
        f"  {db}: wrote {rows:,} rows ({path.stat().st_size / 2**20:.1f} MiB) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    try:
        with fresh_database(db, directory) as engine:
            records = prepare(engine, options.document)
            profile = RESULTS / f"records_import-{db}-{rows}.prof" if options.profile else None
            measured = timed_import(records, path, profile, server=db == "postgresql")
            check(records, rows)
            log(
                f"  {db}: {rows:,} rows in {measured['seconds']:.1f} s "
                f"({measured['rows_per_second']:,.0f} rows/s; "
                f"{measured['rows_per_cpu_second_with_read_ahead']:,.0f} per CPU second of "
                f"both processes), peak RSS {measured['peak_rss_mb']:.0f} MiB and "
                f"{measured['read_ahead_peak_rss_mb']:.0f} MiB (read-ahead)"
            )
            if not options.skip_tracemalloc:
                traced = traced_import(records, path)
                check(records, 2 * rows)
                measured.update(
                    tracemalloc_peak_mb=traced["tracemalloc_peak_mb"],
                    tracemalloc_seconds=traced["seconds"],
                )
                log(f"  {db}: tracemalloc peak {traced['tracemalloc_peak_mb']:.1f} MiB")
    finally:
        path.unlink(missing_ok=True)
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(str(profile), stream=out).sort_stats("cumulative").print_stats(40)
        profile.with_suffix(".txt").write_text(out.getvalue())
    return measured


def run(db: str, options, log) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        load_before = os.getloadavg()
        calibrated = calibration()
        small = one_size(db, options.rows, directory, options, log)
        big = one_size(db, options.big, directory, options, log) if options.big else None
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    flat = None
    if big is not None:
        ratios = {"rss": big["peak_rss_mb"] / small["peak_rss_mb"]}
        if small["read_ahead_peak_rss_mb"]:
            ratios["read-ahead rss"] = (
                big["read_ahead_peak_rss_mb"] / small["read_ahead_peak_rss_mb"]
            )
        if "tracemalloc_peak_mb" in big:
            ratios["tracemalloc"] = big["tracemalloc_peak_mb"] / small["tracemalloc_peak_mb"]
        flat = {"ratios": ratios, "passed": all(r <= FLAT_RATIO for r in ratios.values())}
    return {
        "database": db,
        "small": small,
        "big": big,
        "target_rows_per_second": TARGET_ROWS_PER_SECOND,
        "passed_throughput": small["rows_per_second"] >= TARGET_ROWS_PER_SECOND,
        "flat": flat,
        "environment": {
            "server": server_version(db),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "calibration_cpu_seconds": calibrated,
        },
    }


def server_version(db: str) -> str:
    if db == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    engine = make_engine(POSTGRESQL_URL)
    try:
        with engine.connect() as conn:
            return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()


# --- reporting -------------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    small, big, env = result["small"], result["big"], result["environment"]

    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.1f} MiB"

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} s"

    verdict = "PASS" if result["passed_throughput"] else "MISS"
    rows = [
        ("database", env["server"]),
        (
            "machine load (1 min) before / after",
            f"{env['load_average_before'][0]:.2f} / {env['load_average_after'][0]:.2f}"
            f" on {env['cpus']} CPUs",
        ),
        ("calibration (CPU s of a fixed loop)", f"{env['calibration_cpu_seconds']:.2f} s"),
        (
            f"import {small['rows']:,} rows",
            f"{small['seconds']:.2f} s" + ("  (under cProfile)" if small["profiled"] else ""),
        ),
        (
            f"  rows/s (target {result['target_rows_per_second']:,})",
            f"{small['rows_per_second']:,.0f}  {verdict}",
        ),
        ("  rows per CPU second of this process", f"{small['rows_per_cpu_second']:,.0f}"),
        ("  CPU s of the read-ahead process", f"{small['read_ahead_cpu_seconds']:.2f} s"),
        ("  CPU s of the database server", seconds(small.get("server_cpu_seconds"))),
        ("  peak RSS", mb(small["peak_rss_mb"])),
        ("  peak RSS, read-ahead process", mb(small["read_ahead_peak_rss_mb"])),
        ("  tracemalloc peak (repeat run)", mb(small.get("tracemalloc_peak_mb"))),
    ]
    if big is not None:
        rows += [
            (f"import {big['rows']:,} rows", f"{big['seconds']:.2f} s"),
            ("  rows/s", f"{big['rows_per_second']:,.0f}"),
            ("  peak RSS", mb(big["peak_rss_mb"])),
            ("  peak RSS, read-ahead process (largest so far)", mb(big["read_ahead_peak_rss_mb"])),
            ("  tracemalloc peak (repeat run)", mb(big.get("tracemalloc_peak_mb"))),
        ]
        flat = result["flat"]
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in flat["ratios"].items())
        rows.append(
            (
                f"memory big / small (flat: <= {FLAT_RATIO}x)",
                ratios + ("  PASS" if flat["passed"] else "  FAIL"),
            )
        )
    width = max(len(label) for label, _ in rows)
    title = f"CSV import on {result['database']}"
    lines = [title, "=" * len(title)]
    lines += [f"{label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.records_import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the timed import")
    parser.add_argument(
        "--big", type=int, default=1_000_000, help="rows of the memory check (0: skip it)"
    )
    parser.add_argument(
        "--skip-tracemalloc",
        action="store_true",
        help="skip the repeat imports under tracemalloc (several times slower)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run the timed imports under cProfile"
    )
    parser.add_argument(
        "--document",
        type=Path,
        default=PRESET,
        help="the app document (default: the sales_pipeline preset, as bench.records_crud)",
    )
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    return run_databases(
        "records_import",
        args,
        run,
        lambda result: print(report(result), flush=True),
        (BenchError, CrmError),
        "FAILED",
        passed=lambda result: (
            result["passed_throughput"] and not (result["flat"] and not result["flat"]["passed"])
        ),
        log=log,
    )


if __name__ == "__main__":
    sys.exit(main())
