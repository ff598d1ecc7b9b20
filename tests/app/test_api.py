"""The HTTP API at /api/v1, as interfaces.md describes it, on the database under test."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import schemathesis
from jsonschema import Draft202012Validator
from sqlalchemy import select, update

from app import accounts, create_app
from metamodel import publish, store
from metamodel.system_tables import api_tokens, users

EXAMPLE = Path(__file__).parents[2].parent / "shared" / "examples" / "sales_pipeline.json"
APP = "sales_pipeline"
RECORDS = f"/api/v1/records/{APP}"
# Password hashing is deliberately slow, and beside the point here.
FAST_HASH = "pbkdf2:sha256:1"
PEOPLE = {
    "root": ["admin"],
    "dora": ["designer"],
    "li": ["sales"],
    "zhao": ["sales"],
    "wang": ["sales_manager"],
    "chen": ["finance"],
}


@pytest.fixture
def example_doc():
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def make_app(db_url, tmp_path, **settings):
    return create_app(
        {
            "database_url": db_url,
            "instance_path": str(tmp_path / "instance"),
            "secret_key": "test",
            **settings,
        }
    )


@pytest.fixture
def app(db_url, tmp_path, example_doc):
    app = make_app(db_url, tmp_path)
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example_doc)
    yield app
    engine.dispose()


@pytest.fixture
def engine(app):
    return app.extensions["crm"].engine


class Caller:
    """A test client that sends one user's bearer token."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def __call__(self, method: str, path: str, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        url = path if path.startswith("/api/") else RECORDS + path
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self("DELETE", path, **kwargs)


@pytest.fixture
def tokens(engine) -> dict[str, str]:
    issued = {}
    with engine.begin() as conn:
        for name, roles in PEOPLE.items():
            accounts.create_user(conn, name, roles, password="pw", method=FAST_HASH)
            issued[name] = accounts.issue_token(conn, accounts.user_id(conn, name))
    return issued


@pytest.fixture
def as_(app, tokens):
    client = app.test_client()
    return {name: Caller(client, token) for name, token in tokens.items()}


@pytest.fixture
def user_ids(engine, tokens) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(users.c.username, users.c.id)).all())


def paths(response) -> set[str]:
    return {error["path"] for error in response.get_json()["errors"]}


def assert_error(response, status: int, path: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"errors"} and body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"path", "message"} and error["message"]
    if path is not None:
        assert path in paths(response), body


def new_account(caller, name="华东精工机械有限公司", **values):
    response = caller.post("/account", json={"name": name, **values})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def new_deal(caller, account_id, **values):
    response = caller.post("/deal", json={"title": "数控机床升级", "account": account_id, **values})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# --- authentication ---------------------------------------------------------------


def test_without_credentials_every_endpoint_answers_401_with_a_bearer_challenge(app, tokens):
    client = app.test_client()
    for method, url in [
        ("GET", "/api/v1/apps"),
        ("GET", f"/api/v1/apps/{APP}"),
        ("POST", "/api/v1/apps"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", f"{RECORDS}/account"),
        ("POST", f"{RECORDS}/account"),
        ("GET", f"{RECORDS}/account/1"),
        ("DELETE", f"{RECORDS}/account/1"),
    ]:
        response = client.open(url, method=method)
        assert_error(response, 401, "")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer crm_not-a-token", "Bearer ", "Basic cm9vdDpwdw==", "crm_token-without-scheme"],
)
def test_a_bad_token_or_scheme_is_401(app, tokens, header):
    response = app.test_client().get("/api/v1/apps", headers={"Authorization": header})
    assert_error(response, 401, "")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_are_stored_hashed_and_last_use_is_recorded(engine, as_, tokens):
    with engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.token_hash, api_tokens.c.last_used_at)).all()
    assert {row.token_hash for row in stored} == {accounts.hash_token(t) for t in tokens.values()}
    assert all(row.last_used_at is None for row in stored)
    assert as_["li"].get("/api/v1/apps").status_code == 200
    with engine.connect() as conn:
        used = conn.execute(
            select(api_tokens.c.last_used_at).where(
                api_tokens.c.token_hash == accounts.hash_token(tokens["li"])
            )
        ).scalar_one()
    assert used is not None


