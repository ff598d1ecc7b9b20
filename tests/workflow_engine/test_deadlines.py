"""Overdue steps are escalated by ``tick``, once, however often and wherever it runs."""

from __future__ import annotations

import threading

from .conftest import APP, state, waiting


def test_an_overdue_step_is_escalated_once(records, flow, people, make_deal, clock):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    clock.advance(hours=23)
    assert flow.tick() == 0
    clock.advance(hours=2)
    assert flow.tick() == 2  # boss's and wang's tasks
    assert flow.tick() == 0
    assert flow.tick(clock.advance(hours=48)) == 0
    (task,) = waiting(flow, people["admin"])
    assert flow.notifications(people["admin"])[0]["kind"] == "escalated"
    history = records.history(people["admin"], APP, "deal", deal)
    escalations = [e for e in history if e["action"] == "escalate"]
    assert len(escalations) == 1
    assert escalations[0]["actor_id"] is None
    assert escalations[0]["changes"]["details"]["to"] == ["admin"]
    view = flow.approval(people["li"], APP, "deal", deal)
    manager = view["steps"][0]["tasks"]
    assert [(t["assignee"], t["source"]) for t in manager] == [
        ("boss", "assigned"),
        ("wang", "assigned"),
        ("admin", "escalated"),
    ]
    assert all(t["escalated_at"] for t in manager[:2])
    flow.act(people["admin"], task, "approve")  # the escalation target decides the step
    assert state(records, people, deal) == "approved"


def test_ticks_running_at_once_escalate_once(records, flow, people, make_deal, clock):
    deals = [make_deal(10) for _ in range(3)]
    for deal in deals:
        flow.fire(people["li"], APP, "deal", deal, "request_discount")
    clock.advance(hours=30)
    counts: list[int] = []
    barrier = threading.Barrier(6)

    def run():
        barrier.wait()
        counts.append(flow.tick())

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 6  # two overdue tasks on each of three deals
    assert len(waiting(flow, people["admin"])) == 3
    for deal in deals:
        history = records.history(people["admin"], APP, "deal", deal)
        assert [e["action"] for e in history].count("escalate") == 1
