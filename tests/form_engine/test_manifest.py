"""The browser contract: JSON that names, for every rule, the fields it reads."""

from __future__ import annotations

import json

from form_engine import manifest, manifest_json

from .conftest import CONTEXT, model, with_form
from .test_submission import STORED


def test_the_manifest_is_json_and_names_what_each_rule_reads(cache, sales):
    page = manifest(cache.spec(sales, "deal"), STORED, context=CONTEXT, language="zh")
    page = json.loads(json.dumps(page, allow_nan=False))
    items = {item["field"]: item for item in page["items"]}
    lost = items["lost_reason"]
    assert lost["visible_when"] == {"==": [{"var": "stage"}, "lost"]}
    assert lost["reads"] == {"visible_when": ["stage"], "required_when": ["stage"]}
    assert items["title"]["reads"] == {} and items["title"]["required"]
    assert items["weighted_amount"]["display_only"]
    assert page["validations"] == [
        {
            "rule": {
                "or": [
                    {"!": {"var": "expected_close"}},
                    {">=": [{"var": "expected_close"}, {"var": "$today"}]},
                ]
            },
            "message": "预计成交日期不能早于今天",
            "fields": ["expected_close"],
            "reads": ["expected_close", "$today"],
        }
    ]
    assert page["formulas"] == [
        {
            "field": "weighted_amount",
            "expression": {"/": [{"*": [{"var": "amount"}, {"var": "probability"}]}, 100]},
            "reads": ["amount", "probability"],
        }
    ]
    line_total = page["children"]["lines"]["formulas"][0]
    assert line_total["reads"] == ["quantity", "unit_price"]
    assert page["children"]["lines"]["required"] == ["product"]


def test_the_manifest_says_how_to_read_each_input(cache, sales):
    page = manifest(cache.spec(sales, "deal"), STORED, context=CONTEXT, timezone="Asia/Shanghai")
    fields = page["fields"]
    assert fields["amount"] == {"type": "currency", "kind": "decimal", "scale": 2}
    assert fields["stage"]["options"][-1] == "lost"
    assert fields["account"]["kind"] == "id" and fields["lines"]["kind"] == "rows"
    assert fields["weighted_amount"] == {
        "type": "formula",
        "kind": "computed",
        "result": "decimal",
        "scale": 2,
    }
    assert page["timezone"] == "Asia/Shanghai"
    assert "weighted_amount" not in page["inputs"] and "lost_reason" in page["inputs"]
    # Decimals as numbers, as the browser's JSON has them; the stored text for inputs.
    assert page["base"]["amount"] == 1000 and page["base"]["weighted_amount"] == 400
    assert page["base"]["lines"][0]["unit_price"] == 10
    assert page["initial"]["amount"] == ["1000.00"] and page["initial"]["stage"] == ["qualified"]
    assert page["context"] == {
        "$user": {"id": 7, "roles": ["sales"], "username": "li"},
        "$now": "2026-03-01T09:30:00Z",
        "$today": "2026-03-01",
    }
    assert page["states"]["lost_reason"] == {
        "visible": False,
        "required": False,
        "read_only": False,
    }


def test_records_behind_followed_references_travel_with_the_manifest(cache, sales_doc):
    doc = with_form(
        sales_doc,
        {
            "name": "by_tier",
            "entity": "deal",
            "layout": [
                {
                    "section": "S",
                    "fields": [
                        "title",
                        {"field": "account", "read_only_when": {"var": "account.tier"}},
                    ],
                }
            ],
        },
    )
    spec = cache.spec(model(doc), "deal", "by_tier")
    page = manifest(
        spec,
        STORED,
        context=CONTEXT,
        resolve=lambda entity, record_id: {"id": record_id, "tier": "A", "annual_revenue": "9.5"},
    )
    assert page["references"] == ["account"]
    assert page["referenced"]["account"]["1"]["tier"] == "A"
    assert page["referenced"]["account"]["1"]["annual_revenue"] == 9.5
    assert page["states"]["account"]["read_only"]


def test_manifest_json_is_safe_inside_a_script_element(cache, sales):
    stored = {**STORED, "title": "</script><script>alert(1)</script> & \u2028"}
    text = manifest_json(cache.spec(sales, "deal"), stored, context=CONTEXT)
    assert "</" not in text and "<script" not in text and "&" not in text
    assert "\u2028" not in text
    assert json.loads(text)["base"]["title"] == stored["title"]