def test_revoked_tokens_and_inactive_users_are_refused(engine, as_, tokens):
    assert as_["li"].get("/api/v1/apps").status_code == 200
    with engine.begin() as conn:
        assert accounts.revoke_token(conn, tokens["li"])
        conn.execute(update(users).where(users.c.username == "chen").values(active=False))
    assert_error(as_["li"].get("/api/v1/apps"), 401)
    assert_error(as_["chen"].get("/api/v1/apps"), 401)
    assert as_["zhao"].get("/api/v1/apps").status_code == 200


# --- apps ---------------------------------------------------------------------------


def test_apps_list_and_document(as_, example_doc):
    listed = as_["li"].get("/api/v1/apps")
    assert listed.status_code == 200
    assert listed.get_json() == {
        "items": [{"name": APP, "version": "1.0.0", "label": example_doc["label"]}]
    }
    document = as_["li"].get(f"/api/v1/apps/{APP}")
    assert document.status_code == 200 and document.get_json() == example_doc
    assert_error(as_["li"].get("/api/v1/apps/nope"), 404, "")


def test_dry_run_plans_without_changing_anything(as_, example_doc):
    doc = copy.deepcopy(example_doc)
    doc["version"] = "1.1.0"
    doc["entities"][0]["fields"].append({"name": "wechat_id", "type": "text"})
    dry = as_["dora"].post("/api/v1/apps?dry_run=1", json=doc)
    assert dry.status_code == 200, dry.get_data(as_text=True)
    plan = dry.get_json()["plan"]
    assert plan["changed"] and not plan["refused"] and plan["problems"] == []
    assert any("wechat_id" in op["description"] for op in plan["operations"])
    assert as_["dora"].get(f"/api/v1/apps/{APP}").get_json()["version"] == "1.0.0"

    unchanged = as_["dora"].post("/api/v1/apps?dry_run=1", json=example_doc).get_json()["plan"]
    assert not unchanged["changed"] and unchanged["operations"] == []

    doc["version"] = "1.0.0"
    same_version = as_["dora"].post("/api/v1/apps?dry_run=1", json=doc).get_json()["plan"]
    assert same_version["refused"]
    assert [p["path"] for p in same_version["problems"]] == ["/version"]


def test_publishing_answers_201_then_200_and_refuses_with_409_or_422(as_, example_doc):
    doc = copy.deepcopy(example_doc)
    doc["version"] = "1.1.0"
    doc["entities"][0]["fields"].append({"name": "wechat_id", "type": "text"})
    applied = as_["dora"].post("/api/v1/apps", json=doc)
    assert applied.status_code == 201, applied.get_data(as_text=True)
    body = applied.get_json()
    assert (body["name"], body["version"]) == (APP, "1.1.0")
    assert any("wechat_id" in op["description"] for op in body["plan"]["operations"])
    again = as_["root"].post("/api/v1/apps", json=doc)
    assert again.status_code == 200 and again.get_json()["plan"]["operations"] == []

    doc["entities"][0]["fields"].append({"name": "line_id", "type": "text"})
    assert_error(as_["dora"].post("/api/v1/apps", json=doc), 409, "/version")

    invalid = copy.deepcopy(doc)
    invalid["version"] = "1.2.0"
    invalid["entities"][0]["fields"][0]["name"] = "select"
    assert_error(as_["dora"].post("/api/v1/apps", json=invalid), 422, "/entities/0/fields/0/name")
    assert_error(as_["dora"].post("/api/v1/apps?dry_run=1", json=invalid), 422)
    assert_error(as_["dora"].post("/api/v1/apps", json=["not", "a", "document"]), 422, "")
    assert as_["dora"].get(f"/api/v1/apps/{APP}").get_json()["version"] == "1.1.0"

    tiny = {"format": "crm-app/1", "name": "tiny", "version": "0.1.0", "label": "Tiny"}
    assert as_["dora"].post("/api/v1/apps", json=tiny).status_code == 201
    listed = as_["li"].get("/api/v1/apps").get_json()["items"]
    assert [(a["name"], a["version"], a["label"]) for a in listed][1] == ("tiny", "0.1.0", "Tiny")


def test_a_refused_plan_is_409_naming_the_blocking_records(as_, example_doc):
    new_account(as_["root"], notes="keep me")
    doc = copy.deepcopy(example_doc)
    doc["version"] = "1.1.0"
    notes = next(f for f in doc["entities"][0]["fields"] if f["name"] == "notes")
    notes["type"] = "integer"
    dry = as_["root"].post("/api/v1/apps?dry_run=1", json=doc).get_json()["plan"]
    assert dry["refused"] and dry["problems"][0]["path"].endswith("/type")
    assert_error(as_["root"].post("/api/v1/apps", json=doc), 409)


