"""Record pages in Chromium: the generated deal form (conditional section, child lines,
the account picker), the record's page, a conflict between two tabs, the form in Chinese,
and the public enquiry form signed out. No console errors, no CSP violations."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from app.api.service import KEY
from metamodel.system_tables import users
from records.actor import Actor

from .conftest import PEOPLE, Console, screenshot, sign_in

APP = "sales_pipeline"
COMPANY = "上海华东贸易有限公司"


def actor(web_app, name: str) -> Actor:
    with web_app.extensions["crm"].engine.connect() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == name)).scalar_one()
    return Actor(user_id, name, frozenset(PEOPLE[name]))


def test_a_deal_through_the_form_its_page_and_a_conflict(web_app, live_server, page, context):
    service = web_app.extensions[KEY]
    account = service.create(actor(web_app, "li"), APP, "account", {"name": COMPANY, "tier": "A"})
    service.create(actor(web_app, "li"), APP, "account", {"name": "北京华北机械有限公司"})
    base = live_server.url
    sign_in(page, base, "li")
    page.goto(f"{base}/a/{APP}/deal/new")
    page.fill("#title", "Pump retrofit")

    # The account by part of its Chinese name.
    page.fill("#account-search", "华东")
    option = page.locator("#account-results [data-pick]")
    expect(option).to_have_count(1)
    expect(option).to_contain_text(COMPANY)
    option.click()
    expect(page.locator("#account")).to_have_value(str(account["id"]))
    expect(page.locator("#account-search")).to_have_value(COMPANY)
    # The lookup follows the picked record at once.
    expect(page.locator("output#account_tier")).to_have_text("A")

    # The lost-reason section comes and goes with the stage, and is then required.
    lost_reason = page.locator('[data-field="lost_reason"]')
    expect(lost_reason).to_be_hidden()
    page.select_option("#stage", "lost")
    expect(lost_reason).to_be_visible()
    expect(page.locator("#lost_reason")).to_have_attribute("required", "")
    page.select_option("#stage", "proposal")
    expect(lost_reason).to_be_hidden()
    expect(page.locator("fieldset[data-section]", has_text="Why lost")).to_be_hidden()
    page.fill("#amount", "1000")
    page.fill("#probability", "40")
    expect(page.locator("output#weighted_amount")).to_have_text("400.00")

    screenshot(page, "record-form")

    # Lines on the Pricing tab, with their totals worked out as they are typed.
    page.click("#form-tab-2")
    add = page.locator('[data-add-row="lines"]')
    add.click()
    add.click()
    page.fill('[name="lines-0-product"]', "Valve")
    page.fill('[name="lines-0-quantity"]', "2")
    page.fill('[name="lines-0-unit_price"]', "10.5")
    expect(page.locator("output#lines-0-line_total")).to_have_text("21.00")
    page.fill('[name="lines-1-product"]', "Pipe")
    page.fill('[name="lines-1-quantity"]', "3")
    page.fill('[name="lines-1-unit_price"]', "4")
    expect(page.locator("output#lines-1-line_total")).to_have_text("12.00")
    page.fill('[name="lines-0-quantity"]', "3")
    expect(page.locator("output#lines-0-line_total")).to_have_text("31.50")
    # Leaving a cell asks the server (inline validation); rows added later too.
    page.fill('[name="lines-1-quantity"]', "0")
    page.locator('[name="lines-1-quantity"]').blur()
    expect(page.locator("#lines-1-quantity-errors")).to_have_text("must be at least 1")
    page.fill('[name="lines-1-quantity"]', "3")
    page.locator('[name="lines-1-quantity"]').blur()
    expect(page.locator("#lines-1-quantity-errors")).to_have_text("")
    screenshot(page, "record-form-lines")

    page.click("#save-record")
    expect(page.locator("h1")).to_contain_text("Pump retrofit")
    expect(page.locator(".flash-success")).to_contain_text("Created Pump retrofit.")
    expect(page.locator('[data-field="account"] a')).to_have_text(COMPANY)
    expect(page.locator("#timeline")).to_contain_text("Record created")
    page.click("#detail-tab-2")
    expect(page.locator('[data-field="lines"]')).to_contain_text("CN¥31.50")
    page.click("#activity-history")
    expect(page.locator("#history")).to_contain_text("Pipe")
    screenshot(page, "record-detail")
    detail_url = page.url

    # The same record open in two tabs, both saved: the second gets the conflict page.
    other = context.new_page()
    other.console = Console(other)
    page.goto(detail_url + "/edit")
    other.goto(detail_url + "/edit")
    page.fill("#title", "Pump retrofit (first)")
    page.click("#save-record")
    expect(page.locator(".flash-success")).to_contain_text("Saved Pump retrofit (first).")
    other.fill("#title", "Pump retrofit (second)")
    other.click("#save-record")
    conflict = other.locator("#conflict")
    expect(conflict).to_contain_text("Someone else changed this first")
    expect(conflict.locator("tr.differs")).to_contain_text("Pump retrofit (second)")
    expect(conflict.locator("tr.differs")).to_contain_text("Pump retrofit (first)")
    screenshot(other, "record-conflict")
    other.click("#overwrite-mine")
    expect(other.locator("h1")).to_contain_text("Pump retrofit (second)")

    # In Chinese: the form's sections and tabs come from the metadata's Chinese labels.
    page.click('button[name="language"][value="zh"]')
    page.goto(f"{base}/a/{APP}/deal/new")
    expect(page.locator("legend", has_text="商机")).to_be_visible()
    expect(page.locator("#form-tab-2")).to_have_text("报价")
    assert page.console.errors == []
    assert other.console.errors == []
    other.close()


def test_the_public_form_signed_out(web_app, live_server, browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1000, "height": 800})
    page = context.new_page()
    console = Console(page)
    try:
        page.goto(f"{live_server.url}/f/{APP}/web_enquiry?full_name=Mei")
        expect(page.locator("h1")).to_have_text("联系我们")
        expect(page.locator(".sidebar")).to_have_count(0)
        expect(page.locator("#full_name")).to_have_value("Mei")
        page.fill("#full_name", "Mei Lin")
        page.fill("#email", "mei@example.com")
        page.select_option("#preferred_channel", "wechat")
        screenshot(page, "public-form")
        page.click("#save-record")
        expect(page.locator("#thanks")).to_be_visible()
        screenshot(page, "public-thanks")
        assert console.errors == []
    finally:
        context.close()
    root = Actor(None, "system", frozenset({"admin"}))
    (contact,) = web_app.extensions[KEY].list(root, APP, "contact")["items"]
    assert contact["full_name"] == "Mei Lin" and contact["preferred_channel"] == "wechat"
