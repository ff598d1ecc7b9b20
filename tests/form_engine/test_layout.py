"""Layouts: the deal form of the sales_pipeline example, and forms generated without one."""

from __future__ import annotations

import json

import pytest

from form_engine import layout
from metamodel.errors import NotFound

from .conftest import model, with_form

STAGE_IS_LOST = {"==": [{"var": "stage"}, "lost"]}


def test_deal_form_tabs_sections_and_items(cache, sales):
    page = layout(cache.spec(sales, "deal"), "en")
    assert (page.form, page.entity, page.app) == ("deal_main", "deal", "sales_pipeline")
    # The first two sections have no tab; "Pricing" starts a tab of its own.
    assert [(t.label, t.named) for t in page.tabs] == [("Details", False), ("Pricing", True)]
    first, pricing = page.tabs
    assert [(s.label, s.columns) for s in first.sections] == [("Deal", 2), ("Why lost", 1)]
    assert [i.field for i in first.sections[0].items] == [
        "title",
        "account",
        "account_tier",
        "stage",
        "amount",
        "probability",
        "weighted_amount",
        "expected_close",
    ]
    assert [(s.label, [i.field for i in s.items]) for s in pricing.sections] == [
        ("Lines", ["lines", "discount_pct"])
    ]


def test_lost_reason_is_conditional_on_stage(cache, sales):
    item = layout(cache.spec(sales, "deal")).item("lost_reason")
    assert item.visible_when == STAGE_IS_LOST
    assert item.required_when == STAGE_IS_LOST
    assert item.read_only_when is None
    assert item.has_rules and not item.required and not item.read_only
    assert item.type == "long_text"


def test_computed_fields_are_read_only_and_inputs_are_not(cache, sales):
    page = layout(cache.spec(sales, "deal"))
    read_only = {i.field for i in page.items() if i.read_only}
    assert read_only == {"account_tier", "weighted_amount"}
    assert page.item("weighted_amount").computed
    assert page.item("title").required and page.item("account").required


def test_chinese_labels_options_and_child_columns(cache, sales):
    page = layout(cache.spec(sales, "deal"), "zh")
    assert [t.label for t in page.tabs] == ["详情", "报价"]
    assert page.tabs[0].sections[0].label == "商机"
    lines = page.item("lines")
    assert lines.full_width and lines.width == 1  # the section has one column
    assert [c.field for c in lines.columns] == ["product", "quantity", "unit_price", "line_total"]
    assert [c.read_only for c in lines.columns] == [False, False, False, True]
    account = cache.spec(sales, "account")
    tier = layout(account, "zh").item("tier")
    assert tier.options[0] == {"value": "A", "label": "A", "color": "#c0392b"}
    industry = layout(account, "zh").item("industry")
    assert industry.options[0]["label"] == "制造"
    assert layout(account, "zh").item("annual_revenue").label == "年营收"


def test_reference_items_name_their_target(cache, sales):
    item = layout(cache.spec(sales, "deal")).item("account")
    assert item.target == {"app": "sales_pipeline", "entity": "account", "title_field": "name"}


def test_default_form_is_every_field_in_one_section_of_two_columns(cache, sales):
    page = layout(cache.spec(sales, "account"))
    assert page.form is None
    assert len(page.tabs) == 1 and len(page.tabs[0].sections) == 1
    section = page.tabs[0].sections[0]
    assert (section.label, section.columns) == ("Account", 2)
    assert [i.field for i in section.items] == [
        "code",
        "name",
        "industry",
        "tier",
        "website",
        "annual_revenue",
        "account_manager",
        "open_deal_value",
        "notes",
    ]
    assert {i.field for i in section.items if i.read_only} == {"code", "open_deal_value"}


def test_default_form_leaves_out_engine_owned_fields_and_widens_child_tables(cache, kit):
    page = layout(cache.spec(kit, "thing"))
    names = [i.field for i in page.items()]
    assert "status" not in names  # the workflow's state field
    assert len(names) == len(kit.entities["thing"].fields) - 1
    parts = page.item("parts")
    assert parts.full_width and parts.width == 2
    assert {i.field for i in page.items() if i.read_only} == {
        "code",
        "double",
        "other_tier",
        "parts_total",
    }


def test_a_state_field_placed_on_a_form_is_read_only(cache, kit_doc):
    doc = with_form(
        kit_doc,
        {
            "name": "review",
            "entity": "thing",
            "layout": [{"section": "Review", "fields": ["title", "status"]}],
        },
    )
    page = layout(cache.spec(model(doc), "thing", "review"))
    assert page.item("status").read_only and not page.item("title").read_only
    assert [o["value"] for o in page.item("status").options] == ["draft", "done"]


def test_locked_fields_show_read_only(cache, sales):
    page = layout(cache.spec(sales, "deal"), locked={"amount"})
    assert page.item("amount").read_only and not page.item("title").read_only


def test_width_is_capped_by_the_section(cache, kit_doc):
    doc = with_form(
        kit_doc,
        {
            "name": "wide",
            "entity": "thing",
            "layout": [
                {"section": "A", "columns": 3, "fields": [{"field": "title", "width": 2}]},
                {"section": "B", "columns": 1, "fields": [{"field": "notes", "width": 4}]},
            ],
        },
    )
    page = layout(cache.spec(model(doc), "thing", "wide"))
    assert (page.item("title").width, page.item("notes").width) == (2, 1)


def test_unknown_form_is_not_found(cache, sales):
    with pytest.raises(NotFound, match="no form 'nope'"):
        cache.spec(sales, "deal", "nope")
    with pytest.raises(NotFound, match="no entity 'ghost'"):
        cache.spec(sales, "ghost")


def test_layout_is_plain_data(cache, sales):
    data = layout(cache.spec(sales, "deal"), "zh").as_dict()
    text = json.dumps(data, ensure_ascii=False)
    assert '"visible_when": {"==": [{"var": "stage"}, "lost"]}' in text
    assert data["tabs"][1]["sections"][0]["items"][0]["columns"][0]["field"] == "product"
