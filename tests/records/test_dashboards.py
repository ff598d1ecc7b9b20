"""Dashboards computed in SQL, on the database under test, against hand-computed numbers.

The sales_pipeline example gets a few dashboards of its own here, over a small
crafted data set (``pipeline``): five live deals by three owners, one deal in
the recycle bin, interactions around an ISO week boundary. The presets'
own dashboards are checked against their sample data.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts import create_user
from metamodel import publish
from metamodel.db import make_engine
from metamodel.system_tables import users as users_table
from presets.catalog import import_sample_data, load_preset
from records.actor import SYSTEM, Actor
from records.chart_groups import MAX_FILLED_BUCKETS, fill_periods
from records.dashboards import compute_dashboard, list_dashboards
from records.errors import Forbidden, NotFound, ValidationFailed
from records.pareto import classify
from records.service import Records

from .conftest import APP, FAST_HASH


def widget(label, entity="deal", kind="chart", **keys):
    return {"type": kind, "label": {"en": label, "zh": f"中文 {label}"}, "entity": entity, **keys}


CHECKS = [
    widget("Deals", kind="number", aggregate="count"),
    widget("Amount", kind="number", aggregate="sum", field="amount"),
    widget("Average amount", kind="number", aggregate="avg", field="amount"),
    widget(
        "Open pipeline",
        kind="number",
        aggregate="sum",
        field="amount",
        filter={"!": {"in": [{"var": "stage"}, ["won", "lost"]]}},
    ),
    widget(
        "Tier A deals",
        kind="number",
        aggregate="count",
        filter={"==": [{"var": "account.tier"}, "A"]},
    ),
    widget("Dated deals", kind="number", aggregate="count", field="expected_close"),
    widget("Satisfaction", "interaction", kind="number", aggregate="sum", field="satisfaction"),
    widget(
        "Mean satisfaction", "interaction", kind="number", aggregate="avg", field="satisfaction"
    ),
    widget("Probability", kind="number", aggregate="sum", field="probability"),
    widget("Line totals", "deal_line", kind="number", aggregate="sum", field="line_total"),
    widget("By stage", chart="bar", group_by="stage"),
    widget("Approval funnel", chart="funnel", group_by="approval_state"),
    widget("By account", chart="bar", group_by="account", aggregate="sum", field="amount"),
    widget("By owner", chart="pie", group_by="owner"),
    widget(
        "By closing month",
        chart="line",
        group_by="expected_close",
        period="month",
        aggregate="sum",
        field="amount",
    ),
    widget("By tier", chart="pie", group_by="account.tier"),
    widget("By looked-up tier", chart="pie", group_by="account_tier"),
    widget("Accounts by industry", "account", chart="bar", group_by="industry"),
    widget("Interactions by channel", "interaction", chart="bar", group_by="channel"),
    widget(
        "Interactions per day", "interaction", chart="bar", group_by="occurred_at", period="day"
    ),
    widget(
        "Interactions per week", "interaction", group_by="occurred_at", chart="line", period="week"
    ),
    widget(
        "Interactions per month", "interaction", chart="bar", group_by="occurred_at", period="month"
    ),
    widget("Interactions by rating", "interaction", chart="bar", group_by="satisfaction"),
    widget("Contacts by consent", "contact", chart="pie", group_by="consent_marketing"),
    widget("Account value", kind="pareto", group_by="account", field="amount"),
    widget(
        "Won account value",
        kind="pareto",
        group_by="account",
        field="amount",
        filter={"==": [{"var": "stage"}, "won"]},
    ),
]


@pytest.fixture
def example_doc(example_doc):
    doc = copy.deepcopy(example_doc)
    doc["roles"].append({"name": "auditor", "label": "Auditor"})
    entities = {entity["name"]: entity for entity in doc["entities"]}
    entities["deal"]["permissions"]["auditor"] = ["read"]
    for fld in entities["deal"]["fields"]:
        if fld["name"] == "probability":
            fld["read_roles"] = ["sales_manager"]
    # Sales reps see the visits only.
    entities["interaction"]["row_rules"] = [
        {"role": "sales", "rule": {"==": [{"var": "channel"}, "visit"]}}
    ]
    doc["dashboards"] = [
        {"name": "checks", "label": {"en": "Checks", "zh": "检查"}, "widgets": CHECKS},
        {
            "name": "managers",
            "label": "For managers",
            "roles": ["sales_manager"],
            "widgets": [widget("Deals", kind="number")],
        },
        {
            "name": "broken",
            "widgets": [
                widget(
                    "Concatenated",
                    kind="number",
                    filter={"==": [{"cat": [{"var": "title"}, "!"]}, "d1!"]},
                )
            ],
        },
    ]
    return doc


@pytest.fixture
def auditor(engine, users):
    with engine.begin() as conn:
        create_user(conn, "audrey", ["auditor"], password="pw", method=FAST_HASH)
        user_id = conn.execute(
            select(users_table.c.id).where(users_table.c.username == "audrey")
        ).scalar_one()
    return Actor(user_id, "audrey", frozenset({"auditor"}))


@pytest.fixture
def pipeline(records, users):
    """The crafted data: ids of accounts and deals by name."""
    wang, li, zhao = users["wang"], users["li"], users["zhao"]
    accounts = {
        name: records.create(wang, APP, "account", {"name": name, "tier": tier, **extra})["id"]
        for name, tier, extra in [
            ("Acme", "A", {"industry": "manufacturing"}),
            ("Bolt", "B", {"industry": "manufacturing"}),
            ("Core", "C", {"industry": "retail"}),
        ]
    }

    def deal(actor, title, account, stage, amount, close=None, **extra):
        values = {"title": title, "account": accounts[account], "stage": stage, "amount": amount}
        if close:
            values["expected_close"] = close
        return records.create(actor, APP, "deal", {**values, **extra})["id"]

    deals = {
        "d1": deal(
            li,
            "d1",
            "Acme",
            "lead",
            "100.50",
            "2024-01-15",
            lines=[{"product": "bolt", "quantity": 2, "unit_price": "10.00"}],
        ),
        "d2": deal(li, "d2", "Acme", "won", "400.00", "2024-01-31"),
        "d3": deal(
            zhao,
            "d3",
            "Bolt",
            "won",
            "300.25",
            "2024-03-01",
            lines=[{"product": "nut", "quantity": 1, "unit_price": "5.50"}],
        ),
        "d4": deal(zhao, "d4", "Core", "proposal", "199.25"),
        "d5": deal(wang, "d5", "Bolt", "lost", "1000.00", "2024-03-31", probability=50),
        "d6": deal(
            wang,
            "d6",
            "Acme",
            "lead",
            "5000.00",
            "2024-02-10",
            lines=[{"product": "gear", "quantity": 1, "unit_price": "100.00"}],
        ),
    }
    records.delete(wang, APP, "deal", deals["d6"])  # the recycle bin counts for nothing
    with records.writing() as conn:
        runtime = records.runtime(APP, "deal", conn)
        records.system_update(conn, SYSTEM, runtime, deals["d1"], {"approval_state": "pending"})
        records.system_update(conn, SYSTEM, runtime, deals["d2"], {"approval_state": "approved"})
    # Around the ISO week boundary (Sunday -> Monday, UTC) and the end of March.
    for subject, channel, at, rating in [
        ("i1", "visit", "2024-03-03T23:30:00Z", 5),
        ("i2", "phone", "2024-03-04T00:10:00Z", 2),
        ("i3", "visit", "2024-03-10T23:59:59Z", None),
        ("i4", "email", "2024-03-18T08:00:00Z", 4),
        ("i5", "visit", "2024-03-31T23:30:00Z", 4),
    ]:
        values = {"subject": subject, "account": accounts["Acme"], "channel": channel}
        records.create(li, APP, "interaction", values | {"occurred_at": at, "satisfaction": rating})
    for name, consent in [("Ann", True), ("Bo", False), ("Cy", True)]:
        values = {"full_name": name, "consent_marketing": consent}
        records.create(li, APP, "contact", values)
    return {"accounts": accounts, "deals": deals}


def board(records, actor, name="checks", language="en"):
    result = compute_dashboard(records, actor, APP, name, language)
    return {w["label"]: w for w in result["widgets"]}


def series(item):
    return [(entry["label"], entry["value"]) for entry in item["series"]]


# --- numbers -----------------------------------------------------------------------------


def test_numbers_count_sum_and_average_the_live_rows(records, users, pipeline):
    widgets = board(records, users["admin"])
    assert widgets["Deals"]["value"] == 5
    assert widgets["Amount"]["value"] == "2000.00"
    assert widgets["Amount"]["currency"] == "CNY"
    assert widgets["Average amount"]["value"] == "400.0000"
    assert widgets["Open pipeline"]["value"] == "299.75"  # d1 + d4
    assert widgets["Tier A deals"]["value"] == 2  # the filter follows account.tier
    assert widgets["Dated deals"]["value"] == 4  # a count of a field counts its values
    assert widgets["Satisfaction"]["value"] == 15  # an integer sum stays an integer
    assert widgets["Mean satisfaction"]["value"] == "3.7500"  # 15 / 4, the empty one left out
    assert widgets["Probability"]["value"] == "50.00"
    # Child rows count only under live parents: d6's line is in the recycle bin with it.
    assert widgets["Line totals"]["value"] == "25.50"


def test_the_result_echoes_the_widget_for_the_page(records, users, pipeline):
    before = records.clock()
    result = compute_dashboard(records, users["admin"], APP, "checks", "zh")
    assert result["name"] == "checks" and result["label"] == "检查"
    as_of = dt.datetime.fromisoformat(result["as_of"].replace("Z", "+00:00"))
    assert before <= as_of <= records.clock()  # computed now, not a snapshot
    first = result["widgets"][0]
    assert first == {
        "type": "number",
        "label": "中文 Deals",
        "entity": "deal",
        "permitted": True,
        "aggregate": "count",
        "value": 5,
    }
    by_month = result["widgets"][14]
    assert {key: by_month[key] for key in ("chart", "group_by", "period", "field")} == {
        "chart": "line",
        "group_by": "expected_close",
        "period": "month",
        "field": "amount",
    }


# --- charts ------------------------------------------------------------------------------


def test_select_groups_come_in_option_order_with_every_option(records, users, pipeline):
    widgets = board(records, users["admin"])
    assert series(widgets["By stage"]) == [
        ("lead", 1),
        ("qualified", 0),
        ("proposal", 1),
        ("negotiation", 0),
        ("won", 2),
        ("lost", 1),
    ]
    assert widgets["By stage"]["series"][0]["key"] == "lead"


def test_a_state_funnel_has_the_states_labels_colours_and_order(records, users, pipeline):
    funnel = board(records, users["admin"])["Approval funnel"]["series"]
    assert [(e["key"], e["value"], e.get("color")) for e in funnel] == [
        ("draft", 3, None),
        ("pending", 1, "#f39c12"),
        ("approved", 1, "#27ae60"),
        ("rejected", 0, "#c0392b"),
    ]


def test_select_labels_and_colours_in_the_language_asked(records, users, pipeline):
    widgets = board(records, users["admin"], language="zh")
    assert series(widgets["中文 Accounts by industry"]) == [
        ("制造", 2),
        ("零售", 1),
        ("金融", 0),
        ("其他", 0),
    ]
    tiers = widgets["中文 By tier"]["series"]  # through the reference: the account's tier
    assert [(e["key"], e["value"], e.get("color")) for e in tiers] == [
        ("A", 2, "#c0392b"),
        ("B", 2, "#e67e22"),
        ("C", 1, "#7f8c8d"),
    ]
    looked_up = widgets["中文 By looked-up tier"]["series"]  # a lookup keeps the options
    assert [(e["key"], e["value"], e.get("color")) for e in looked_up] == [
        (e["key"], e["value"], e.get("color")) for e in tiers
    ]


def test_references_show_titles_and_users_their_names(records, users, pipeline):
    widgets = board(records, users["admin"])
    accounts = pipeline["accounts"]
    by_account = widgets["By account"]["series"]
    assert [(e["key"], e["label"], e["value"]) for e in by_account] == [
        (accounts["Bolt"], "Bolt", "1300.25"),
        (accounts["Acme"], "Acme", "500.50"),
        (accounts["Core"], "Core", "199.25"),
    ]
    assert series(widgets["By owner"]) == [("li", 2), ("zhao", 2), ("wang", 1)]
    assert widgets["By owner"]["series"][0]["key"] == users["li"].id


def test_periods_bucket_dates_by_month_filling_gaps_and_empty_last(records, users, pipeline):
    by_month = board(records, users["admin"])["By closing month"]["series"]
    assert [(e["key"], e["label"], e["value"]) for e in by_month] == [
        ("2024-01-01", "2024-01", "500.50"),
        ("2024-02-01", "2024-02", "0.00"),  # d6 is in the recycle bin
        ("2024-03-01", "2024-03", "1300.25"),
        (None, "(empty)", "199.25"),
    ]


@pytest.fixture
def engine(db_url, db_kind):
    """Sessions in Shanghai time on PostgreSQL: buckets must still be cut in UTC."""
    if db_kind == "postgresql":
        db_url += "%20-ctimezone%3DAsia/Shanghai"
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_datetimes_bucket_by_utc_day_iso_week_and_month(records, users, pipeline):
    widgets = board(records, users["admin"])
    assert [(e["key"], e["value"]) for e in widgets["Interactions per day"]["series"]][:3] == [
        ("2024-03-03", 1),
        ("2024-03-04", 1),
        ("2024-03-05", 0),
    ]
    weeks = widgets["Interactions per week"]["series"]
    assert [(e["key"], e["label"], e["value"]) for e in weeks] == [
        ("2024-02-26", "2024-W09", 1),  # Sunday 23:30 UTC is still the week before
        ("2024-03-04", "2024-W10", 2),  # Monday 00:10 to Sunday 23:59:59
        ("2024-03-11", "2024-W11", 0),
        ("2024-03-18", "2024-W12", 1),
        ("2024-03-25", "2024-W13", 1),  # 31 March 23:30 UTC, 1 April in Shanghai
    ]
    assert series(widgets["Interactions per month"]) == [("2024-03", 5)]
    days = widgets["Interactions per day"]["series"]
    assert (days[-1]["key"], len(days)) == ("2024-03-31", 29)


def test_numbers_group_in_order_and_yes_no_by_name(records, users, pipeline):
    widgets = board(records, users["admin"], language="zh")
    ratings = widgets["中文 Interactions by rating"]["series"]
    assert [(e["key"], e["label"], e["value"]) for e in ratings] == [
        (2, "2", 1),
        (4, "4", 2),
        (5, "5", 1),
        (None, "（空）", 1),
    ]
    consent = widgets["中文 Contacts by consent"]["series"]
    assert [(e["key"], e["label"], e["value"]) for e in consent] == [
        (True, "是", 2),
        (False, "否", 1),
    ]


# --- pareto --------------------------------------------------------------------------------


def test_pareto_ranks_accounts_with_shares_and_classes(records, users, pipeline):
    pareto = board(records, users["admin"])["Account value"]
    accounts = pipeline["accounts"]
    assert pareto["total"] == "2000.00"
    assert [
        (g["rank"], g["key"], g["label"], g["value"], g["share"], g["cumulative"], g["class"])
        for g in pareto["groups"]
    ] == [
        (1, accounts["Bolt"], "Bolt", "1300.25", 0.650125, 0.650125, "A"),
        (2, accounts["Acme"], "Acme", "500.50", 0.25025, 0.900375, "A"),
        (3, accounts["Core"], "Core", "199.25", 0.099625, 1.0, "B"),
    ]
    assert [(c["class"], c["groups"], c["value"]) for c in pareto["classes"]] == [
        ("A", 2, "1800.75"),
        ("B", 1, "199.25"),
        ("C", 0, "0.00"),
    ]


def group(key, value):
    return {"key": key, "label": str(key), "value": value}


def test_abc_boundaries_are_exact():
    ranked = classify([group(k, Decimal(v)) for k, v in [(1, 5), (2, 50), (3, 15), (4, 30)]])
    assert [(g["key"], g["cumulative"], g["class"]) for g in ranked["groups"]] == [
        (2, 0.5, "A"),
        (4, 0.8, "A"),  # reaches 80% exactly: still needed for it
        (3, 0.95, "B"),  # 80% was reached before it
        (1, 1.0, "C"),  # 95% was reached before it
    ]
    # One group alone past 80% is A all the same.
    ranked = classify([group(1, 90), group(2, 5), group(3, 5)])
    assert [g["class"] for g in ranked["groups"]] == ["A", "B", "C"]


def test_abc_ties_keep_the_order_given_and_classes_are_configurable():
    ranked = classify(
        [group(1, 10), group(2, 40), group(3, 10), group(4, 40)], {"A": 0.5, "B": 0.7, "C": 0.9}
    )
    assert [(g["key"], g["rank"], g["class"]) for g in ranked["groups"]] == [
        (2, 1, "A"),
        (4, 2, "A"),  # tied with 2, after it as given; 40% before it, short of 50%
        (1, 3, "C"),  # 80% before it: past B's 70%, short of C's 90%
        (3, 4, "D"),  # 90% before it: the rest
    ]
    assert [(c["class"], c["groups"]) for c in ranked["classes"]] == [
        ("A", 2),
        ("B", 0),
        ("C", 1),
        ("D", 1),
    ]


def test_abc_of_nothing_has_no_shares():
    ranked = classify([group(1, 0), group(2, 0)])
    assert [(g["share"], g["class"]) for g in ranked["groups"]] == [(None, None), (None, None)]
    assert classify([])["groups"] == []


def test_a_pareto_widget_with_crafted_values_and_ties(records, users):
    admin = users["admin"]
    accounts = [records.create(admin, APP, "account", {"name": f"acc{i}"})["id"] for i in range(5)]
    # Won: 40, 25, 15, 15 (a tie), 5 -> cumulative 40, 65, 80, 95, 100.
    for account, amount in zip(accounts, ["40", "25", "15", "15", "5"], strict=True):
        records.create(
            admin,
            APP,
            "deal",
            {"title": "t", "account": account, "stage": "won", "amount": amount},
        )
    records.create(
        admin, APP, "deal", {"title": "t", "account": accounts[4], "stage": "lost", "amount": "99"}
    )
    pareto = board(records, admin)["Won account value"]
    assert [(g["key"], g["cumulative"], g["class"]) for g in pareto["groups"]] == [
        (accounts[0], 0.4, "A"),
        (accounts[1], 0.65, "A"),
        (accounts[2], 0.8, "A"),  # before it 65%: needed to reach 80%
        (accounts[3], 0.95, "B"),  # the tie ranks by id
        (accounts[4], 1.0, "C"),
    ]


# --- who sees what ---------------------------------------------------------------------------


def test_own_records_only_for_read_own(records, users, pipeline):
    li = board(records, users["li"])
    assert li["Deals"]["value"] == 2
    assert li["Amount"]["value"] == "500.50"
    assert series(li["By stage"])[0] == ("lead", 1) and dict(series(li["By stage"]))["won"] == 1
    assert [g["label"] for g in li["Account value"]["groups"]] == ["Acme"]
    assert li["Line totals"]["value"] == "20.00"  # the lines of li's deal only
    zhao = board(records, users["zhao"])
    assert (zhao["Deals"]["value"], zhao["Amount"]["value"]) == (2, "499.50")


def test_row_rules_limit_what_is_counted(records, users, pipeline):
    channels = dict(series(board(records, users["li"])["Interactions by channel"]))
    assert channels == {"phone": 0, "email": 0, "wechat": 0, "visit": 3, "web": 0}
    everything = dict(series(board(records, users["wang"])["Interactions by channel"]))
    assert everything == {"phone": 1, "email": 1, "wechat": 0, "visit": 3, "web": 0}


def test_widgets_over_what_one_may_not_read_are_not_permitted(records, users, auditor, pipeline):
    widgets = board(records, auditor)
    assert widgets["Deals"]["value"] == 5
    assert widgets["Interactions by channel"] == {
        "type": "chart",
        "label": "Interactions by channel",
        "entity": "interaction",
        "permitted": False,
        "message": "you may not read interaction records",
    }
    # A field hidden by read_roles: its sum is hidden too.
    assert widgets["Probability"]["permitted"] is False
    assert "probability" in widgets["Probability"]["message"]
    assert board(records, users["wang"])["Probability"]["permitted"] is True
    # Following a reference into records one may not read is not permitted either.
    assert widgets["By tier"]["permitted"] is False


def test_titles_of_records_one_may_not_read_stay_ids(records, users, auditor, pipeline):
    accounts = pipeline["accounts"]
    by_account = board(records, auditor)["By account"]["series"]
    assert [(e["key"], e["label"]) for e in by_account] == [
        (accounts["Bolt"], f"#{accounts['Bolt']}"),
        (accounts["Acme"], f"#{accounts['Acme']}"),
        (accounts["Core"], f"#{accounts['Core']}"),
    ]


def test_dashboard_roles_decide_who_sees_it(records, users):
    with pytest.raises(Forbidden, match="sales_manager"):
        compute_dashboard(records, users["li"], APP, "managers")
    assert compute_dashboard(records, users["wang"], APP, "managers")["widgets"][0]["value"] == 0
    assert compute_dashboard(records, users["admin"], APP, "managers")["label"] == "For managers"
    names = [d["name"] for d in list_dashboards(records, users["li"], APP)]
    assert names == ["checks", "broken"]
    listed = list_dashboards(records, users["wang"], APP, "zh")
    assert listed[0] == {"name": "checks", "label": "检查", "widgets": len(CHECKS)}
    assert [d["name"] for d in listed] == ["checks", "managers", "broken"]


# --- empty data, errors ------------------------------------------------------------------------


def test_empty_data(records, users):
    widgets = board(records, users["admin"])
    assert widgets["Deals"]["value"] == 0
    assert widgets["Amount"]["value"] == "0.00"
    assert widgets["Average amount"]["value"] is None
    assert widgets["Satisfaction"]["value"] == 0
    assert [value for _, value in series(widgets["By stage"])] == [0] * 6
    assert widgets["By account"]["series"] == []
    assert widgets["By closing month"]["series"] == []
    pareto = widgets["Account value"]
    assert (pareto["groups"], pareto["total"]) == ([], "0.00")
    assert [c["share"] for c in pareto["classes"]] == [None, None, None]


def test_unknown_apps_and_dashboards_are_not_found(records, users):
    with pytest.raises(NotFound, match="no dashboard 'nope'"):
        compute_dashboard(records, users["admin"], APP, "nope")
    with pytest.raises(NotFound):
        compute_dashboard(records, users["admin"], "nowhere", "checks")


def test_a_filter_sql_cannot_compute_names_the_widget(records, users):
    with pytest.raises(ValidationFailed) as caught:
        compute_dashboard(records, users["admin"], APP, "broken")
    assert caught.value.problems[0].path == "/dashboards/2/widgets/0/filter"
    assert "cat" in caught.value.problems[0].message


# --- the presets' own dashboards -----------------------------------------------------------


def preset_board(engine, name: str, language: str = "en") -> dict:
    doc = load_preset(name)
    publish.apply_document(engine, doc)
    records = Records(engine)
    import_sample_data(records, SYSTEM, doc)
    (dashboard,) = doc["dashboards"]
    result = compute_dashboard(records, SYSTEM, name, dashboard["name"], language)
    return {w["label"]: w for w in result["widgets"]}


def test_b2b_sales_dashboard_on_its_sample_data(engine):
    widgets = preset_board(engine, "b2b_sales")
    # Open: 1,880,000 + 2,600,000 + 950,000 + 260,000 + 560,000 + 1,200,000.
    assert widgets["Open pipeline"]["value"] == "7450000.00"
    # Weighted by probability: 1,504,000 + 1,560,000 + 380,000 + 52,000 + 448,000 + 120,000.
    assert widgets["Weighted pipeline"]["value"] == "4064000.00"
    assert widgets["Won revenue"]["value"] == "4450000.00"
    assert series(widgets["Opportunities by stage"]) == [
        ("Lead", "1200000.00"),
        ("Needs confirmed", "260000.00"),
        ("Solution", "950000.00"),
        ("Proposal / quote", "2600000.00"),
        ("Negotiation", "2440000.00"),
        ("Won", "4450000.00"),
        ("Lost", "830000.00"),
    ]
    assert series(widgets["Won revenue by month"]) == [
        ("2026-03", "420000.00"),
        ("2026-04", "0.00"),
        ("2026-05", "0.00"),  # May's deal was lost
        ("2026-06", "680000.00"),
        ("2026-07", "0.00"),
        ("2026-08", "150000.00"),
        ("2026-09", "3200000.00"),
    ]
    assert series(widgets["Pipeline by closing month"])[0] == ("2026-12", "1952000.00")
    assert series(widgets["Lost reasons"]) == [
        ("Price", 1),
        ("Chose a competitor", 0),
        ("No budget", 1),
        ("No decision", 0),
        ("Product fit", 0),
    ]
    pareto = widgets["Account value (ABC)"]["groups"]
    # 3.2M of 4.45M is 71.9%: A; 0.68M takes it to 87.2%, still needed for 80%: A.
    assert [(g["value"], g["class"]) for g in pareto] == [
        ("3200000.00", "A"),
        ("680000.00", "A"),
        ("420000.00", "B"),
        ("150000.00", "C"),
    ]
    assert pareto[0]["label"] == "北京中能电力设备有限公司"


def test_retail_membership_dashboard_on_its_sample_data(engine):
    widgets = preset_board(engine, "retail_membership", "zh")
    assert widgets["有效会员数"]["value"] == 10
    # Eleven purchases not refunded, 57,714 in all.
    assert widgets["平均客单价"]["value"] == "5246.7273"
    assert series(widgets["会员等级分布"]) == [  # a reference: the tiers' titles
        ("普通会员", 3),
        ("银卡会员", 3),
        ("金卡会员", 2),
        ("钻石会员", 2),
    ]
    assert dict(series(widgets["各渠道销售"]))["门店"] == "50570.00"
    monthly = series(widgets["月度会员销售"])  # datetimes, by UTC month
    assert monthly[0] == ("2025-11", "568.00")
    assert dict(monthly)["2026-09"] == "31400.00" and dict(monthly)["2026-03"] == "0.00"
    assert len(monthly) == 13
    classes = [(g["label"], g["class"]) for g in widgets["会员价值ABC分析"]["groups"]]
    assert classes[:2] == [("刘建华", "A"), ("林晓雯", "A")]
    assert classes[-1] == ("王磊", "C")  # a refund: nothing net


def test_distribution_dealers_dashboard_on_its_sample_data(engine):
    widgets = preset_board(engine, "distribution_dealers")
    statuses = widgets["Orders by status"]["series"]
    assert [e["key"] for e in statuses] == [
        "submitted",
        "confirmed",
        "shipped",
        "received",
        "cancelled",
    ]
    assert sum(e["value"] for e in statuses) == 12
    pareto = widgets["Dealer contribution (ABC)"]
    assert pareto["total"] == widgets["Sales"]["value"]
    assert [g["class"] for g in pareto["groups"]].count("A") == 3


def test_period_gaps_are_filled_unless_the_axis_is_too_long():
    months = fill_periods([dt.date(2023, 11, 1), dt.date(2024, 2, 1)], "month")
    assert months == [
        dt.date(2023, 11, 1),
        dt.date(2023, 12, 1),
        dt.date(2024, 1, 1),
        dt.date(2024, 2, 1),
    ]
    weeks = fill_periods([dt.date(2024, 12, 23), dt.date(2025, 1, 6)], "week")
    assert weeks == [dt.date(2024, 12, 23), dt.date(2024, 12, 30), dt.date(2025, 1, 6)]
    far = [dt.date(2000, 1, 1), dt.date(2000, 1, 1) + dt.timedelta(days=MAX_FILLED_BUCKETS + 5)]
    assert fill_periods(far, "day") == far
