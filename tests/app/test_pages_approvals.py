"""Workflow pages: a record's actions and diagram, the approvals inbox, notifications.

The sales_pipeline example's discount approval driven through the pages with the
Flask client: 10% needs a sales manager (wang); 20% needs wang, then every finance
user (chen). li is a sales rep who reports to wang; the account's manager zhao is
copied. htmx requests carry ``HX-Request`` as the browser would.
"""

from __future__ import annotations

import copy
import html as markup
import json
import re

import pytest
from sqlalchemy import select

from app import accounts, create_app
from metamodel import publish, store
from metamodel.system_tables import users
from records.actor import Actor

from .test_api import EXAMPLE
from .test_web_foundation import PASSWORD, csrf_token, sign_in

APP = "sales_pipeline"
FAST_HASH = "pbkdf2:sha256:1"
HX = {"HX-Request": "true"}
# (username, roles, manager); wang is created before li, who reports to him.
PEOPLE = [
    ("root", ["admin"], None),
    ("wang", ["sales_manager"], None),
    ("li", ["sales"], "wang"),
    ("zhao", ["sales"], "wang"),
    ("chen", ["finance"], None),
]


def make_web_app(db_url, tmp_path, doc: dict):
    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "i"), "secret_key": "t"}
    )
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, doc)
    with engine.begin() as conn:
        for name, roles, manager in PEOPLE:
            accounts.create_user(
                conn, name, roles, password=PASSWORD, manager=manager, method=FAST_HASH
            )
    return app


@pytest.fixture
def example_doc() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def web_app(db_url, tmp_path, example_doc):
    app = make_web_app(db_url, tmp_path, example_doc)
    yield app
    app.extensions["crm"].engine.dispose()


def people_of(app) -> dict[str, Actor]:
    with app.extensions["crm"].engine.connect() as conn:
        rows = conn.execute(select(users.c.id, users.c.username, users.c.roles))
        return {row.username: Actor(row.id, row.username, frozenset(row.roles)) for row in rows}


@pytest.fixture
def people(web_app) -> dict[str, Actor]:
    return people_of(web_app)


@pytest.fixture
def records(web_app):
    return web_app.extensions["crm.records"]


@pytest.fixture
def flow(web_app):
    return web_app.extensions["crm.workflows"]


@pytest.fixture
def make_deal(records, people):
    account = records.create(
        people["root"], APP, "account", {"name": "Acme", "account_manager": people["zhao"].id}
    )

    def make(discount: int = 10, title: str | None = None) -> int:
        deal = records.create(
            people["li"],
            APP,
            "deal",
            {
                "title": title or f"Deal {discount}%",
                "account": account["id"],
                "discount_pct": discount,
            },
        )
        return deal["id"]

    return make


class Browser:
    """One signed-in user's session: pages, and posts that carry the CSRF token."""

    def __init__(self, app, username: str, language: str | None = None):
        self.client = app.test_client()
        assert sign_in(self.client, username).status_code == 302
        self.token = csrf_token(self.client, "/")
        if language:
            self.post("/language", {"language": language, "next": "/"}, htmx=False)

    def get(self, path: str, htmx: bool = False):
        return self.client.get(path, headers=HX if htmx else {})

    def post(self, path: str, data: dict | None = None, htmx: bool = True):
        body = {"csrf_token": self.token, **(data or {})}
        return self.client.post(path, data=body, headers=HX if htmx else {})


@pytest.fixture
def as_(web_app):
    sessions: dict[str, Browser] = {}

    def get(username: str) -> Browser:
        if username not in sessions:
            sessions[username] = Browser(web_app, username)
        return sessions[username]

    return get


def record(deal: int) -> str:
    return f"/w/{APP}/deal/{deal}"


