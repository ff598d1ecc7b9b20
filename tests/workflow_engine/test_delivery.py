"""Notifications reach a delivery channel only once their transaction has committed."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from metamodel.system_tables import notifications
from records.errors import RecordConflict
from workflow_engine import Workflows

from .conftest import APP, waiting


@pytest.fixture
def delivered(records, engine):
    """``(flow, batches)``: each batch the channel got, with the notifications then committed."""
    batches: list[tuple[list, int]] = []

    def deliver(notices):
        with engine.connect() as conn:  # another connection sees only what is committed
            saved = conn.execute(select(func.count()).select_from(notifications)).scalar_one()
        batches.append((notices, saved))

    return Workflows(records, deliver=deliver), batches


def test_the_channel_gets_the_committed_notices_of_each_action(delivered, people, make_deal):
    flow, batches = delivered
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    ((notices, saved),) = batches
    assert saved == 3  # boss and wang assigned, zhao copied: all committed already
    assert sorted((n.kind, n.user_id) for n in notices) == sorted(
        [
            ("assigned", people["boss"].id),
            ("assigned", people["wang"].id),
            ("cc", people["zhao"].id),
        ]
    )
    assert {(n.app, n.entity, n.record_id) for n in notices} == {(APP, "deal", deal)}
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve")
    kinds = sorted(n.kind for n in batches[-1][0])
    assert kinds == ["approved", "approved"]  # li (submitter and owner, told once) and zhao


def test_a_refused_action_delivers_nothing(delivered, people, make_deal):
    flow, batches = delivered
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    batches.clear()
    with pytest.raises(RecordConflict, match="is pending"):
        flow.fire(people["li"], APP, "deal", deal, "request_discount")
    with pytest.raises(RecordConflict, match="no open approval to withdraw"):
        flow.withdraw(people["li"], APP, "deal", make_deal(10))
    assert batches == []


def test_tick_delivers_each_escalation(delivered, people, make_deal, clock):
    flow, batches = delivered
    flow.fire(people["li"], APP, "deal", make_deal(10), "request_discount")
    batches.clear()
    assert flow.tick(clock.advance(hours=25)) == 2
    ((notices, _),) = batches
    assert [(n.kind, n.user_id) for n in notices] == [("escalated", people["admin"].id)]


def test_a_failing_channel_is_logged_and_the_action_stands(records, people, make_deal, caplog):
    def broken(notices):
        raise OSError("no route to the mail server")

    flow = Workflows(records, deliver=broken)
    deal = make_deal(10)
    with caplog.at_level(logging.ERROR, logger="workflow_engine.engine"):
        fired = flow.fire(people["li"], APP, "deal", deal, "request_discount")
    assert fired["state"] == "pending"
    assert "3 notifications were saved but not delivered" in caplog.text
    assert len(waiting(flow, people["wang"])) == 1
