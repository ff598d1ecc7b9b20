"""The workflow endpoints of /api/v1: transitions, approvals, tasks and notifications.

The sales_pipeline example's discount approval, driven over HTTP on the database
under test: 10% needs a sales manager (any one); 20% needs a manager, then every
finance user. Account ``Acme`` is managed by zhao, who is copied on its deals.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from sqlalchemy import select

from app import accounts
from metamodel import publish, store
from metamodel.system_tables import users

from .test_api import APP, EXAMPLE, Caller, assert_error, make_app

FAST_HASH = "pbkdf2:sha256:1"
# (username, roles, manager): boss <- wang <- li, zhao
PEOPLE = [
    ("root", ["admin"], None),
    ("boss", ["sales_manager"], None),
    ("wang", ["sales_manager"], "boss"),
    ("li", ["sales"], "wang"),
    ("zhao", ["sales"], "wang"),
    ("chen", ["finance"], None),
    ("qian", ["finance"], None),
]
APPROVALS = "/api/v1/approvals"
NOTIFICATIONS = "/api/v1/notifications"
DELEGATIONS = "/api/v1/delegations"


@pytest.fixture
def app(db_url, tmp_path, example_doc):
    app = make_app(db_url, tmp_path)
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example_doc)
    yield app
    engine.dispose()


@pytest.fixture
def example_doc():
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def as_(app):
    engine = app.extensions["crm"].engine
    tokens = {}
    with engine.begin() as conn:
        for name, roles, manager in PEOPLE:
            accounts.create_user(
                conn, name, roles, password="pw", manager=manager, method=FAST_HASH
            )
            tokens[name] = accounts.issue_token(conn, accounts.user_id(conn, name))
    client = app.test_client()
    return {name: Caller(client, token) for name, token in tokens.items()}


@pytest.fixture
def user_ids(app, as_) -> dict[str, int]:
    with app.extensions["crm"].engine.connect() as conn:
        return dict(conn.execute(select(users.c.username, users.c.id)).all())


@pytest.fixture
def acme(as_, user_ids) -> int:
    response = as_["root"].post(
        "/account", json={"name": "Acme", "account_manager": user_ids["zhao"]}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


@pytest.fixture
def make_deal(as_, acme):
    def make(discount: int = 20, owner: str = "li") -> int:
        response = as_[owner].post(
            "/deal", json={"title": f"Deal {discount}%", "account": acme, "discount_pct": discount}
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()["id"]

    return make


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def fire(caller, deal: int, name: str = "request_discount", **body):
    return caller.post(f"/deal/{deal}/transitions/{name}", json=body or None)


def waiting(caller) -> list[int]:
    return [item["id"] for item in ok(caller.get(f"{APPROVALS}?mine=1"))["items"]]


def act(caller, task: int, action: str, **body):
    return caller.post(f"{APPROVALS}/{task}/{action}", json=body or None)


def message(response) -> str:
    return " ".join(error["message"] for error in response.get_json()["errors"])


def history(caller, deal: int) -> list[dict]:
    return ok(caller.get(f"/deal/{deal}/history"))["items"]


# --- the discount approval end to end ----------------------------------------------


def test_ten_percent_needs_a_manager_only(as_, make_deal):
    deal = make_deal(10)
    li, wang = as_["li"], as_["wang"]
    assert ok(li.get(f"/deal/{deal}/transitions"))["items"] == [
        {
            "name": "request_discount",
            "workflow": "discount_approval",
            "label": {"en": "Request discount approval", "zh": "申请折扣审批"},
            "to": "approved",
            "approval": True,
        }
    ]
    fired = fire(li, deal, comment="key account")
    body = ok(fired)
    assert body["state"] == "pending" and body["record"]["approval_state"] == "pending"
    assert fired.headers["ETag"] == f'"{body["record"]["version"]}"'
    approval = body["approval"]
    assert (approval["step"], approval["from"], approval["to"]) == ("manager", "draft", "approved")
    assert [t["assignee"] for t in approval["steps"][0]["tasks"]] == ["boss", "wang"]
    assert [t["assignee"] for t in approval["cc"]] == ["zhao"]
    assert approval["may_withdraw"] is True
    assert ok(li.get(f"/deal/{deal}/transitions"))["items"] == []

    inbox = ok(wang.get(f"{APPROVALS}?mine=1"))
    (item,) = inbox["items"]
    assert {k: item[k] for k in ("app", "entity", "record_id", "step", "submitter")} == {
        "app": APP,
        "entity": "deal",
        "record_id": deal,
        "step": "manager",
        "submitter": "li",
    }
    assert inbox["counts"]["waiting"] == 1
    seen = ok(wang.get(f"/deal/{deal}/approval"))
    assert seen["my_tasks"] == [item["id"]]

    done = ok(act(wang, item["id"], "approve", comment="fine"))
    assert done["state"] == "approved" and done["approval"]["status"] == "approved"
    assert [s["status"] for s in done["approval"]["steps"]] == ["passed", "skipped"]
    assert waiting(as_["boss"]) == []  # any one manager decides: boss's task closed
    none = li.get(f"/deal/{deal}/approval")
    assert_error(none, 404)
    assert message(none) == f"deal {deal} has no open approval"
    events = history(li, deal)
    assert [e["action"] for e in events if e["action"] != "update"] == [
        "approve",
        "submit",
        "create",
    ]
    assert events[0]["changes"]["state"] == ["pending", "approved"]
    assert events[0]["changes"]["details"]["step"] == "manager"
    assert events[0]["comment"] == "fine"


def test_twenty_percent_needs_a_manager_then_every_finance_user(as_, make_deal):
    deal = make_deal(20)
    ok(fire(as_["li"], deal))
    assert waiting(as_["chen"]) == []  # finance waits for the manager step
    (task,) = waiting(as_["boss"])
    after_manager = ok(act(as_["boss"], task, "approve"))
    assert (after_manager["state"], after_manager["approval"]["step"]) == ("pending", "finance")
    (chen_task,) = waiting(as_["chen"])
    (qian_task,) = waiting(as_["qian"])
    assert ok(act(as_["chen"], chen_task, "approve"))["state"] == "pending"  # all must approve
    done = ok(as_["chen"].get(f"{APPROVALS}?box=done"))["items"]
    assert [(i["id"], i["status"]) for i in done] == [(chen_task, "approved")]
    finished = ok(act(as_["qian"], qian_task, "approve", comment="ok"))
    assert finished["state"] == "approved"
    assert [s["status"] for s in finished["approval"]["steps"]] == ["passed", "passed"]
    submitted = ok(as_["li"].get(f"{APPROVALS}?box=submitted"))["items"]
    assert [i["approval_status"] for i in submitted] == ["approved"]
    assert ok(as_["zhao"].get(f"{APPROVALS}?box=cc"))["items"][0]["record_id"] == deal


def test_reject_sends_the_deal_to_rejected_and_it_may_be_asked_again(as_, make_deal):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    rejected = ok(act(as_["wang"], waiting(as_["wang"])[0], "reject", comment="too much"))
    assert rejected["state"] == "rejected" and rejected["approval"]["status"] == "rejected"
    kinds = [n["kind"] for n in ok(as_["li"].get(NOTIFICATIONS))["items"]]
    assert kinds == ["rejected"]
    names = [t["name"] for t in ok(as_["li"].get(f"/deal/{deal}/transitions"))["items"]]
    assert names == ["request_discount"]
    assert ok(fire(as_["li"], deal))["state"] == "pending"


def test_send_back_to_the_previous_step_then_to_the_start(as_, make_deal):
    deal = make_deal(20)
    ok(fire(as_["li"], deal))
    ok(act(as_["wang"], waiting(as_["wang"])[0], "approve"))
    back = ok(act(as_["chen"], waiting(as_["chen"])[0], "send_back", to="previous", comment="?"))
    assert (back["state"], back["approval"]["step"]) == ("pending", "manager")
    assert waiting(as_["qian"]) == []
    (again,) = waiting(as_["wang"])
    start = ok(act(as_["wang"], again, "send_back", to="start"))
    assert (start["state"], start["approval"]["status"]) == ("draft", "sent_back")
    kinds = [n["kind"] for n in ok(as_["li"].get(NOTIFICATIONS))["items"]]
    assert kinds == ["sent_back", "sent_back"]
    bad = act(as_["wang"], again, "send_back", to="nowhere")
    assert_error(bad, 409)  # the task was decided by sending it back
    ok(fire(as_["li"], deal))
    assert_error(act(as_["wang"], waiting(as_["wang"])[0], "send_back", to="nowhere"), 422, "/to")


def test_transfer_and_add_approver(as_, make_deal, user_ids):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    (task,) = waiting(as_["wang"])
    nobody = act(as_["wang"], task, "transfer", to="nobody")
    assert_error(nobody, 422, "/to")
    assert "there is no active user 'nobody'" in message(nobody)
    assert_error(act(as_["wang"], task, "transfer", to="boss"), 409)  # boss decides already
    moved = ok(act(as_["wang"], task, "transfer", to="zhao", comment="you know them"))
    manager = moved["approval"]["steps"][0]["tasks"]
    assert [(t["assignee"], t["status"]) for t in manager][-1] == ("zhao", "open")
    assert waiting(as_["wang"]) == []
    (zhao_task,) = waiting(as_["zhao"])

    missing = act(as_["zhao"], zhao_task, "add_approver", users=["qian", "ghost"])
    assert_error(missing, 422, "/users/1")
    assert_error(act(as_["zhao"], zhao_task, "add_approver", users="qian"), 422, "/users")
    added = ok(act(as_["zhao"], zhao_task, "add_approver", users=["qian"]))
    assert "qian" in [t["assignee"] for t in added["approval"]["steps"][0]["tasks"]]
    assert len(waiting(as_["qian"])) == 1
    assert ok(act(as_["zhao"], zhao_task, "approve"))["state"] == "approved"  # any one
    actions = [e["action"] for e in history(as_["root"], deal)]
    assert {"transfer", "add_approver", "approve"} <= set(actions)


def test_comment_needs_text_and_tells_the_submitter(as_, make_deal):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    (task,) = waiting(as_["wang"])
    assert_error(act(as_["wang"], task, "comment"), 422, "/comment")
    assert_error(act(as_["wang"], task, "comment", comment=7), 422, "/comment")
    commented = ok(act(as_["wang"], task, "comment", comment="which customer?"))
    assert commented["state"] == "pending"
    assert waiting(as_["wang"]) == [task]  # a comment decides nothing
    (note,) = ok(as_["li"].get(NOTIFICATIONS))["items"]
    assert note["kind"] == "comment" and "which customer?" in note["message"]
    event = history(as_["root"], deal)[0]
    assert (event["action"], event["comment"]) == ("comment", "which customer?")


def test_withdraw_while_nobody_approved(as_, make_deal):
    deal = make_deal(20)
    ok(fire(as_["li"], deal))
    assert_error(as_["zhao"].post(f"/deal/{deal}/approval/withdraw"), 403)
    extra = as_["li"].post(f"/deal/{deal}/approval/withdraw", json={"why": "changed my mind"})
    assert_error(extra, 422, "/why")
    withdrawn = ok(as_["li"].post(f"/deal/{deal}/approval/withdraw"))
    assert (withdrawn["state"], withdrawn["approval"]["status"]) == ("draft", "withdrawn")
    assert waiting(as_["wang"]) == []
    none = as_["li"].post(f"/deal/{deal}/approval/withdraw")
    assert_error(none, 409)
    assert message(none) == f"deal {deal} has no open approval to withdraw"

    ok(fire(as_["li"], deal))
    ok(act(as_["wang"], waiting(as_["wang"])[0], "approve"))
    late = as_["li"].post(f"/deal/{deal}/approval/withdraw")
    assert_error(late, 409)
    assert "wang already approved step manager, so the approval can't be withdrawn" in message(late)
    assert history(as_["root"], deal)[0]["action"] == "approve"


# --- refusals --------------------------------------------------------------------


def test_refused_transitions_name_the_failed_check(as_, make_deal):
    deal = make_deal(0)
    unknown = fire(as_["li"], deal, "launch")
    assert_error(unknown, 404)
    assert message(unknown) == "deal has no transition 'launch'"
    not_sales = fire(as_["chen"], deal)
    assert_error(not_sales, 403)
    assert "only the record's owner or role sales may 'Request discount approval'" in message(
        not_sales
    )
    guard = fire(as_["li"], deal)
    assert_error(guard, 409, "/discount_pct")
    assert "the condition of 'Request discount approval' does not hold" in message(guard)
    wrong_state = fire(as_["wang"], deal, "reopen")
    assert_error(wrong_state, 409)
    assert "'Reopen' only applies to records that are approved" in message(wrong_state)

    other = make_deal(10)
    ok(fire(as_["li"], other))
    pending = fire(as_["li"], other)
    assert_error(pending, 409)
    assert f"deal {other} is pending" in message(pending)
    locked = as_["li"].patch(f"/deal/{other}", json={"discount_pct": 5})
    assert_error(locked, 409)  # the record is locked while its approval is open

    assert_error(fire(as_["li"], 999_999), 404)
    assert_error(as_["li"].get("/nope/1/transitions"), 404)
    assert_error(fire(as_["li"], deal, comment=3), 422, "/comment")
    assert_error(fire(as_["li"], deal, note="x"), 422, "/note")
    assert_error(fire(as_["li"], deal, comment="a\x00b"), 422, "/comment")
    bad_json = as_["li"].post(
        f"/deal/{deal}/transitions/request_discount",
        data="{",
        headers={"Content-Type": "application/json"},
    )
    assert_error(bad_json, 400)


def test_firing_on_a_stale_version_is_412(as_, make_deal):
    deal = make_deal(10)
    seen = ok(as_["li"].get(f"/deal/{deal}"))["version"]
    ok(as_["li"].patch(f"/deal/{deal}", json={"discount_pct": 12}))
    stale = as_["li"].post(
        f"/deal/{deal}/transitions/request_discount", headers={"If-Match": str(seen)}
    )
    assert_error(stale, 412)
    assert stale.get_json()["current_version"] == seen + 1
    fresh = as_["li"].post(
        f"/deal/{deal}/transitions/request_discount", headers={"If-Match": str(seen + 1)}
    )
    assert ok(fresh)["state"] == "pending"


def test_only_the_assignee_or_an_admin_acts_on_a_task(as_, make_deal):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    (task,) = waiting(as_["wang"])
    for who in ("zhao", "li", "chen"):
        refused = act(as_[who], task, "approve")
        assert_error(refused, 403)
        assert message(refused) == "this task is wang's; only they (or an admin) may act on it"
    assert waiting(as_["wang"]) == [task]
    assert ok(as_["li"].get(f"/deal/{deal}/approval"))["status"] == "open"
    assert ok(as_["chen"].get(f"/deal/{deal}/approval"))["my_tasks"] == []  # a reader


def test_readers_and_participants_only_see_an_approval(as_, make_deal):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    other = make_deal(10, owner="zhao")
    for path in ("approval", "transitions"):
        refused = as_["li"].get(f"/deal/{other}/{path}")  # zhao's deal: li may not read it
        assert_error(refused, 403)
        assert message(refused) == f"you may not read deal {other}"
    assert ok(as_["zhao"].get(f"/deal/{deal}/approval"))["cc"][0]["assignee"] == "zhao"


def test_decided_and_unknown_tasks(as_, make_deal):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    (task,) = waiting(as_["wang"])
    ok(act(as_["wang"], task, "approve"))
    again = act(as_["wang"], task, "approve")
    assert_error(again, 409)
    assert message(again).startswith("this task is already approved")
    missing = act(as_["wang"], 999_999, "approve")
    assert_error(missing, 404)
    assert message(missing) == "there is no approval task 999999"
    veto = act(as_["wang"], task, "veto")
    assert_error(veto, 404)
    assert "there is no approval action 'veto'" in message(veto)
    assert_error(act(as_["wang"], task, "approve", users=["x"]), 422, "/users")
    assert_error(as_["wang"].post(f"{APPROVALS}/{task}/approve", json=[1]), 422, "")


def test_the_inbox_parameters(as_):
    assert_error(as_["li"].get(f"{APPROVALS}?mine=0"), 400, "/mine")
    assert_error(as_["li"].get(f"{APPROVALS}?box=outbox"), 422, "/box")
    assert_error(as_["li"].get(f"{APPROVALS}?limit=0"), 422, "/limit")
    assert_error(as_["li"].get(f"{APPROVALS}?limit=x"), 400, "/limit")
    assert ok(as_["li"].get(APPROVALS)) == {
        "items": [],
        "counts": {"waiting": 0, "submitted": 0, "cc": 0, "done": 0, "unread": 0},
    }
    assert_error(Caller(as_["li"].client, None).get(APPROVALS), 401)


def test_an_entity_without_a_workflow_has_no_transitions(as_, acme):
    assert ok(as_["root"].get(f"/account/{acme}/transitions")) == {"items": []}
    refused = as_["root"].post(f"/account/{acme}/transitions/approve")
    assert_error(refused, 404)
    assert message(refused) == "account has no transition 'approve'"
    assert_error(as_["root"].get(f"/account/{acme}/approval"), 404)
    assert_error(as_["root"].get("/deal_line/1/transitions"), 404)  # a child table


# --- plain transitions, notifications, the description ---------------------------


def test_a_plain_transition_moves_at_once_and_tells_the_owner(as_, make_deal):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    ok(act(as_["wang"], waiting(as_["wang"])[0], "approve"))
    names = [t["name"] for t in ok(as_["wang"].get(f"/deal/{deal}/transitions"))["items"]]
    assert names == ["reopen"]
    moved = ok(fire(as_["wang"], deal, "discount_approval.reopen", comment="new terms"))
    assert moved == {"record": moved["record"], "state": "draft", "approval": None}
    event = history(as_["li"], deal)[0]
    assert (event["action"], event["changes"]["state"], event["comment"]) == (
        "transition",
        ["approved", "draft"],
        "new terms",
    )


def test_notifications_list_and_mark_read(as_, make_deal):
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    listed = ok(as_["wang"].get(NOTIFICATIONS))
    (note,) = listed["items"]
    assert (note["kind"], note["record_id"], note["read_at"]) == ("assigned", deal, None)
    assert listed["unread"] == 1
    assert_error(as_["wang"].post(f"{NOTIFICATIONS}/read", json={"ids": ["x"]}), 422, "/ids/0")
    assert_error(as_["wang"].post(f"{NOTIFICATIONS}/read", json={"ids": 3}), 422, "/ids")
    assert ok(as_["boss"].post(f"{NOTIFICATIONS}/read", json={"ids": [note["id"]]})) == {
        "marked": 0  # not boss's
    }
    assert ok(as_["wang"].post(f"{NOTIFICATIONS}/read", json={"ids": [note["id"]]})) == {
        "marked": 1
    }
    assert ok(as_["wang"].get(f"{NOTIFICATIONS}?unread=1")) == {"items": [], "unread": 0}
    assert ok(as_["boss"].post(f"{NOTIFICATIONS}/read")) == {"marked": 1}
    assert ok(as_["boss"].get(NOTIFICATIONS))["items"][0]["read_at"] is not None


def test_a_user_delegates_their_tasks_for_a_period_and_ends_it(as_, make_deal):
    until = "2099-01-01T00:00:00Z"
    made = ok(as_["wang"].post(DELEGATIONS, json={"delegate": "zhao", "ends_at": until}), 201)
    assert made["delegate"] == "zhao" and made["ends_at"].startswith("2099-01-01T00:00:00")
    assert ok(as_["wang"].get(DELEGATIONS)) == {"items": [made]}
    assert ok(as_["zhao"].get(DELEGATIONS)) == {"items": []}
    # A task of wang's in the period goes to zhao, on wang's behalf.
    deal = make_deal(10)
    ok(fire(as_["li"], deal))
    assert waiting(as_["wang"]) == [] and len(waiting(as_["zhao"])) == 1
    tasks = ok(as_["zhao"].get(f"/deal/{deal}/approval"))["steps"][0]["tasks"]
    assert ("zhao", "wang") in [(t["assignee"], t["on_behalf_of"]) for t in tasks]
    assert "wang" not in [t["assignee"] for t in tasks]
    # What the engine refuses, each at its key.
    assert_error(as_["wang"].post(DELEGATIONS, json={}), 422, "/delegate")
    assert_error(as_["wang"].post(DELEGATIONS, json={"delegate": "zhao"}), 422, "/ends_at")
    soon = {"delegate": "zhao", "starts_at": "soon", "ends_at": until}
    assert_error(as_["wang"].post(DELEGATIONS, json=soon), 422, "/starts_at")
    past = {"delegate": "zhao", "ends_at": "2020-01-01T00:00:00Z"}
    assert_error(as_["wang"].post(DELEGATIONS, json=past), 422, "/ends_at")
    over = {"delegate": "zhao", "starts_at": "2019-01-01T00:00:00Z", "ends_at": "2020-01-01"}
    response = as_["wang"].post(DELEGATIONS, json=over)
    assert_error(response, 422, "/ends_at")
    assert response.get_json()["errors"][0]["message"] == "the period must end in the future"
    myself = {"delegate": "wang", "ends_at": until}
    assert_error(as_["wang"].post(DELEGATIONS, json=myself), 422, "/delegate")
    nobody = {"delegate": "nobody", "ends_at": until}
    assert_error(as_["wang"].post(DELEGATIONS, json=nobody), 422, "/delegate")
    extra = {"delegate": "zhao", "ends_at": until, "reason": "leave"}
    assert_error(as_["wang"].post(DELEGATIONS, json=extra), 422, "/reason")
    # Only wang (or an admin) ends it; then his tasks are his again.
    assert_error(as_["li"].post(f"{DELEGATIONS}/{made['id']}/end"), 403)
    assert_error(as_["wang"].post(f"{DELEGATIONS}/999999/end"), 404)
    assert ok(as_["wang"].post(f"{DELEGATIONS}/{made['id']}/end")) == {"ended": made["id"]}
    (ended,) = ok(as_["wang"].get(DELEGATIONS))["items"]
    assert ended["ends_at"] < until
    ok(fire(as_["li"], make_deal(15)))
    assert len(waiting(as_["wang"])) == 1


def test_openapi_describes_the_workflow_endpoints(as_):
    spec = ok(as_["li"].get("/api/v1/openapi.json"))
    base = f"/api/v1/records/{APP}/deal/{{id}}"
    for path in (
        f"{base}/transitions",
        f"{base}/transitions/{{name}}",
        f"{base}/approval",
        f"{base}/approval/withdraw",
        "/api/v1/approvals",
        "/api/v1/approvals/{task_id}/{action}",
        "/api/v1/notifications",
        "/api/v1/notifications/read",
        "/api/v1/delegations",
        "/api/v1/delegations/{delegation_id}/end",
    ):
        assert path in spec["paths"], path
    assert f"/api/v1/records/{APP}/account/{{id}}/transitions" not in spec["paths"]
    fire_op = spec["paths"][f"{base}/transitions/{{name}}"]["post"]
    assert set(fire_op["responses"]) >= {"200", "403", "404", "409", "412"}
    (name,) = [
        p
        for p in spec["paths"][f"{base}/transitions/{{name}}"]["parameters"]
        if p["name"] == "name"
    ]
    assert set(name["schema"]["enum"]) == {
        "request_discount",
        "reopen",
        "discount_approval.request_discount",
        "discount_approval.reopen",
    }
    assert "404" in spec["paths"][f"{base}/approval"]["get"]["responses"]
    for schema in ("Transition", "Approval", "ApprovalTask", "Outcome", "InboxItem", "Delegation"):
        assert schema in spec["components"]["schemas"]
    schemathesis.openapi.from_dict(spec).validate()