def page(response, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def said(html: str) -> str:
    """The page's text as a reader sees it (quotes and brackets unescaped)."""
    return markup.unescape(html)


def transitions(html: str) -> list[str]:
    return re.findall(r'data-transition="([^"]+)"', html)


def waiting_tasks(flow, actor) -> list[int]:
    return [item["id"] for item in flow.inbox(actor, "waiting")]


def state_of(records, people, deal: int) -> str:
    return records.get(people["root"], APP, "deal", deal)["approval_state"]


def fire(browser: Browser, deal: int, comment: str = "", name: str = "request_discount"):
    return browser.post(f"{record(deal)}/transitions/{name}", {"comment": comment})


# --- the record's actions ---------------------------------------------------------------


def test_only_the_transitions_the_user_may_fire_are_shown(as_, make_deal):
    deal, no_discount = make_deal(10), make_deal(0)
    li_page = page(as_("li").get(f"{record(deal)}/actions", htmx=True))
    assert transitions(li_page) == ["request_discount"]
    assert "Request discount approval" in li_page
    assert "<html" not in li_page  # htmx gets the partial only
    # wang may not request (not the owner, not sales); chen neither.
    for other in ("wang", "chen"):
        other_page = page(as_(other).get(f"{record(deal)}/actions", htmx=True))
        assert transitions(other_page) == []
        assert "nothing you can do" in other_page
    # Without a discount the transition's condition fails, so li gets no button either.
    assert transitions(page(as_("li").get(f"{record(no_discount)}/actions", htmx=True))) == []
    # Without htmx the actions are a page of their own, with the diagram one click away.
    whole = page(as_("li").get(f"{record(deal)}/actions"))
    assert "<html" in whole and f"{record(deal)}/diagram" in whole


def test_firing_with_a_comment_opens_the_approval(as_, flow, people, make_deal):
    deal = make_deal(20)
    response = fire(as_("li"), deal, "key account, please")
    html = page(response)
    assert response.headers["HX-Trigger"] == "record-changed"
    assert "Sent for approval: Request discount approval." in html
    assert "key account, please" in html
    assert 'data-step="manager"' in html and 'aria-current="step" data-step="manager"' in html
    assert re.search(r'class="wf-assignee">wang</span>\s*<span class="chip wf-status', html)
    assert "Withdraw" in html and transitions(html) == []  # nothing else to fire meanwhile
    approval = flow.approval(people["li"], APP, "deal", deal)
    assert approval["comment"] == "key account, please" and approval["step"] == "manager"
    # wang sees the same approval, with his decision buttons and no withdraw.
    wang_page = page(as_("wang").get(f"{record(deal)}/actions", htmx=True))
    (task,) = waiting_tasks(flow, people["wang"])
    assert f"/tasks/{task}/approve" in wang_page and f"/tasks/{task}/reject" in wang_page
    assert "/withdraw" not in wang_page
    assert "Send back to the previous step" not in wang_page  # the first step has none


def test_without_htmx_a_change_redirects_with_a_message(as_, make_deal, records, people):
    deal = make_deal(10)
    response = as_("li").post(f"{record(deal)}/transitions/request_discount", htmx=False)
    assert response.status_code == 302
    # Back to the record's detail page, which shows the message.
    assert response.headers["Location"].endswith(f"/a/{APP}/deal/{deal}")
    assert "Sent for approval" in page(as_("li").get(response.headers["Location"]))
    assert state_of(records, people, deal) == "pending"


def test_approving_on_the_record_moves_it_and_a_plain_transition_follows(
    as_, flow, records, people, make_deal
):
    deal = make_deal(10)
    fire(as_("li"), deal)
    (task,) = waiting_tasks(flow, people["wang"])
    html = page(as_("wang").post(f"{record(deal)}/tasks/{task}/approve", {"comment": "ok"}))
    assert "You approved. The approval is complete." in html
    assert state_of(records, people, deal) == "approved"
    assert transitions(html) == ["reopen"]  # wang (sales_manager) may reopen it now
    moved = page(as_("wang").post(f"{record(deal)}/transitions/reopen", {"comment": "terms"}))
    assert "Done: the record is now draft." in moved
    assert records.history(people["root"], APP, "deal", deal)[0]["comment"] == "terms"


def test_reject_returns_the_deal_to_its_owner(as_, flow, records, people, make_deal):
    deal = make_deal(10)
    fire(as_("li"), deal)
    (task,) = waiting_tasks(flow, people["wang"])
    html = page(as_("wang").post(f"{record(deal)}/tasks/{task}/reject", {"comment": "too much"}))
    assert "You rejected the request." in html
    assert state_of(records, people, deal) == "rejected"
    # From rejected, li may ask again.
    assert transitions(page(as_("li").get(f"{record(deal)}/actions", htmx=True))) == [
        "request_discount"
    ]


def test_send_back_to_the_previous_step_or_to_the_submitter(as_, flow, records, people, make_deal):
    deal = make_deal(20)
    fire(as_("li"), deal)
    flow.act(people["wang"], waiting_tasks(flow, people["wang"])[0], "approve")
    (chen_task,) = waiting_tasks(flow, people["chen"])
    chen_page = page(as_("chen").get(f"{record(deal)}/actions", htmx=True))
    assert "Send back to the previous step" in chen_page
    html = page(
        as_("chen").post(
            f"{record(deal)}/tasks/{chen_task}/send_back", {"to": "previous", "comment": "check"}
        )
    )
    assert "You sent the request back." in html
    assert flow.approval(people["li"], APP, "deal", deal)["step"] == "manager"
    (again,) = waiting_tasks(flow, people["wang"])
    page(as_("wang").post(f"{record(deal)}/tasks/{again}/send_back", {"to": "start"}))
    assert flow.approval(people["li"], APP, "deal", deal) is None
    assert state_of(records, people, deal) == "draft"
    assert transitions(page(as_("li").get(f"{record(deal)}/actions", htmx=True))) == [
        "request_discount"
    ]


def test_the_submitter_withdraws_until_someone_approves(as_, flow, records, people, make_deal):
    deal = make_deal(20)
    fire(as_("li"), deal)
    html = page(as_("li").post(f"{record(deal)}/withdraw"))
    assert "You withdrew the approval." in html and "/withdraw" not in html
    assert state_of(records, people, deal) == "draft"
    fire(as_("li"), deal)
    flow.act(people["wang"], waiting_tasks(flow, people["wang"])[0], "approve")
    li_page = page(as_("li").get(f"{record(deal)}/actions", htmx=True))
    assert "/withdraw" not in li_page  # wang approved a step: no withdraw button any more
    refused = as_("li").post(f"{record(deal)}/withdraw")
    html = page(refused)
    assert refused.headers["X-Workflow-Refused"] == "409"
    assert "wang already approved step manager" in html and "HX-Trigger" not in refused.headers


def test_transfer_add_approver_and_comment(as_, flow, people, make_deal):
    deal = make_deal(10)
    fire(as_("li"), deal)
    (task,) = waiting_tasks(flow, people["wang"])
    html = page(
        as_("wang").post(f"{record(deal)}/tasks/{task}/add_approver", {"add_users": "zhao, root"})
    )
    assert "You added approvers to this step." in html
    assert len(waiting_tasks(flow, people["zhao"])) == 1
    page(as_("wang").post(f"{record(deal)}/tasks/{task}/comment", {"comment": "asking zhao"}))
    assert "asking zhao" in flow.notifications(people["li"])[0]["message"]
    html = page(as_("wang").post(f"{record(deal)}/tasks/{task}/transfer", {"transfer_to": "chen"}))
    assert "You handed the task to chen." in html
    assert (
        waiting_tasks(flow, people["wang"]) == [] and len(waiting_tasks(flow, people["chen"])) == 1
    )
    assert f"/tasks/{task}/approve" not in html  # no longer wang's to decide


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("transfer", {"transfer_to": "nobody"}, "there is no active user 'nobody'"),
        ("transfer", {}, "name the user to hand the task to"),
        ("add_approver", {"add_users": " , "}, "name at least one user to add"),
        ("comment", {}, "write a comment"),
        ("comment", {"comment": "bad\x00byte"}, "contains a NUL character"),
        ("fly", {}, "there is no approval action 'fly'"),
    ],
)
def test_refused_actions_show_the_reason_in_the_panel(
    as_, flow, people, make_deal, action, data, message
):
    deal = make_deal(10)
    fire(as_("li"), deal)
    (task,) = waiting_tasks(flow, people["wang"])
    response = as_("wang").post(f"{record(deal)}/tasks/{task}/{action}", data)
    html = page(response)
    assert 'class="flash flash-error wf-refusal"' in html and message in said(html)
    assert "HX-Trigger" not in response.headers
    assert waiting_tasks(flow, people["wang"]) == [task]  # nothing happened


