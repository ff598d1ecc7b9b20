"""What approvers and submitters do: every action, and every refusal with its reason."""

from __future__ import annotations

import pytest

from metamodel.errors import NotFound
from records.errors import Forbidden, RecordConflict, ValidationFailed

from .conftest import APP, state, waiting


@pytest.fixture
def at_finance(flow, people, make_deal):
    """A 20% deal whose manager step passed: chen and qian decide the finance step."""
    deal = make_deal(20)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve")
    return deal


def test_reject_goes_to_reject_to(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    outcome = flow.act(
        people["boss"], waiting(flow, people["boss"])[0], "reject", {"comment": "too much"}
    )
    assert outcome["state"] == "rejected"
    assert outcome["approval"]["status"] == "rejected"
    assert waiting(flow, people["wang"]) == []
    event = records.history(people["admin"], APP, "deal", deal)[0]
    assert (event["action"], event["comment"]) == ("reject", "too much")
    assert event["changes"]["state"] == ["pending", "rejected"]
    assert [n["kind"] for n in flow.notifications(people["li"])] == ["rejected"]
    # rejected is editable and may ask again
    records.update(people["li"], APP, "deal", deal, {"discount_pct": 8})
    again = flow.fire(people["li"], APP, "deal", deal, "request_discount")
    assert again["approval"]["from"] == "rejected"


def test_one_rejection_in_a_countersign_step_rejects(flow, people, at_finance, records):
    flow.act(people["chen"], waiting(flow, people["chen"])[0], "approve")
    flow.act(people["qian"], waiting(flow, people["qian"])[0], "reject")
    assert state(records, people, at_finance) == "rejected"


def test_send_back_to_the_previous_step_reopens_it(flow, people, at_finance, records):
    outcome = flow.act(
        people["chen"], waiting(flow, people["chen"])[0], "send_back", {"to": "previous"}
    )
    assert outcome["state"] == "pending"
    assert outcome["approval"]["step"] == "manager"
    assert waiting(flow, people["qian"]) == []
    assert len(waiting(flow, people["wang"])) == 1 and len(waiting(flow, people["boss"])) == 1
    flow.act(people["boss"], waiting(flow, people["boss"])[0], "approve")
    assert len(waiting(flow, people["chen"])) == 1 and len(waiting(flow, people["qian"])) == 1
    event = records.history(people["admin"], APP, "deal", at_finance)[1]
    assert event["action"] == "send_back"
    assert event["changes"]["details"]["to_step"] == "manager"


def test_send_back_to_the_start_returns_the_record(flow, people, at_finance, records):
    outcome = flow.act(
        people["qian"], waiting(flow, people["qian"])[0], "send_back", {"to": "start"}
    )
    assert outcome["state"] == "draft"
    assert outcome["approval"]["status"] == "sent_back"
    assert waiting(flow, people["chen"]) == []
    assert [n["kind"] for n in flow.notifications(people["li"])] == ["sent_back"]
    records.update(people["li"], APP, "deal", at_finance, {"discount_pct": 12})


def test_send_back_from_the_first_step_returns_to_the_start(flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    outcome = flow.act(people["wang"], waiting(flow, people["wang"])[0], "send_back")
    assert (outcome["state"], outcome["approval"]["status"]) == ("draft", "sent_back")


def test_transfer_hands_the_seat_over(flow, people, at_finance, records):
    task = waiting(flow, people["chen"])[0]
    with pytest.raises(ValidationFailed, match="no active user 'nobody'"):
        flow.act(people["chen"], task, "transfer", {"to": "nobody"})
    with pytest.raises(RecordConflict, match="qian already decides this step"):
        flow.act(people["chen"], task, "transfer", {"to": "qian"})
    flow.act(people["chen"], task, "transfer", {"to": "admin", "comment": "on leave"})
    assert waiting(flow, people["chen"]) == []
    flow.act(people["qian"], waiting(flow, people["qian"])[0], "approve")
    assert state(records, people, at_finance) == "pending"  # the transferred seat still counts
    outcome = flow.act(people["admin"], waiting(flow, people["admin"])[0], "approve")
    assert outcome["state"] == "approved"
    finance = outcome["approval"]["steps"][1]["tasks"]
    assert [(t["assignee"], t["status"], t["source"]) for t in finance] == [
        ("chen", "transferred", "assigned"),
        ("qian", "approved", "assigned"),
        ("admin", "approved", "transferred"),
    ]


def test_add_approver_adds_a_seat_to_the_current_step(flow, people, at_finance, records):
    flow.act(people["chen"], waiting(flow, people["chen"])[0], "add_approver", {"users": ["boss"]})
    flow.act(people["chen"], waiting(flow, people["chen"])[0], "approve")
    flow.act(people["qian"], waiting(flow, people["qian"])[0], "approve")
    assert state(records, people, at_finance) == "pending"  # 会签 now includes boss
    flow.act(people["boss"], waiting(flow, people["boss"])[0], "approve")
    assert state(records, people, at_finance) == "approved"
    actions = [e["action"] for e in records.history(people["admin"], APP, "deal", at_finance)]
    assert "add_approver" in actions


def test_comment_keeps_the_task_open(flow, people, at_finance, records):
    task = waiting(flow, people["chen"])[0]
    with pytest.raises(ValidationFailed, match="write a comment"):
        flow.act(people["chen"], task, "comment", {})
    flow.act(people["chen"], task, "comment", {"comment": "which product lines?"})
    assert waiting(flow, people["chen"]) == [task]
    event = records.history(people["admin"], APP, "deal", at_finance)[0]
    assert (event["action"], event["comment"]) == ("comment", "which product lines?")
    assert flow.notifications(people["li"])[0]["kind"] == "comment"


def test_withdraw_while_nothing_is_approved(records, flow, people, make_deal):
    deal = make_deal(20)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    with pytest.raises(Forbidden, match="only the user who asked"):
        flow.withdraw(people["zhao"], APP, "deal", deal)
    outcome = flow.withdraw(people["li"], APP, "deal", deal)
    assert (outcome["state"], outcome["approval"]["status"]) == ("draft", "withdrawn")
    assert waiting(flow, people["wang"]) == []
    assert flow.notifications(people["wang"])[0]["kind"] == "withdrawn"
    with pytest.raises(RecordConflict, match="no open approval to withdraw"):
        flow.withdraw(people["li"], APP, "deal", deal)


def test_no_withdraw_once_someone_approved(flow, people, at_finance):
    with pytest.raises(RecordConflict, match="wang already approved step manager"):
        flow.withdraw(people["li"], APP, "deal", at_finance)


def test_only_the_assignee_or_an_admin_acts(flow, people, at_finance, records):
    task = waiting(flow, people["chen"])[0]
    with pytest.raises(Forbidden, match="this task is chen's"):
        flow.act(people["qian"], task, "approve")
    with pytest.raises(Forbidden):
        flow.act(people["li"], task, "approve")
    flow.act(people["admin"], task, "approve")
    event = records.history(people["admin"], APP, "deal", at_finance)[0]
    assert event["actor_id"] == people["admin"].id
    assert event["changes"]["details"]["on_behalf_of"] == people["chen"].id


def test_a_decided_task_can_not_be_decided_again(flow, people, at_finance):
    task = waiting(flow, people["chen"])[0]
    flow.act(people["chen"], task, "approve")
    with pytest.raises(RecordConflict, match="already approved"):
        flow.act(people["chen"], task, "approve")
    with pytest.raises(RecordConflict, match="already approved"):
        flow.act(people["chen"], task, "reject")
    with pytest.raises(ValidationFailed, match="unknown action"):
        flow.act(people["qian"], waiting(flow, people["qian"])[0], "veto")
    with pytest.raises(NotFound):
        flow.act(people["qian"], 999_999, "approve")


def test_refusals_name_the_failed_check(flow, people, make_deal):
    deal = make_deal(0)
    with pytest.raises(NotFound, match="no transition 'launch'"):
        flow.fire(people["li"], APP, "deal", deal, "launch")
    with pytest.raises(RecordConflict, match="'Reopen' only applies to records that are approved"):
        flow.fire(people["wang"], APP, "deal", deal, "reopen")
    with pytest.raises(Forbidden, match="only the record's owner or role sales may"):
        flow.fire(people["chen"], APP, "deal", deal, "request_discount")
    with pytest.raises(ValidationFailed, match=r"does not hold .* reads discount_pct") as caught:
        flow.fire(people["li"], APP, "deal", deal, "request_discount")
    assert caught.value.problems[0].path == "/discount_pct"
    assert flow.available(people["li"], APP, "deal", deal) == []
    other = make_deal(10, owner="zhao")
    with pytest.raises(Forbidden, match="you may not read deal"):
        flow.fire(people["li"], APP, "deal", other, "request_discount")
    flow.fire(people["zhao"], APP, "deal", other, "request_discount")
    with pytest.raises(RecordConflict, match=r"deal \d+ is pending; .* only applies to"):
        flow.fire(people["zhao"], APP, "deal", other, "request_discount")
