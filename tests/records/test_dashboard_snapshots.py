"""Dashboard snapshots: who shares one, when one is void, refreshing at once from two places.

The sales_pipeline example's ``sales_kpis`` (deals, interactions) plus a few
widgets that make audiences personal: a filter on ``$user``, the lines of deals
(a child entity), a group by account whose title some may not read.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, update

from metamodel import publish
from metamodel.sqltypes import UTC
from metamodel.system_tables import dashboard_snapshots as table
from records import dashboard_snapshots as snapshots
from records.actor import SYSTEM, Actor
from records.dashboards import localised
from records.errors import Forbidden, NotFound
from records.service import Records

from .conftest import APP

START = dt.datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
FIVE_MINUTES = dt.timedelta(minutes=5)
MINE = {"type": "number", "label": "Mine", "entity": "deal"}
MINE["filter"] = {"==": [{"var": "owner"}, {"var": "$user.id"}]}
EXTRA = [
    MINE,
    {"type": "number", "label": "Lines", "entity": "deal_line", "aggregate": "count"},
    {
        "type": "chart",
        "chart": "bar",
        "label": "By account",
        "entity": "deal",
        "group_by": "account",
    },
]


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def example_doc(example_doc):
    doc = copy.deepcopy(example_doc)
    doc["dashboards"][0]["widgets"] += EXTRA
    doc["dashboards"].append(
        {"name": "managers", "roles": ["sales_manager"], "widgets": [EXTRA[1]]}
    )
    return doc


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def records(engine, example_doc, clock):
    publish.apply_document(engine, example_doc)
    return Records(engine, clock=clock)


@pytest.fixture
def deals(records, users):
    account = records.create(users["wang"], APP, "account", {"name": "Acme"})["id"]
    for who, amount in (("li", "100.00"), ("zhao", "30.00"), ("wang", "1000.00")):
        values = {"title": "d", "account": account, "stage": "lead", "amount": amount}
        records.create(users[who], APP, "deal", values)
    return account


def audiences(found: snapshots.Board) -> list[str | None]:
    return [slot.audience for slot in found.slots]


def board(records, actor, name="sales_kpis") -> snapshots.Board:
    with records.reading() as conn:
        return snapshots.board(records, conn, actor, APP, name)


def pipeline(found: snapshots.Board) -> str | None:
    """The open pipeline (the first widget) as kept, or None without a snapshot."""
    first = found.slots[0].snapshot
    return None if first is None else first.data["value"]


def rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        query = select(table.c.widget, table.c.audience).order_by(table.c.widget, table.c.audience)
        return [tuple(row) for row in conn.execute(query)]


# --- audiences --------------------------------------------------------------------------


def test_full_readers_share_the_all_audience_others_have_their_own(records, users):
    li = snapshots.personal(users["li"])
    assert li.startswith(f"user:{users['li'].id}:")
    assert audiences(board(records, users["admin"])) == ["all"] * 4 + [
        snapshots.personal(users["admin"]),  # a filter on $user
        "all",
        "all",
    ]
    assert audiences(board(records, users["wang"]))[:4] == ["all"] * 4
    # li reads their own deals (and so their lines) only; interactions in full.
    assert audiences(board(records, users["li"])) == [li, li, "all", li, li, li, li]
    # Finance may not read interactions: refused, no audience.
    assert audiences(board(records, users["chen"]))[:4] == ["all", "all", None, "all"]


def test_row_rules_and_unreadable_titles_make_the_audience_personal(engine, example_doc, users):
    doc = copy.deepcopy(example_doc)
    entities = {entity["name"]: entity for entity in doc["entities"]}
    entities["interaction"]["row_rules"] = [
        {"role": "sales", "rule": {"==": [{"var": "channel"}, "visit"]}}
    ]
    name = next(f for f in entities["account"]["fields"] if f["name"] == "name")
    name["read_roles"] = ["sales_manager"]
    publish.apply_document(engine, doc)
    found = board(Records(engine), users["li"])
    li = snapshots.personal(users["li"])
    assert found.slots[2].audience == li  # interactions: a row rule
    chen = board(Records(engine), users["chen"])
    # Finance reads deals in full, but not the account names the last chart shows.
    assert [slot.audience for slot in chen.slots][-1] == snapshots.personal(users["chen"])
    assert chen.slots[0].audience == "all"


def test_a_personal_audience_changes_with_the_roles():
    before = Actor(7, "li", frozenset({"sales"}))
    after = Actor(7, "li", frozenset({"sales", "finance"}))
    assert snapshots.personal(before) != snapshots.personal(after)
    assert snapshots.personal(before).startswith("user:7:")
    assert snapshots.personal(before) != snapshots.personal(Actor(8, "li", frozenset({"sales"})))


# --- refreshing and reading -------------------------------------------------------------


def test_a_refresh_keeps_what_the_board_shows_until_the_next(records, users, deals, clock):
    admin = users["admin"]
    assert pipeline(board(records, admin)) is None  # nothing computed yet
    found = snapshots.refresh(records, admin, APP, "sales_kpis")
    assert pipeline(found) == "1130.00" and found.slots[1].snapshot is not None
    assert pipeline(board(records, admin)) == "1130.00"
    assert board(records, admin).slots[0].snapshot.computed_at == START
    # A new deal shows after the next refresh only.
    values = {"title": "e", "account": deals, "stage": "lead", "amount": "5.00"}
    records.create(admin, APP, "deal", values)
    clock.now = START + dt.timedelta(minutes=1)
    assert pipeline(board(records, admin)) == "1130.00"
    snapshots.refresh(records, admin, APP, "sales_kpis")
    found = board(records, admin)
    assert pipeline(found) == "1135.00"
    assert found.slots[0].snapshot.computed_at == clock.now
    now = START + dt.timedelta(minutes=7)
    assert found.slots[0].state(START + dt.timedelta(minutes=2), FIVE_MINUTES) == "fresh"
    assert found.slots[0].state(now, FIVE_MINUTES) == "stale"


def test_labels_are_kept_as_written_and_worded_when_shown(records, users, deals):
    found = snapshots.refresh(records, users["admin"], APP, "sales_kpis")
    stages = found.slots[1].snapshot.data
    assert stages["label"] == {"en": "Deals by stage", "zh": "各阶段商机"}
    assert localised(stages, "zh")["label"] == "各阶段商机"
    by_account = localised(found.slots[6].snapshot.data, "zh")
    assert [(item["label"], item["value"]) for item in by_account["series"]] == [("Acme", 3)]


def test_each_user_sees_numbers_computed_with_their_own_rights(records, users, deals, engine):
    li, zhao, wang = users["li"], users["zhao"], users["wang"]
    snapshots.refresh(records, li, APP, "sales_kpis")
    assert pipeline(board(records, li)) == "100.00"
    # zhao's deal widgets are not li's: nothing for them yet; the interactions are shared.
    zhao_board = board(records, zhao)
    assert [slot.snapshot is not None for slot in zhao_board.slots] == [
        False,
        False,
        True,
        False,
        False,
        False,
        False,
    ]
    assert pipeline(board(records, wang)) is None
    snapshots.refresh(records, zhao, APP, "sales_kpis")
    snapshots.refresh(records, wang, APP, "sales_kpis")
    assert pipeline(board(records, li)) == "100.00"
    assert pipeline(board(records, zhao)) == "30.00"
    assert pipeline(board(records, wang)) == "1130.00"
    mine = [slot.snapshot.data["value"] for slot in board(records, wang).slots[4:5]]
    assert mine == [1]  # wang's own deals, in wang's own audience
    assert ("all" in {audience for _, audience in rows(engine)}) is True


def test_only_missing_or_old_snapshots_are_refreshed_when_asked(records, users, deals, clock):
    admin = users["admin"]
    snapshots.refresh(records, admin, APP, "sales_kpis")
    with records.writing() as conn:  # one snapshot from long ago
        conn.execute(
            update(table).where(table.c.widget == 1).values(computed_at=START - FIVE_MINUTES * 3)
        )
    clock.now = START + dt.timedelta(minutes=2)
    found = snapshots.refresh(records, admin, APP, "sales_kpis", older_than=FIVE_MINUTES)
    moments = [slot.snapshot.computed_at for slot in found.slots]
    assert moments[1] == clock.now
    assert moments[0] == START and moments[2] == START  # fresh: left alone


def test_a_metadata_change_voids_the_snapshots(records, users, deals, engine, example_doc):
    admin = users["admin"]
    snapshots.refresh(records, admin, APP, "sales_kpis")
    assert all(slot.snapshot for slot in board(records, admin).slots)
    changed = copy.deepcopy(example_doc)
    changed["version"] = "1.0.1"
    changed["dashboards"][0]["widgets"][0]["label"] = "Pipeline"
    publish.apply_document(engine, changed)
    found = board(records, admin)
    assert [slot.snapshot for slot in found.slots] == [None] * 7
    assert found.slots[0].label == "Pipeline"
    snapshots.refresh(records, admin, APP, "sales_kpis")
    # The old version's snapshots go when the dashboard's are written again.
    with engine.connect() as conn:
        digests = set(conn.execute(select(table.c.digest)).scalars())
    assert digests == {found.digest} and len(rows(engine)) == 7


def test_a_users_snapshots_of_old_roles_go_with_their_next_refresh(records, users, deals, engine):
    li = users["li"]
    snapshots.refresh(records, li, APP, "sales_kpis")
    promoted = Actor(li.id, li.username, frozenset({"sales", "finance"}))
    snapshots.refresh(records, promoted, APP, "sales_kpis")
    kept = {audience for _, audience in rows(engine) if audience != "all"}
    assert kept == {snapshots.personal(promoted)}


def test_roles_and_names_are_checked_as_for_the_page(records, users):
    with pytest.raises(Forbidden):
        snapshots.refresh(records, users["li"], APP, "managers")
    with pytest.raises(NotFound):
        snapshots.refresh(records, users["admin"], APP, "nothing")
    with pytest.raises(NotFound):
        board(records, users["admin"], "nothing")


def test_two_refreshes_at_once_both_succeed(engine, records, users, deals):
    # Two workers (two services on one database) refresh the same snapshots at once.
    services = [records, Records(engine)]
    barrier = threading.Barrier(2)
    failures = []

    def refresh(service):
        try:
            barrier.wait(timeout=10)
            snapshots.refresh(service, users["admin"], APP, "sales_kpis")
        except Exception as error:
            failures.append(error)

    threads = [threading.Thread(target=refresh, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar() == 7


def test_the_shared_refresh_computes_the_all_audience(records, users, deals, engine):
    done = list(snapshots.refresh_shared(records))
    assert done == [
        {"app": APP, "dashboard": "sales_kpis", "computed": 6, "personal": 1},
        {"app": APP, "dashboard": "managers", "computed": 1, "personal": 0},
    ]
    assert {audience for _, audience in rows(engine)} == {"all"}
    assert pipeline(board(records, users["wang"])) == "1130.00"
    assert pipeline(board(records, users["li"])) is None  # li's numbers are li's
    assert [d["dashboard"] for d in snapshots.refresh_shared(records, APP, "managers")] == [
        "managers"
    ]
    with pytest.raises(NotFound):
        list(snapshots.refresh_shared(records, APP, "nothing"))
    with pytest.raises(NotFound):
        list(snapshots.refresh_shared(records, "nowhere"))


def test_a_pareto_keeps_its_largest_groups_and_counts_them_all(records, monkeypatch):
    monkeypatch.setattr(snapshots, "KEPT_GROUPS", 2)
    accounts = [records.create(SYSTEM, APP, "account", {"name": f"a{n}"})["id"] for n in range(3)]
    for account, amount in zip(accounts, ["10", "30", "20"], strict=True):
        values = {"title": "d", "account": account, "stage": "won", "amount": amount}
        records.create(SYSTEM, APP, "deal", values)
    found = snapshots.refresh(records, SYSTEM, APP, "sales_kpis")
    pareto = found.slots[3].snapshot.data
    assert [group["value"] for group in pareto["groups"]] == ["30.00", "20.00"]
    assert pareto["group_count"] == 3 and pareto["total"] == "60.00"
    assert sum(summary["groups"] for summary in pareto["classes"]) == 3