def test_refusals_keep_their_status_without_htmx_and_never_fail(as_, flow, people, make_deal):
    deal, no_discount = make_deal(10), make_deal(0)
    guarded = as_("li").post(f"{record(no_discount)}/transitions/request_discount", htmx=False)
    html = page(guarded, 409)
    assert "wf-refusal" in html and "discount" in html.lower()
    fire(as_("li"), deal)
    (task,) = waiting_tasks(flow, people["wang"])
    # Someone else's task: the engine says whose it is.
    html = page(as_("chen").post(f"{record(deal)}/tasks/{task}/approve", htmx=False), 403)
    assert "this task is wang's" in said(html)
    unknown = as_("li").post(f"{record(deal)}/transitions/launch", htmx=False)
    assert "has no transition 'launch'" in said(page(unknown, 404))


def test_refusals_speak_the_users_language(web_app, as_, flow, people, make_deal):
    li, wang, chen = (Browser(web_app, name, "zh") for name in ("li", "wang", "chen"))
    deal, no_discount = make_deal(10), make_deal(0)
    # The condition, with the entity's and the transition's labels in Chinese.
    html = said(page(li.post(f"{record(no_discount)}/transitions/request_discount")))
    assert f"商机 {no_discount} 不满足“申请折扣审批”的条件（条件涉及 discount_pct）" in html
    fire(li, deal)
    (task,) = waiting_tasks(flow, people["wang"])
    html = said(page(chen.post(f"{record(deal)}/tasks/{task}/approve", htmx=False), 403))
    assert "该任务属于 wang，只有其本人（或管理员）可以处理" in html
    # A status inside a refusal is translated too.
    page(wang.post(f"/approvals/tasks/{task}/reject", {"comment": "不行"}))
    again = said(page(wang.post(f"/approvals/tasks/{task}/approve")))
    assert re.search(r"该任务已于 \d{4}-\d\d-\d\d \d\d:\d\d（UTC）驳回", again), again
    # The same refusal in English for an English user (an admin may act on any task),
    # and for the API whatever the language.
    english = said(page(as_("root").post(f"/approvals/tasks/{task}/approve")))
    assert "this task is already rejected at " in english
    api = wang.client.post(
        f"/api/v1/approvals/{task}/approve",
        json={},
        headers={"X-CSRFToken": wang.token, "Accept-Language": "zh-CN"},
    )
    assert api.status_code == 409
    assert api.get_json()["errors"][0]["message"].startswith("this task is already rejected at ")


