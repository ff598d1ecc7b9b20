"""Approvers acting at once, double clicks and repeated submissions never move a record twice.

The approval row is locked (``FOR UPDATE`` on PostgreSQL; SQLite's write
transaction excludes other writers), the task re-read inside the transaction,
and a partial unique index keeps one open approval per record.
"""

from __future__ import annotations

import threading
from collections import Counter

from records.errors import RecordConflict

from .conftest import APP, state, waiting


def race(jobs) -> Counter:
    """Run every job at the same moment; count outcomes by name."""
    outcomes: Counter = Counter()
    barrier = threading.Barrier(len(jobs))
    lock = threading.Lock()

    def run(job):
        barrier.wait()
        try:
            job()
            outcome = "ok"
        except RecordConflict:
            outcome = "conflict"
        except Exception as error:  # a failure the test reports by name
            outcome = type(error).__name__
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def moves_to(records, people, deal, target) -> int:
    history = records.history(people["admin"], APP, "deal", deal)
    return sum(
        1
        for e in history
        if e["action"] == "update" and e["changes"].get("approval_state", [None, None])[1] == target
    )


def approve_at_once(records, flow, people, make_deal, threads: int) -> None:
    deal = make_deal(20)
    submissions = race(
        [
            lambda: flow.fire(people["li"], APP, "deal", deal, "request_discount")
            for _ in range(threads)
        ]
    )
    assert submissions == {"ok": 1, "conflict": threads - 1}

    # 或签: both managers click approve, many times each; one decision passes the step
    boss, wang = waiting(flow, people["boss"])[0], waiting(flow, people["wang"])[0]
    managers = race(
        [
            (lambda n=n: flow.act(people["boss"], boss, "approve"))
            if n % 2
            else (lambda: flow.act(people["wang"], wang, "approve"))
            for n in range(threads)
        ]
    )
    assert managers == {"ok": 1, "conflict": threads - 1}

    # 会签: both finance users click approve, many times each; each counts once
    chen, qian = waiting(flow, people["chen"])[0], waiting(flow, people["qian"])[0]
    finance = race(
        [
            (lambda: flow.act(people["chen"], chen, "approve"))
            if n % 2
            else (lambda: flow.act(people["qian"], qian, "approve"))
            for n in range(threads)
        ]
    )
    assert finance == {"ok": 2, "conflict": threads - 2}
    assert state(records, people, deal) == "approved"
    assert moves_to(records, people, deal, "approved") == 1
    assert moves_to(records, people, deal, "pending") == 1
    history = records.history(people["admin"], APP, "deal", deal)
    assert [e["action"] for e in history].count("approve") == 3


def test_many_threads_at_once(records, flow, people, make_deal, db_kind):
    """50 threads on PostgreSQL (row locks); SQLite queues writers behind one lock, so fewer."""
    approve_at_once(records, flow, people, make_deal, threads=50 if db_kind == "postgresql" else 16)


def test_a_few_threads(records, flow, people, make_deal):
    """The same race with fewer threads: SQLite serialises writers behind one lock."""
    approve_at_once(records, flow, people, make_deal, threads=8)