@pytest.mark.parametrize("who", ["li", "wang", "chen"])
def test_only_admin_and_designer_may_publish(as_, example_doc, who):
    assert_error(as_[who].post("/api/v1/apps", json=example_doc), 403)
    assert_error(as_[who].post("/api/v1/apps?dry_run=1", json=example_doc), 403)


# --- records: the happy path --------------------------------------------------------


def test_create_read_update_delete_restore_and_history(as_, user_ids):
    created = as_["root"].post("/account", json={"name": "Acme", "annual_revenue": 12.5})
    assert created.status_code == 201
    account = created.get_json()
    assert created.headers["Location"].endswith(f"/api/v1/records/{APP}/account/{account['id']}")
    assert created.headers["ETag"] == '"1"'
    assert account["annual_revenue"] == "12.50" and account["tier"] == "C"
    assert (account["owner"], account["version"]) == (user_ids["root"], 1)

    read = as_["root"].get(f"/account/{account['id']}")
    assert read.status_code == 200 and read.get_json() == account

    changed = as_["root"].patch(
        f"/account/{account['id']}", json={"tier": "A"}, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["tier"] == "A" and changed.headers["ETag"] == '"2"'

    assert as_["root"].delete(f"/account/{account['id']}").status_code == 204
    assert_error(as_["root"].get(f"/account/{account['id']}"), 404)
    history = as_["root"].get(f"/account/{account['id']}/history")
    assert history.status_code == 200
    assert [e["action"] for e in history.get_json()["items"]] == ["delete", "update", "create"]

    restored = as_["root"].post(f"/account/{account['id']}/restore")
    assert restored.status_code == 200 and restored.get_json()["version"] == 4
    assert_error(as_["root"].post(f"/account/{account['id']}/restore"), 409)


def test_records_serialise_as_interfaces_md_says(as_):
    account = new_account(as_["root"])
    deal = new_deal(
        as_["root"],
        account["id"],
        amount="880000",
        probability=60,
        expected_close="2099-12-31",
        lines=[{"product": "CNC-500", "quantity": 2, "unit_price": 440000}],
    )
    assert deal["amount"] == "880000.00" and deal["weighted_amount"] == "528000.00"
    assert deal["account"] == account["id"] and deal["account_tier"] == "C"
    assert deal["expected_close"] == "2099-12-31" and deal["created_at"].endswith("Z")
    [line] = deal["lines"]
    assert line["line_total"] == "880000.00" and isinstance(line["id"], int)
    assert {
        "id",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "owner",
        "version",
    } <= set(deal)


def test_list_pages_sorts_searches_and_filters(as_):
    for name in ["Acme", "Bolt", "Cogs"]:
        new_account(as_["root"], name=name, tier="A" if name != "Bolt" else "B")
    page = as_["li"].get("/account?sort=name&per_page=2&page=1").get_json()
    assert [r["name"] for r in page["items"]] == ["Acme", "Bolt"]
    assert (page["total"], page["total_is_estimate"], page["page"], page["per_page"]) == (
        3,
        False,
        1,
        2,
    )
    second = as_["li"].get("/account", query_string={"sort": "-name", "page": 2, "per_page": 2})
    assert [r["name"] for r in second.get_json()["items"]] == ["Acme"]
    assert [r["name"] for r in as_["li"].get("/account?q=olt").get_json()["items"]] == ["Bolt"]
    rule = json.dumps({"==": [{"var": "tier"}, "A"]})
    filtered = as_["li"].get("/account", query_string={"filter": rule, "sort": "name"})
    assert filtered.status_code == 200, filtered.get_data(as_text=True)
    assert [r["name"] for r in filtered.get_json()["items"]] == ["Acme", "Cogs"]


@pytest.mark.parametrize(
    ("query", "status", "path"),
    [
        ({"per_page": 201}, 422, "/per_page"),
        ({"per_page": 0}, 422, "/per_page"),
        ({"per_page": "ten"}, 400, "/per_page"),
        ({"page": 0}, 422, "/page"),
        ({"page": "-1"}, 400, "/page"),
        ({"page": 10**15}, 422, "/page"),
        ({"page": "1.5"}, 400, "/page"),
        ({"filter": "{not json"}, 400, "/filter"),
        ({"filter": '{"no_such_op": [1]}'}, 422, "/filter"),
        ({"sort": "nope"}, 422, "/sort"),
    ],
)
def test_bad_list_parameters_name_the_parameter(as_, query, status, path):
    assert_error(as_["root"].get("/account", query_string=query), status, path)


# --- records: errors ----------------------------------------------------------------


def test_invalid_values_are_422_with_a_pointer_per_field(as_):
    response = as_["root"].post(
        "/deal",
        json={"title": "", "amount": "12.345", "probability": 120, "stage": "maybe", "colour": 1},
    )
    assert_error(response, 422)
    assert paths(response) == {"/title", "/account", "/amount", "/probability", "/stage", "/colour"}
    assert_error(as_["root"].post("/deal", json=[1, 2]), 422, "")


def test_a_taken_unique_value_is_refused(as_):
    first = as_["root"].post("/contact", json={"full_name": "王芳", "email": "wang@example.com"})
    assert first.status_code == 201
    again = as_["root"].post("/contact", json={"full_name": "王芳", "email": "wang@example.com"})
    assert_error(again, 422, "/email")


def test_a_restricted_delete_is_409(as_):
    account = new_account(as_["root"])
    new_deal(as_["root"], account["id"])
    assert_error(as_["root"].delete(f"/account/{account['id']}"), 409)


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b'{"name": NaN}', "NaN"),
        (b"\xff\xfe", "UTF-8"),
        (b'{"name": "\\ud800"}', "surrogate"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_unreadable_bodies_are_400(as_, body, message_part):
    response = as_["root"].post("/account", data=body, content_type="application/json")
    assert_error(response, 400, "")
    assert message_part in response.get_json()["errors"][0]["message"]


def test_if_match_guards_against_lost_updates(as_):
    account = new_account(as_["root"])
    url = f"/account/{account['id']}"
    assert as_["root"].patch(url, json={"tier": "A"}, headers={"If-Match": "1"}).status_code == 200
    stale = as_["root"].patch(url, json={"tier": "B"}, headers={"If-Match": "1"})
    assert_error(stale, 412, "/version")
    body = stale.get_json()
    assert body["current_version"] == 2 and body["current"]["tier"] == "A"
    assert_error(as_["root"].patch(url, json={"tier": "B"}, headers={"If-Match": "soon"}), 400)
    without = as_["root"].patch(url, json={"tier": "B"})
    assert without.status_code == 200 and without.get_json()["version"] == 3


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/api/v1/nothing-here", 404),
        ("GET", f"{RECORDS}/account/1/nothing", 404),
        ("GET", "/api/v1/records/nope/account", 404),
        ("GET", f"{RECORDS}/nope", 404),
        ("POST", f"{RECORDS}/nope", 404),
        ("GET", f"{RECORDS}/deal_line", 404),
        ("GET", f"{RECORDS}/account/12345", 404),
        ("GET", f"{RECORDS}/account/{2**64}", 404),
        ("GET", f"{RECORDS}/account/0", 404),
        ("GET", f"{RECORDS}/account/abc", 404),
        ("PUT", "/api/v1/apps", 405),
        ("DELETE", f"{RECORDS}/account", 405),
        ("GET", f"{RECORDS}/account/batch", 405),
    ],
)
def test_unknown_routes_and_methods_are_json_errors(as_, method, url, status):
    response = as_["root"](method, url)
    assert_error(response, status, "")
    if status == 405:
        assert response.headers["Allow"]