def test_a_stale_version_is_refused_and_the_panel_is_fresh(as_, records, people, make_deal):
    deal = make_deal(10)
    seen = records.get(people["li"], APP, "deal", deal)["version"]
    records.update(people["li"], APP, "deal", deal, {"discount_pct": 12})
    response = as_("li").post(
        f"{record(deal)}/transitions/request_discount", {"version": str(seen)}
    )
    html = page(response)
    assert response.headers["X-Workflow-Refused"] == "412"
    assert "changed by someone else" in html
    assert f'name="version" value="{seen + 1}"' in html
    assert state_of(records, people, deal) == "draft"


INCLUDING_PAGE = """{% extends "base.html" %}{% block content %}
{% with panel = workflow_panel("sales_pipeline", "deal", record_id) %}
{% include "workflow/_record_actions.html" %}{% endwith %}
{% with diagram = workflow_diagram("sales_pipeline", "deal", record_id) %}
{% include "workflow/_diagram.html" %}{% endwith %}
{% endblock %}"""


def test_another_page_can_include_the_panel_and_the_diagram(db_url, tmp_path, example_doc):
    from flask import render_template_string

    from app.views.pages import page_blueprint

    app = make_web_app(db_url, tmp_path, example_doc)
    detail = page_blueprint("detail_test", __name__)
    detail.add_url_rule(
        "/test/deal/<int:record_id>",
        "show",
        lambda record_id: render_template_string(INCLUDING_PAGE, record_id=record_id),
    )
    app.register_blueprint(detail)
    try:
        records, people = app.extensions["crm.records"], people_of(app)
        account = records.create(people["root"], APP, "account", {"name": "Acme"})
        deal = records.create(
            people["li"], APP, "deal", {"title": "T", "account": account["id"], "discount_pct": 5}
        )["id"]
        html = page(Browser(app, "li").get(f"/test/deal/{deal}"))
        assert transitions(html) == ["request_discount"]
        assert "current" in state_classes(html)["draft"]
        # An entity without a workflow shows an empty panel, not a message.
        contact = records.create(people["root"], APP, "contact", {"full_name": "Zhou"})["id"]
        panel = page(Browser(app, "root").get(f"/w/{APP}/contact/{contact}/actions", htmx=True))
        assert "wf-panel" in panel and "nothing you can do" not in panel
        assert "This record has no workflow." in page(
            Browser(app, "root").get(f"/w/{APP}/contact/{contact}/diagram", htmx=True)
        )
    finally:
        app.extensions["crm"].engine.dispose()


