"""Workflow benchmark: firing a transition and deciding an approval, beside a plain update.

On the ``sales_pipeline`` example with N deals (default 2,000) of 10% discount,
for each database, one round per deal, the four operations interleaved (their
order rotating from round to round) so all see the same machine load:

* ``update``: a plain record update of another deal (``Records.update``), the yardstick;
* ``fire``: li fires ``request_discount`` (opens the approval: the approval row, a
  task for each of the two sales managers, their notifications, the history
  event, the record moved to ``pending``);
* ``approve``: wang approves his task (the step and the approval close, the deal
  moves to ``approved``, li is told);
* ``reopen``: wang fires ``reopen`` (a plain transition, no approval) — back to draft.

Target: p50 of ``fire`` and of ``approve`` < 15 ms (wall-clock). The table also
shows this process's CPU time per call (``cpu p50``; PostgreSQL's own work is not
in it): on a busy machine the wall-clock times grow, the CPU times much less; and
the SQL statements each call sends (``stmts``, the most any call sent; on SQLite
this counts the ``BEGIN IMMEDIATE`` of a write transaction).

    python -m bench.workflows [--db sqlite|postgresql|both] [--deals 2000] [--rounds 300]
                              [--profile N]

``--profile N`` then runs N more rounds with each operation under cProfile and
writes ``bench/results/workflows-<db>-<operation>-profile.txt``.

Prints a table and writes ``bench/results/workflows-<db>.json``; exits 1 when a
target is missed, 2 when the engine does not do what the benchmark expects.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
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

from sqlalchemy import Engine, event, select

from app.accounts import create_user
from metamodel.db import make_engine
from metamodel.publish import apply_document
from metamodel.store import ensure_system_tables
from metamodel.system_tables import users
from records.actor import Actor
from records.service import Records
from workflow_engine import Workflows

from .harness import RESULTS, fresh_database, percentile, run_databases

APP = "sales_pipeline"
EXAMPLE = Path("/work/shared/examples/sales_pipeline.json")
TARGET_P50_MS = 15.0
TARGETS = ("fire", "approve")
OPERATIONS = ("update", "fire", "approve", "reopen")
# (username, roles, manager)
PEOPLE = [
    ("admin", ["admin"], None),
    ("boss", ["sales_manager"], None),
    ("wang", ["sales_manager"], "boss"),
    ("li", ["sales"], "wang"),
    ("chen", ["finance"], None),
]
BATCH = 500


class Unexpected(Exception):
    """The engine answered other than the benchmark expects."""


# --- databases ------------------------------------------------------------------


def setup(engine: Engine, deals: int) -> tuple[dict[str, Actor], list[int], float]:
    """Publish the example, create the people and ``deals`` draft deals of li's."""
    started = time.perf_counter()
    ensure_system_tables(engine)
    doc = json.loads(EXAMPLE.read_text())
    doc.pop("sample_data", None)
    apply_document(engine, doc, author="bench")
    with engine.begin() as conn:
        for name, roles, manager in PEOPLE:
            create_user(conn, name, roles, password="x", manager=manager, method="pbkdf2:sha256:1")
    with engine.connect() as conn:
        rows = conn.execute(select(users.c.id, users.c.username, users.c.roles))
        people = {r.username: Actor(r.id, r.username, frozenset(r.roles)) for r in rows}
    records = Records(engine)
    account = records.create(people["admin"], APP, "account", {"name": "Acme"})
    ids: list[int] = []
    for start in range(0, deals, BATCH):
        items = [
            {
                "title": f"Deal {i}",
                "account": account["id"],
                "amount": f"{1000 + i}.00",
                "discount_pct": 10,
            }
            for i in range(start, min(deals, start + BATCH))
        ]
        ids += records.create_many(people["li"], APP, "deal", items)
    return people, ids, time.perf_counter() - started


# --- one round ----------------------------------------------------------------------


def round_calls(
    records: Records,
    flow: Workflows,
    people: dict[str, Actor],
    deal: int,
    other: int,
    amount: str,
) -> dict[str, Callable[[], None]]:
    """The round's operations: the workflow ones on ``deal``, the update on ``other``.

    The update goes to another deal, which is a draft whatever the order: a pending
    or approved deal is locked against edits. ``approve`` needs the task ``fire`` opened.
    """
    li, wang = people["li"], people["wang"]
    opened: dict[str, int] = {}

    def update():
        records.update(li, APP, "deal", other, {"amount": amount})

    def fire():
        outcome = flow.fire(li, APP, "deal", deal, "request_discount")
        if outcome["state"] != "pending":
            raise Unexpected(f"request_discount left deal {deal} {outcome['state']}")
        tasks = outcome["approval"]["steps"][0]["tasks"]
        opened["task"] = next(t["id"] for t in tasks if t["assignee"] == "wang")

    def approve():
        outcome = flow.act(wang, opened["task"], "approve")
        if outcome["state"] != "approved":
            raise Unexpected(f"wang's approval left deal {deal} {outcome['state']}")

    def reopen():
        if flow.fire(wang, APP, "deal", deal, "reopen")["state"] != "draft":
            raise Unexpected(f"reopen did not return deal {deal} to draft")

    return {"update": update, "fire": fire, "approve": approve, "reopen": reopen}


def orders() -> list[list[str]]:
    """Rotations of the round that keep fire before approve before reopen."""
    return [
        ["update", "fire", "approve", "reopen"],
        ["fire", "update", "approve", "reopen"],
        ["fire", "approve", "update", "reopen"],
        ["fire", "approve", "reopen", "update"],
    ]


