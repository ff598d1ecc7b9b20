"""Rollups over referencing records, aggregated by the database, kept in step on every write.

The expected values are worked out by hand from the evaluator's rules (JavaScript's
null: ``null < 100`` holds, ``null >= 100`` and ``null in [...]`` do not), so the SQL
path is held to the evaluator's answers, on SQLite (money as scaled integers) and
on PostgreSQL.
"""

from __future__ import annotations

import pytest

from metamodel import publish
from records.errors import ValidationFailed
from records.importing import import_file
from records.service import Records

from ..metamodel.builders import document, entity, field

APP = "shop"
STAGES = [{"value": s} for s in ("lead", "won", "lost")]
OPEN = {"!": {"in": [{"var": "stage"}, ["won", "lost"]]}}


def rollup(name: str, aggregate: str, source: str | None = None, rule=None, via="deal.account"):
    extra = {"field": source} if source else {}
    if rule is not None:
        extra["filter"] = rule
    return field(name, "rollup", via=via, aggregate=aggregate, **extra)


DOC = document(
    entity("product", field("name", required=True), field("category"), title_field="name"),
    entity(
        "account",
        field("name", required=True),
        rollup("open_value", "sum", "amount", OPEN),
        rollup("small_deals", "count", rule={"<": [{"var": "amount"}, 100]}),
        rollup("big_deals", "count", rule={">=": [{"var": "amount"}, 100]}),
        rollup("unstaged", "count", rule={"==": [{"var": "stage"}, None]}),
        rollup("avg_amount", "avg", "amount"),
        rollup("min_amount", "min", "amount"),
        rollup("max_amount", "max", "amount"),
        # Follows a reference: the SQL compiler reads the product's category.
        rollup("hardware_value", "sum", "amount", {"==": [{"var": "product.category"}, "hw"]}),
        # substr is refused by the SQL compiler: these rows are filtered by the evaluator.
        rollup("vi_deals", "count", rule={"==": [{"substr": [{"var": "code"}, 0, 2]}, "VI"]}),
        # ... and here the evaluator also reads through the reference, row by row.
        rollup(
            "h_deals",
            "count",
            rule={"==": [{"substr": [{"var": "product.category"}, 0, 1]}, "h"]},
        ),
        # Dates are aggregated in Python, the rows still filtered by SQL.
        rollup("last_close", "max", "expected_close", {"!=": [{"var": "stage"}, "lost"]}),
        title_field="name",
    ),
    entity(
        "deal",
        field("title", required=True),
        field("account", "reference", target="account", required=True),
        field("product", "reference", target="product"),
        field("stage", "select", options=STAGES),
        field("amount", "currency", currency="CNY"),
        field("code"),
        field("expected_close", "date"),
        field("lines", "child_table", target="deal_line"),
        rollup("long_lines", "count", rule={">": [{"var": "quantity"}, 1]}, via="lines"),
        rollup("lines_total", "sum", "line_total", via="lines"),
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
ROLLUPS = (
    "open_value",
    "small_deals",
    "big_deals",
    "unstaged",
    "avg_amount",
    "min_amount",
    "max_amount",
    "hardware_value",
    "vi_deals",
    "h_deals",
    "last_close",
)
DEALS = [
    # title, product, stage, amount, code, expected close
    ("one", "hw", "lead", "10.10", "VI-1", "2026-01-05"),
    ("two", "sw", "won", "20.20", "XX", "2026-03-01"),
    ("three", None, None, None, None, "2026-02-01"),
    ("four", "hw", "lost", "150.00", "VI-2", "2026-04-01"),
    ("five", "hw", None, "0.05", None, None),
]


@pytest.fixture
def shop(engine, users):
    publish.apply_document(engine, DOC)
    records = Records(engine)
    admin = users["admin"]
    products = {
        category: records.create(admin, APP, "product", {"name": category, "category": category})
        for category in ("hw", "sw")
    }
    return records, admin, products


def make_deals(records, admin, products, account_id) -> dict[str, int]:
    ids = {}
    for title, product, stage, amount, code, close in DEALS:
        data = {"title": title, "account": account_id, "stage": stage, "amount": amount}
        data.update(code=code, expected_close=close)
        if product:
            data["product"] = products[product]["id"]
        ids[title] = records.create(admin, APP, "deal", data)["id"]
    return ids


def rollups_of(records, admin, account_id) -> dict:
    account = records.get(admin, APP, "account", account_id)
    return {name: account[name] for name in ROLLUPS}


def test_filtered_rollups_count_nulls_as_the_evaluator_does(shop):
    records, admin, products = shop
    account = records.create(admin, APP, "account", {"name": "A"})
    make_deals(records, admin, products, account["id"])
    assert rollups_of(records, admin, account["id"]) == {
        "open_value": "10.15",  # lead 10.10, and the two without a stage (null, 0.05)
        "small_deals": 4,  # null < 100 holds
        "big_deals": 1,  # null >= 100 does not
        "unstaged": 2,
        "avg_amount": "45.0875",  # 180.35 / 4 (averages keep 4 decimals)
        "min_amount": "0.05",
        "max_amount": "150.00",
        "hardware_value": "160.15",
        "vi_deals": 2,
        "h_deals": 3,
        "last_close": "2026-03-01",  # null != "lost" holds; a null date is skipped
    }


def test_rollups_follow_moves_deletes_restores_and_edits(shop):
    records, admin, products = shop
    a = records.create(admin, APP, "account", {"name": "A"})["id"]
    b = records.create(admin, APP, "account", {"name": "B"})["id"]
    deals = make_deals(records, admin, products, a)
    records.update(admin, APP, "deal", deals["four"], {"account": b})
    assert rollups_of(records, admin, a) == {
        "open_value": "10.15",
        "small_deals": 4,
        "big_deals": 0,
        "unstaged": 2,
        "avg_amount": "10.1167",  # 30.35 / 3
        "min_amount": "0.05",
        "max_amount": "20.20",
        "hardware_value": "10.15",
        "vi_deals": 1,
        "h_deals": 2,
        "last_close": "2026-03-01",
    }
    assert rollups_of(records, admin, b) == {
        "open_value": "0.00",
        "small_deals": 0,
        "big_deals": 1,
        "unstaged": 0,
        "avg_amount": "150.0000",
        "min_amount": "150.00",
        "max_amount": "150.00",
        "hardware_value": "150.00",
        "vi_deals": 1,
        "h_deals": 1,
        "last_close": None,  # its only deal is lost
    }
    records.delete(admin, APP, "deal", deals["one"])
    after_delete = rollups_of(records, admin, a)
    assert after_delete["open_value"] == "0.05"
    assert (after_delete["small_deals"], after_delete["vi_deals"]) == (3, 0)
    assert after_delete["last_close"] == "2026-03-01"
    records.restore(admin, APP, "deal", deals["one"])
    assert rollups_of(records, admin, a)["open_value"] == "10.15"
    # A value set to null and a stage set from null.
    records.update(admin, APP, "deal", deals["five"], {"amount": None, "stage": "won"})
    edited = rollups_of(records, admin, a)
    assert edited["open_value"] == "10.10"
    assert (edited["unstaged"], edited["small_deals"]) == (1, 4)
    assert (edited["min_amount"], edited["avg_amount"]) == ("10.10", "15.1500")
    records.delete(admin, APP, "deal", deals["four"])
    assert rollups_of(records, admin, b)["avg_amount"] is None
    assert rollups_of(records, admin, b)["open_value"] == "0.00"


def test_money_sums_are_exact(shop):
    records, admin, _products = shop
    account = records.create(admin, APP, "account", {"name": "A"})["id"]
    amounts = ["0.10", "0.20", "0.70", "1234567890123.45", "9999999999999.99", "0.01"]
    for i, amount in enumerate(amounts):
        records.create(admin, APP, "deal", {"title": f"d{i}", "account": account, "amount": amount})
    got = rollups_of(records, admin, account)
    assert got["open_value"] == "11234567890124.45"
    assert got["avg_amount"] == "1872427981687.4083"  # 11234567890124.45 / 6
    assert (got["min_amount"], got["max_amount"]) == ("0.01", "9999999999999.99")


def test_an_average_rounds_half_up(shop):
    records, admin, _products = shop
    account = records.create(admin, APP, "account", {"name": "A"})["id"]
    for i, amount in enumerate(["0.01"] + ["0"] * 7):
        records.create(admin, APP, "deal", {"title": f"d{i}", "account": account, "amount": amount})
    assert rollups_of(records, admin, account)["avg_amount"] == "0.0013"  # 0.00125


def test_child_table_rollups_aggregate_the_rows_given(shop):
    records, admin, _products = shop
    account = records.create(admin, APP, "account", {"name": "A"})["id"]
    deal = records.create(
        admin,
        APP,
        "deal",
        {
            "title": "lined",
            "account": account,
            "lines": [
                {"quantity": 2, "unit_price": "0.10"},
                {"quantity": 1, "unit_price": "0.20"},
                {"quantity": None, "unit_price": "5"},
            ],
        },
    )
    assert (deal["long_lines"], deal["lines_total"]) == (1, "0.40")


def test_an_import_aggregates_as_the_service_does(shop, tmp_path):
    records, admin, products = shop
    by_hand = records.create(admin, APP, "account", {"name": "by hand"})["id"]
    make_deals(records, admin, products, by_hand)
    imported = records.create(admin, APP, "account", {"name": "by file"})["id"]
    lines = ["title,account,product,stage,amount,code,expected_close"]
    for title, product, stage, amount, code, close in DEALS:
        cells = [title, "by file", product, stage, amount, code, close]
        lines.append(",".join(cell or "" for cell in cells))
    path = tmp_path / "deals.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert import_file(records, admin, APP, "deal", path).imported == len(DEALS)
    assert rollups_of(records, admin, imported) == rollups_of(records, admin, by_hand)


def test_a_sum_that_overflows_sqlite_integers_on_the_way_is_still_exact(engine, users):
    """On SQLite money is an integer of cents, and sum() fails past 2**63 along the way.

    Eleven deals of +9e15 then eleven of -9e15 (in id order, the order the rows are
    summed) reach 9.9e18 cents before coming back to 0: SQLite refuses the sum, and the
    rollup is summed in Python instead, in the same transaction.
    """
    doc = document(
        entity(
            "account",
            field("name", required=True),
            rollup("total", "sum", "amount"),
            rollup("deals", "count"),
            title_field="name",
        ),
        entity(
            "deal",
            field("account", "reference", target="account"),
            field("amount", "currency", currency="CNY"),
        ),
    )
    publish.apply_document(engine, doc)
    records = Records(engine)
    admin = users["admin"]
    account = records.create(admin, APP, "account", {"name": "A"})["id"]
    plus = [records.create(admin, APP, "deal", {"amount": "9e15"})["id"] for _ in range(11)]
    minus = [records.create(admin, APP, "deal", {"amount": "-9e15"})["id"] for _ in range(11)]
    for up, down in zip(plus, minus, strict=True):  # the total stays storable at each step
        records.update(admin, APP, "deal", up, {"account": account})
        records.update(admin, APP, "deal", down, {"account": account})
    got = records.get(admin, APP, "account", account)
    assert (got["total"], got["deals"]) == ("0.00", 22)


def test_a_sum_too_large_to_store_is_refused_and_changes_nothing(engine, users):
    doc = document(
        entity(
            "account",
            field("name", required=True),
            rollup("total", "sum", "amount"),
            title_field="name",
        ),
        entity(
            "deal",
            field("account", "reference", target="account", required=True),
            field("amount", "currency", currency="CNY"),
        ),
    )
    publish.apply_document(engine, doc)
    records = Records(engine)
    admin = users["admin"]
    account = records.create(admin, APP, "account", {"name": "A"})["id"]
    for _ in range(3):
        records.create(admin, APP, "deal", {"account": account, "amount": "3000000000000000.00"})
    with pytest.raises(ValidationFailed) as refused:
        records.create(admin, APP, "deal", {"account": account, "amount": "3000000000000000.00"})
    assert refused.value.problems[0].path == "/total"
    assert "too large" in refused.value.problems[0].message
    assert records.get(admin, APP, "account", account)["total"] == "9000000000000000.00"
    assert records.list(admin, APP, "deal")["total"] == 3
