"""A running approval keeps the workflow version it started with."""

from __future__ import annotations

import copy

import pytest

from metamodel import publish
from metamodel.db import make_engine

from .conftest import APP, state, waiting


@pytest.fixture
def engine(db_url, example_doc):
    """A database of this test's own: it publishes a new version of the app."""
    engine = make_engine(db_url)
    publish.apply_document(engine, example_doc)
    yield engine
    engine.dispose()


def test_a_running_approval_keeps_its_version(records, flow, people, make_deal, example_doc):
    old = make_deal(20)
    flow.fire(people["li"], APP, "deal", old, "request_discount")

    changed = copy.deepcopy(example_doc)
    changed["version"] = "1.1.0"
    request = changed["workflows"][0]["transitions"][0]
    request["approval"]["steps"] = [{"name": "ceo", "approvers": {"users": ["admin"]}}]
    request["approval"].pop("cc")
    publish.apply_document(records.engine, changed)

    new = make_deal(20)
    opened = flow.fire(people["li"], APP, "deal", new, "request_discount")
    assert [s["name"] for s in opened["approval"]["steps"]] == ["ceo"]

    running = flow.approval(people["li"], APP, "deal", old)
    assert [s["name"] for s in running["steps"]] == ["manager", "finance"]
    flow.act(people["wang"], waiting(flow, people["wang"])[0], "approve")
    assert len(waiting(flow, people["chen"])) == 1  # the old finance step still follows
    flow.act(people["chen"], waiting(flow, people["chen"])[0], "approve")
    flow.act(people["qian"], waiting(flow, people["qian"])[0], "approve")
    assert state(records, people, old) == "approved"
    assert state(records, people, new) == "pending"
