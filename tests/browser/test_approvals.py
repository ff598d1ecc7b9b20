"""A discount approval in the browser: li asks from the record's actions, wang approves.

The record detail page is not there yet, so li uses the actions page (the partial
the detail page will load). wang sees the waiting count in the navigation and
approves from the inbox; the row, the tabs and the navigation's count update in place
over htmx.
"""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select, update

from metamodel.system_tables import users
from records.actor import Actor

from .conftest import screenshot, sign_in

APP = "sales_pipeline"


def test_li_asks_for_a_discount_and_wang_approves_from_the_inbox(page, live_server, web_app):
    engine = web_app.extensions["crm"].engine
    with engine.begin() as conn:
        ids = dict(conn.execute(select(users.c.username, users.c.id)).all())
        # wang is li's manager (a manager_of approver would find him).
        conn.execute(update(users).where(users.c.id == ids["li"]).values(manager_id=ids["wang"]))
    records = web_app.extensions["crm.records"]
    root = Actor(ids["root"], "root", frozenset({"admin"}))
    li = Actor(ids["li"], "li", frozenset({"sales"}))
    account = records.create(root, APP, "account", {"name": "华东精工机械有限公司"})
    deal = records.create(
        li, APP, "deal", {"title": "Q3 line upgrade", "account": account["id"], "discount_pct": 20}
    )["id"]
    base = live_server.url
    record = f"{base}/w/{APP}/deal/{deal}"

    sign_in(page, base, "li")
    page.goto(f"{record}/actions")
    panel = page.locator(".wf-panel")
    page.click(".wf-transition summary")
    panel.locator("textarea[name=comment]").fill("Key account, competing offer")
    panel.locator("button", has_text="Submit for approval").click()
    expect(page.locator(".wf-panel .wf-message")).to_contain_text("Sent for approval")
    expect(page.locator(".wf-panel .wf-step-current")).to_contain_text("wang")
    expect(page.locator(".wf-panel .wf-withdraw")).to_be_visible()
    screenshot(page, "approvals-record-actions")
    page.click("#sign-out")

    sign_in(page, base, "wang")
    approvals = page.locator(".nav-extra a", has_text="Approvals")
    expect(approvals.locator(".badge")).to_have_text("1")
    approvals.click()
    row = page.locator(".wf-row", has_text="Q3 line upgrade")
    expect(row).to_contain_text("li")
    expect(row).to_contain_text("Manager")
    screenshot(page, "approvals-inbox")
    expect(approvals.locator(".badge")).to_have_text("1")
    page.evaluate("window.stillTheSamePage = true")
    row.locator("textarea[name=comment]").fill("Fine for this account")
    row.locator("button", has_text="Approve").click()
    decided = page.locator(".wf-row.wf-decided", has_text="Q3 line upgrade")
    expect(decided).to_contain_text("Approved")
    expect(decided).to_contain_text("Fine for this account")
    expect(page.locator('#wf-inbox-tabs [data-box="waiting"] .wf-count')).to_have_text("0")
    expect(page.locator('#wf-inbox-tabs [data-box="done"] .wf-count')).to_have_text("1")
    # The sidebar's count went with it, without a page load: nothing waits any more.
    expect(approvals.locator(".badge")).to_have_count(0)
    expect(approvals.locator("#nav-count-approvals")).to_have_count(1)
    assert page.evaluate("window.stillTheSamePage") is True
    screenshot(page, "approvals-inbox-decided")

    page.goto(f"{record}/diagram")
    expect(page.locator('.wf-state.current[data-state="pending"]')).to_be_visible()
    expect(page.locator('.wf-state.target[data-state="approved"]')).to_be_visible()
    expect(page.locator('.wf-step-list [aria-current="step"]')).to_contain_text("Finance")
    screenshot(page, "approvals-diagram")
    assert page.console.errors == []


def test_wang_delegates_his_approvals_while_away_and_ends_it(page, live_server, web_app):
    base = live_server.url
    sign_in(page, base, "wang")
    page.goto(f"{base}/approvals")
    page.click("#delegation-link")
    expect(page.locator("h1")).to_have_text("Delegation")
    form = page.locator("#delegate-form")
    form.locator("input[name=delegate]").fill("li")
    # The browser's own date and time picker: its value is the wall time typed.
    form.locator("input[name=ends_at]").fill("2099-01-01T09:00")
    form.locator("button", has_text="Delegate").click()
    expect(page.locator(".flash-success")).to_contain_text("Your approval tasks go to li")
    expect(page.locator(".flash-success")).to_contain_text("until 2099-01-01 09:00")
    row = page.locator(".wf-delegations tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("In effect")
    screenshot(page, "approvals-delegation")
    row.locator("button", has_text="End now").click()
    expect(page.locator(".flash-success")).to_contain_text("The delegation is ended")
    expect(page.locator(".wf-delegations tbody tr")).to_contain_text("Ended")
    assert page.console.errors == []