def test_strangers_may_not_see_the_panel(as_, make_deal, web_app):
    deal = make_deal(10)
    assert as_("zhao").get(f"{record(deal)}/actions").status_code == 403  # read:own only
    assert as_("li").get(f"/w/{APP}/deal/999/actions").status_code == 404
    assert as_("li").get(f"/w/{APP}/nothing/1/actions").status_code == 404
    assert web_app.test_client().get(f"{record(deal)}/actions").status_code == 302


def test_posts_without_the_csrf_token_are_refused(as_, flow, people, make_deal):
    deal = make_deal(10)
    client = as_("li").client
    assert client.post(f"{record(deal)}/transitions/request_discount").status_code == 400
    fire(as_("li"), deal)
    (task,) = waiting_tasks(flow, people["wang"])
    wang = as_("wang").client
    assert wang.post(f"/approvals/tasks/{task}/approve", headers=HX).status_code == 400
    assert wang.post("/approvals/batch", data={"task": str(task)}).status_code == 400
    assert wang.post("/notifications/read").status_code == 400
    assert waiting_tasks(flow, people["wang"]) == [task]


# --- the diagram ------------------------------------------------------------------------


def state_classes(html: str) -> dict[str, str]:
    return dict(
        (state, classes)
        for classes, state in re.findall(r'<g class="wf-state([^"]*)" data-state="([^"]+)"', html)
    )


def test_the_diagram_highlights_the_current_and_pending_states(as_, flow, people, make_deal):
    deal = make_deal(20)
    before = page(as_("li").get(f"{record(deal)}/diagram", htmx=True))
    assert "<svg" in before and "<script" not in before
    classes = state_classes(before)
    # Initial first, then along the transitions, final last.
    assert list(classes) == ["draft", "pending", "rejected", "approved"]
    assert "current" in classes["draft"] and "current" not in classes["pending"]
    assert 'fill="#f39c12"' in before  # the state's colour
    assert "Request discount approval</text>" in before and "Reopen</text>" in before

    fire(as_("li"), deal)
    flow.act(people["wang"], waiting_tasks(flow, people["wang"])[0], "approve")
    during = page(as_("chen").get(f"{record(deal)}/diagram"))
    classes = state_classes(during)
    assert "current" in classes["pending"] and "pending" in classes["pending"]
    assert "target" in classes["approved"] and "current" not in classes["draft"]
    steps = re.findall(r'<li class="wf-step wf-step-(\w+)[^"]*"[^>]*data-step="(\w+)"', during)
    assert steps == [("passed", "manager"), ("current", "finance")]
    assert "<html" in during  # a page of its own without htmx


def test_labels_from_the_metadata_are_escaped(db_url, tmp_path, example_doc):
    doc = copy.deepcopy(example_doc)
    workflow = doc["workflows"][0]
    workflow["states"][1]["label"] = "<script>alert(1)</script>"
    workflow["transitions"][0]["label"] = '"><img src=x onerror=alert(2)>'
    app = make_web_app(db_url, tmp_path, doc)
    try:
        people = people_of(app)
        records = app.extensions["crm.records"]
        account = records.create(people["root"], APP, "account", {"name": "Acme"})
        deal = records.create(
            people["li"],
            APP,
            "deal",
            {"title": "<b>bold</b>", "account": account["id"], "discount_pct": 5},
        )["id"]
        li = Browser(app, "li")
        for html in (
            page(li.get(f"{record(deal)}/diagram")),
            page(fire(li, deal)),
            page(Browser(app, "wang").get("/approvals")),
        ):
            assert "<script>alert" not in html and "<img src=x" not in html
            assert "<b>bold</b>" not in html
        diagram = page(li.get(f"{record(deal)}/diagram"))
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in diagram
        assert "&#34;&gt;&lt;img src=x" in diagram
    finally:
        app.extensions["crm"].engine.dispose()


# --- the inbox --------------------------------------------------------------------------


