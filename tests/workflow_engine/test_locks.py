"""Records under approval, or in a state that is not editable, refuse edits and deletes."""

from __future__ import annotations

import pytest

from records.errors import RecordConflict
from workflow_engine import Workflows
from workflow_engine.locks import guard

from .conftest import APP, waiting


def test_a_pending_record_refuses_updates_and_deletes(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    with pytest.raises(
        RecordConflict, match=r"^this deal is waiting for approval \(step manager\)"
    ):
        records.update(people["li"], APP, "deal", deal, {"discount_pct": 5})
    with pytest.raises(RecordConflict, match="can't be changed until the approval is decided"):
        records.update(people["wang"], APP, "deal", deal, {"lines": [{"product": "x"}]})
    with pytest.raises(RecordConflict, match="can't be deleted until the approval is decided"):
        records.delete(people["wang"], APP, "deal", deal)
    unchanged = records.update(people["li"], APP, "deal", deal, {"discount_pct": 10})
    assert unchanged["version"] == 2  # writing the same value changes nothing, so it passes


def test_a_state_that_is_not_editable_locks_the_record(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve")
    with pytest.raises(RecordConflict, match=r"this deal is approved, .* can't be changed"):
        records.update(people["wang"], APP, "deal", deal, {"title": "changed"})
    with pytest.raises(RecordConflict, match="can't be deleted"):
        records.delete(people["admin"], APP, "deal", deal)
    flow.fire(people["wang"], APP, "deal", deal, "reopen")
    assert records.update(people["li"], APP, "deal", deal, {"title": "changed"})["title"] == (
        "changed"
    )
    records.delete(people["admin"], APP, "deal", deal)


def test_the_guard_is_registered_once(records, flow):
    Workflows(records)
    assert records.guards.count(guard) == 1
