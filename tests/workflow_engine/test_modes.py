"""Step modes, chains of managers, approvers nobody resolves, ``set`` and ``pending_state``."""

from __future__ import annotations

import copy

import pytest

from records.errors import RecordConflict, ValidationFailed

from .conftest import APP, load_example, state, waiting

TRANSITIONS = [
    {
        "name": "gold_only",
        "from": "draft",
        "to": "approved",
        "when": {"==": [{"var": "account.tier"}, "A"]},
    },
    {
        "name": "quorum_min",
        "from": "draft",
        "to": "approved",
        "pending_state": "pending",
        "approval": {
            "steps": [
                {
                    "name": "board",
                    "approvers": {"users": ["boss", "wang", "chen", "qian"]},
                    "mode": "quorum",
                    "min": 2,
                }
            ]
        },
    },
    {
        "name": "quorum_ratio",
        "from": "draft",
        "to": "approved",
        "approval": {
            "steps": [
                {
                    "name": "board",
                    "approvers": {"users": ["boss", "wang", "chen", "qian"]},
                    "mode": "quorum",
                    "ratio": 0.5,
                }
            ]
        },
        "reject_to": "rejected",
    },
    {
        "name": "up_the_line",
        "from": "draft",
        "to": "approved",
        "pending_state": "pending",
        "approval": {
            "steps": [{"name": "line", "approvers": {"manager_of": "$owner", "levels": -1}}]
        },
    },
    {
        "name": "self_service",
        "from": "draft",
        "to": "approved",
        "set": {"approved_by": "$user", "approved_at": "$now", "stage": "won"},
        "approval": {
            "steps": [
                {
                    "name": "big_only",
                    "approvers": {"role": "sales_manager"},
                    "when": {">": [{"var": "discount_pct"}, 50]},
                },
                {"name": "nobody", "approvers": {"field": "approved_by"}, "on_no_approver": "skip"},
            ]
        },
        "notify": ["$owner", "finance"],
    },
    {
        "name": "fallback",
        "from": "draft",
        "to": "approved",
        "approval": {"steps": [{"name": "nobody", "approvers": {"field": "approved_by"}}]},
    },
    {
        "name": "quiet",
        "from": "draft",
        "to": "approved",
        "approval": {
            "steps": [
                {
                    "name": "manager",
                    "approvers": {"manager_of": "$user"},
                    "editable_fields": ["discount_pct"],
                }
            ]
        },
    },
]


@pytest.fixture
def example_doc():
    doc = copy.deepcopy(load_example())
    deal = next(e for e in doc["entities"] if e["name"] == "deal")
    deal["fields"] += [
        {"name": "approved_by", "type": "user"},
        {"name": "approved_at", "type": "datetime"},
    ]
    doc["workflows"][0]["transitions"] += TRANSITIONS
    return doc


def test_quorum_with_a_minimum(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "quorum_min")
    flow.act(people["chen"], waiting(flow, people["chen"])[0], "reject")
    assert state(records, people, deal) == "pending"  # three seats can still reach two
    flow.act(people["boss"], waiting(flow, people["boss"])[0], "approve")
    outcome = flow.act(people["qian"], waiting(flow, people["qian"])[0], "approve")
    assert outcome["state"] == "approved"
    assert waiting(flow, people["wang"]) == []


def test_quorum_that_can_no_longer_be_reached_rejects(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "quorum_ratio")
    assert state(records, people, deal) == "draft"  # no pending_state: stays where it was
    for name in ("boss", "wang"):
        flow.act(people[name], waiting(flow, people[name])[0], "reject")
    assert state(records, people, deal) == "draft"
    flow.act(people["chen"], waiting(flow, people["chen"])[0], "reject")
    assert state(records, people, deal) == "rejected"


def test_a_chain_of_managers_decides_level_by_level(records, flow, people, make_deal):
    deal = make_deal(10)
    opened = flow.fire(people["li"], APP, "deal", deal, "up_the_line")
    chain = opened["approval"]["steps"][0]
    assert chain["mode"] == "chain"
    assert [(t["assignee"], t["status"]) for t in chain["tasks"]] == [
        ("wang", "open"),
        ("boss", "waiting"),
    ]
    assert waiting(flow, people["boss"]) == []
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve")
    assert state(records, people, deal) == "pending"
    outcome = flow.act(people["boss"], waiting(flow, people["boss"])[0], "approve")
    assert outcome["state"] == "approved"


def test_a_rejection_anywhere_in_the_chain_rejects(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "up_the_line")
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve")
    flow.act(people["boss"], waiting(flow, people["boss"])[0], "reject")
    assert state(records, people, deal) == "draft"  # no reject_to: back where it came from


def test_when_every_step_is_skipped_the_transition_completes_at_once(
    records, flow, people, make_deal, clock
):
    deal = make_deal(10)
    done = flow.fire(people["li"], APP, "deal", deal, "self_service")
    assert done["approval"] is None and done["state"] == "approved"
    record = done["record"]
    assert record["approved_by"] == people["li"].id
    assert record["approved_at"] == clock.now.isoformat().replace("+00:00", "Z")
    assert record["stage"] == "won"
    assert [n["kind"] for n in flow.notifications(people["chen"])] == ["transition"]
    assert flow.notifications(people["li"]) == []  # nobody is told of their own action


def test_nobody_resolves_so_the_admins_decide(records, flow, people, make_deal):
    deal = make_deal(10)
    opened = flow.fire(people["li"], APP, "deal", deal, "fallback")
    assert [t["assignee"] for t in opened["approval"]["steps"][0]["tasks"]] == ["admin"]


def test_an_open_approval_refuses_a_second_one(flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "quiet")
    with pytest.raises(RecordConflict, match=r"waiting for approval \(Quiet, step manager\)"):
        flow.fire(people["li"], APP, "deal", deal, "quorum_min")
    assert flow.available(people["li"], APP, "deal", deal) == []


def test_the_current_approvers_may_edit_the_editable_fields(records, flow, people, make_deal):
    deal = make_deal(10)
    flow.fire(people["li"], APP, "deal", deal, "quiet")
    with pytest.raises(RecordConflict, match="only its approvers may change discount_pct"):
        records.update(people["li"], APP, "deal", deal, {"discount_pct": 12})
    wang = people["wang"]
    with pytest.raises(RecordConflict, match="may change only discount_pct, not title"):
        records.update(wang, APP, "deal", deal, {"title": "renamed"})
    updated = records.update(wang, APP, "deal", deal, {"discount_pct": 8, "title": "Deal 10%"})
    assert updated["discount_pct"] == "8.00"
    flow.act(wang, waiting(flow, wang)[0], "approve")
    assert state(records, people, deal) == "approved"


def test_a_guard_follows_references(records, flow, people, make_deal, account):
    deal = make_deal(10)
    with pytest.raises(ValidationFailed, match=r"reads account\.tier") as caught:
        flow.fire(people["li"], APP, "deal", deal, "gold_only")
    assert caught.value.problems[0].path == "/account"
    records.update(people["admin"], APP, "account", account["id"], {"tier": "A"})
    assert flow.fire(people["li"], APP, "deal", deal, "gold_only")["state"] == "approved"
