"""Record pages with the Flask client: new and edit through the generated form, the conflict
page, the record's page (timeline, history, related records, files), delete and restore,
the reference type-ahead, inline validation, and public forms.

The sales_pipeline example, with a few additions for what it lacks: a label and an option
holding markup (escaping), a ``read_only_when`` rule, a file field on interactions and a
second public form that places a reference. Users: li [sales] reports to wang
[sales_manager]; chen [finance] reads deals and accounts only; root is an admin.
"""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import accounts, create_app
from app.api.service import KEY, WORKFLOWS
from metamodel import publish, store
from metamodel.system_tables import public_submissions, users
from records.actor import Actor

from .test_api import EXAMPLE, FAST_HASH
from .web import PASSWORD, csrf_token, page_of, signed_in

APP = "sales_pipeline"
DEALS = f"/a/{APP}/deal"
PEOPLE = [("root", ["admin"], None), ("wang", ["sales_manager"], None), ("li", ["sales"], "wang")]
PEOPLE += [("chen", ["finance"], None)]
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
HX = {"HX-Request": "true"}
PAST_MESSAGE = "Expected close cannot be in the past"
KIT = Path(__file__).parents[1] / "form_engine" / "kit.json"


def example() -> dict:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    entities = {e["name"]: e for e in doc["entities"]}
    deal_fields = {f["name"]: f for f in entities["deal"]["fields"]}
    deal_fields["expected_close"]["label"] = {"en": SCRIPT, "zh": SCRIPT}
    stage_options = deal_fields["stage"]["options"]
    stage_options[3]["label"] = SCRIPT  # negotiation
    entities["interaction"]["fields"].append({"name": "attachment", "type": "file"})
    form = next(f for f in doc["forms"] if f["name"] == "deal_main")
    fields = form["layout"][0]["fields"]
    fields[fields.index("probability")] = {
        "field": "probability",
        "read_only_when": {"==": [{"var": "stage"}, "won"]},
    }
    doc["forms"].append(
        {
            "name": "partner_signup",
            "entity": "contact",
            "public": True,
            "label": {"en": "Partner sign-up", "zh": "合作伙伴报名"},
            "layout": [{"section": "You", "fields": ["full_name", "email", "account"]}],
        }
    )
    return doc


def make_app(db_url, tmp_path, **config):
    app = create_app(
        {
            "database_url": db_url,
            "instance_path": str(tmp_path / "i"),
            "secret_key": "t",
            **config,
        }
    )
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example())
    with engine.begin() as conn:
        for name, roles, manager in PEOPLE:
            accounts.create_user(
                conn, name, roles, password=PASSWORD, manager=manager, method=FAST_HASH
            )
    return app


@pytest.fixture
def web_app(db_url, tmp_path):
    app = make_app(db_url, tmp_path)
    yield app
    app.extensions["crm"].engine.dispose()


@pytest.fixture
def actors(web_app) -> dict[str, Actor]:
    with web_app.extensions["crm"].engine.connect() as conn:
        ids = dict(conn.execute(select(users.c.username, users.c.id)).all())
    return {name: Actor(ids[name], name, frozenset(roles)) for name, roles, _m in PEOPLE}


@pytest.fixture
def service(web_app):
    return web_app.extensions[KEY]


def post(client, path: str, data: dict, *, token_from: str | None = None, **kwargs):
    data = {"csrf_token": csrf_token(client, token_from or path), **data}
    return client.post(path, data=data, **kwargs)


def wrapper(page: str, name: str) -> str:
    """The HTML of one field's wrapper ([data-field=name]) on a form page."""
    start = page.index(f'data-field="{name}"')
    end = page.find('<div class="field ', start)
    return page[start : end if end > 0 else None]


def errors_of(page: str, key: str) -> list[str]:
    found = re.search(
        rf'<ul class="field-errors" id="{re.escape(key)}-errors"[^>]*>(.*?)</ul>', page, re.S
    )
    return re.findall(r"<li>(.*?)</li>", found.group(1)) if found else []


@pytest.fixture
def acme(service, actors) -> dict:
    return service.create(actors["root"], APP, "account", {"name": "Acme", "tier": "A"})


def deal_form(account: dict, **values) -> dict:
    return {
        "title": "Pumps",
        "account": str(account["id"]),
        "stage": "lead",
        "amount": "1000",
        "probability": "50",
        "discount_pct": "0",
        **values,
    }


def count_deals(service, actor) -> int:
    return service.list(actor, APP, "deal")["total"]


# --- new ----------------------------------------------------------------------------------


