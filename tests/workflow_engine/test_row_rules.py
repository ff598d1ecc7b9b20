"""Row rules that follow a reference decide who reaches a record through the engine too.

A row rule may read a referenced record (``account.account_manager``): the record
service reads the path before it evaluates the rule, and the engine's own checks
(``available``, ``fire``, ``approval``) must read it the same way, or the very
users the rule names are refused.
"""

from __future__ import annotations

import pytest

from records.errors import Forbidden

from .conftest import APP, load_example

MANAGED_BY_ME = {"==": [{"var": "account.account_manager"}, {"var": "$user.id"}]}


@pytest.fixture
def example_doc():
    doc = load_example()
    deal = next(e for e in doc["entities"] if e["name"] == "deal")
    deal["row_rules"] = [{"role": "finance", "rule": MANAGED_BY_ME}]
    return doc


@pytest.fixture
def deals(records, people):
    """A deal of an account chen manages, and one of an account zhao manages, both li's."""
    made = {}
    for manager in ("chen", "zhao"):
        account = records.create(
            people["admin"],
            APP,
            "account",
            {"name": manager, "account_manager": people[manager].id},
        )
        made[manager] = records.create(
            people["li"], APP, "deal", {"title": f"{manager}'s", "account": account["id"]}
        )["id"]
    return made


def test_the_user_a_followed_row_rule_names_reaches_the_record(records, flow, people, deals):
    chen = people["chen"]
    assert records.get(chen, APP, "deal", deals["chen"])["id"] == deals["chen"]
    assert flow.available(chen, APP, "deal", deals["chen"]) == []
    assert flow.approval(chen, APP, "deal", deals["chen"]) is None


def test_others_stay_out(records, flow, people, deals):
    chen = people["chen"]
    with pytest.raises(Forbidden):
        records.get(chen, APP, "deal", deals["zhao"])
    with pytest.raises(Forbidden):
        flow.available(chen, APP, "deal", deals["zhao"])
    with pytest.raises(Forbidden):
        flow.approval(chen, APP, "deal", deals["zhao"])