def summary(samples: list[float], cpu: list[float], statements: list[int]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 0.95),
        "mean_ms": statistics.fmean(ms),
        "cpu_p50_ms": statistics.median(c * 1000 for c in cpu),
        "statements": max(statements),
        "statements_min": min(statements),
    }


@contextlib.contextmanager
def counting(engine: Engine) -> Iterator[list[int]]:
    """A one-item list counting the statements ``engine`` sends while the block runs."""
    sent = [0]

    def count(*_):
        sent[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def rounds_of(
    ids: list[int], first: int, count: int, seed: int
) -> Iterator[tuple[int, int, int, str]]:
    """Round ``index``'s deal, the other deal it updates and the new amount."""
    rng = random.Random(seed)
    for index in range(first, first + count):
        deal = ids[index % len(ids)]
        other = ids[(index + len(ids) // 2) % len(ids)]
        yield index, deal, other, f"{rng.randint(1000, 99999)}.00"


def measure(
    engine, records, flow, people, ids: list[int], rounds: int, warmup: int, seed: int
) -> dict:
    timings: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    cpu: dict[str, list[float]] = {name: [] for name in OPERATIONS}
    statements: dict[str, list[int]] = {name: [] for name in OPERATIONS}
    sequence = orders()
    with counting(engine) as sent:
        for index, deal, other, amount in rounds_of(ids, 0, warmup + rounds, seed):
            calls = round_calls(records, flow, people, deal, other, amount)
            for name in sequence[index % len(sequence)]:
                sent[0] = 0
                started, cpu_started = time.perf_counter(), time.process_time()
                calls[name]()
                if index >= warmup:
                    timings[name].append(time.perf_counter() - started)
                    cpu[name].append(time.process_time() - cpu_started)
                    statements[name].append(sent[0])
    return {name: summary(timings[name], cpu[name], statements[name]) for name in OPERATIONS}


def profile(records, flow, people, ids: list[int], first: int, count: int, stem: str) -> None:
    """cProfile each operation over ``count`` more rounds; one text file per operation."""
    profilers = {name: cProfile.Profile() for name in OPERATIONS}
    for _index, deal, other, amount in rounds_of(ids, first, count, seed=7):
        calls = round_calls(records, flow, people, deal, other, amount)
        for name in OPERATIONS:
            profilers[name].enable()
            calls[name]()
            profilers[name].disable()
    for name, profiler in profilers.items():
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(50)
        stats.sort_stats("tottime").print_stats(30)
        (RESULTS / f"{stem}-{name}-profile.txt").write_text(out.getvalue())


# --- running ----------------------------------------------------------------------


def run(db: str, options: argparse.Namespace, log) -> dict[str, Any]:
    result: dict[str, Any] = {
        "db": db,
        "deals": options.deals,
        "rounds": options.rounds,
        "load_before": os.getloadavg(),
    }
    with fresh_database(db, "wf") as url:
        engine = make_engine(url)
        try:
            people, ids, seconds = setup(engine, options.deals)
            result["setup_seconds"] = seconds
            log(f"  {options.deals:,} deals ready in {seconds:.1f} s")
            records = Records(engine)
            flow = Workflows(records)
            result["operations"] = measure(
                engine, records, flow, people, ids, options.rounds, options.warmup, options.seed
            )
            if options.profile:
                log(f"  profiling {options.profile} more rounds…")
                first = options.warmup + options.rounds
                profile(records, flow, people, ids, first, options.profile, f"workflows-{db}")
                result["profile_files"] = f"bench/results/workflows-{db}-*-profile.txt"
        finally:
            engine.dispose()
    result["load_after"] = os.getloadavg()
    operations = result["operations"]
    baseline = operations["update"]["p50_ms"]
    for op in operations.values():
        op["vs_update_p50"] = op["p50_ms"] / baseline
    result["verdicts"] = {
        f"{name}_p50": operations[name]["p50_ms"] < TARGET_P50_MS for name in TARGETS
    }
    result["passed"] = all(result["verdicts"].values())
    return result


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\n{result['db']}: {result['deals']:,} deals, {result['rounds']} rounds; load average "
        f"{result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after"
    )
    header = (
        f"{'operation':<9} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'cpu p50':>8} "
        f"{'stmts':>6} {'× update':>9}  verdict"
    )
    print(header)
    print("-" * len(header))
    for name, op in result["operations"].items():
        verdict = ""
        if name in TARGETS:
            verdict = (
                f"p50<{TARGET_P50_MS:.0f}ms {'PASS' if op['p50_ms'] < TARGET_P50_MS else 'FAIL'}"
            )
        elif name == "update":
            verdict = "(yardstick)"
        print(
            f"{name:<9} {op['p50_ms']:8.2f} {op['p95_ms']:8.2f} {op['mean_ms']:8.2f} "
            f"{op['cpu_p50_ms']:8.2f} {op['statements']:6d} {op['vs_update_p50']:9.2f}  {verdict}"
        )
    print(f"overall: {'PASS' if result['passed'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workflows", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--deals", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=300, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured rounds first")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile N more rounds per operation"
    )
    options = parser.parse_args(argv)
    if options.deals < 2 or options.rounds < 1:
        parser.error("--deals must be at least 2 and --rounds at least 1")
    return run_databases("workflows", options, run, print_table, Unexpected, "unexpected")


if __name__ == "__main__":
    sys.exit(main())
