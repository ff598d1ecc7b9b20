"""Record CRUD benchmark: the metadata-driven record service against a hand-written model.

On N deals of the ``sales_pipeline`` example (default 1,000,000, plus a few
hundred accounts and a line for every other deal), for each database:

* list: ``stage == 'won'`` sorted by ``-amount``, 50 per page, page 1 and page 200;
* get: a deal by id (random ids);
* create: a deal with two lines (an open deal, so the account's rollup changes).

Each operation runs through ``records.service.Records`` (the metadata path) and
through ``bench.static_model.StaticDeals`` (hand-written SQLAlchemy Core on the
same tables), interleaved call by call so both see the same machine load.
Targets: metadata p50 / static p50 <= 1.3 for list, get and create, and list
p95 < 50 ms (metadata path).

    python -m bench.records_crud [--db sqlite|postgresql|both] [--rows 1000000]
                                 [--keep] [--profile 200]

The app is ``presets/sales_pipeline.json``, whose deal entity declares the index a
user listing deals by stage and amount would declare: ``(stage, amount)``.
Filling a million deals takes minutes: ``--keep`` keeps the filled database
(a SQLite file under ``bench/results/data/``, a PostgreSQL schema
``bench_crud_keep_…``) and the next ``--keep`` run with the same document and
sizes reuses it (its deals from earlier runs' creates included).

Prints a table and writes ``bench/results/records_crud-<db>.json``; exits 1 when
a target is missed, 2 when the two paths disagree on a result.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import hashlib
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import Engine, text

from app.accounts import create_user
from metamodel.db import make_engine
from metamodel.publish import apply_document
from metamodel.store import ensure_system_tables
from records.actor import Actor
from records.query import ListQuery
from records.service import Records

from .harness import POSTGRESQL_URL, RESULTS, fresh_database, percentile, run_databases
from .static_model import StaticDeals

APP = "sales_pipeline"
PRESET = Path(__file__).resolve().parents[1] / "presets" / "sales_pipeline.json"
TARGET_RATIO = 1.3
LIST_P95_MS = 50.0
PER_PAGE = 50
WON = {"==": [{"var": "stage"}, "won"]}
ACTOR = Actor(1, "admin", frozenset({"admin"}))


class Mismatch(Exception):
    """The two paths returned different results."""


# --- databases ------------------------------------------------------------------


@contextlib.contextmanager
def database(db: str, keep: str | None, rows: int, accounts: int) -> Iterator[tuple[str, bool]]:
    """(URL, already filled): a fresh database (``fresh_database``), or one kept between runs.

    A kept database that does not hold a finished fill is emptied and filled again.
    """
    if keep is None:
        with fresh_database(db, "crud") as url:
            yield url, False
        return
    if db == "sqlite":
        path = RESULTS / "data" / f"records_crud-{keep}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
        if not filled(url, rows, accounts):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            yield url, False
        else:
            yield url, True
        return
    schema = f"bench_crud_keep_{keep}"
    url = f"{POSTGRESQL_URL}?options=-csearch_path%3D{schema}"
    ready = filled(url, rows, accounts)
    if not ready:
        admin = make_engine(POSTGRESQL_URL)
        try:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            admin.dispose()
    yield url, ready


def filled(url: str, rows: int, accounts: int) -> bool:
    """Does a kept database hold the data of a finished fill?"""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            deals = conn.execute(text("SELECT max(id) FROM sales_pipeline__deal")).scalar()
            found = conn.execute(text("SELECT count(*) FROM sales_pipeline__account")).scalar()
    except sqlalchemy.exc.DBAPIError:
        return False
    finally:
        engine.dispose()
    return (deals or 0) >= rows and found == accounts


def app_document(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.pop("sample_data", None)
    return doc


def setup(engine: Engine, doc: dict) -> None:
    ensure_system_tables(engine)
    with engine.begin() as conn:
        create_user(conn, "admin", ["admin"], password="x", method="pbkdf2:sha256:1000")
    apply_document(engine, doc, author="bench")


# Generated data, row g (1-based): account 1 + g % A; stage cycles through the six
# options (1/6 won); amount (g * 7919 mod 10^9) cents; probability (g % 11) * 10;
# a line on even deals. Both databases get the same values.
PG_FILL = [
    """
    INSERT INTO sales_pipeline__account
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         code, name, industry, tier)
    SELECT g, now(), now(), 1, 1, 1, 1, 'ACC-2025-' || lpad(g::text, 5, '0'),
           'Account ' || g, (ARRAY['manufacturing', 'retail', 'finance', 'other'])[1 + g % 4],
           (ARRAY['A', 'B', 'C'])[1 + g % 3]
    FROM generate_series(1, :accounts) AS g
    """,
    """
    INSERT INTO sales_pipeline__deal
        (id, created_at, updated_at, created_by, updated_by, owner, version, title, account,
         account_tier, stage, amount, probability, weighted_amount, expected_close,
         discount_pct, approval_state)
    SELECT g, now(), now(), 1, 1, 1, 1, 'Deal ' || g, 1 + g % :accounts,
           (ARRAY['A', 'B', 'C'])[1 + (1 + g % :accounts) % 3],
           (ARRAY['lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost'])[1 + g % 6],
           ((g * 7919) % 1000000000) / 100.0, (g % 11) * 10,
           round(((g * 7919) % 1000000000) * ((g % 11) * 10) / 10000.0, 2),
           date '2025-01-01' + (g % 365)::int, 0, 'draft'
    FROM generate_series(1::bigint, :rows) AS g
    """,
    """
    INSERT INTO sales_pipeline__deal_line
        (created_at, updated_at, created_by, updated_by, owner, version, parent_id, row_order,
         product, quantity, unit_price, line_total)
    SELECT now(), now(), 1, 1, 1, 1, g, 0, 'SKU-' || (g % 100), 1 + g % 5,
           (g % 1000) * 10.00, (1 + g % 5) * (g % 1000) * 10.00
    FROM generate_series(2::bigint, :rows, 2) AS g
    """,
]
for _table in ("account", "deal"):
    PG_FILL.append(
        f"SELECT setval(pg_get_serial_sequence('sales_pipeline__{_table}', 'id'), "
        f"(SELECT max(id) FROM sales_pipeline__{_table}))"
    )

SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE_FILL = [
    f"""
    WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < :accounts)
    INSERT INTO sales_pipeline__account
        (id, created_at, updated_at, created_by, updated_by, owner, version,
         code, name, industry, tier)
    SELECT g, {SQLITE_NOW}, {SQLITE_NOW}, 1, 1, 1, 1, 'ACC-2025-' || printf('%05d', g),
           'Account ' || g,
           CASE g % 4 WHEN 0 THEN 'manufacturing' WHEN 1 THEN 'retail' WHEN 2 THEN 'finance'
                      ELSE 'other' END,
           CASE g % 3 WHEN 0 THEN 'A' WHEN 1 THEN 'B' ELSE 'C' END
    FROM seq
    """,
    # ExactDecimal columns hold integers scaled by 100 on SQLite.
    f"""
    WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < :rows)
    INSERT INTO sales_pipeline__deal
        (id, created_at, updated_at, created_by, updated_by, owner, version, title, account,
         account_tier, stage, amount, probability, weighted_amount, expected_close,
         discount_pct, approval_state)
    SELECT g, {SQLITE_NOW}, {SQLITE_NOW}, 1, 1, 1, 1, 'Deal ' || g, 1 + g % :accounts,
           CASE (1 + g % :accounts) % 3 WHEN 0 THEN 'A' WHEN 1 THEN 'B' ELSE 'C' END,
           CASE g % 6 WHEN 0 THEN 'lead' WHEN 1 THEN 'qualified' WHEN 2 THEN 'proposal'
                      WHEN 3 THEN 'negotiation' WHEN 4 THEN 'won' ELSE 'lost' END,
           (g * 7919) % 1000000000, (g % 11) * 1000,
           (((g * 7919) % 1000000000) * ((g % 11) * 10) + 50) / 100,
           date('2025-01-01', '+' || (g % 365) || ' days'), 0, 'draft'
    FROM seq
    """,
    f"""
    WITH RECURSIVE seq(g) AS (SELECT 2 UNION ALL SELECT g + 2 FROM seq WHERE g + 2 <= :rows)
    INSERT INTO sales_pipeline__deal_line
        (created_at, updated_at, created_by, updated_by, owner, version, parent_id, row_order,
         product, quantity, unit_price, line_total)
    SELECT {SQLITE_NOW}, {SQLITE_NOW}, 1, 1, 1, 1, g, 0, 'SKU-' || (g % 100), 1 + g % 5,
           (g % 1000) * 1000, (1 + g % 5) * (g % 1000) * 1000
    FROM seq
    """,
]


def fill(engine: Engine, rows: int, accounts: int) -> float:
    started = time.perf_counter()
    statements = PG_FILL if engine.dialect.name == "postgresql" else SQLITE_FILL
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"rows": rows, "accounts": accounts})
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    else:
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("ANALYZE")
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    return time.perf_counter() - started


# --- operations -------------------------------------------------------------------


def new_deal(rng: random.Random, accounts: int, i: int) -> dict:
    return {
        "title": f"Bench deal {i}",
        "account": rng.randint(1, accounts),
        "stage": "qualified",
        "amount": f"{rng.randint(1000, 10_000_000)}.{rng.randint(0, 99):02d}",
        "probability": rng.choice([10, 25, 50, 75]),
        "expected_close": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
        "lines": [
            {"product": "CNC-500", "quantity": 2, "unit_price": "440000.50"},
            {"product": "Service", "quantity": 1, "unit_price": "1200"},
        ],
    }


def operations(records: Records, static: StaticDeals) -> dict[str, tuple[Callable, Callable]]:
    """Per operation: (metadata call, static call), each taking an argument."""

    def meta_list(page):
        return records.list(
            ACTOR, APP, "deal", ListQuery(filter=WON, sort="-amount", page=page, per_page=PER_PAGE)
        )

    return {
        "list_p1": (lambda _: meta_list(1), lambda _: static.list_deals(ACTOR, "won", 1, PER_PAGE)),
        "list_p200": (
            lambda _: meta_list(200),
            lambda _: static.list_deals(ACTOR, "won", 200, PER_PAGE),
        ),
        "get": (
            lambda i: records.get(ACTOR, APP, "deal", i),
            lambda i: static.get_deal(ACTOR, i),
        ),
        "create": (
            lambda data: records.create(ACTOR, APP, "deal", data),
            lambda data: static.create_deal(ACTOR, data),
        ),
        "create_rows_rollup": (
            None,
            lambda data: static.create_deal(ACTOR, data, rollup="rows"),
        ),
    }


VOLATILE = {"id", "created_at", "updated_at"}


def _stable(record: dict) -> dict:
    out = {k: v for k, v in record.items() if k not in VOLATILE}
    out["lines"] = [{k: v for k, v in ln.items() if k != "id"} for ln in record["lines"]]
    return out


def check_agreement(records: Records, static: StaticDeals, rows: int, accounts: int) -> None:
    """Both paths must return the same thing, or the comparison means nothing."""
    for page in (1, 200):
        query = ListQuery(filter=WON, sort="-amount", page=page, per_page=PER_PAGE)
        a = records.list(ACTOR, APP, "deal", query)
        b = static.list_deals(ACTOR, "won", page, PER_PAGE)
        if a != b:
            raise Mismatch(f"list page {page} differs:\n{a['items'][:1]}\n{b['items'][:1]}")
    for deal_id in (1, 2, rows // 2, rows):
        a, b = records.get(ACTOR, APP, "deal", deal_id), static.get_deal(ACTOR, deal_id)
        if a != b:
            raise Mismatch(f"get {deal_id} differs:\n{a}\n{b}")
    data = new_deal(random.Random(1), accounts, 0)
    a, b = records.create(ACTOR, APP, "deal", data), static.create_deal(ACTOR, data)
    if _stable(a) != _stable(b):
        raise Mismatch(f"create differs:\n{a}\n{b}")


def summary(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 0.95),
        "mean_ms": statistics.fmean(ms),
    }


def measure(ops, counts: dict[str, int], rows: int, accounts: int, seed: int, log) -> dict:
    """Interleave metadata and static calls (alternating which goes first)."""
    rng = random.Random(seed)
    results = {}
    for name, (meta, static) in ops.items():
        n = counts[name.split("_p")[0] if name.startswith("list") else name.split("_")[0]]
        if name == "get":
            args = [rng.randint(1, rows) for _ in range(n)]
        elif name.startswith("create"):
            args = [new_deal(rng, accounts, i) for i in range(n)]
        else:
            args = [None] * n
        timings: dict[str, list[float]] = {"metadata": [], "static": []}
        paths = [("metadata", meta), ("static", static)]
        for i, arg in enumerate(args):
            for label, call in paths if i % 2 == 0 else paths[::-1]:
                if call is None:
                    continue
                started = time.perf_counter()
                call(arg)
                timings[label].append(time.perf_counter() - started)
        results[name] = {label: summary(t) for label, t in timings.items() if t}
        m, s = results[name].get("metadata"), results[name]["static"]
        if m:
            results[name]["ratio_p50"] = m["p50_ms"] / s["p50_ms"]
        log(
            f"  {name:<19} "
            + (f"metadata p50 {m['p50_ms']:7.2f} ms  " if m else " " * 27)
            + f"static p50 {s['p50_ms']:7.2f} ms"
        )
    return results


def profile(ops, rows: int, accounts: int, calls: int, stem: str) -> dict[str, str]:
    """cProfile of the metadata path, ``calls`` calls per operation."""
    rng = random.Random(7)
    texts = {}
    for name in ("list_p1", "list_p200", "get", "create"):
        meta = ops[name][0]
        if name == "get":
            args = [rng.randint(1, rows) for _ in range(calls)]
        elif name == "create":
            args = [new_deal(rng, accounts, i) for i in range(calls)]
        else:
            args = [None] * calls
        profiler = cProfile.Profile()
        profiler.enable()
        for arg in args:
            meta(arg)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.dump_stats(RESULTS / f"{stem}-{name}.prof")
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        texts[name] = out.getvalue()
        (RESULTS / f"{stem}-{name}-profile.txt").write_text(out.getvalue())
    return texts


# --- running ----------------------------------------------------------------------


def run(db: str, options: argparse.Namespace, log) -> dict[str, Any]:
    result: dict[str, Any] = {
        "db": db,
        "rows": options.rows,
        "accounts": options.accounts,
        "load_before": os.getloadavg(),
    }
    doc = app_document(options.document)
    keep = None
    if options.keep:
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]
        keep = f"{options.rows}_{options.accounts}_{digest}"
    with database(db, keep, options.rows, options.accounts) as (url, reused):
        engine = make_engine(url)
        static_engine = make_engine(url)
        try:
            if reused:
                log(f"  reusing the kept database ({keep})")
            else:
                setup(engine, doc)
                result["fill_seconds"] = fill(engine, options.rows, options.accounts)
                log(f"  {options.rows:,} deals filled in {result['fill_seconds']:.1f} s")
            records, static = Records(engine), StaticDeals(static_engine)
            check_agreement(records, static, options.rows, options.accounts)
            ops = operations(records, static)
            for name in ops:  # warm caches (runtime, compiled statements, pool)
                for label in (0, 1):
                    if ops[name][label] is None:
                        continue
                    for _ in range(3):
                        arg = (
                            1
                            if name == "get"
                            else new_deal(random.Random(2), options.accounts, 0)
                            if name.startswith("create")
                            else None
                        )
                        ops[name][label](arg)
            counts = {"list": options.lists, "get": options.gets, "create": options.creates}
            result["operations"] = measure(
                ops, counts, options.rows, options.accounts, options.seed, log
            )
            if options.profile:
                log(f"  profiling the metadata path, {options.profile} calls per operation…")
                profile(ops, options.rows, options.accounts, options.profile, f"records_crud-{db}")
                result["profile_files"] = f"bench/results/records_crud-{db}-*-profile.txt"
        finally:
            engine.dispose()
            static_engine.dispose()
    result["load_after"] = os.getloadavg()
    verdicts = {}
    for name in ("list_p1", "list_p200", "get", "create"):
        op = result["operations"][name]
        verdicts[f"{name}_ratio"] = op["ratio_p50"] <= TARGET_RATIO
        if name.startswith("list"):
            verdicts[f"{name}_p95"] = op["metadata"]["p95_ms"] < LIST_P95_MS
    result["verdicts"] = verdicts
    result["passed"] = all(verdicts.values())
    return result


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['db']}: {result['rows']:,} deals, {result['accounts']} accounts; "
        f"load average {result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after"
    )
    header = (
        f"{'operation':<19} {'meta p50':>9} {'meta p95':>9} {'static p50':>10} "
        f"{'static p95':>10} {'ratio':>6}  verdict"
    )
    print(header)
    print("-" * len(header))
    for name, op in result["operations"].items():
        m, s = op.get("metadata"), op["static"]
        verdict = ""
        if m:
            ok = op["ratio_p50"] <= TARGET_RATIO
            verdict = f"ratio {'PASS' if ok else 'FAIL'}"
            if name.startswith("list"):
                ok95 = m["p95_ms"] < LIST_P95_MS
                verdict += f", p95<{LIST_P95_MS:.0f}ms {'PASS' if ok95 else 'FAIL'}"
        else:
            verdict = "(reference: static create summing the rollup in Python)"
        print(
            f"{name:<19} "
            + (f"{m['p50_ms']:9.2f} {m['p95_ms']:9.2f} " if m else f"{'':>9} {'':>9} ")
            + f"{s['p50_ms']:10.2f} {s['p95_ms']:10.2f} "
            + (f"{op['ratio_p50']:6.2f}" if m else f"{'':>6}")
            + f"  {verdict}"
        )
    print(f"overall: {'PASS' if result['passed'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.records_crud", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--lists", type=int, default=100, help="list calls per page and path")
    parser.add_argument("--gets", type=int, default=200)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--document", type=Path, default=PRESET, help="the app document")
    parser.add_argument(
        "--keep", action="store_true", help="keep the filled database and reuse it next time"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile N metadata calls per op"
    )
    options = parser.parse_args(argv)
    return run_databases("records_crud", options, run, print_table, Mismatch, "the paths disagree")


if __name__ == "__main__":
    sys.exit(main())
