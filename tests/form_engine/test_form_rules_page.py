"""form_rules.js on a page in Chromium: wrappers, inputs, computed outputs, child rows.

The page is the engine's own WTForms rendering with the manifest embedded; what
the browser would then submit goes back through ``submit`` and must be accepted
with the states the page showed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import escape
from playwright.sync_api import expect

from form_engine import bind, field_for, layout, manifest_json, submit

from .conftest import CONTEXT, model, with_form
from .test_submission import STORED

STATIC = Path(__file__).parents[2] / "app" / "static"
LOGIC_JS = STATIC / "vendor" / "json-logic-js" / "logic.js"
FORM_RULES_JS = STATIC / "js" / "form_rules.js"


@pytest.fixture
def page(browser):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == []


def row_html(row_form) -> str:
    cells = "".join(
        f'<span data-field="{cell.name}">{cell()}</span>' for cell in row_form if cell.name
    )
    buttons = (
        '<button type="button" data-move-row="up">up</button>'
        '<button type="button" data-remove-row>remove</button>'
    )
    return f"<div data-row>{cells}{buttons}</div>"


def render(spec, current=None, **options) -> str:
    form = bind(spec, current=current, timezone=options.get("timezone", "UTC"))
    parts = ['<form id="f">']
    for item in layout(spec).items():
        fld = field_for(form, item.field)
        if item.type == "child_table":
            rows = "".join(row_html(entry.form) for entry in fld.entries)
            template = row_html(fld.row_template().form)
            parts.append(
                f'<div data-field="{item.field}"><div data-rows="{item.field}">{rows}</div>'
                f'<template data-row-template="{item.field}">{template}</template>'
                f'<button type="button" data-add-row="{item.field}">add</button></div>'
            )
        else:
            parts.append(
                f'<div data-field="{item.field}"><label for="{fld.id}">{escape(item.label)}'
                f"</label>{fld()}<span data-rule-errors></span></div>"
            )
    rules = manifest_json(spec, current, context=CONTEXT, **options)
    parts.append(f'<script type="application/json" id="form-rules">{rules}</script></form>')
    return "".join(parts)


def open_form(page, spec, current=None, **options):
    page.set_content(render(spec, current, **options))
    page.add_script_tag(path=str(LOGIC_JS))
    page.add_script_tag(path=str(FORM_RULES_JS))


def submitted(page) -> dict[str, list[str]]:
    return page.evaluate(
        """() => {
        const out = {};
        for (const [key, value] of new FormData(document.getElementById('f'))) {
            if (typeof value === 'string') (out[key] = out[key] || []).push(value);
        }
        return out;
    }"""
    )


def test_stage_lost_shows_and_requires_the_reason(page, cache, sales):
    spec = cache.spec(sales, "deal")
    open_form(page, spec)
    reason = page.locator('[data-field="lost_reason"]')
    expect(reason).to_be_hidden()
    expect(page.locator("#lost_reason")).to_be_disabled()
    page.select_option("#stage", "lost")
    expect(reason).to_be_visible()
    expect(reason).to_have_class("is-required")
    expect(page.locator("#lost_reason")).to_be_enabled()
    expect(page.locator("#lost_reason")).to_have_js_property("required", True)
    page.select_option("#stage", "won")
    expect(reason).to_be_hidden()
    assert "lost_reason" not in submitted(page)


def test_formulas_validations_and_rows_update_live(page, cache, sales):
    spec = cache.spec(sales, "deal")
    open_form(page, spec)
    page.fill("#amount", "1000")
    page.fill("#probability", "33.5")
    expect(page.locator("output#weighted_amount")).to_have_text("335.00")
    page.fill("#expected_close", "2020-01-01")
    errors = page.locator('[data-field="expected_close"] [data-rule-errors]')
    expect(errors).to_have_text("Expected close cannot be in the past")
    page.fill("#expected_close", "2026-12-31")
    expect(errors).to_have_text("")

    add = page.locator('[data-add-row="lines"]')
    add.click()
    add.click()
    page.fill('[name="lines-0-product"]', "Valve")
    page.fill('[name="lines-0-unit_price"]', "2.5")
    page.fill('[name="lines-0-quantity"]', "3")
    expect(page.locator("output#lines-0-line_total")).to_have_text("7.50")
    page.fill('[name="lines-1-product"]', "Pump")
    # Move the second row up: names follow the new order.
    page.locator("[data-row]").nth(1).locator('[data-move-row="up"]').click()
    expect(page.locator('[name="lines-0-product"]')).to_have_value("Pump")
    expect(page.locator("output#lines-1-line_total")).to_have_text("7.50")
    page.locator("[data-row]").nth(0).locator("[data-remove-row]").click()
    expect(page.locator('[name="lines-0-product"]')).to_have_value("Valve")
    assert page.locator("[data-row]").count() == 1

    data = submitted(page)
    result = submit(spec, {**data, "title": ["T"], "account": ["1"]}, context=CONTEXT)
    assert result.ok, result.errors
    assert result.values["lines"] == [{"product": "Valve", "quantity": 3, "unit_price": "2.50"}]


def test_read_only_when_restores_the_stored_value(page, cache, sales_doc):
    doc = with_form(
        sales_doc,
        {
            "name": "deal_review",
            "entity": "deal",
            "layout": [
                {
                    "section": "Review",
                    "fields": [
                        "title",
                        "stage",
                        {"field": "amount", "read_only_when": {"==": [{"var": "stage"}, "won"]}},
                        {
                            "field": "probability",
                            "read_only_when": {"==": [{"var": "stage"}, "won"]},
                        },
                    ],
                }
            ],
        },
    )
    spec = cache.spec(model(doc), "deal", "deal_review")
    open_form(page, spec, STORED)
    page.fill("#amount", "5")
    page.select_option("#stage", "won")
    expect(page.locator("#amount")).to_have_value("1000.00")
    expect(page.locator("#amount")).to_have_js_property("readOnly", True)
    result = submit(spec, submitted(page), STORED, context=CONTEXT)
    assert result.ok and result.states["amount"].read_only
    assert "amount" not in result.values
    page.select_option("#stage", "lead")
    # The rules run on the change event: wait for them rather than read at once.
    expect(page.locator("#amount")).to_have_js_property("readOnly", False)
    page.fill("#amount", "7")
    result = submit(spec, submitted(page), STORED, context=CONTEXT)
    assert result.ok and result.values["amount"] == "7.00"
