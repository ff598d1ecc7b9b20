"""GET /api/v1/apps/{app}/dashboards[/{name}]: computed dashboards over the HTTP API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from jsonschema import Draft202012Validator

from . import test_api as api
from .test_api import APP, assert_error, new_account, new_deal

# The API's fixtures, under the names tests ask for.
app = api.app
engine = api.engine
tokens = api.tokens
as_ = api.as_

BOARD = f"/api/v1/apps/{APP}/dashboards"


@pytest.fixture
def example_doc():
    doc = json.loads(api.EXAMPLE.read_text(encoding="utf-8"))
    doc["dashboards"].append(
        {
            "name": "managers",
            "label": {"en": "For managers", "zh": "经理看板"},
            "roles": ["sales_manager"],
            "widgets": [
                {"type": "number", "entity": "deal", "aggregate": "sum", "field": "amount"},
                {
                    "type": "chart",
                    "chart": "line",
                    "entity": "deal",
                    "group_by": "expected_close",
                    "period": "week",
                },
            ],
        }
    )
    return doc


@pytest.fixture
def deals(as_):
    """Two accounts; li owns two deals (one won), zhao one, wang one (won)."""
    acme = new_account(as_["wang"], "Acme")["id"]
    bolt = new_account(as_["wang"], "Bolt")["id"]
    new_deal(as_["li"], acme, stage="proposal", amount="100.00", expected_close="2024-05-06")
    new_deal(as_["li"], acme, stage="won", amount="250.00", expected_close="2024-05-12")
    new_deal(as_["zhao"], bolt, stage="lead", amount="30.00")
    new_deal(as_["wang"], bolt, stage="won", amount="1000.00", expected_close="2024-05-13")
    return {"acme": acme, "bolt": bolt}


def widgets(response) -> dict[str, dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {w["label"]: w for w in response.get_json()["widgets"]}


def test_the_example_dashboard_computed_for_the_admin(as_, deals):
    response = as_["root"].get(f"{BOARD}/sales_kpis")
    body = response.get_json()
    assert (body["name"], body["label"]) == ("sales_kpis", "Sales KPIs")
    found = widgets(response)
    assert found["Open pipeline"]["value"] == "130.00"  # the proposal and the lead
    stages = found["Deals by stage"]["series"]
    assert [(s["key"], s["value"]) for s in stages] == [
        ("lead", 1),
        ("qualified", 0),
        ("proposal", 1),
        ("negotiation", 0),
        ("won", 2),
        ("lost", 0),
    ]
    pareto = found["Account value (ABC)"]
    assert [(g["key"], g["label"], g["value"], g["class"]) for g in pareto["groups"]] == [
        (deals["bolt"], "Bolt", "1000.00", "A"),  # 80% of 1250 exactly
        (deals["acme"], "Acme", "250.00", "B"),  # 80% was reached before it
    ]
    assert pareto["total"] == "1250.00"


def test_the_api_computes_when_asked_and_says_when(as_, deals):
    before = dt.datetime.now(dt.UTC)
    body = as_["root"].get(f"{BOARD}/sales_kpis").get_json()
    as_of = dt.datetime.fromisoformat(body["as_of"].replace("Z", "+00:00"))
    assert before <= as_of <= dt.datetime.now(dt.UTC)
    # Live, not a snapshot: a new deal counts at once.
    new_deal(as_["root"], deals["acme"], stage="lead", amount="5.00")
    found = widgets(as_["root"].get(f"{BOARD}/sales_kpis"))
    assert found["Open pipeline"]["value"] == "135.00"


def test_a_sales_rep_sees_the_numbers_of_their_own_deals(as_, deals):
    found = widgets(as_["li"].get(f"{BOARD}/sales_kpis"))
    assert found["Open pipeline"]["value"] == "100.00"
    assert [g["label"] for g in found["Account value (ABC)"]["groups"]] == ["Acme"]
    assert dict((s["key"], s["value"]) for s in found["Deals by stage"]["series"])["won"] == 1


def test_a_widget_over_unreadable_records_is_not_permitted(as_, deals):
    found = widgets(as_["chen"].get(f"{BOARD}/sales_kpis"))  # finance: no interactions
    assert found["Interactions by channel"]["permitted"] is False
    assert "interaction" in found["Interactions by channel"]["message"]
    assert "series" not in found["Interactions by channel"]
    assert found["Open pipeline"]["value"] == "130.00"


def test_labels_in_the_language_asked_or_accepted(as_, deals):
    assert "在途金额" in widgets(as_["root"].get(f"{BOARD}/sales_kpis?language=zh"))
    accepted = as_["root"].get(f"{BOARD}/sales_kpis", headers={"Accept-Language": "zh-CN,zh"})
    assert accepted.get_json()["label"] == "销售指标"


def test_dashboard_roles(as_, deals):
    assert_error(as_["li"].get(f"{BOARD}/managers"), 403, "")
    found = as_["wang"].get(f"{BOARD}/managers?language=zh").get_json()
    assert found["label"] == "经理看板"
    number, weeks = found["widgets"]
    assert (number["label"], number["value"]) == ("商机", "1380.00")
    assert [(s["key"], s["label"], s["value"]) for s in weeks["series"]] == [
        ("2024-05-06", "2024-W19", 2),  # Monday 6 and Sunday 12 May
        ("2024-05-13", "2024-W20", 1),
        (None, "（空）", 1),
    ]
    assert as_["root"].get(f"{BOARD}/managers").status_code == 200


def test_the_list_holds_what_the_caller_may_see(as_):
    listed = as_["li"].get(BOARD)
    assert listed.status_code == 200
    assert listed.get_json() == {
        "items": [{"name": "sales_kpis", "label": "Sales KPIs", "widgets": 4}]
    }
    names = [item["name"] for item in as_["wang"].get(BOARD).get_json()["items"]]
    assert names == ["sales_kpis", "managers"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/apps/nowhere/dashboards/sales_kpis",
        f"{BOARD}/nothing",
        "/api/v1/apps/nowhere/dashboards",
    ],
)
def test_unknown_apps_and_dashboards_are_404(as_, url):
    assert_error(as_["root"].get(url), 404, "")


def test_authentication_is_required(app, tokens):
    response = app.test_client().get(f"{BOARD}/sales_kpis")
    assert_error(response, 401, "")


def test_responses_match_the_openapi_description(as_, deals):
    spec = as_["root"].get("/api/v1/openapi.json").get_json()
    assert "as_of" in spec["components"]["schemas"]["Dashboard"]["required"]
    operation = spec["paths"]["/api/v1/apps/{app}/dashboards/{name}"]["get"]
    assert set(operation["responses"]) >= {"200", "401", "403", "404"}
    parameters = spec["paths"]["/api/v1/apps/{app}/dashboards/{name}"]["parameters"]
    assert {p["name"]: p["schema"].get("enum") for p in parameters} == {
        "app": [APP],
        "name": ["managers", "sales_kpis"],
    }

    def validator(name):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        return Draft202012Validator(schema)

    for who in ("root", "li", "chen", "wang"):
        for name in ("sales_kpis", "managers"):
            response = as_[who].get(f"{BOARD}/{name}")
            if response.status_code == 200:
                validator("Dashboard").validate(response.get_json())
    listed = as_["root"].get(BOARD).get_json()
    for item in listed["items"]:
        validator("DashboardEntry").validate(item)