def test_request_bodies_above_the_limit_are_413(db_url, tmp_path, example_doc):
    app = make_app(db_url, tmp_path, max_request_mb=0.01)
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example_doc)
    with engine.begin() as conn:
        accounts.create_user(conn, "root", ["admin"], password="pw", method=FAST_HASH)
        token = accounts.issue_token(conn, accounts.user_id(conn, "root"))
    api = Caller(app.test_client(), token)
    big = {"name": "Acme", "notes": "x" * 20_000}
    response = api.post("/account", json=big)
    assert_error(response, 413, "")
    assert "0.01 MB" in response.get_json()["errors"][0]["message"]
    assert_error(api.post("/api/v1/apps", json={"padding": "x" * 20_000}), 413)
    assert api.post("/account", json={"name": "Acme"}).status_code == 201
    engine.dispose()


# --- batch ----------------------------------------------------------------------------


def test_batch_creates_all_or_nothing(as_):
    account = new_account(as_["root"])
    ok = as_["wang"].post(
        "/deal/batch",
        json={"items": [{"title": f"deal {i}", "account": account["id"]} for i in range(3)]},
    )
    assert ok.status_code == 201, ok.get_data(as_text=True)
    ids = ok.get_json()["ids"]
    assert len(ids) == 3 and ids == sorted(ids)

    bad = as_["wang"].post(
        "/deal/batch",
        json={
            "items": [
                {"title": "fine", "account": account["id"]},
                {"title": "bad", "account": account["id"], "amount": "-1"},
                {"account": account["id"], "stage": "maybe"},
            ]
        },
    )
    assert_error(bad, 422)
    assert paths(bad) == {"/items/1/amount", "/items/2/title", "/items/2/stage"}
    assert as_["wang"].get("/deal").get_json()["total"] == 3


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"items": [{}] * 1001}, "/items"),
        ({"items": {"title": "x"}}, "/items"),
        ({}, "/items"),
        ({"items": [], "extra": 1}, "/extra"),
        ([{"title": "x"}], ""),
    ],
)
def test_malformed_batches_are_422(as_, body, path):
    assert_error(as_["root"].post("/deal/batch", json=body), 422, path)


