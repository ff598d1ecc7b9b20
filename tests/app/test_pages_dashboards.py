"""The dashboard page: numbers, charts (data as JSON and as tables), pareto, roles, escaping.

The sales_pipeline example gets two more dashboards here: one for managers only
(a monthly line chart), one whose labels are markup. Five deals over three
accounts, one of them named like a script, give numbers worked out by hand.
The page shows snapshots: ``dashboard_page`` refreshes them first, as the page
itself asks the browser to (test_pages_dashboards_snapshots.py tests how).
"""

from __future__ import annotations

import html as markup
import json
import re

import pytest
from sqlalchemy import select

from app import accounts, create_app
from app.api.service import KEY
from app.views.dashboards import amount_text, share_text
from metamodel import publish, store
from metamodel.system_tables import users
from records.actor import Actor

from .test_api import EXAMPLE, FAST_HASH
from .web import PASSWORD, csrf_token, page_of, signed_in

APP = "sales_pipeline"
BOARD = f"/a/{APP}/dashboards"
PEOPLE = {"root": ["admin"], "li": ["sales"], "wang": ["sales_manager"], "chen": ["finance"]}
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
WON = "#057a55"


def example_with_dashboards() -> dict:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    deal = next(e for e in doc["entities"] if e["name"] == "deal")
    stage = next(f for f in deal["fields"] if f["name"] == "stage")
    stage["options"][4] |= {"label": {"en": "Won", "zh": "赢单"}, "color": WON}
    doc["dashboards"] += [
        {
            "name": "managers",
            "label": {"en": "For managers", "zh": "经理看板"},
            "roles": ["sales_manager"],
            "widgets": [
                {"type": "number", "label": "Deals", "entity": "deal", "aggregate": "count"},
                {
                    "type": "chart",
                    "chart": "line",
                    "label": "Amount by closing month",
                    "entity": "deal",
                    "group_by": "expected_close",
                    "period": "month",
                    "aggregate": "sum",
                    "field": "amount",
                },
                {
                    "type": "chart",
                    "chart": "pie",
                    "label": "Deals by stage",
                    "entity": "deal",
                    "group_by": "stage",
                },
            ],
        },
        {
            "name": "marked_up",
            "label": SCRIPT,
            "description": f"About {SCRIPT}",
            "widgets": [
                {"type": "number", "label": SCRIPT, "entity": "deal"},
                {"type": "chart", "chart": "bar", "entity": "deal", "group_by": "account"},
            ],
        },
    ]
    return doc


@pytest.fixture
def web_app(db_url, tmp_path):
    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "i"), "secret_key": "t"}
    )
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example_with_dashboards())
    with engine.begin() as conn:
        for name, roles in PEOPLE.items():
            accounts.create_user(conn, name, roles, password=PASSWORD, method=FAST_HASH)
    yield app
    engine.dispose()


@pytest.fixture
def actors(web_app) -> dict[str, Actor]:
    with web_app.extensions["crm"].engine.connect() as conn:
        ids = dict(conn.execute(select(users.c.username, users.c.id)).all())
    return {name: Actor(ids[name], name, frozenset(roles)) for name, roles in PEOPLE.items()}


@pytest.fixture
def deals(web_app, actors) -> dict[str, int]:
    """Won: Bolt 6,000, Acme 3,000, the script 1,000; open: Acme 1,500 (li), Bolt 30."""
    service = web_app.extensions[KEY]
    root, li, wang = actors["root"], actors["li"], actors["wang"]
    ids = {
        name: service.create(root, APP, "account", {"name": name})["id"]
        for name in ("Acme", "Bolt", SCRIPT)
    }

    def deal(actor, account, stage, amount, close=None):
        values = {"title": "Deal", "account": ids[account], "stage": stage, "amount": amount}
        service.create(actor, APP, "deal", values | ({"expected_close": close} if close else {}))

    deal(li, "Acme", "proposal", "1500.00", "2024-05-06")
    deal(li, "Acme", "won", "3000.00", "2024-05-12")
    deal(wang, "Bolt", "lead", "30.00")
    deal(wang, "Bolt", "won", "6000.00", "2024-07-01")
    deal(root, SCRIPT, "won", "1000.00", "2024-05-20")
    return ids