def test_the_inbox_lists_waiting_tasks_and_approves_a_row_in_place(
    as_, flow, records, people, make_deal
):
    deal = make_deal(10, title="Big <order>")
    fire(as_("li"), deal, "please")
    wang = as_("wang")
    inbox = page(wang.get("/approvals"))
    (task,) = waiting_tasks(flow, people["wang"])
    row = re.search(rf'<tr id="wf-row-{task}".*?</tr>', inbox, re.S).group(0)
    assert "Big &lt;order&gt;" in row and "Sales pipeline" in row and "Deal" in row
    assert "Manager" in row and "<td>li" in row
    title_cell = row.split("wf-title")[1].split("</td>")[0]
    assert f'href="/a/{APP}/deal/{deal}"' in title_cell
    assert re.search(r'data-box="waiting".*?wf-count">1<', inbox, re.S)

    response = wang.post(f"/approvals/tasks/{task}/approve", {"comment": "fine by me"})
    html = page(response)
    assert response.headers["HX-Trigger"] == "record-changed"
    assert html.lstrip().startswith(f'<tr id="wf-row-{task}" class="wf-row wf-decided"')
    assert "Approved" in html and "fine by me" in html and "You approved." in html
    # The tabs come along out of band with the new counts.
    assert 'id="wf-inbox-tabs" aria-label="Approval boxes" hx-swap-oob="true"' in html
    assert re.search(r'data-box="waiting".*?wf-count">0<', html, re.S)
    assert re.search(r'data-box="done".*?wf-count">1<', html, re.S)
    assert state_of(records, people, deal) == "approved"

    done = page(wang.get("/approvals?box=done", htmx=True))
    assert "fine by me" in done and "Big &lt;order&gt;" in done and "<html" not in done
    assert "Nothing is waiting for you." in page(wang.get("/approvals"))
    submitted = page(as_("li").get("/approvals?box=submitted"))
    assert "Big &lt;order&gt;" in submitted and "wf-status-approved" in submitted
    assert "Big &lt;order&gt;" in page(as_("zhao").get("/approvals?box=cc"))


def test_rejecting_from_the_inbox_and_a_refused_row(as_, flow, records, people, make_deal):
    deal = make_deal(10)
    fire(as_("li"), deal)
    (task,) = waiting_tasks(flow, people["wang"])
    html = page(as_("wang").post(f"/approvals/tasks/{task}/reject", {"comment": "no"}))
    assert "Rejected" in html and state_of(records, people, deal) == "rejected"
    # Deciding again: the row stays, its message slot says why.
    again = as_("wang").post(f"/approvals/tasks/{task}/approve")
    assert page(again).strip().startswith('<span class="error wf-refusal"')
    assert "this task is already rejected" in page(again)
    assert again.headers["HX-Retarget"] == f"#wf-task-{task}-message"
    assert again.headers["HX-Reswap"] == "innerHTML"
    assert as_("wang").post(f"/approvals/tasks/{task}/send_back").status_code == 200
    # Without htmx the inbox page comes back with the status and the reason.
    html = page(as_("wang").post(f"/approvals/tasks/{task}/approve", htmx=False), 409)
    assert "this task is already rejected" in html and "<html" in html


def test_batch_approval_reports_each_task(as_, flow, people, make_deal):
    first, second, third = make_deal(10, "First"), make_deal(10, "Second"), make_deal(10, "Third")
    for deal in (first, second, third):
        fire(as_("li"), deal)
    tasks = sorted(waiting_tasks(flow, people["wang"]))
    wang = as_("wang")
    inbox = page(wang.get("/approvals"))
    assert all(f'name="task" value="{task}" form="wf-batch"' in inbox for task in tasks)
    as_("li").post(f"{record(second)}/withdraw")  # wang's list is stale now
    response = wang.client.post(
        "/approvals/batch",
        data={"csrf_token": wang.token, "task": [str(t) for t in tasks], "comment": "Q3 promo"},
        headers=HX,
    )
    html = page(response)
    assert response.headers["HX-Trigger"] == "record-changed"
    assert "Approve selected: 2 of 3 approved" in html
    outcome = {
        int(task): kind
        for kind, task in re.findall(r'<li class="(wf-ok|wf-refused)" data-task="(\d+)"', html)
    }
    assert outcome == {tasks[0]: "wf-ok", tasks[1]: "wf-refused", tasks[2]: "wf-ok"}
    assert "this task is already closed" in html
    assert waiting_tasks(flow, people["wang"]) == []
    decided = flow.inbox(people["wang"], "done")
    assert {item["comment"] for item in decided} == {"Q3 promo"}