def test_batch_needs_the_create_permission(as_):
    assert_error(as_["chen"].post("/deal/batch", json={"items": [{"title": "x"}]}), 403)


# --- permissions ----------------------------------------------------------------------


@pytest.fixture
def deals(as_):
    """An account of li's, and one deal each of li and zhao (both sales)."""
    account = new_account(as_["li"])
    return {
        "account": account,
        "li": new_deal(as_["li"], account["id"]),
        "zhao": new_deal(as_["zhao"], account["id"]),
    }


def test_read_own_limits_lists_and_single_reads(as_, deals):
    li_deal, zhao_deal = deals["li"], deals["zhao"]
    listed = as_["li"].get("/deal").get_json()
    assert [d["id"] for d in listed["items"]] == [li_deal["id"]] and listed["total"] == 1
    assert as_["li"].get(f"/deal/{li_deal['id']}").status_code == 200
    assert_error(as_["li"].get(f"/deal/{zhao_deal['id']}"), 403)
    assert_error(as_["li"].get(f"/deal/{zhao_deal['id']}/history"), 403)
    for reader in ("wang", "chen", "root"):
        assert as_[reader].get("/deal").get_json()["total"] == 2


def test_update_own_and_delete_permissions(as_, deals):
    li_deal, zhao_deal, account = deals["li"], deals["zhao"], deals["account"]
    assert as_["li"].patch(f"/deal/{li_deal['id']}", json={"stage": "qualified"}).status_code == 200
    assert_error(as_["li"].patch(f"/deal/{zhao_deal['id']}", json={"stage": "won"}), 403)
    assert_error(as_["li"].delete(f"/deal/{li_deal['id']}"), 403)
    assert as_["li"].patch(f"/account/{account['id']}", json={"tier": "B"}).status_code == 200
    assert_error(as_["zhao"].patch(f"/account/{account['id']}", json={"tier": "A"}), 403)
    assert_error(as_["zhao"].delete(f"/account/{account['id']}"), 403)
    assert as_["wang"].patch(f"/deal/{zhao_deal['id']}", json={"stage": "won"}).status_code == 200
    assert as_["wang"].delete(f"/deal/{zhao_deal['id']}").status_code == 204
    assert_error(as_["li"].post(f"/deal/{zhao_deal['id']}/restore"), 403)
    assert as_["wang"].post(f"/deal/{zhao_deal['id']}/restore").status_code == 200


def test_finance_only_reads(as_, deals):
    deal, account = deals["li"], deals["account"]
    assert as_["chen"].get(f"/deal/{deal['id']}").status_code == 200
    assert as_["chen"].get(f"/account/{account['id']}").status_code == 200
    assert_error(as_["chen"].post("/deal", json={"title": "x", "account": account["id"]}), 403)
    assert_error(as_["chen"].patch(f"/deal/{deal['id']}", json={"stage": "won"}), 403)
    assert_error(as_["chen"].delete(f"/deal/{deal['id']}"), 403)
    assert_error(as_["chen"].post("/account", json={"name": "x"}), 403)
    assert_error(as_["chen"].get("/contact"), 403)