def test_a_deal_is_created_through_the_form_with_its_lines(web_app, service, actors, acme):
    li = signed_in(web_app, "li")
    page = page_of(li, DEALS + "/new")
    # The form as the metadata lays it out: tabs, sections, columns, every widget.
    assert 'class="form-section cols-2"' in page and "<legend>Why lost</legend>" in page
    assert 'data-tab="form-panel-2">Pricing</button>' in page
    assert '<template data-row-template="lines">' in page and 'data-add-row="lines"' in page
    assert 'data-datepicker="date"' in page and 'name="expected_close"' in page
    assert '<output class="computed" data-computed="weighted_amount"' in page
    assert '<script type="application/json" id="form-rules">' in page
    assert f'data-search-url="/a/{APP}/account/search"' in page
    # Hidden by its rule, and disabled so a browser does not send it.
    assert 'data-field="lost_reason" hidden' in page
    response = post(
        li,
        DEALS + "/new",
        deal_form(
            acme,
            **{
                "lines-0-product": "Valve",
                "lines-0-quantity": "2",
                "lines-0-unit_price": "10.5",
                "lines-1-product": "Pipe",
                "lines-1-quantity": "3",
                "lines-1-unit_price": "4",
                "lines-1-line_total": "999",  # computed: ignored
            },
        ),
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    deal = service.get(actors["li"], APP, "deal", record_id)
    assert deal["owner"] == actors["li"].id and deal["weighted_amount"] == "500.00"
    assert [(r["product"], r["quantity"], r["line_total"]) for r in deal["lines"]] == [
        ("Valve", 2, "21.00"),
        ("Pipe", 3, "12.00"),
    ]
    page = page_of(li, response.headers["Location"])
    assert "Created Pumps." in page


def test_a_new_record_is_prefilled_from_the_url(web_app, service, actors, acme):
    li = signed_in(web_app, "li")
    page = page_of(li, f"{DEALS}/new?account={acme['id']}&stage=won&title=From+link&bogus=1")
    assert f'name="account" required type="hidden" value="{acme["id"]}"' in page
    # The picker shows the title and carries the record's fields for the rules.
    assert 'value="Acme"' in wrapper(page, "account") and "data-record=" in wrapper(page, "account")
    assert '<option selected value="won">won</option>' in page
    assert 'value="From link"' in page
    # Values that fit nothing are left out.
    page = page_of(li, f"{DEALS}/new?account=99999&stage=nonsense&amount=abc")
    assert 'type="hidden" value=""' in wrapper(page, "account")
    assert '<option selected value="lead">lead</option>' in page


def test_a_hidden_fields_value_is_ignored(web_app, service, actors, acme):
    li = signed_in(web_app, "li")
    response = post(li, DEALS + "/new", deal_form(acme, lost_reason="sneaked in"))
    assert response.status_code == 302
    record_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert service.get(actors["li"], APP, "deal", record_id)["lost_reason"] is None


def test_required_when_is_enforced_beside_the_field(web_app, service, actors, acme):
    li = signed_in(web_app, "li")
    response = post(li, DEALS + "/new", deal_form(acme, stage="lost", lost_reason=" "))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert errors_of(page, "lost_reason") == ["is required"]
    # Shown again: the section is visible and the other inputs keep what was typed.
    assert 'data-field="lost_reason" hidden' not in page and 'value="Pumps"' in page
    assert count_deals(service, actors["li"]) == 0
    response = post(li, DEALS + "/new", deal_form(acme, stage="lost", lost_reason="Price"))
    assert response.status_code == 302


def test_a_crafted_change_to_a_read_only_field_is_refused(web_app, service, actors, acme):
    deal = service.create(
        actors["li"],
        APP,
        "deal",
        {"title": "Won one", "account": acme["id"], "stage": "won", "probability": 90},
    )
    li = signed_in(web_app, "li")
    edit = f"{DEALS}/{deal['id']}/edit"
    page = page_of(li, edit)
    assert "readonly" in wrapper(page, "probability")
    data = deal_form(acme, title="Won one", stage="won", probability="10", version="1")
    response = post(li, edit, data)
    assert response.status_code == 422
    assert errors_of(response.get_data(as_text=True), "probability") == [
        "cannot be changed here (the form shows it read-only)"
    ]
    assert service.get(actors["li"], APP, "deal", deal["id"])["probability"] == "90.00"
    # The same answer as the user leaves the field.
    headers = {**HX, "HX-Trigger-Name": "probability", "X-CSRFToken": csrf_token(li, edit)}
    answer = li.post(f"{DEALS}/{deal['id']}/validate", data=data, headers=headers)
    assert errors_of(answer.get_data(as_text=True), "probability") == [
        "cannot be changed here (the form shows it read-only)"
    ]
    # Computed and engine-owned fields sent anyway are ignored; the rest is saved.
    data.update(probability="90", weighted_amount="1", approval_state="approved", amount="7")
    response = post(li, edit, data)
    assert response.status_code == 302
    saved = service.get(actors["li"], APP, "deal", deal["id"])
    assert saved["amount"] == "7.00" and saved["weighted_amount"] == "6.30"
    assert saved["approval_state"] == "draft"


def test_messages_are_shown_beside_their_fields(web_app, service, actors, acme):
    li = signed_in(web_app, "li")
    data = deal_form(acme, amount="-5", expected_close="2001-01-01")
    data.update({"lines-0-product": "", "lines-0-quantity": "0"})
    response = post(li, DEALS + "/new", data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert errors_of(page, "amount") == ["must be at least 0"]
    assert errors_of(page, "lines-0-quantity") == ["must be at least 1"]
    assert errors_of(page, "lines-0-product") == ["is required"]
    # A cross-field validation goes beside the field it names, where the browser keeps it.
    assert f'<p class="rule-errors" data-rule-errors>{PAST_MESSAGE}</p>' in wrapper(
        page, "expected_close"
    )
    # The tab with the failing lines is opened by the page's script; the row is kept.
    assert 'name="lines-0-quantity"' in page


def test_inline_validation_answers_for_the_field_left(web_app, acme):
    li = signed_in(web_app, "li")
    token = csrf_token(li, DEALS + "/new")
    url = DEALS + "/validate"

    def check(name: str, **data) -> str:
        headers = {**HX, "HX-Trigger-Name": name, "X-CSRFToken": token}
        response = li.post(url, data={**deal_form(acme), **data}, headers=headers)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    answer = check("amount", amount="-5")
    assert 'id="amount-errors"' in answer and 'hx-swap-oob="true"' in answer
    assert errors_of(answer, "amount") == ["must be at least 0"]
    assert errors_of(check("amount", amount="12"), "amount") == []
    assert errors_of(check("lost_reason", stage="lost", lost_reason=""), "lost_reason") == [
        "is required"
    ]
    row = {"lines-0-product": "Valve", "lines-0-quantity": "0"}
    assert errors_of(check("lines-0-quantity", **row), "lines-0-quantity") == ["must be at least 1"]
    # Validations are the browser's to show as the user types: not repeated here.
    assert errors_of(check("expected_close", expected_close="2001-01-01"), "expected_close") == []
    assert check("no_such_field").strip() == ""
    # Without the CSRF token: refused.
    response = li.post(url, data=deal_form(acme), headers={**HX, "HX-Trigger-Name": "amount"})
    assert response.status_code == 400


# --- the type-ahead ---------------------------------------------------------------------------


def test_the_type_ahead_finds_a_chinese_name_by_a_substring(web_app, service, actors):
    for name in ("上海华东贸易有限公司", "北京华北机械有限公司", "Huadong Export Ltd"):
        service.create(actors["root"], APP, "account", {"name": name})
    li = signed_in(web_app, "li")
    page = page_of(li, f"/a/{APP}/account/search?q=华东", headers=HX)
    assert "上海华东贸易有限公司" in page and "北京华北机械有限公司" not in page
    assert "data-record=" in page and "data-pick=" in page
    page = page_of(li, f"/a/{APP}/account/search?q=有限公司", headers=HX)
    assert page.count("data-pick=") == 2
    page = page_of(li, f"/a/{APP}/account/search?q=huadong", headers=HX)
    assert "Huadong Export Ltd" in page and "上海" not in page
    assert "No matches" in page_of(li, f"/a/{APP}/account/search?q=zzz", headers=HX)


def test_the_type_ahead_offers_only_what_the_user_may_read(web_app, service, actors, acme):
    service.create(actors["li"], APP, "deal", {"title": "Pump for li", "account": acme["id"]})
    service.create(actors["wang"], APP, "deal", {"title": "Pump for wang", "account": acme["id"]})
    li = signed_in(web_app, "li")
    page = page_of(li, f"{DEALS}/search?q=pump", headers=HX)
    assert "Pump for li" in page and "Pump for wang" not in page
    chen = signed_in(web_app, "chen")
    page_of(chen, f"/a/{APP}/interaction/search?q=x", 403)


# --- the record's page ------------------------------------------------------------------------


def test_the_record_page_shows_fields_related_records_timeline_and_history(
    web_app, service, actors, acme
):
    root = actors["root"]
    deal = service.create(
        root,
        APP,
        "deal",
        {
            "title": "Big pump",
            "account": acme["id"],
            "amount": "1234.5",
            "lines": [{"product": "Valve", "quantity": 2, "unit_price": "10"}],
        },
    )
    contact = service.create(root, APP, "contact", {"full_name": "Mei", "account": acme["id"]})
    service.create(
        root,
        APP,
        "interaction",
        {
            "subject": "Visit in Shanghai",
            "account": acme["id"],
            "contact": contact["id"],
            "channel": "wechat",
            "occurred_at": "2025-03-05T09:30:00Z",
        },
    )
    service.update(root, APP, "deal", deal["id"], {"amount": "2000"})
    client = signed_in(web_app, "wang")
    page = page_of(client, f"{DEALS}/{deal['id']}")
    assert "CN¥2,000.00" in page and f'<a href="/a/{APP}/account/{acme["id"]}">Acme</a>' in page
    assert "<td>Valve</td>" in page and "CN¥20.00" in page  # the lines, as a table
    assert 'id="edit-record"' in page and 'id="delete-record"' in page
    assert f'hx-get="/a/{APP}/deal/{deal["id"]}/timeline"' in page
    assert f'hx-get="/w/{APP}/deal/{deal["id"]}/actions"' in page  # the workflow panel
    history = page_of(client, f"{DEALS}/{deal['id']}/history", headers=HX)
    change = re.search(r'<tr data-change="Amount">(.*?)</tr>', history, re.S).group(1)
    assert "CN¥1,234.50" in change and "CN¥2,000.00" in change
    # The account: records pointing at it, and its 360 timeline across channels.
    page = page_of(client, f"/a/{APP}/account/{acme['id']}")
    related = page[page.index('id="related-records"') :]
    assert "Big pump" in related and "Mei" in related and "Visit in Shanghai" in related
    assert f'href="{DEALS}?f.account={acme["id"]}"' in related
    timeline = page_of(client, f"/a/{APP}/account/{acme['id']}/timeline", headers=HX)
    assert "Visit in Shanghai" in timeline and "Big pump" in timeline
    assert "data-channel>wechat</span>" in timeline
    assert timeline.index("Big pump") < timeline.index("Visit in Shanghai")  # newest first
    assert "<strong>Record created</strong>" in timeline


def test_the_record_page_costs_a_fixed_number_of_queries(web_app, service, actors, acme):
    from sqlalchemy import event

    engine = web_app.extensions["crm"].engine
    client = signed_in(web_app, "wang")
    counts = []
    for deals in (1, 6):
        while count_deals(service, actors["root"]) < deals:
            service.create(actors["root"], APP, "deal", {"title": "D", "account": acme["id"]})
        statements = []

        def count(*_args, statements=statements):
            statements.append(1)

        event.listen(engine, "before_cursor_execute", count)
        try:
            page_of(client, f"/a/{APP}/account/{acme['id']}")
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
    assert counts[0] == counts[1]


# --- edit and the conflict page -----------------------------------------------------------------


def test_a_stale_edit_gives_the_conflict_page(web_app, service, actors, acme):
    deal = service.create(actors["li"], APP, "deal", {"title": "Pumps", "account": acme["id"]})
    li = signed_in(web_app, "li")
    edit = f"{DEALS}/{deal['id']}/edit"
    page = page_of(li, edit)
    assert 'name="version" value="1"' in page
    # wang saves first.
    service.update(actors["wang"], APP, "deal", deal["id"], {"title": "Pumps (wang)"})
    mine = deal_form(acme, title="Pumps (li)", amount="500", version="1")
    response = post(li, edit, mine, token_from=edit)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Someone else changed this first" in page and "wang" in page
    row = re.search(r'<tr class="differs"[^>]*>\s*<th scope="row">Title(.*?)</tr>', page, re.S)
    assert "Pumps (li)" in row.group(1) and "Pumps (wang)" in row.group(1)
    assert re.search(r'<tr class="same"[^>]*>\s*<th scope="row">Account', page)
    assert f'id="keep-theirs" href="{edit}"' in page
    # Overwrite with mine: the form sends again what li sent, at the current version.
    form = page[page.index(f'<form method="post" action="{edit}"') :]
    resend = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert resend["version"] == "2" and resend["title"] == "Pumps (li)"
    response = li.post(edit, data={k: html.unescape(v) for k, v in resend.items()})
    assert response.status_code == 302
    saved = service.get(actors["li"], APP, "deal", deal["id"])
    assert saved["title"] == "Pumps (li)" and saved["amount"] == "500.00" and saved["version"] == 3


@pytest.fixture
def under_approval(web_app, service, actors, acme) -> dict:
    """li's deal with a discount, waiting for its approval (so locked for editing)."""
    deal = service.create(
        actors["li"],
        APP,
        "deal",
        {"title": "Discounted", "account": acme["id"], "discount_pct": 10},
    )
    web_app.extensions[WORKFLOWS].fire(actors["li"], APP, "deal", deal["id"], "request_discount")
    return deal


def test_a_workflow_lock_is_shown_on_the_form(web_app, service, actors, acme, under_approval):
    deal = under_approval
    li = signed_in(web_app, "li")
    edit = f"{DEALS}/{deal['id']}/edit"
    page = page_of(li, edit)
    assert 'id="record-lock"' in page and "waiting for approval" in page
    current = service.get(actors["li"], APP, "deal", deal["id"])
    data = deal_form(acme, title="Changed", discount_pct="10", version=str(current["version"]))
    response = post(li, edit, data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    refusal = page[page.index('class="flash flash-error form-errors"') :]
    assert "waiting for approval" in refusal.split("</div>")[0]
    assert service.get(actors["li"], APP, "deal", deal["id"])["title"] == "Discounted"


def test_the_record_services_refusals_speak_the_users_language(
    web_app, service, actors, acme, under_approval
):
    deal = under_approval
    li = signed_in(web_app, "li", "zh")
    # A lock of the workflow, beside the form: the entity by its Chinese label.
    current = service.get(actors["li"], APP, "deal", deal["id"])
    data = deal_form(acme, title="Changed", discount_pct="10", version=str(current["version"]))
    response = post(li, f"{DEALS}/{deal['id']}/edit", data)
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    refusal = page[page.index('class="flash flash-error form-errors"') :].split("</div>")[0]
    assert "此商机正在等待审批（步骤 " in refusal and "waiting" not in refusal
    # A record that is not there: the error page.
    missing = html.unescape(page_of(li, f"{DEALS}/987654", 404))
    assert "没有编号为 987654 的商机" in missing
    # A delete the data forbids: the account still has a deal.
    root = signed_in(web_app, "root", "zh")
    account = f"/a/{APP}/account/{acme['id']}"
    response = post(root, f"{account}/delete", {}, token_from=account)
    assert response.status_code == 302
    page = html.unescape(page_of(root, response.headers["Location"]))
    assert f"未删除：有 1 条商机记录通过“Account”引用了此客户（编号 {deal['id']}）" in page
    # English users still read the English.
    wang = signed_in(web_app, "wang")
    assert "there is no deal with id 987654" in page_of(wang, f"{DEALS}/987654", 404)


# --- permissions, delete and restore --------------------------------------------------------------


def test_who_may_open_edit_and_create(web_app, service, actors, acme):
    wangs = service.create(actors["wang"], APP, "deal", {"title": "Wang's", "account": acme["id"]})
    li = signed_in(web_app, "li")
    page = page_of(li, f"{DEALS}/{wangs['id']}/edit", 403)
    assert "You do not have access to this" in page
    response = post(li, f"{DEALS}/{wangs['id']}/edit", deal_form(acme), token_from=DEALS + "/new")
    assert response.status_code == 403
    page_of(li, f"{DEALS}/{wangs['id']}", 403)
    chen = signed_in(web_app, "chen")
    page = page_of(chen, f"{DEALS}/{wangs['id']}")
    assert 'id="edit-record"' not in page and 'id="delete-record"' not in page
    page_of(chen, f"{DEALS}/{wangs['id']}/edit", 403)
    page_of(chen, f"{DEALS}/new", 403)
    page_of(chen, f"{DEALS}/{wangs['id']}/history", 200, headers=HX)
    page_of(chen, f"/a/{APP}/deal_line/new", 404)
    page_of(chen, f"{DEALS}/99999", 404)


def test_delete_moves_to_the_bin_and_restore_brings_back(web_app, service, actors, acme):
    deal = service.create(actors["wang"], APP, "deal", {"title": "Pumps", "account": acme["id"]})
    li = signed_in(web_app, "li")
    response = post(li, f"{DEALS}/{deal['id']}/delete", {}, token_from=DEALS)
    assert response.status_code == 403
    wang = signed_in(web_app, "wang")
    response = post(wang, f"{DEALS}/{deal['id']}/delete", {}, token_from=DEALS)
    assert response.status_code == 302 and response.headers["Location"] == DEALS
    assert "Pumps was moved to the recycle bin." in page_of(wang, DEALS)
    page_of(wang, f"{DEALS}/{deal['id']}", 404)
    response = post(wang, f"{DEALS}/{deal['id']}/restore", {}, token_from=DEALS)
    assert response.status_code == 302
    assert "Restored Pumps." in page_of(wang, response.headers["Location"])


# --- files ---------------------------------------------------------------------------------------


def test_files_are_uploaded_with_the_form_and_served_to_readers_only(
    web_app, service, actors, acme
):
    root = signed_in(web_app, "root")
    new = f"/a/{APP}/interaction/new"
    data = {
        "subject": "Quote sent",
        "account": str(acme["id"]),
        "channel": "email",
        "occurred_at": "2025-03-05T09:30",
        "attachment": (io.BytesIO(b"%PDF-1.4 quote"), "quote.pdf", "application/pdf"),
    }
    response = post(root, new, data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    detail = response.headers["Location"]
    record_id = int(detail.rsplit("/", 1)[1])
    stored = service.get(actors["root"], APP, "interaction", record_id)
    (upload,) = stored["attachment"]
    assert upload["name"] == "quote.pdf"
    link = f"{detail}/files/{upload['id']}"
    assert f'href="{link}"' in page_of(root, detail)
    # A sales rep reads interactions: the file comes as a download.
    li = signed_in(web_app, "li")
    response = li.get(link)
    assert response.status_code == 200 and response.data == b"%PDF-1.4 quote"
    assert "attachment" in response.headers["Content-Disposition"]
    response.close()
    # Finance does not read interactions; a file of another record is not found here.
    page_of(signed_in(web_app, "chen"), link, 403)
    page_of(li, f"/a/{APP}/interaction/{record_id}/files/{upload['id'] + 1}", 404)
    # Editing keeps the file unless it is removed.
    edit = f"{detail}/edit"
    page = page_of(root, edit)
    assert f'name="attachment" value="{upload["id"]}"' in page
    data = {"subject": "Quote sent", "account": str(acme["id"]), "channel": "email"}
    response = post(root, edit, {**data, "version": "1", "attachment": str(upload["id"])})
    assert response.status_code == 302
    assert service.get(actors["root"], APP, "interaction", record_id)["attachment"][0] == upload
    version = service.get(actors["root"], APP, "interaction", record_id)["version"]
    response = post(root, edit, {**data, "version": str(version)})
    assert response.status_code == 302
    assert service.get(actors["root"], APP, "interaction", record_id)["attachment"] == []


# --- escaping ----------------------------------------------------------------------------------


def test_labels_options_and_values_are_escaped(web_app, service, actors, acme):
    deal = service.create(
        actors["root"],
        APP,
        "deal",
        {"title": SCRIPT, "account": acme["id"], "stage": "negotiation"},
    )
    client = signed_in(web_app, "root")
    pages = [
        page_of(client, f"{DEALS}/new"),
        page_of(client, f"{DEALS}/{deal['id']}"),
        page_of(client, f"{DEALS}/{deal['id']}/edit"),
        page_of(client, f"{DEALS}/{deal['id']}/history", headers=HX),
        page_of(client, f"{DEALS}/search?q=script", headers=HX),
    ]
    for page in pages:
        assert SCRIPT not in page
    assert ESCAPED in pages[0] and ESCAPED in pages[1] and ESCAPED in pages[2]
    assert f"<h1>Edit {ESCAPED}</h1>" in pages[2]
    assert ESCAPED in pages[4]
    service.update(actors["root"], APP, "deal", deal["id"], {"title": "Changed"})
    response = post(
        client,
        f"{DEALS}/{deal['id']}/edit",
        deal_form(acme, title=SCRIPT, version="1"),
    )
    page = response.get_data(as_text=True)
    assert 'id="conflict"' in page and SCRIPT not in page and ESCAPED in page


# --- every widget ------------------------------------------------------------------------------


def test_every_field_type_has_a_widget(db_url, tmp_path):
    app = make_app(db_url, tmp_path)
    try:
        publish.apply_document(
            app.extensions["crm"].engine, json.loads(KIT.read_text(encoding="utf-8"))
        )
        root = signed_in(app, "root")
        page = page_of(root, "/a/kit/thing/new")
        for widget in (
            'class="rating"',
            'class="choices"',
            'type="checkbox" name="tags" value="a"',
            'data-datepicker="datetime"',
            'name="place-lat"',
            "data-signature-pad",
            'type="file"',
            'class="picker multiple"',
            'data-color="#ff0000"',
            '<option value="">—</option>',
            'data-rows="parts"',
            'data-computed="double"',
        ):
            assert widget in page, widget
        other = app.extensions[KEY].create(
            Actor(1, "root", frozenset({"admin"})), "kit", "other", {"name": "O", "tier": "A"}
        )
        data = {
            "title": "Everything",
            "count": "3",
            "active": "true",
            "due": "2030-01-02",
            "at": "2030-01-02T08:30",
            "colour": "red",
            "tags": ["a", "c"],
            "stars": "4",
            "place-lat": "31.2",
            "place-lng": "121.5",
            "place-address": "Shanghai",
            "other": str(other["id"]),
            "linked": [str(other["id"])],
            "assignee": "1",
            "parts-0-label": "Bolt",
            "parts-0-qty": "2",
            "parts-0-price": "1.5",
        }
        response = post(root, "/a/kit/thing/new", data)
        assert response.status_code == 302, response.get_data(as_text=True)[:4000]
        page = page_of(root, response.headers["Location"])
        assert "Everything" in page and "Shanghai" in page and "Bolt" in page
        page = page_of(root, response.headers["Location"] + "/edit")
        assert 'value="4" checked' in page and 'value="2030-01-02T08:30"' in page
    finally:
        app.extensions["crm"].engine.dispose()


# --- public forms ------------------------------------------------------------------------------


PUBLIC = f"/f/{APP}/web_enquiry"


def test_a_public_form_creates_a_record_without_an_account(web_app, service, actors):
    visitor = web_app.test_client()
    page = page_of(visitor, PUBLIC + "?full_name=Mei+Lin&account=1")
    assert "<h1>Contact us</h1>" in page and 'value="Mei Lin"' in page
    # No navigation, nobody's data.
    assert 'class="sidebar"' not in page and "sign-out" not in page
    assert "Sales pipeline" not in page
    response = post(visitor, PUBLIC, {"full_name": "Mei Lin", "email": "mei@example.com"})
    assert response.status_code == 302 and response.headers["Location"] == PUBLIC + "/thanks"
    assert "Thank you!" in page_of(visitor, response.headers["Location"])
    (contact,) = service.list(actors["root"], APP, "contact")["items"]
    assert contact["full_name"] == "Mei Lin" and contact["email"] == "mei@example.com"
    assert contact["owner"] is None and contact["created_by"] is None
    # The account was in the URL, but not on the form: not set.
    assert contact["account"] is None
    # Invalid input comes back beside the field.
    response = post(visitor, PUBLIC, {"full_name": "", "email": "not-an-email"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert errors_of(page, "full_name") == ["is required"] and errors_of(page, "email")


def test_a_campaign_link_sets_a_reference_placed_on_the_form(web_app, service, actors, acme):
    visitor = web_app.test_client()
    path = f"/f/{APP}/partner_signup?account={acme['id']}"
    page = page_of(visitor, path)
    # The reference travels as an id only: the account's name is not shown to visitors.
    assert "Acme" not in page and 'name="account"' in page
    form = dict(re.findall(r'<input[^>]*name="(account)"[^>]*value="(\d+)"', page))
    response = post(visitor, path, {"full_name": "Partner", **form})
    assert response.status_code == 302
    (contact,) = service.list(actors["root"], APP, "contact")["items"]
    assert contact["account"] == acme["id"]


def test_public_submissions_are_rate_limited(db_url, tmp_path):
    app = make_app(db_url, tmp_path, public_forms={"max_submissions": 2, "window_minutes": 10})
    try:
        visitor = app.test_client()
        for n in range(2):
            response = post(visitor, PUBLIC, {"full_name": f"Person {n}"})
            assert response.status_code == 302
        response = post(visitor, PUBLIC, {"full_name": "One too many"})
        assert response.status_code == 429 and "Retry-After" in response.headers
        assert "try again in 10 minutes" in response.get_data(as_text=True)
        with app.extensions["crm"].engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(public_submissions)).scalar()
        assert count == 3
        # Another address is not affected.
        other = app.test_client()
        response = post(
            other, PUBLIC, {"full_name": "Elsewhere"}, environ_base={"REMOTE_ADDR": "10.0.0.9"}
        )
        assert response.status_code == 302
    finally:
        app.extensions["crm"].engine.dispose()


def test_public_submissions_may_belong_to_a_configured_user(db_url, tmp_path):
    app = make_app(db_url, tmp_path, public_forms={"owner": "wang"})
    try:
        visitor = app.test_client()
        assert post(visitor, PUBLIC, {"full_name": "Owned"}).status_code == 302
        root = Actor(1, "root", frozenset({"admin"}))
        (contact,) = app.extensions[KEY].list(root, APP, "contact")["items"]
        with app.extensions["crm"].engine.connect() as conn:
            wang = conn.execute(select(users.c.id).where(users.c.username == "wang")).scalar()
        assert contact["owner"] == wang
    finally:
        app.extensions["crm"].engine.dispose()


def test_public_forms_need_the_csrf_token_and_must_be_public(web_app):
    visitor = web_app.test_client()
    visitor.get(PUBLIC)
    assert visitor.post(PUBLIC, data={"full_name": "No token"}).status_code == 400
    page_of(visitor, f"/f/{APP}/deal_main", 404)
    page_of(visitor, f"/f/{APP}/nothing", 404)
    page_of(visitor, "/f/no_such_app/web_enquiry", 404)


def test_the_form_speaks_the_users_language(web_app):
    root = signed_in(web_app, "root")
    token = csrf_token(root, DEALS + "/new")
    root.post("/language", data={"language": "zh", "next": "/", "csrf_token": token})
    page = page_of(root, DEALS + "/new")
    assert "<legend>商机</legend>" in page and "<legend>丢单原因</legend>" in page
    assert 'data-tab="form-panel-2">报价</button>' in page
    page = page_of(root, f"/a/{APP}/account/new")
    assert '<label class="field-label" for="annual_revenue">年营收</label>' in page
    assert '<option value="manufacturing">制造</option>' in page


def test_a_public_form_speaks_the_visitors_language(web_app):
    visitor = web_app.test_client()
    page = page_of(visitor, PUBLIC, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "<h1>联系我们</h1>" in page and "您的信息" in page


CONTACTS = f"/a/{APP}/contact"
BAD_CONTACT = {"full_name": "", "email": "not-an-email", "preferred_channel": "fax"}


def said(page: str, key: str) -> list[str]:
    """The messages beside a field as a reader sees them (quotes unescaped)."""
    return [html.unescape(m) for m in errors_of(page, key)]


def test_value_messages_speak_the_users_language(web_app):
    li = signed_in(web_app, "li", "zh")
    response = post(li, CONTACTS + "/new", BAD_CONTACT)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert said(page, "full_name") == ["为必填项"]
    assert said(page, "email") == ["“not-an-email”不是有效的电子邮件地址"]
    assert said(page, "preferred_channel") == ["“fax”不在可选项中：phone, email, wechat, visit"]
    # The same as the user leaves a field, and for a condition (required_when) or a limit.
    headers = {**HX, "X-CSRFToken": csrf_token(li, CONTACTS + "/new")}
    answer = li.post(
        CONTACTS + "/validate", data=BAD_CONTACT, headers={**headers, "HX-Trigger-Name": "email"}
    )
    assert said(answer.get_data(as_text=True), "email") == ["“not-an-email”不是有效的电子邮件地址"]
    page = post(li, DEALS + "/new", {"stage": "lost", "amount": "-5"}).get_data(as_text=True)
    assert said(page, "lost_reason") == ["为必填项"] and said(page, "amount") == ["不能小于 0"]
    # A visitor of a public form reads them in the browser's language.
    visitor = web_app.test_client()
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    page = page_of(visitor, PUBLIC, headers=zh)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = visitor.post(PUBLIC, data={**BAD_CONTACT, "csrf_token": token}, headers=zh)
    assert said(response.get_data(as_text=True), "email") == [
        "“not-an-email”不是有效的电子邮件地址"
    ]


def test_value_messages_stay_english_for_english_users_and_the_api(web_app):
    wang = signed_in(web_app, "wang")
    page = post(wang, CONTACTS + "/new", BAD_CONTACT).get_data(as_text=True)
    assert said(page, "full_name") == ["is required"]
    assert said(page, "email") == ["'not-an-email' is not an e-mail address"]
    assert said(page, "preferred_channel") == [
        "'fax' is not one of the options: phone, email, wechat, visit"
    ]
    # The API speaks English to everyone, whatever the user's or the request's language.
    li = signed_in(web_app, "li", "zh")
    headers = {"X-CSRFToken": csrf_token(li, "/"), "Accept-Language": "zh-CN"}
    body = {"full_name": "Mei", "email": "not-an-email", "preferred_channel": "fax"}
    response = li.post(f"/api/v1/records/{APP}/contact", json=body, headers=headers)
    assert response.status_code == 422
    assert sorted(e["message"] for e in response.get_json()["errors"]) == [
        "'fax' is not one of the options: phone, email, wechat, visit",
        "'not-an-email' is not an e-mail address",
    ]


def test_a_row_rule_that_follows_a_reference_admits_the_user_it_names(db_url, tmp_path):
    """The detail page decides as the record service does: the rule reads the account."""
    doc = example()
    deal = next(e for e in doc["entities"] if e["name"] == "deal")
    deal["permissions"]["finance"] = ["read", "update"]
    deal["row_rules"] = [
        {
            "role": "finance",
            "rule": {"==": [{"var": "account.account_manager"}, {"var": "$user.id"}]},
        }
    ]
    app = make_app(db_url, tmp_path / "rules")
    engine = app.extensions["crm"].engine
    doc["version"] = "99.0.0"
    publish.apply_document(engine, doc)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(users.c.username, users.c.id)).all())
    service = app.extensions[KEY]
    admin = Actor(ids["root"], "root", frozenset({"admin"}))
    made = {}
    for manager in ("chen", "wang"):
        account = service.create(
            admin, "sales_pipeline", "account", {"name": manager, "account_manager": ids[manager]}
        )
        made[manager] = service.create(
            admin, "sales_pipeline", "deal", {"title": f"{manager}'s", "account": account["id"]}
        )["id"]
    chen = signed_in(app, "chen")
    assert "chen&#39;s" in page_of(chen, f"/a/sales_pipeline/deal/{made['chen']}")
    page_of(chen, f"/a/sales_pipeline/deal/{made['chen']}/edit")
    page_of(chen, f"/a/sales_pipeline/deal/{made['wang']}", status=403)
    page_of(chen, f"/a/sales_pipeline/deal/{made['wang']}/edit", status=403)
    engine.dispose()
