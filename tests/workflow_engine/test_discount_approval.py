"""The example's discount approval from request to decision, on the database under test."""

from __future__ import annotations

import pytest

from records.errors import Forbidden, StaleVersion

from .conftest import APP, state, waiting


def actions_of(records, people, deal_id) -> list[str]:
    history = records.history(people["admin"], APP, "deal", deal_id)
    return [event["action"] for event in reversed(history) if event["action"] != "update"]


def test_ten_percent_needs_a_manager_only(records, flow, people, make_deal):
    deal = make_deal(10)
    li = people["li"]
    assert flow.available(li, APP, "deal", deal) == [
        {
            "name": "request_discount",
            "workflow": "discount_approval",
            "label": {"en": "Request discount approval", "zh": "申请折扣审批"},
            "to": "approved",
            "approval": True,
        }
    ]
    fired = flow.fire(li, APP, "deal", deal, "request_discount", comment="key account")
    assert fired["state"] == "pending" and fired["record"]["approval_state"] == "pending"
    approval = fired["approval"]
    assert (approval["step"], approval["from"], approval["to"]) == ("manager", "draft", "approved")
    assert [t["assignee"] for t in approval["steps"][0]["tasks"]] == ["boss", "wang"]
    assert [t["assignee"] for t in approval["cc"]] == ["zhao"]  # account.account_manager
    assert flow.available(li, APP, "deal", deal) == []

    (task,) = waiting(flow, people["wang"])
    done = flow.act(people["wang"], task, "approve", {"comment": "fine"})
    assert done["state"] == "approved"
    assert done["approval"]["status"] == "approved"
    assert [s["status"] for s in done["approval"]["steps"]] == ["passed", "skipped"]
    assert waiting(flow, people["boss"]) == []  # 或签: the other manager's task closed
    assert waiting(flow, people["chen"]) == []
    assert flow.approval(li, APP, "deal", deal) is None
    assert actions_of(records, people, deal) == ["create", "submit", "approve"]


def test_twenty_percent_needs_a_manager_then_every_finance_user(records, flow, people, make_deal):
    deal = make_deal(20)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    assert waiting(flow, people["chen"]) == []  # finance waits for the manager step
    (task,) = waiting(flow, people["boss"])
    after_manager = flow.act(people["boss"], task, "approve")
    assert after_manager["state"] == "pending"
    assert after_manager["approval"]["step"] == "finance"

    (chen_task,) = waiting(flow, people["chen"])
    (qian_task,) = waiting(flow, people["qian"])
    assert flow.act(people["chen"], chen_task, "approve")["state"] == "pending"  # 会签
    assert flow.counts(people["chen"])["done"] == 1
    finished = flow.act(people["qian"], qian_task, "approve", {"comment": "ok"})
    assert finished["state"] == "approved"
    assert [s["status"] for s in finished["approval"]["steps"]] == ["passed", "passed"]
    assert state(records, people, deal) == "approved"
    assert actions_of(records, people, deal) == [
        "create",
        "submit",
        "approve",
        "approve",
        "approve",
    ]
    last = records.history(people["admin"], APP, "deal", deal)[0]
    assert last["changes"]["state"] == ["pending", "approved"]
    assert last["changes"]["details"]["step"] == "finance"
    assert last["comment"] == "ok"


def test_the_submitter_and_copied_users_are_told(flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    assert [n["kind"] for n in flow.notifications(people["wang"])] == ["assigned"]
    assert [n["kind"] for n in flow.notifications(people["zhao"])] == ["cc"]
    assert flow.counts(people["zhao"])["cc"] == 1
    (task,) = waiting(flow, people["wang"])
    flow.act(people["wang"], task, "approve")
    kinds = [n["kind"] for n in flow.notifications(people["li"], unread_only=True)]
    assert kinds == ["approved"]
    assert flow.mark_read(people["li"]) == 1
    assert flow.counts(people["li"])["unread"] == 0
    assert [i["approval_status"] for i in flow.inbox(people["li"], "submitted")] == ["approved"]
    assert [i["status"] for i in flow.inbox(people["wang"], "done")] == ["approved"]


def test_a_plain_transition_moves_at_once(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve")
    assert [t["name"] for t in flow.available(people["wang"], APP, "deal", deal)] == ["reopen"]
    moved = flow.fire(people["wang"], APP, "deal", deal, "reopen", comment="new terms")
    assert moved["state"] == "draft" and moved["approval"] is None
    event = records.history(people["admin"], APP, "deal", deal)[0]
    assert event["action"] == "transition"
    assert event["changes"]["state"] == ["approved", "draft"]
    assert event["comment"] == "new terms"


def test_the_approval_shows_steps_tasks_and_who_acted(flow, people, make_deal):
    deal = make_deal(20)
    opened = flow.fire(people["li"], APP, "deal", deal, "request_discount")["approval"]
    assert opened["may_withdraw"] is True and opened["my_tasks"] == []
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve", {"comment": "ok"})
    view = flow.approval(people["chen"], APP, "deal", deal)
    assert (view["status"], view["step"], view["submitter"]["username"]) == (
        "open",
        "finance",
        "li",
    )
    manager, finance = view["steps"]
    assert manager["status"] == "passed" and finance["status"] == "current"
    decided = [t for t in manager["tasks"] if t["status"] == "approved"]
    assert [(t["assignee"], t["acted_by"], t["comment"]) for t in decided] == [
        ("wang", "wang", "ok")
    ]
    assert view["my_tasks"] == [t["id"] for t in finance["tasks"] if t["assignee"] == "chen"]
    assert view["may_withdraw"] is False
    (item,) = flow.inbox(people["chen"], "waiting")
    assert {k: item[k] for k in ("app", "entity", "record_id", "step", "submitter")} == {
        "app": APP,
        "entity": "deal",
        "record_id": deal,
        "step": "finance",
        "submitter": "li",
    }


def test_only_readers_and_participants_see_the_approval(records, flow, people, make_deal):
    other = records.create(people["admin"], APP, "account", {"name": "No manager"})
    deal = make_deal(10, account=other["id"])
    with pytest.raises(Forbidden, match="you may not read deal"):
        flow.available(people["zhao"], APP, "deal", deal)
    flow.fire(people["li"], APP, "deal", deal, "request_discount")
    with pytest.raises(Forbidden):
        flow.approval(people["zhao"], APP, "deal", deal)
    copied = make_deal(10)  # zhao manages its account, so he is copied
    flow.fire(people["li"], APP, "deal", copied, "request_discount")
    assert flow.approval(people["zhao"], APP, "deal", copied)["cc"][0]["assignee"] == "zhao"


def test_firing_on_a_stale_version_is_refused(records, flow, people, make_deal):
    deal = make_deal(10)
    seen = records.get(people["li"], APP, "deal", deal)["version"]
    records.update(people["li"], APP, "deal", deal, {"discount_pct": 12})
    with pytest.raises(StaleVersion):
        flow.fire(people["li"], APP, "deal", deal, "request_discount", expected_version=seen)
    fired = flow.fire(
        people["li"], APP, "deal", deal, "request_discount", expected_version=seen + 1
    )
    assert fired["state"] == "pending"
