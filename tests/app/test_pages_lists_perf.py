"""List pages on big tables: board columns count up to a cap; record links built once."""

from __future__ import annotations

import re

from app.views import boards

from . import test_pages_lists as base
from .test_pages_lists import APP, DEALS, page_of, row_ids, signed_in

# The list tests' app, people and records.
web_app, actors, service, acme = base.web_app, base.actors, base.service, base.acme


def counts_of(page: str) -> dict[str, str]:
    """Each board column's count as shown (``7``, ``5+``), by its value."""
    found = re.findall(
        r'<span class="board-count"[^>]*>([^<]*)</span>\s*</header>\s*'
        r'<div class="board-cards" data-value="([^"]*)">',
        page,
    )
    return {value: shown for shown, value in found}


def test_a_board_column_counts_up_to_its_cap(web_app, service, actors, acme, monkeypatch):
    monkeypatch.setattr(boards, "COLUMN_COUNT_CAP", 5)
    monkeypatch.setattr(boards, "CARDS_PER_COLUMN", 3)
    li, root = actors["li"], actors["root"]
    service.create_many(
        li, APP, "deal", [{"title": f"Lead {n}", "account": acme["id"]} for n in range(7)]
    )
    service.create_many(
        root,
        APP,
        "deal",
        [{"title": f"Won {n}", "account": acme["id"], "stage": "won"} for n in range(2)]
        + [{"title": "Root lead", "account": acme["id"]}],
    )
    page = page_of(signed_in(web_app, "root"), DEALS + "/kanban")
    counts = counts_of(page)
    assert counts["lead"] == "5+" and counts["won"] == "2" and counts["lost"] == "0"
    assert 'title="more than 5 records"' in page and 'title="2 records"' in page
    # The newest cards first, three a column, and more to load where there are more.
    lead = re.search(r'data-value="lead">(.*?)</div>\s*</section>', page, re.S).group(1)
    assert re.findall(r">(Root lead|Lead \d)</a>", lead) == ["Root lead", "Lead 6", "Lead 5"]
    more = re.search(r'hx-get="([^"]+kanban/column[^"]+)"', lead).group(1).replace("&amp;", "&")
    rest = page_of(signed_in(web_app, "root"), more, headers={"HX-Request": "true"})
    assert re.findall(r">(Lead \d)</a>", rest) == ["Lead 4", "Lead 3", "Lead 2"]
    # What the user may read, and what they searched for, is what is counted.
    mine = counts_of(page_of(signed_in(web_app, "li"), DEALS + "/kanban"))
    assert mine["lead"] == "5+" and mine["won"] == "0"
    searched = counts_of(page_of(signed_in(web_app, "root"), DEALS + "/kanban?q=won"))
    assert searched["lead"] == "0" and searched["won"] == "2"


def test_every_row_links_to_its_own_records(web_app, service, actors, acme):
    root = actors["root"]
    other = service.create(root, APP, "account", {"name": "Other"})
    first = service.create(root, APP, "deal", {"title": "First", "account": acme["id"]})
    second = service.create(root, APP, "deal", {"title": "Second", "account": other["id"]})
    page = page_of(signed_in(web_app, "root"), DEALS)
    assert row_ids(page) == [second["id"], first["id"]]
    for deal, account in ((first, acme), (second, other)):
        row = re.search(rf'<tr data-id="{deal["id"]}">(.*?)</tr>', page, re.S).group(1)
        assert f'<a href="/a/{APP}/deal/{deal["id"]}">{deal["title"]}</a>' in row
        assert f'<a href="/a/{APP}/account/{account["id"]}">{account["name"]}</a>' in row


def test_a_calendar_month_counts_up_to_its_cap(web_app, service, actors, acme, monkeypatch):
    monkeypatch.setattr(boards, "MONTH_COUNT_CAP", 3)
    monkeypatch.setattr(boards, "MONTH_LIMIT", 2)
    service.create_many(
        actors["root"],
        APP,
        "deal",
        [
            {"title": f"Close {day}", "account": acme["id"], "expected_close": f"2025-03-0{day}"}
            for day in range(1, 6)
        ]
        + [{"title": "April", "account": acme["id"], "expected_close": "2025-04-01"}],
    )
    client = signed_in(web_app, "root")
    page = page_of(client, DEALS + "/calendar?month=2025-03")
    assert "Showing the first 2 of more than 3 records this month." in page
    # The earliest of the month, by the date the calendar lays them out by.
    assert re.findall(r">(Close \d|April)</a>", page) == ["Close 1", "Close 2"]
    monkeypatch.undo()
    page = page_of(client, DEALS + "/calendar?month=2025-03")
    assert len(re.findall(r">(Close \d)</a>", page)) == 5 and "Showing the first" not in page
