"""Delegation: tasks assigned during the period go to the delegate, on the user's behalf."""

from __future__ import annotations

import datetime as dt

import pytest

from records.errors import Forbidden, ValidationFailed

from .conftest import APP, state, waiting


def test_tasks_assigned_in_the_period_go_to_the_delegate(records, flow, people, make_deal, clock):
    flow.delegate(people["wang"], "zhao", clock.now, clock.now + dt.timedelta(days=2))
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    assert waiting(flow, people["wang"]) == []
    (item,) = flow.inbox(people["zhao"], "waiting")
    assert item["on_behalf_of"] == "wang"
    flow.act(people["zhao"], item["id"], "approve")
    assert state(records, people, deal) == "approved"
    event = records.history(people["admin"], APP, "deal", deal)[0]
    assert event["actor_id"] == people["zhao"].id
    assert event["changes"]["details"]["on_behalf_of"] == people["wang"].id

    clock.advance(days=3)
    later = make_deal(10)
    flow.fire(people["li"], APP, "deal", later, "request_discount")
    assert len(waiting(flow, people["wang"])) == 1  # the period is over


def test_a_delegation_can_be_ended(flow, people, make_deal, clock):
    made = flow.delegate(people["wang"], "zhao", clock.now, clock.now + dt.timedelta(days=5))
    with pytest.raises(Forbidden):
        flow.end_delegation(people["zhao"], made["id"])
    clock.advance(hours=1)
    flow.end_delegation(people["wang"], made["id"])
    (listed,) = flow.delegations(people["wang"])
    assert listed["delegate"] == "zhao" and listed["ends_at"] == clock.now
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    assert len(waiting(flow, people["wang"])) == 1


@pytest.mark.parametrize(
    ("to", "hours", "message"),
    [
        ("nobody", 1, "no active user 'nobody'"),
        ("wang", 1, "cannot delegate to yourself"),
        ("zhao", -1, "must end after it starts"),
    ],
)
def test_a_delegation_must_make_sense(flow, people, clock, to, hours, message):
    with pytest.raises(ValidationFailed, match=message):
        flow.delegate(people["wang"], to, clock.now, clock.now + dt.timedelta(hours=hours))