def refresh(client, name: str, **form) -> str:
    """The widgets of dashboard ``name`` computed anew, as the page's htmx asks: their HTML."""
    path = f"{BOARD}/{name}"
    response = client.post(
        f"{path}/refresh",
        data=form,
        headers={"X-CSRFToken": csrf_token(client, path), "HX-Request": "true"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:3000]
    return response.get_data(as_text=True)


def dashboard_page(client, name: str) -> str:
    """The page of dashboard ``name`` once its widgets are computed."""
    refresh(client, name)
    return page_of(client, f"{BOARD}/{name}")


def widgets_of(page: str) -> dict[str, str]:
    """Each widget card's HTML, by its (unescaped) heading."""
    found = {}
    for card in re.findall(r'<section class="card widget.*?</section>', page, re.S):
        heading = re.search(r"<h2[^>]*>(.*?)</h2>", card, re.S).group(1)
        found[markup.unescape(heading)] = card
    return found


def words(fragment: str) -> str:
    return " ".join(markup.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def rows_of(card: str, table_class: str = "chart-table") -> list[list[str]]:
    table = re.search(rf'<table class="data {table_class}">(.*?)</table>', card, re.S).group(1)
    body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)
    return [
        [words(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def chart_data(card: str) -> dict:
    block = re.search(r'<script type="application/json" id="[^"]+">(.*?)</script>', card, re.S)
    return json.loads(block.group(1))


# --- what the page shows -------------------------------------------------------------------


def test_numbers_charts_and_pareto_for_the_admin(web_app, deals):
    page = dashboard_page(signed_in(web_app, "root"), "sales_kpis")
    assert "<h1>Sales KPIs</h1>" in page
    assert 'src="/static/vendor/chart.js/chart.umd.min.js"' in page
    assert 'src="/static/js/dashboards.js"' in page
    cards = widgets_of(page)
    assert list(cards) == [
        "Open pipeline",
        "Deals by stage",
        "Interactions by channel",
        "Account value (ABC)",
    ]
    # Money with its currency and separators: the proposal and the lead.
    number = re.search(r'<p class="big-number"[^>]*>(.*?)</p>', cards["Open pipeline"]).group(1)
    assert number == "CN¥1,530.00"

    funnel = cards["Deals by stage"]
    assert "chart-funnel" in funnel and '<canvas data-chart="widget-2-data"' in funnel
    assert rows_of(funnel) == [
        ["lead", "1"],
        ["qualified", "0"],
        ["proposal", "1"],
        ["negotiation", "0"],
        ["Won", "3"],
        ["lost", "0"],
    ]
    data = chart_data(funnel)
    assert data["chart"] == "funnel"
    assert data["labels"] == ["lead", "qualified", "proposal", "negotiation", "Won", "lost"]
    assert data["values"] == [1, 0, 1, 0, 3, 0]
    assert data["colors"][4] == WON and len(set(data["colors"])) == 6  # the others: a palette
    assert f'<span class="swatch" style="--swatch: {WON}" aria-hidden="true"></span>Won' in funnel

    pareto = cards["Account value (ABC)"]
    assert rows_of(pareto, "pareto-table") == [
        ["1", "Bolt", "CN¥6,000.00", "60.0%", "60.0%", "A"],
        ["2", "Acme", "CN¥3,000.00", "30.0%", "90.0%", "A"],
        ["3", SCRIPT, "CN¥1,000.00", "10.0%", "100.0%", "B"],
    ]
    assert "CN¥10,000.00" in words(re.search(r"<tfoot>.*?</tfoot>", pareto, re.S).group(0))
    summary = words(re.search(r'<ul class="abc-summary">.*?</ul>', pareto, re.S).group(0))
    assert summary == (
        "A 2 groups · CN¥9,000.00 · 90.0% B 1 group · CN¥1,000.00 · 10.0% "
        "C 0 groups · CN¥0.00 · 0.0%"
    )
    data = chart_data(pareto)
    assert data["values"] == [6000.0, 3000.0, 1000.0]
    assert data["cumulative"] == [60.0, 90.0, 100.0]
    assert data["currency"] == "CNY" and data["locale"] == "en"
    assert data["colors"][0] == data["colors"][1] != data["colors"][2]  # A, A, B


def test_a_sales_rep_sees_the_numbers_of_their_own_deals(web_app, deals):
    cards = widgets_of(dashboard_page(signed_in(web_app, "li"), "sales_kpis"))
    assert "CN¥1,500.00" in cards["Open pipeline"]
    assert rows_of(cards["Account value (ABC)"], "pareto-table") == [
        ["1", "Acme", "CN¥3,000.00", "100.0%", "100.0%", "A"]
    ]


def test_a_widget_the_user_may_not_read_shows_why(web_app, deals):
    page = dashboard_page(signed_in(web_app, "chen"), "sales_kpis")  # finance: no interactions
    cards = widgets_of(page)
    refused = cards["Interactions by channel"]
    assert "widget-refused" in refused and "<canvas" not in refused
    assert "Not available to you" in refused
    assert "you may not read interaction records" in refused
    assert "CN¥1,530.00" in cards["Open pipeline"]  # the rest still shows
    assert page.count("<canvas") == 2


def test_a_period_chart_in_time_order_with_the_empty_ones(web_app, deals):
    cards = widgets_of(dashboard_page(signed_in(web_app, "wang"), "managers"))
    assert re.search(r'<p class="big-number"[^>]*>5</p>', cards["Deals"])
    line = cards["Amount by closing month"]
    assert "chart-line" in line
    assert rows_of(line) == [
        ["2024-05", "CN¥5,500.00"],
        ["2024-06", "CN¥0.00"],
        ["2024-07", "CN¥6,000.00"],
        ["(empty)", "CN¥30.00"],
    ]
    assert "Sum of Amount" in line and "Expected close" in line
    data = chart_data(line)
    assert (data["chart"], data["values"]) == ("line", [5500.0, 0.0, 6000.0, 30.0])
    pie = chart_data(cards["Deals by stage"])
    assert pie["chart"] == "pie" and len(pie["colors"]) == 6 and pie["colors"][4] == WON


def test_labels_and_numbers_in_the_users_language(web_app, deals):
    page = dashboard_page(signed_in(web_app, "wang", language="zh"), "sales_kpis")
    assert "<h1>销售指标</h1>" in page
    cards = widgets_of(page)
    assert "¥1,530.00" in cards["在途金额"] and "CN¥" not in cards["在途金额"]
    assert ["赢单", "3"] in rows_of(cards["各阶段商机"])
    assert chart_data(cards["各阶段商机"])["locale"] == "zh-CN"
    managers = widgets_of(dashboard_page(signed_in(web_app, "wang", "zh"), "managers"))
    assert rows_of(managers["Amount by closing month"])[-1] == ["（空）", "¥30.00"]


def test_dashboard_roles_unknown_names_and_sign_in(web_app, deals):
    li = signed_in(web_app, "li")
    refused = page_of(li, f"{BOARD}/managers", status=403)
    assert "You do not have access to this" in refused and "sales_manager" in refused
    assert "<canvas" not in refused
    assert dashboard_page(signed_in(web_app, "root"), "managers").count("<canvas") == 2
    assert "Not found" in page_of(li, f"{BOARD}/nothing", status=404)
    page_of(li, "/a/no_such_app/dashboards/sales_kpis", status=404)
    anonymous = web_app.test_client().get(f"{BOARD}/sales_kpis")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/sign-in")


def test_the_sidebar_links_the_dashboards_the_user_may_see(web_app):
    wang = page_of(signed_in(web_app, "wang"), "/")
    assert f'href="{BOARD}/sales_kpis"' in wang and f'href="{BOARD}/managers"' in wang
    li = page_of(signed_in(web_app, "li"), "/")
    assert f'href="{BOARD}/sales_kpis"' in li and f'href="{BOARD}/managers"' not in li


def test_labels_are_escaped_everywhere(web_app, deals):
    page = dashboard_page(signed_in(web_app, "root"), "marked_up")
    assert SCRIPT not in page
    assert f"<h1>{ESCAPED}</h1>" in page and f"About {ESCAPED}" in page
    assert f"<title>{ESCAPED} · CRM</title>" in page
    cards = widgets_of(page)
    assert list(cards) == [SCRIPT, "Deal"]  # a widget without a label: the entity's
    assert f'aria-label="{ESCAPED}"' not in page  # numbers have no canvas
    chart = cards["Deal"]
    assert [SCRIPT, "1"] in rows_of(chart)
    # In the JSON for the script, < and > are escaped, so the block cannot be closed early.
    block = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', chart, re.S)
    assert "\\u003cscript\\u003e" in block.group(1) and "<" not in block.group(1)
    assert SCRIPT in chart_data(chart)["labels"]


def test_an_htmx_request_gets_the_whole_page(web_app, deals):
    """The page has no partial of its own: htmx boosts get the page (with its scripts)."""
    client = signed_in(web_app, "root")
    response = client.get(f"{BOARD}/sales_kpis", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "<h1>Sales KPIs</h1>" in response.get_data(True)


# --- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "aggregate", "english", "chinese"),
    [
        (1234567, None, "count", "1,234,567", "1,234,567"),
        (0, None, "count", "0", "0"),
        ("1234567.50", "CNY", "sum", "CN¥1,234,567.50", "¥1,234,567.50"),
        ("99.5", "USD", "sum", "$99.50", "US$99.50"),
        ("1234.500", None, "sum", "1,234.500", "1,234.500"),
        ("4.2500", None, "avg", "4.25", "4.25"),
        ("1234.0000", "CNY", "avg", "CN¥1,234.00", "¥1,234.00"),
        (None, None, "avg", "—", "—"),
    ],
)
def test_amounts_in_each_language(web_app, value, currency, aggregate, english, chinese):
    for language, expected in (("en", english), ("zh", chinese)):
        with web_app.test_request_context(headers={"Accept-Language": language}):
            assert amount_text(value, currency, aggregate) == expected


def test_shares_as_percentages(web_app):
    with web_app.test_request_context():
        assert (share_text(0.8), share_text(0.123456), share_text(None)) == ("80.0%", "12.3%", "—")
