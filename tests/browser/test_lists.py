"""List pages in Chromium: find a deal, search for it, drag it across the pipeline board."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.api.service import KEY
from metamodel.system_tables import users
from records.actor import Actor

from .conftest import PEOPLE, screenshot, sign_in

APP = "sales_pipeline"


def as_li(web_app) -> Actor:
    with web_app.extensions["crm"].engine.connect() as conn:
        li_id = conn.execute(select(users.c.id).where(users.c.username == "li")).scalar_one()
    return Actor(li_id, "li", frozenset(PEOPLE["li"]))


@pytest.fixture
def deals(web_app) -> dict:
    """An account and two deals of li's, closing this month."""
    service, li = web_app.extensions[KEY], as_li(web_app)
    account = service.create(li, APP, "account", {"name": "Acme Trading", "tier": "A"})
    today = dt.datetime.now(dt.UTC).date()
    made = {}
    for title, amount, day in (("Pump retrofit", "48000", 10), ("Valve spares", "3500", 20)):
        made[title] = service.create(
            li,
            APP,
            "deal",
            {
                "title": title,
                "account": account["id"],
                "amount": amount,
                "probability": 40,
                "expected_close": today.replace(day=day).isoformat(),
            },
        )
    return made


def drag(page, card, target) -> None:
    """SortableJS follows the mouse: press on the card's body, move in steps, release."""
    start = card.locator("dl").bounding_box()
    end = target.bounding_box()
    x0, y0 = start["x"] + 10, start["y"] + 5
    x1, y1 = end["x"] + 40, end["y"] + 20
    page.mouse.move(x0, y0)
    page.mouse.down()
    steps = 12
    for step in range(1, steps + 1):
        page.mouse.move(x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps)
    page.mouse.up()


def test_find_a_deal_search_it_and_see_the_calendar(page, live_server, deals):
    sign_in(page, live_server.url, "li")
    page.click("aside.sidebar >> text=Deal")
    table = page.locator("table.list-table")
    expect(table).to_contain_text("Pump retrofit")
    expect(table).to_contain_text("Valve spares")
    expect(table).to_contain_text("CN¥48,000.00")
    expect(page.locator("#record-count")).to_have_text("2 records")
    page.fill("#list-q", "pump")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Pump retrofit")
    assert "q=pump" in page.url
    screenshot(page, "list")
    # Back restores the unfiltered list (htmx pushed the search into the history).
    page.go_back()
    expect(table.locator("tbody tr")).to_have_count(2)
    page.click("th >> text=Amount")
    expect(page.locator("tbody tr").first).to_contain_text("Valve spares")
    page.click(".view-tab >> text=Close calendar")
    expect(page.locator("table.calendar")).to_contain_text("Pump retrofit")
    screenshot(page, "calendar")
    assert page.console.errors == []


def test_drag_a_card_to_another_stage(page, live_server, web_app, deals):
    sign_in(page, live_server.url, "li")
    page.goto(f"{live_server.url}/a/{APP}/deal/kanban?view=pipeline_board")
    card = page.locator(".board-card", has_text="Pump retrofit")
    lead = page.locator('.board-cards[data-value="lead"]')
    target = page.locator('.board-cards[data-value="qualified"]')
    expect(lead.locator(".board-card")).to_have_count(2)
    drag(page, card, target)
    expect(target.locator(".board-card")).to_have_count(1)
    expect(target).to_contain_text("Pump retrofit")
    qualified = page.locator(".board-column", has=target)
    expect(qualified.locator(".board-count")).to_have_text("1")
    screenshot(page, "kanban")
    page.reload()
    expect(page.locator('.board-cards[data-value="qualified"]')).to_contain_text("Pump retrofit")
    expect(page.locator('.board-cards[data-value="lead"] .board-card')).to_have_count(1)
    # Someone else changes the other deal: dragging the card drawn before is refused,
    # the card goes back and the board says why.
    other = deals["Valve spares"]
    web_app.extensions[KEY].update(as_li(web_app), APP, "deal", other["id"], {"amount": "3600"})
    spares = page.locator(".board-card", has_text="Valve spares")
    drag(page, spares, page.locator('.board-cards[data-value="proposal"]'))
    expect(page.locator("#board-message")).to_contain_text("Someone changed this record")
    expect(page.locator('.board-cards[data-value="lead"]')).to_contain_text("Valve spares")
    expect(page.locator('.board-cards[data-value="proposal"] .board-card')).to_have_count(0)
    # The refusal is an HTTP 412, which Chromium logs; nothing else may be reported.
    assert page.console.errors == [
        "Failed to load resource: the server responded with a status of 412 (PRECONDITION FAILED)"
    ]
