"""A change recomputes and propagates to what reads the fields it changed, and only that.

``Records.system_update`` (the workflow engine's writes) computes again only the
computed fields whose inputs changed, and the propagation to other records skips
the rollups and formulas that read none of the changed fields. Each test checks
both halves: the values are right afterwards, and the statements a skip saves are
not sent (counted on the real database).
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import event

from metamodel import publish
from records.computed import dependents_reads
from records.service import Records

from ..metamodel.builders import document, entity, field

APP = "shop"
STAGES = [{"value": s} for s in ("lead", "won", "lost")]
TIERS = [{"value": t} for t in ("A", "B")]
OPEN = {"!": {"in": [{"var": "stage"}, ["won", "lost"]]}}

DOC = document(
    entity(
        "account",
        field("name", required=True),
        field("tier", "select", options=TIERS),
        field("region"),
        # The open pipeline: reads the deal's account, amount and stage, nothing else.
        field(
            "open_value", "rollup", via="deal.account", aggregate="sum", field="amount", filter=OPEN
        ),
        field("deals", "rollup", via="deal.account", aggregate="count"),
        title_field="name",
    ),
    entity(
        "deal",
        field("title", required=True),
        field("account", "reference", target="account", required=True),
        field("stage", "select", options=STAGES),
        field("amount", "currency", currency="CNY"),
        field("probability", "integer"),
        field("note"),
        field("state"),
        field("account_tier", "lookup", via="account", field="tier"),
        # A lookup of a rollup: moved by what the deal's own change moves on its account.
        field("account_open", "lookup", via="account", field="open_value"),
        field(
            "weighted",
            "formula",
            result_type="currency",
            expression={"/": [{"*": [{"var": "amount"}, {"var": "probability"}]}, 100]},
        ),
        field(
            "place",
            "formula",
            result_type="text",
            expression={"cat": [{"var": "account.region"}, "/", {"var": "account_tier"}]},
        ),
        field("lines", "child_table", target="deal_line"),
        field("lines_total", "rollup", via="lines", aggregate="sum", field="line_total"),
        title_field="title",
    ),
    entity(
        "deal_line",
        field("quantity", "integer"),
        field("unit_price", "currency", currency="CNY"),
        field(
            "line_total",
            "formula",
            result_type="currency",
            expression={"*": [{"var": "quantity"}, {"var": "unit_price"}]},
        ),
        child=True,
    ),
)

ACCOUNT = '"shop__account"'
DEAL = '"shop__deal"'
LINE = '"shop__deal_line"'


@contextmanager
def counted(engine):
    """The statements ``engine`` sends inside the block."""
    sent: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def reading(sent: list[str], table: str) -> list[str]:
    """The statements of ``sent`` that read rows of ``table`` (not through a subquery)."""
    return [s for s in sent if s.startswith(f"SELECT {table}.")]


def sums(sent: list[str]) -> list[str]:
    return [s for s in sent if "sum(" in s.lower()]


@pytest.fixture
def shop(engine, users):
    publish.apply_document(engine, DOC)
    records = Records(engine)
    admin = users["admin"]
    north = records.create(admin, APP, "account", {"name": "North", "tier": "A", "region": "N"})[
        "id"
    ]
    south = records.create(admin, APP, "account", {"name": "South", "tier": "B", "region": "S"})[
        "id"
    ]
    deal = records.create(
        admin,
        APP,
        "deal",
        {
            "title": "big",
            "account": north,
            "stage": "lead",
            "amount": "100.00",
            "probability": 50,
            "lines": [{"quantity": 2, "unit_price": "3.50"}],
        },
    )["id"]
    records.create(
        admin, APP, "deal", {"title": "small", "account": north, "stage": "lead", "amount": "5"}
    )
    return records, admin, {"north": north, "south": south, "deal": deal}


def system_update(records, admin, record_id, values, *, locked=False) -> tuple[dict, list[str]]:
    """``Records.system_update`` of a deal; ``locked``: given its row, as the engine does."""
    with records.writing() as conn:
        runtime = records.runtime(APP, "deal", conn)
        current = records._load(conn, runtime, record_id, lock=True) if locked else None
        with counted(records.engine) as sent:
            written = records.system_update(
                conn, admin, runtime, record_id, values, current=current
            )
    return written, sent


def account(records, admin, account_id) -> dict:
    return records.get(admin, APP, "account", account_id)


def deal(records, admin, deal_id) -> dict:
    return records.get(admin, APP, "deal", deal_id)


def test_a_stage_change_moves_the_open_pipeline_its_filter_reads(shop):
    records, admin, ids = shop
    assert Decimal(account(records, admin, ids["north"])["open_value"]) == Decimal("105.00")
    written, sent = system_update(records, admin, ids["deal"], {"stage": "won"})
    assert len(sums(sent)) == 1, sent  # the account's open pipeline, summed again
    assert Decimal(account(records, admin, ids["north"])["open_value"]) == Decimal("5.00")
    # ... and what the account's change moved came back to the deal's lookup of it.
    assert Decimal(written["account_open"]) == Decimal("5.00")
    assert Decimal(deal(records, admin, ids["deal"])["account_open"]) == Decimal("5.00")


def test_a_change_no_dependent_reads_skips_them_and_leaves_the_values_right(shop):
    records, admin, ids = shop
    before_deal = deal(records, admin, ids["deal"])
    before_account = account(records, admin, ids["north"])
    _, sent = system_update(records, admin, ids["deal"], {"state": "pending"}, locked=True)
    # Given the locked row, the deal is not read again; its lines and its account's tier
    # (inputs of no field the state feeds) are not read; the account is not refreshed.
    assert reading(sent, DEAL) == [], sent
    assert reading(sent, LINE) == [], sent
    assert reading(sent, ACCOUNT) == [], sent
    assert sums(sent) == [], sent
    assert [s.split()[0] for s in sent] == ["UPDATE", "INSERT"], sent  # the row, the audit
    after_deal = deal(records, admin, ids["deal"])
    assert after_deal["state"] == "pending"
    unchanged = ("account_tier", "account_open", "weighted", "place", "lines_total")
    assert {k: after_deal[k] for k in unchanged} == {k: before_deal[k] for k in unchanged}
    assert after_deal["lines_total"] == "7.00"
    assert account(records, admin, ids["north"]) == before_account


def test_system_update_returns_the_row_as_written(shop):
    records, admin, ids = shop
    before = deal(records, admin, ids["deal"])
    written, _ = system_update(records, admin, ids["deal"], {"state": "pending"}, locked=True)
    with records.reading() as conn:
        stored = records._load(conn, records.runtime(APP, "deal", conn), ids["deal"])
    assert written == stored
    assert written["version"] == before["version"] + 1
    assert written["updated_by"] == admin.id
    assert written["updated_at"] > dt.datetime.fromisoformat(before["updated_at"])
    # Nothing changed: nothing written, the row as it is.
    again, sent = system_update(records, admin, ids["deal"], {"state": "pending"}, locked=True)
    assert again == stored
    assert sent == []


def test_a_formula_reading_a_changed_field_is_computed_again(shop):
    records, admin, ids = shop
    assert deal(records, admin, ids["deal"])["weighted"] == "50.00"
    written, sent = system_update(records, admin, ids["deal"], {"probability": 80})
    assert written["weighted"] == Decimal("80.00")
    assert deal(records, admin, ids["deal"])["weighted"] == "80.00"
    # The probability is read by no lookup, child rollup or parent rollup.
    assert reading(sent, LINE) == [] and sums(sent) == [], sent


def test_a_changed_reference_refreshes_its_lookups_formulas_and_both_parents(shop):
    records, admin, ids = shop
    written, sent = system_update(records, admin, ids["deal"], {"account": ids["south"]})
    assert written["account_tier"] == "B"
    assert written["place"] == "S/B"  # reads account.region, and the lookup that moved
    assert Decimal(written["account_open"]) == Decimal("100.00")
    moved = deal(records, admin, ids["deal"])
    assert (moved["account_tier"], moved["place"]) == ("B", "S/B")
    north, south = account(records, admin, ids["north"]), account(records, admin, ids["south"])
    assert (Decimal(north["open_value"]), north["deals"]) == (Decimal("5.00"), 1)
    assert (Decimal(south["open_value"]), south["deals"]) == (Decimal("100.00"), 1)
    assert len(sums(sent)) == 2, sent  # each account's pipeline (counts go in the same way)


def test_lookups_and_formulas_follow_a_changed_reference_on_their_own(shop):
    records, admin, ids = shop
    # A won deal: moving it changes no open pipeline, so no account change comes back
    # to it; what it shows of its new account is computed by the move itself.
    won = records.create(
        admin, APP, "deal", {"title": "won", "account": ids["north"], "stage": "won"}
    )
    assert (won["account_tier"], won["place"], won["account_open"]) == ("A", "N/A", "105.00")
    written, sent = system_update(records, admin, won["id"], {"account": ids["south"]})
    assert (written["account_tier"], written["place"]) == ("B", "S/B")
    assert Decimal(written["account_open"]) == Decimal("0.00")
    for looked_up in ("tier", "open_value"):
        assert len([s for s in sent if s.startswith(f'SELECT {ACCOUNT}."{looked_up}" FROM')]) == 1
    moved = deal(records, admin, won["id"])
    assert (moved["account_tier"], moved["place"], moved["account_open"]) == ("B", "S/B", "0.00")
    assert account(records, admin, ids["south"])["deals"] == 1


def test_an_update_of_a_field_no_rollup_reads_does_not_refresh_the_account(shop):
    records, admin, ids = shop
    before = account(records, admin, ids["north"])
    with counted(records.engine) as sent:
        records.update(admin, APP, "deal", ids["deal"], {"note": "call back"})
    assert sums(sent) == [], sent
    assert not [s for s in reading(sent, ACCOUNT) if ".id IN" in s], sent
    assert account(records, admin, ids["north"]) == before
    # An amount is read by the pipeline: that one refreshes it.
    with counted(records.engine) as sent:
        records.update(admin, APP, "deal", ids["deal"], {"amount": "40"})
    assert len(sums(sent)) == 1, sent
    assert account(records, admin, ids["north"])["open_value"] == "45.00"


def test_an_account_change_reaches_the_deals_only_through_what_they_read(shop):
    records, admin, ids = shop
    deal_ids = f"SELECT {DEAL}.id FROM"
    with counted(records.engine) as sent:
        records.update(admin, APP, "account", ids["north"], {"name": "Northern"})
    assert not [s for s in sent if s.startswith(deal_ids)], sent
    # The region is read by the deals' formula, the tier by their lookup (and formula).
    records.update(admin, APP, "account", ids["north"], {"region": "NE"})
    assert deal(records, admin, ids["deal"])["place"] == "NE/A"
    records.update(admin, APP, "account", ids["north"], {"tier": "B"})
    refreshed = deal(records, admin, ids["deal"])
    assert (refreshed["account_tier"], refreshed["place"]) == ("B", "NE/B")


def test_what_a_dependent_reads(engine, users):
    publish.apply_document(engine, DOC)
    records = Records(engine)
    with records.reading() as conn:
        deals = records.runtime(APP, "deal", conn)
        accounts = records.runtime(APP, "account", conn)
    rollups, formulas = dependents_reads(deals)
    by_name = dict(zip((r.name for _e, r in deals.rollups_over_me), rollups, strict=True))
    assert by_name == {
        "open_value": frozenset({"account", "amount", "stage"}),
        "deals": frozenset({"account"}),
    }
    assert formulas == []
    assert dependents_reads(accounts)[1] == [frozenset({"region"})]


def test_a_filter_reading_a_column_every_save_changes_is_refreshed_on_any_change(engine, users):
    recent = {">": [{"var": "updated_at"}, "2000-01-01T00:00:00Z"]}
    publish.apply_document(
        engine,
        document(
            entity(
                "account",
                field("name", required=True),
                field("touched", "rollup", via="deal.account", aggregate="count", filter=recent),
                title_field="name",
            ),
            entity(
                "deal",
                field("title", required=True),
                field("account", "reference", target="account", required=True),
                field("note"),
                title_field="title",
            ),
        ),
    )
    records = Records(engine)
    admin = users["admin"]
    with records.reading() as conn:
        (touched,), _ = dependents_reads(records.runtime(APP, "deal", conn))
    assert touched is None  # updated_at is never among the changes a save reports
    account_id = records.create(admin, APP, "account", {"name": "North"})["id"]
    deal_id = records.create(admin, APP, "deal", {"title": "x", "account": account_id})["id"]
    with counted(engine) as sent:
        records.update(admin, APP, "deal", deal_id, {"note": "again"})
    assert [s for s in reading(sent, ACCOUNT) if ".id IN" in s], sent
    assert records.get(admin, APP, "account", account_id)["touched"] == 1
