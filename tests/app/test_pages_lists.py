"""List pages: table, filters, sort, pages, views, export, bulk delete, bin, board, calendar."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from flask import Blueprint
from sqlalchemy import event, select

from app import accounts, create_app
from app.api.service import KEY, WORKFLOWS
from app.views import boards
from metamodel import publish, store
from metamodel.system_tables import users
from records import query as record_query
from records.actor import Actor

from .test_api import EXAMPLE, FAST_HASH
from .web import PASSWORD, csrf_token, page_of, signed_in

APP = "sales_pipeline"
DEALS = f"/a/{APP}/deal"
PEOPLE = {
    "root": ["admin"],
    "li": ["sales"],
    "zhao": ["sales"],
    "wang": ["sales_manager"],
    "chen": ["finance"],
}
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def example_with_views() -> dict:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["views"] += [
        {
            "name": "approval_board",
            "entity": "deal",
            "type": "kanban",
            "group_by": "approval_state",
            "columns": ["title", "amount", "discount_pct"],
        },
        {
            "name": "managers_only",
            "entity": "deal",
            "type": "list",
            "label": {"en": "Big deals", "zh": "大单"},
            "columns": ["title", "amount", "account.tier", "account.account_manager"],
            "filter": {">=": [{"var": "amount"}, 10000]},
            "roles": ["sales_manager"],
        },
        {
            "name": "contact_moments",
            "entity": "interaction",
            "type": "calendar",
            "date_field": "occurred_at",
        },
    ]
    contact = next(e for e in doc["entities"] if e["name"] == "contact")
    channel = next(f for f in contact["fields"] if f["name"] == "preferred_channel")
    channel["options"][3]["label"] = SCRIPT
    return doc


def stub_record_pages(app) -> None:
    """Link targets, until the record pages (another blueprint) are registered."""
    if "records.detail" in app.view_functions:
        return
    stub = Blueprint("records", __name__, url_prefix="/a")
    stub.add_url_rule("/<app>/<entity>/<int:record_id>", "detail", lambda **_kw: "detail")
    stub.add_url_rule("/<app>/<entity>/new", "new", lambda **_kw: "new")
    app.register_blueprint(stub)


@pytest.fixture
def web_app(db_url, tmp_path):
    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "i"), "secret_key": "t"}
    )
    stub_record_pages(app)
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example_with_views())
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
def service(web_app):
    return web_app.extensions[KEY]


@pytest.fixture
def workflows(web_app):
    return web_app.extensions[WORKFLOWS]


def row_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)">', page)]


@pytest.fixture
def acme(service, actors) -> dict:
    return service.create(
        actors["root"],
        APP,
        "account",
        {"name": "Acme", "tier": "A", "annual_revenue": "1234567.5"},
    )


def make_deal(service, actor, account, **values) -> dict:
    return service.create(actor, APP, "deal", {"title": "Deal", "account": account["id"], **values})


# --- the table -------------------------------------------------------------------------


def test_columns_are_formatted_per_type(web_app, service, actors, acme):
    deal = make_deal(
        service,
        actors["root"],
        acme,
        title="Big one",
        amount="1234.5",
        probability=25,
        expected_close="2025-03-05",
        stage="negotiation",
    )
    root = signed_in(web_app, "root")
    page = page_of(root, DEALS)
    # The title field first, linking to the record; the reference shows its target's title.
    assert f'<a href="/a/{APP}/deal/{deal["id"]}">Big one</a>' in page
    assert f'<a href="/a/{APP}/account/{acme["id"]}">Acme</a>' in page
    assert "CN¥1,234.50" in page and "25%" in page
    # A lookup of a select is a chip in the option's colour.
    assert '<span class="chip colored" style="--chip: #c0392b">A</span>' in page
    assert '<span class="chip">negotiation</span>' in page
    assert 'href="/a/sales_pipeline/deal/new"' in page
    # A view's columns, with a date in the user's language.
    page = page_of(root, DEALS + "?view=my_open_deals")
    assert 'data-sort="expected_close"' in page and 'data-sort="weighted_amount"' not in page
    assert "Mar 5, 2025" in page
    token = csrf_token(root, DEALS)
    root.post("/language", data={"language": "zh", "next": "/", "csrf_token": token})
    page = page_of(root, DEALS + "?view=my_open_deals")
    assert "¥1,234.50" in page and "CN¥" not in page and "2025年3月5日" in page


def test_users_booleans_ratings_and_dates(web_app, service, actors, acme):
    service.update(actors["root"], APP, "account", acme["id"], {"account_manager": actors["li"].id})
    contact = service.create(
        actors["root"], APP, "contact", {"full_name": "Mei", "consent_marketing": True}
    )
    service.create(
        actors["root"],
        APP,
        "interaction",
        {
            "subject": "Visit",
            "account": acme["id"],
            "contact": contact["id"],
            "channel": "visit",
            "occurred_at": "2025-03-05T09:30:00Z",
            "satisfaction": 4,
        },
    )
    root = signed_in(web_app, "root")
    page = page_of(root, f"/a/{APP}/account")
    assert '<td class="">li</td>' in page  # the user field, by name
    assert "CN¥1,234,567.50" in page
    page = page_of(root, f"/a/{APP}/contact")
    assert "✓</span> Yes" in page
    page = page_of(root, f"/a/{APP}/interaction")
    assert 'aria-label="4 of 5"' in page and page.count('class="on"') == 4
    assert "Mar 5, 2025 09:30" in page


def test_search_filters_and_sort(web_app, service, actors, acme):
    root = actors["root"]
    small = make_deal(service, root, acme, title="Small pumps", amount="100", stage="lead")
    mid = make_deal(service, root, acme, title="Mid valves", amount="5000", stage="won")
    big = make_deal(
        service,
        root,
        acme,
        title="Big pumps",
        amount="90000",
        stage="won",
        expected_close="2025-06-30",
    )
    client = signed_in(web_app, "root")
    assert row_ids(page_of(client, DEALS + "?q=PUMPS")) == [big["id"], small["id"]]
    assert row_ids(page_of(client, DEALS + "?f.stage=won")) == [big["id"], mid["id"]]
    page = page_of(client, DEALS + "?f.amount.min=1000&f.amount.max=6000")
    assert row_ids(page) == [mid["id"]]
    page = page_of(
        client, DEALS + "?f.expected_close.from=2025-06-01&f.expected_close.to=2025-06-30"
    )
    assert row_ids(page) == [big["id"]]
    assert row_ids(page_of(client, DEALS + "?f.stage=-")) == []
    # Filters combine with each other, with the search and with the view's own filter.
    assert row_ids(page_of(client, DEALS + "?f.stage=won&q=pumps")) == [big["id"]]
    # Sorting: by a column, descending with a minus; the header offers the other direction.
    page = page_of(client, DEALS + "?sort=amount")
    assert row_ids(page) == [small["id"], mid["id"], big["id"]]
    assert 'href="/a/sales_pipeline/deal?sort=-amount"' in page
    assert 'aria-sort="ascending"' in page
    page = page_of(client, DEALS + "?sort=-amount")
    assert row_ids(page) == [big["id"], mid["id"], small["id"]]
    assert 'href="/a/sales_pipeline/deal?sort=amount"' in page
    # A value that is not a number is named, and that filter is left out.
    page = page_of(client, DEALS + "?f.amount.min=lots")
    assert "&#39;lots&#39; is not a number" in page and len(row_ids(page)) == 3
    page = page_of(client, DEALS + "?f.stage=nonsense")
    assert "is not one of the options" in page
    # An unknown sort is a clear error, not a crash.
    response = client.get(DEALS + "?sort=nonsense")
    assert response.status_code == 422 and "cannot sort by" in response.get_data(as_text=True)


def test_htmx_gets_only_the_results(web_app, service, actors, acme):
    make_deal(service, actors["root"], acme, title="Only one")
    client = signed_in(web_app, "root")
    response = client.get(DEALS + "?q=only", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="list-results"') and "<html" not in body
    assert "Only one" in body and "HX-Request" in response.headers["Vary"]
    # A history restore (back button) needs the whole page.
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "<html" in page_of(client, DEALS + "?q=only", headers=restore)


def test_pages_and_capped_counts(web_app, service, actors, acme, monkeypatch):
    service.create_many(
        actors["root"],
        APP,
        "deal",
        [{"title": f"Deal {n:02}", "account": acme["id"]} for n in range(60)],
    )
    client = signed_in(web_app, "root")
    page = page_of(client, DEALS + "?per_page=25&page=3&sort=title")
    assert "60 records" in page and "Page 3 of 3" in page
    assert len(row_ids(page)) == 10
    previous = re.search(r'<a href="([^"]+)" rel="prev"', page).group(1)
    assert "page=2" in previous and "sort=title" in previous and 'rel="next"' not in page
    # per_page is kept to at most 200.
    assert len(row_ids(page_of(client, DEALS + "?per_page=5000"))) == 60
    monkeypatch.setattr(record_query, "COUNT_CAP", 50)
    page = page_of(client, DEALS + "?per_page=25")
    assert "more than 50 records" in page and "Page 1" in page and "Page 1 of" not in page
    assert 'rel="next"' in page


def test_views_are_offered_to_their_roles_only(web_app, service, actors, acme):
    make_deal(service, actors["wang"], acme, title="Huge", amount="50000")
    make_deal(service, actors["wang"], acme, title="Tiny", amount="5")
    manager = signed_in(web_app, "wang")
    page = page_of(manager, DEALS)
    assert "Big deals" in page and "Pipeline" in page and "Close calendar" in page
    service.update(actors["root"], APP, "account", acme["id"], {"account_manager": actors["li"].id})
    page = page_of(manager, DEALS + "?view=managers_only")
    assert "Huge" in page and "Tiny" not in page
    # Columns may follow a reference: the account's tier and its manager, by name.
    assert "Account · Value tier" in page and "Account · Account manager" in page
    assert '<span class="chip colored" style="--chip: #c0392b">A</span>' in page
    assert '<td class="">li</td>' in page
    sales = signed_in(web_app, "li")
    assert "Big deals" not in page_of(sales, DEALS)
    assert sales.get(DEALS + "?view=managers_only").status_code == 403
    assert sales.get(DEALS + "?view=nonsense").status_code == 404


def test_sales_see_only_their_own_deals(web_app, service, actors, acme):
    mine = make_deal(service, actors["li"], acme, title="Li's deal")
    make_deal(service, actors["zhao"], acme, title="Zhao's deal")
    page = page_of(signed_in(web_app, "li"), DEALS)
    assert row_ids(page) == [mine["id"]] and "1 record" in page
    assert len(row_ids(page_of(signed_in(web_app, "wang"), DEALS))) == 2
    # finance may not read contacts at all
    finance = signed_in(web_app, "chen")
    assert finance.get(f"/a/{APP}/contact").status_code == 403
    for missing in (f"/a/{APP}/nothing", "/a/nowhere/deal", f"/a/{APP}/deal_line"):
        assert finance.get(missing).status_code == 404, missing
    assert finance.get(f"/a/{APP}/account/kanban").status_code == 404


def test_fields_a_role_may_not_read_are_neither_shown_nor_filtered(web_app, service, actors, acme):
    doc = example_with_views()
    doc["version"] = "1.0.1"
    for entity, name in (("deal", "amount"), ("account", "name")):
        fields = next(e for e in doc["entities"] if e["name"] == entity)["fields"]
        next(f for f in fields if f["name"] == name)["read_roles"] = ["sales_manager"]
    publish.apply_document(web_app.extensions["crm"].engine, doc)
    make_deal(service, actors["li"], acme, title="Secret amount", amount="777")
    sales = signed_in(web_app, "li")
    page = page_of(sales, DEALS)
    assert "Secret amount" in page and "777" not in page
    assert 'data-sort="amount"' not in page and 'name="f.amount.min"' not in page
    # The account's title is hidden too: the reference and its filter show the id.
    assert f">#{acme['id']}</" in page and "Acme" not in page
    assert sales.get(DEALS + "?sort=amount").status_code == 422
    manager = signed_in(web_app, "wang")
    page = page_of(manager, DEALS)
    assert "CN¥777.00" in page and "Acme" in page


# --- export ----------------------------------------------------------------------------


def test_export_needs_the_permission_and_follows_the_filters(web_app, service, actors, acme):
    root = actors["root"]
    make_deal(service, root, acme, title="Won pumps", stage="won", amount="10")
    make_deal(service, root, acme, title="Won valves", stage="won", amount="20")
    make_deal(service, root, acme, title="Lost pumps", stage="lost", amount="30")
    sales = signed_in(web_app, "li")
    assert "Export CSV" not in page_of(sales, DEALS)
    assert sales.get(DEALS + "/export").status_code == 403
    manager = signed_in(web_app, "wang")
    page = page_of(manager, DEALS + "?f.stage=won&q=pumps&page=1")
    assert 'href="/a/sales_pipeline/deal/export?f.stage=won&amp;q=pumps"' in page
    response = manager.get(DEALS + "/export?f.stage=won&q=pumps")
    response.close()
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["Title", "Account", "Account tier"]
    assert [row[0] for row in rows[1:]] == ["Won pumps"]
    assert rows[1][1] == "Acme"


# --- bulk delete and the recycle bin ------------------------------------------------------


def test_bulk_delete_reports_what_was_refused(web_app, service, workflows, actors, acme):
    li = actors["li"]
    free = make_deal(service, li, acme, title="Free")
    locked = make_deal(service, li, acme, title="Locked", discount_pct=10)
    workflows.fire(li, APP, "deal", locked["id"], "request_discount")
    manager = signed_in(web_app, "wang")
    token = csrf_token(manager, DEALS)
    response = manager.post(
        DEALS + "/bulk-delete",
        data={"ids": [free["id"], locked["id"]], "csrf_token": token, "next": DEALS + "?q=e"},
        follow_redirects=False,
    )
    assert response.status_code == 302 and response.headers["Location"] == DEALS + "?q=e"
    page = page_of(manager, DEALS)
    assert "1 record moved to the recycle bin." in page
    assert f"1 record was not deleted: #{locked['id']}" in page and "waiting for approval" in page
    assert row_ids(page) == [locked["id"]]
    # Without the token nothing happens.
    refused = manager.post(DEALS + "/bulk-delete", data={"ids": [locked["id"]]})
    assert refused.status_code == 400
    # A user without the delete permission is refused for each record.
    sales = signed_in(web_app, "li")
    assert "Delete selected" not in page_of(sales, DEALS)
    token = csrf_token(sales, DEALS)
    sales.post(DEALS + "/bulk-delete", data={"ids": [locked["id"]], "csrf_token": token})
    assert "you may not delete deal" in page_of(sales, DEALS)


def test_the_recycle_bin_lists_and_restores(web_app, service, actors, acme):
    deal = make_deal(service, actors["wang"], acme, title="Comes back")
    service.delete(actors["wang"], APP, "deal", deal["id"])
    manager = signed_in(web_app, "wang")
    assert row_ids(page_of(manager, DEALS)) == []
    page = page_of(manager, DEALS + "/bin")
    assert row_ids(page) == [deal["id"]] and "Comes back" in page and "1 record" in page
    assert f'href="{DEALS}/{deal["id"]}"' not in page  # nothing to open while deleted
    action = f"{DEALS}/bin/{deal['id']}/restore"
    assert f'action="{action}"' in page
    token = csrf_token(manager, DEALS)
    response = manager.post(action, data={"csrf_token": token})
    assert response.status_code == 302
    page = page_of(manager, DEALS)
    assert "Restored Comes back." in page and row_ids(page) == [deal["id"]]
    assert row_ids(page_of(manager, DEALS + "/bin")) == []
    # Restoring what is not in the bin says so.
    manager.post(action, data={"csrf_token": token})
    assert "is not in the recycle bin" in page_of(manager, DEALS + "/bin")
    assert signed_in(web_app, "li").get(DEALS + "/bin").status_code == 403


# --- kanban ----------------------------------------------------------------------------


def move(client, record: dict, to: str, view="pipeline_board", version=None):
    token = csrf_token(client, DEALS)
    return client.post(
        DEALS + "/kanban/move",
        data={"view": view, "id": record["id"], "version": version or record["version"], "to": to},
        headers={"X-CSRFToken": token},
    )


def test_the_board_shows_a_column_per_option_with_counts(web_app, service, actors, acme):
    service.create_many(
        actors["root"],
        APP,
        "deal",
        [{"title": f"Lead {n}", "account": acme["id"]} for n in range(23)]
        + [{"title": "Winner", "account": acme["id"], "stage": "won", "amount": "99"}],
    )
    client = signed_in(web_app, "root")
    page = page_of(client, DEALS + "/kanban?view=pipeline_board")
    values = re.findall(r'<div class="board-cards" data-value="([^"]*)">', page)
    assert values == ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
    assert 'title="23 records" data-count="23"' in page
    assert page.count('class="board-card"') == 20 + 1
    assert "CN¥99.00" in page
    more = re.search(r'hx-get="([^"]+kanban/column[^"]+)"', page).group(1).replace("&amp;", "&")
    assert "value=lead" in more and "page=2" in more
    rest = page_of(client, more, headers={"HX-Request": "true"})
    assert rest.count('class="board-card"') == 3 and "Load more" not in rest
    # Without a view name the entity's first board opens.
    assert "Winner" in page_of(client, DEALS + "/kanban")
    assert client.get(DEALS + "/kanban?view=my_open_deals").status_code == 404


def test_moving_a_card_sets_a_select_field(web_app, service, actors, acme):
    deal = make_deal(service, actors["root"], acme, title="Moves")
    client = signed_in(web_app, "root")
    response = move(client, deal, "won")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["ok"] and body["value"] == "won" and body["version"] == deal["version"] + 1
    assert service.get(actors["root"], APP, "deal", deal["id"])["stage"] == "won"
    # The version the card was drawn with is stale now: refused, nothing changes.
    stale = move(client, deal, "lost")
    assert stale.status_code == 412
    assert (
        stale.get_json()["stale"] and "Someone changed this record" in stale.get_json()["message"]
    )
    assert service.get(actors["root"], APP, "deal", deal["id"])["stage"] == "won"
    bad = move(client, {"id": deal["id"], "version": body["version"]}, "nowhere")
    assert bad.status_code == 422 and "not a column" in bad.get_json()["message"]
    # Without the CSRF header the move is refused.
    plain = client.post(DEALS + "/kanban/move", data={"id": deal["id"], "version": 2, "to": "lead"})
    assert plain.status_code == 400


def test_moving_a_card_on_a_state_board_fires_the_workflow(web_app, service, actors, acme):
    li = actors["li"]
    deal = make_deal(service, li, acme, title="Discounted", discount_pct=10)
    client = signed_in(web_app, "li")
    page = page_of(client, DEALS + "/kanban?view=approval_board")
    assert re.findall(r'data-value="([^"]*)">', page) == [
        "draft",
        "pending",
        "approved",
        "rejected",
    ]
    # Dragging to "approved" asks for the approval; the card lands in "pending".
    response = move(client, deal, "approved", view="approval_board")
    body = response.get_json()
    assert response.status_code == 200 and body["ok"], body
    assert body["value"] == "pending" and "Sent for approval" in body["message"]
    record = service.get(li, APP, "deal", deal["id"])
    assert record["approval_state"] == "pending"
    # While it waits, a move on the stage board is refused with the engine's reason.
    locked = move(client, record, "won")
    assert locked.status_code == 409 and "waiting for approval" in locked.get_json()["message"]


def test_refused_workflow_moves_say_why(web_app, service, actors, acme):
    li = actors["li"]
    deal = make_deal(service, li, acme, title="No discount")
    client = signed_in(web_app, "li")
    # No transition goes from draft to rejected.
    response = move(client, deal, "rejected", view="approval_board")
    assert response.status_code == 409
    assert "no step of the workflow leads from draft to rejected" in response.get_json()["message"]
    # The transition exists, but its condition (a discount) does not hold.
    response = move(client, deal, "pending", view="approval_board")
    assert response.status_code == 409 and not response.get_json()["ok"]
    assert response.get_json()["message"].startswith(
        "the condition of 'Request discount approval' does not hold"
    )
    assert service.get(li, APP, "deal", deal["id"])["approval_state"] == "draft"
    # A user the transition is not for is told who may fire it.
    finance = signed_in(web_app, "chen")
    response = move(finance, deal, "pending", view="approval_board")
    assert response.status_code == 403
    assert "only the record's owner or role sales may" in response.get_json()["message"]
    # Someone else's version: stale.
    service.update(li, APP, "deal", deal["id"], {"discount_pct": 5})
    stale = move(client, deal, "pending", view="approval_board")
    assert stale.status_code == 412 and stale.get_json()["stale"]


# --- calendar --------------------------------------------------------------------------


def test_the_calendar_shows_a_month_of_records(web_app, service, actors, acme, monkeypatch):
    root = actors["root"]
    march = make_deal(service, root, acme, title="March close", expected_close="2025-03-05")
    make_deal(service, root, acme, title="April close", expected_close="2025-04-01")
    client = signed_in(web_app, "root")
    page = page_of(client, DEALS + "/calendar?view=close_calendar&month=2025-03")
    assert "March 2025" in page and "April close" not in page and "Showing the first" not in page
    cell = re.search(r'data-date="2025-03-05">(.*?)</td>', page, re.S).group(1)
    assert f'<a href="/a/{APP}/deal/{march["id"]}">March close</a>' in cell
    headers = re.findall(r'<th scope="col">(\w+)</th>', page)
    assert headers == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    # The grid starts on the Monday before the 1st (Saturday 1 March 2025).
    assert page.index('data-date="2025-02-24"') < page.index('data-date="2025-03-01"')
    assert "month=2025-02" in page and "month=2025-04" in page
    assert "April close" in page_of(client, DEALS + "/calendar?view=close_calendar&month=2025-04")
    # A month holds one page of records at most, and says so.
    make_deal(service, root, acme, title="Also March", expected_close="2025-03-20")
    monkeypatch.setattr(boards, "MONTH_LIMIT", 1)
    page = page_of(client, DEALS + "/calendar?month=2025-03")
    assert "Showing the first 1 of 2 records this month." in page
    assert "March close" in page and "Also March" not in page
    monkeypatch.undo()
    assert client.get(DEALS + "/calendar?month=March").status_code == 422
    token = csrf_token(client, DEALS)
    client.post("/language", data={"language": "zh", "next": "/", "csrf_token": token})
    page = page_of(client, DEALS + "/calendar?month=2025-03")
    assert "2025年3月" in page and re.findall(r'<th scope="col">(\w+)</th>', page)[0] == "周一"


def test_a_calendar_by_a_datetime_field(web_app, service, actors, acme):
    service.create(
        actors["root"],
        APP,
        "interaction",
        {
            "subject": "Late call",
            "account": acme["id"],
            "channel": "phone",
            "occurred_at": "2025-03-31T23:30:00Z",
        },
    )
    client = signed_in(web_app, "root")
    page = page_of(client, f"/a/{APP}/interaction/calendar?month=2025-03")
    cell = re.search(r'data-date="2025-03-31">(.*?)</td>', page, re.S).group(1)
    assert "Late call" in cell and "11:30" in cell
    assert "Late call" not in page_of(client, f"/a/{APP}/interaction/calendar?month=2025-04")


# --- cost and safety -------------------------------------------------------------------


def statements_for(web_app, client, path: str) -> int:
    engine = web_app.extensions["crm"].engine
    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        page_of(client, path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_page_costs_the_same_queries_whatever_its_size(web_app, service, actors):
    root = actors["root"]
    companies = [
        service.create(root, APP, "account", {"name": f"Company {n}", "account_manager": root.id})
        for n in range(3)
    ]

    def add(count: int) -> None:
        service.create_many(
            root,
            APP,
            "deal",
            [
                {"title": f"D{n}", "account": companies[n % 3]["id"], "amount": n}
                for n in range(count)
            ],
        )

    client = signed_in(web_app, "root")
    add(5)
    path = DEALS + "?per_page=50"
    page_of(client, path)  # warm the caches
    few = statements_for(web_app, client, path)
    add(45)
    assert len(row_ids(page_of(client, path))) == 50
    # A full page may have more after it, so it is counted; a short one needs no count.
    assert statements_for(web_app, client, path) == few + 1
    board = DEALS + "/kanban"
    page_of(client, board)
    full = statements_for(web_app, client, board)
    add(5)
    assert statements_for(web_app, client, board) == full


def test_labels_and_values_are_escaped(web_app, service, actors, acme):
    make_deal(service, actors["root"], acme, title=SCRIPT, expected_close="2025-03-05")
    service.create(actors["root"], APP, "contact", {"full_name": "X", "preferred_channel": "visit"})
    client = signed_in(web_app, "root")
    for path in (
        DEALS,
        DEALS + "/kanban",
        DEALS + "/calendar?month=2025-03",
        f"/a/{APP}/contact",
        f"/a/{APP}/contact?f.preferred_channel=visit",
    ):
        page = page_of(client, path)
        assert SCRIPT not in page, path
        assert ESCAPED in page, path


def test_a_reference_filter_turns_to_type_ahead_for_many_targets(web_app, service, actors):
    root = actors["root"]
    service.create_many(root, APP, "account", [{"name": f"Firm {n:02}"} for n in range(55)])
    client = signed_in(web_app, "root")
    page = page_of(client, DEALS)
    assert 'list="options-account"' in page
    url = f"/a/{APP}/deal/options/account?f.account=firm+0"
    options = page_of(client, url, headers={"HX-Request": "true"})
    assert options.count("<option") == 10 and ">Firm 03</option>" in options
    assert client.get(f"/a/{APP}/deal/options/title").status_code == 404