@pytest.mark.parametrize(
    ("tasks", "message"),
    [([], "select at least one approval"), (["x1"], "'x1' is not a task number")],
)
def test_a_batch_without_usable_tasks_says_so(as_, tasks, message):
    wang = as_("wang")
    data = {"csrf_token": wang.token, "task": tasks, "comment": ""}
    html = page(wang.client.post("/approvals/batch", data=data, headers=HX))
    assert message in said(html)
    assert said(page(wang.client.post("/approvals/batch", data=data), 422)).count(message) == 1


def test_an_unknown_box_is_refused(as_):
    assert "there is no box 'nope'" in said(page(as_("wang").get("/approvals?box=nope"), 422))


# --- navigation and notifications ----------------------------------------------------------


def nav_count(html: str, label: str) -> int:
    found = re.search(
        rf'class="nav-extra"><a href="[^"]+">{label} <span class="nav-count" id="nav-count-\w+">'
        r'(?:<span class="badge">(\d+)</span>)?</span>',
        html,
    )
    assert found, f"no {label} link in the navigation"
    return int(found.group(1) or 0)


def counts_swapped_in(html: str) -> dict[str, int]:
    """The navigation's counts an htmx answer carries out of band, by link."""
    found = re.findall(
        r'<span class="nav-count" id="nav-count-(\w+)" hx-swap-oob="true">'
        r'(?:<span class="badge">(\d+)</span>)?</span>',
        html,
    )
    return {key: int(count or 0) for key, count in found}


def test_the_navigation_counts_waiting_approvals_and_unread_notifications(
    as_, flow, people, make_deal
):
    assert nav_count(page(as_("wang").get("/")), "Approvals") == 0
    fire(as_("li"), make_deal(10))
    fire(as_("li"), make_deal(10))
    home = page(as_("wang").get("/"))
    assert nav_count(home, "Approvals") == 2 and nav_count(home, "Notifications") == 2
    assert nav_count(page(as_("li").get("/")), "Approvals") == 0
    flow.act(people["wang"], waiting_tasks(flow, people["wang"])[0], "approve")
    assert nav_count(page(as_("wang").get("/approvals")), "Approvals") == 1
    assert nav_count(page(as_("li").get("/")), "Notifications") == 1


def test_htmx_decisions_update_the_navigation_counts_in_place(as_, flow, people, make_deal):
    deals = [make_deal(10, f"Deal {n}") for n in range(4)]
    answer = page(fire(as_("li"), deals[0]))
    # Whoever acted gets their own counts: li waits for nothing.
    assert counts_swapped_in(answer)["approvals"] == 0
    for deal in deals[1:]:
        fire(as_("li"), deal)
    wang = as_("wang")
    assert nav_count(page(wang.get("/approvals")), "Approvals") == 4
    first, second, *rest = sorted(waiting_tasks(flow, people["wang"]))
    # From an inbox row: the row, the tabs and the sidebar's count, out of band.
    answer = page(wang.post(f"/approvals/tasks/{first}/approve"))
    assert counts_swapped_in(answer) == {"approvals": 3, "notifications": 4}
    # From the record's workflow panel.
    deal = next(i["record_id"] for i in flow.inbox(people["wang"], "waiting") if i["id"] == second)
    answer = page(wang.post(f"{record(deal)}/tasks/{second}/reject", {"comment": "no"}))
    assert 'class="wf-panel card"' in answer and counts_swapped_in(answer)["approvals"] == 2
    # A batch: the count goes to nothing, and the badge with it.
    data = {"csrf_token": wang.token, "task": [str(t) for t in rest]}
    answer = page(wang.client.post("/approvals/batch", data=data, headers=HX))
    assert counts_swapped_in(answer)["approvals"] == 0
    assert '<span class="nav-count" id="nav-count-approvals" hx-swap-oob="true"></span>' in answer
    assert nav_count(page(wang.get("/")), "Approvals") == 0
    # Whole pages carry no out-of-band swaps: their navigation is drawn fresh.
    assert counts_swapped_in(page(wang.get("/approvals"))) == {}