def test_roles_without_grants_are_refused_and_admin_may_do_everything(as_, deals):
    deal = deals["zhao"]
    for verb, call in [
        ("list", lambda c: c.get("/deal")),
        ("read", lambda c: c.get(f"/deal/{deal['id']}")),
        ("create", lambda c: c.post("/deal", json={"title": "x", "account": 1})),
        ("update", lambda c: c.patch(f"/deal/{deal['id']}", json={"stage": "won"})),
        ("delete", lambda c: c.delete(f"/deal/{deal['id']}")),
    ]:
        assert_error(call(as_["dora"]), 403), verb
    assert as_["root"].patch(f"/deal/{deal['id']}", json={"stage": "won"}).status_code == 200
    assert as_["root"].delete(f"/deal/{deal['id']}").status_code == 204


def test_only_an_admin_may_hand_a_record_over(as_, deals, user_ids):
    deal = deals["li"]
    refused = as_["li"].patch(f"/deal/{deal['id']}", json={"owner": user_ids["zhao"]})
    assert_error(refused, 422, "/owner")
    handed = as_["root"].patch(f"/deal/{deal['id']}", json={"owner": user_ids["zhao"]})
    assert handed.status_code == 200 and handed.get_json()["owner"] == user_ids["zhao"]
    assert as_["zhao"].get(f"/deal/{deal['id']}").status_code == 200


# --- OpenAPI --------------------------------------------------------------------------


def test_openapi_describes_entities_errors_and_the_bearer_scheme(as_):
    response = as_["li"].get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token from crm user create --token",
    }
    assert spec["security"] == [{"bearerAuth": []}]
    deal = spec["components"]["schemas"]["sales_pipeline.deal"]["properties"]
    assert deal["amount"]["type"] == ["string", "null"] and "pattern" in deal["amount"]
    assert deal["lines"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/sales_pipeline.deal_line.row"},
        "title": "Lines",
    }
    assert {
        "id",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "owner",
        "version",
    } <= set(deal)
    create = spec["components"]["schemas"]["sales_pipeline.deal.create"]
    assert set(create["required"]) == {"title", "account"}
    operations = spec["paths"][f"{RECORDS}/deal/{{id}}"]
    assert set(operations) == {"parameters", "get", "patch", "delete"}
    assert operations["patch"]["responses"]["412"]["content"]["application/json"]
    assert f"{RECORDS}/deal_line" not in spec["paths"]
    errors = spec["components"]["responses"]["Invalid"]["content"]["application/json"]
    assert errors["schema"] == {"$ref": "#/components/schemas/Errors"}
    schemathesis.openapi.from_dict(spec).validate()
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_openapi_reflects_a_publish_at_once(as_, example_doc):
    before = as_["root"].get("/api/v1/openapi.json").get_json()
    assert (
        "wechat_id" not in before["components"]["schemas"]["sales_pipeline.account"]["properties"]
    )
    doc = copy.deepcopy(example_doc)
    doc["version"] = "1.1.0"
    doc["entities"][0]["fields"].append({"name": "wechat_id", "type": "text", "required": False})
    doc["entities"].append(
        {
            "name": "visit",
            "fields": [{"name": "place", "type": "text", "required": True}],
            "permissions": {"sales": ["read", "create"]},
        }
    )
    assert as_["root"].post("/api/v1/apps", json=doc).status_code == 201
    after = as_["li"].get("/api/v1/openapi.json").get_json()
    schemas = after["components"]["schemas"]
    assert schemas["sales_pipeline.account"]["properties"]["wechat_id"]["type"] == [
        "string",
        "null",
    ]
    assert "wechat_id" in schemas["sales_pipeline.account.input"]["properties"]
    assert schemas["sales_pipeline.visit.create"]["required"] == ["place"]
    assert f"{RECORDS}/visit/{{id}}" in after["paths"]
    created = as_["li"].post("/visit", json={"place": "Suzhou"})
    assert created.status_code == 201 and created.get_json()["place"] == "Suzhou"


def test_a_busy_database_does_not_fail_a_call_over_recording_the_token_use(
    as_, engine, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    def busy(*_args):
        raise OperationalError("UPDATE crm_api_tokens", {}, Exception("database is locked"))

    monkeypatch.setattr(accounts, "touch_token", busy)
    with engine.begin() as conn:
        conn.execute(update(api_tokens).values(last_used_at=None))
    response = as_["li"].get("/api/v1/apps")
    assert response.status_code == 200