def test_a_user_delegates_on_the_page_and_ends_it(web_app, as_, flow, people, make_deal):
    wang = Browser(web_app, "wang", "zh")
    assert 'id="delegation-link"' in page(wang.get("/approvals"))
    html = said(page(wang.get("/approvals/delegations")))
    assert "您还没有委托过审批。" in html
    assert '<option value="zhao">' in html and '<option value="wang">' not in html
    # Refusals beside the form, in Chinese, with what was typed kept.
    past = {"delegate": "zhao", "ends_at": "2020-01-01T09:00"}
    html = said(page(wang.post("/approvals/delegations", past, htmx=False), 422))
    assert "结束时间必须晚于开始时间" in html and 'value="2020-01-01T09:00"' in html
    nobody = {"delegate": "nobody", "ends_at": "2099-01-01T09:00"}
    html = said(page(wang.post("/approvals/delegations", nobody, htmx=False), 422))
    assert "没有在职用户“nobody”" in html and 'value="nobody"' in html
    blank = said(page(wang.post("/approvals/delegations", {"delegate": "zhao"}, htmx=False), 422))
    assert "请选择日期和时间" in blank
    # Delegated: the period is read and shown in the user's time zone.
    until = {"delegate": "zhao", "ends_at": "2099-01-01T09:00"}
    response = wang.post("/approvals/delegations", until, htmx=False)
    assert response.status_code == 302
    html = said(page(wang.get("/approvals/delegations")))
    assert "到 2099-01-01 09:00，您的审批任务将交给 zhao。" in html
    (made,) = flow.delegations(people["wang"])
    assert f'data-delegation="{made["id"]}" class="current"' in html and "生效中" in html
    fire(as_("li"), make_deal(10))
    assert (
        waiting_tasks(flow, people["wang"]) == [] and len(waiting_tasks(flow, people["zhao"])) == 1
    )
    # Only wang ends it.
    assert as_("li").post(f"/approvals/delegations/{made['id']}/end", htmx=False).status_code == 403
    response = wang.post(f"/approvals/delegations/{made['id']}/end", htmx=False)
    assert response.status_code == 302
    html = said(page(wang.get("/approvals/delegations")))
    assert "委托已结束：审批任务重新由您本人处理。" in html and "已结束" in html
    assert flow.delegations(people["wang"])[0]["ends_at"] < made["ends_at"]


def test_notifications_are_shown_in_the_readers_language(web_app, as_, flow, people, make_deal):
    deal = make_deal(10, "Notified")
    fire(as_("li"), deal)
    wang = Browser(web_app, "wang", "zh")
    html = said(page(wang.get("/notifications")))
    assert f"li 请您审批商机“Notified”（#{deal}）：申请折扣审批（步骤 " in html, html[
        html.index("wf-notifications") :
    ][:600]
    (task,) = waiting_tasks(flow, people["wang"])
    page(wang.post(f"/approvals/tasks/{task}/reject", {"comment": "太低"}))
    html = said(page(as_("li").get("/notifications")))  # li reads English
    assert (
        f"deal 'Notified' (#{deal}) was rejected by wang: Request discount approval — 太低" in html
    )
    li = Browser(web_app, "li", "zh")
    html = said(page(li.get("/notifications")))
    assert f"商机“Notified”（#{deal}）被 wang 驳回：申请折扣审批——太低" in html
    # The API says the English, whatever the reader's language.
    api = wang.client.get("/api/v1/notifications", headers={"Accept-Language": "zh-CN"})
    assert api.status_code == 200
    assert api.get_json()["items"][0]["message"].startswith(
        "li asks you to approve deal 'Notified'"
    )


def test_notifications_are_listed_and_marked_read(as_, flow, people, make_deal):
    fire(as_("li"), make_deal(10, "Notified"))
    wang = as_("wang")
    html = page(wang.get("/notifications"))
    assert "li asks you to approve deal &#39;Notified&#39;" in html
    assert 'class="wf-notification unread" data-kind="assigned"' in html
    assert "1 unread" in html and "Mark all read" in html
    response = wang.post("/notifications/read", htmx=False)
    assert response.status_code == 302 and response.headers["Location"].endswith("/notifications")
    html = page(wang.get("/notifications"))
    assert "1 notifications marked read." in html and "0 unread" in html
    assert "wf-notification unread" not in html and "Mark all read" not in html
    assert flow.counts(people["wang"])["unread"] == 0
