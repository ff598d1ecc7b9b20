"""The admin pages: the industry presets, a dry run of an import, and the import itself.

The app starts with the sales_pipeline example published (so that preset shows
as installed); root is an admin, dora a designer, li a sales rep. Pages are read
as text with the HTML entities undone, so the importer's words compare as written.
"""

from __future__ import annotations

import copy
import html as markup
import json
import re

import pytest
from sqlalchemy import func, inspect, select

from app import accounts, create_app
from metamodel import publish, store
from metamodel.model import EntityModel
from metamodel.system_tables import app_versions, preset_imports, users
from metamodel.text import humanise, localise
from presets import catalog
from presets.catalog import list_presets, load_preset
from presets.importing import run_import
from records.actor import SYSTEM
from records.query import ListQuery
from records.service import Records

from .test_api import EXAMPLE, FAST_HASH
from .test_web_foundation import PASSWORD, csrf_token, sign_in

SCRIPT = "<script>alert(1)</script>"
PEOPLE = {"root": ["admin"], "dora": ["designer"], "li": ["sales"]}


@pytest.fixture
def web_app(db_url, tmp_path):
    app = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "i"), "secret_key": "t"}
    )
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, json.loads(EXAMPLE.read_text(encoding="utf-8")))
    with engine.begin() as conn:
        for name, roles in PEOPLE.items():
            accounts.create_user(conn, name, roles, password=PASSWORD, method=FAST_HASH)
    yield app
    engine.dispose()


@pytest.fixture
def engine(web_app):
    return web_app.extensions["crm"].engine


@pytest.fixture
def client(web_app):
    return web_app.test_client()


@pytest.fixture
def root(client):
    assert sign_in(client, "root").status_code == 302
    return client


def page_text(response) -> str:
    return markup.unescape(response.get_data(as_text=True))


def installed(engine, app: str):
    with engine.connect() as conn:
        return store.current(conn, app)


def tables_of(engine, app: str) -> list[str]:
    return [name for name in inspect(engine).get_table_names() if name.startswith(f"{app}__")]


def count(engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def records_of(engine, app: str, entity: str) -> list[dict]:
    page = Records(engine).list(SYSTEM, app, entity, ListQuery(sort="id", per_page=200))
    return page["items"]


def import_form(client, *, with_sample_data: bool) -> dict:
    data = {"csrf_token": csrf_token(client, "/admin/presets")}
    if with_sample_data:
        data["with_sample_data"] = "1"
    return data


def flashes(response) -> list[str]:
    found = re.findall(
        r'<div class="flash[^"]*" role="status">(.*?)</div>', response.get_data(True)
    )
    return [markup.unescape(item) for item in found]


# --- who may ----------------------------------------------------------------------------


def test_only_admins_and_designers_may_manage_presets(client, engine):
    sign_in(client, "li")
    home = client.get("/").get_data(as_text=True)
    assert "/admin/presets" not in home  # no link in the navigation
    assert client.get("/admin/presets").status_code == 403
    assert client.get("/admin/presets/b2b_sales/plan").status_code == 403
    token = csrf_token(client, "/")
    response = client.post("/admin/presets/b2b_sales/import", data={"csrf_token": token})
    assert response.status_code == 403
    assert "You do not have access to this" in page_text(response)
    assert installed(engine, "b2b_sales") is None

    client.post("/sign-out", data={"csrf_token": token})
    sign_in(client, "dora")
    assert 'href="/admin/presets"' in client.get("/").get_data(as_text=True)
    assert client.get("/admin/presets").status_code == 200


def test_signing_in_comes_first(client):
    response = client.get("/admin/presets")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_every_preset_with_its_entities_and_workflows(root):
    response = root.get("/admin/presets")
    assert response.status_code == 200
    text = page_text(response)
    for info in list_presets():
        document = load_preset(info.path)
        card = text.split(f'id="preset-{info.name}"', 1)[1].split("</article>", 1)[0]
        assert info.text("label") in card
        assert info.text("description") in card
        for entity in document["entities"]:
            label = EntityModel(None, entity, "").plural_label
            shown = f'<span class="chip">{localise(label, "en")}</span>'
            assert (shown in card) == (not entity.get("child")), entity["name"]
        for workflow in document.get("workflows", []):
            assert localise(workflow.get("label"), "en") or humanise(workflow["name"]) in card
    b2b = text.split('id="preset-b2b_sales"', 1)[1].split("</article>", 1)[0]
    assert "Not installed" in b2b and ">Import</button>" in b2b
    assert '<span class="chip">Quote lines</span>' not in b2b  # a child table
    # sales_pipeline is published as the example: it is installed, so it upgrades
    pipeline = text.split('id="preset-sales_pipeline"', 1)[1].split("</article>", 1)[0]
    assert "Installed: version 1.0.0" in pipeline and ">Upgrade</button>" in pipeline
    assert 'href="/a/sales_pipeline/deal"' in pipeline


def test_the_list_speaks_the_users_language(root, engine):
    with engine.begin() as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == "root")).scalar_one()
        conn.execute(users.update().where(users.c.id == user_id).values(language="zh"))
    text = page_text(root.get("/admin/presets"))
    card = text.split('id="preset-retail_membership"', 1)[1].split("</article>", 1)[0]
    assert "零售会员管理" in card
    assert '<span class="chip">会员</span>' in card
    assert "<h2>Retail membership</h2>" not in card and "<h2>零售会员管理</h2>" in card


# --- the dry run ------------------------------------------------------------------------------


def test_the_plan_shows_what_the_import_would_do_and_changes_nothing(root, engine):
    response = root.get("/admin/presets/b2b_sales/plan?with_sample_data=1")

    assert response.status_code == 200
    text = page_text(response)
    assert "create entity 'account' (table b2b_sales__account)" in text
    assert "create entity 'opportunity' (table b2b_sales__opportunity)" in text
    samples = text.split('class="card preset-samples"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"<td>Accounts</td><td class=\"number\">8</td>", samples)
    assert re.search(r"<td>Opportunities</td><td class=\"number\">12</td>", samples)
    assert re.search(r"Total</th><th class=\"number\">48</th>", samples)
    assert 'name="with_sample_data" value="1" checked' in text
    assert re.search(r"Indexes and keys: \d+ changes", text)  # folded below the steps
    assert 'action="/admin/presets/b2b_sales/import"' in text
    # a dry run: no app, no table, no version, no record of an import
    assert installed(engine, "b2b_sales") is None
    assert tables_of(engine, "b2b_sales") == []
    assert count(engine, preset_imports) == 0


def test_the_plan_speaks_the_users_language(root, engine):
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "root").values(language="zh"))
    text = page_text(root.get("/admin/presets/b2b_sales/plan"))
    assert "创建实体“account”（数据表 b2b_sales__account）" in text
    assert "create entity" not in text


def test_the_plan_without_sample_data_has_no_counts(root, engine):
    text = page_text(root.get("/admin/presets/b2b_sales/plan"))
    assert "create entity 'account'" in text
    assert "preset-samples" not in text
    assert 'name="with_sample_data" value="1">' in text  # not checked
    assert '<input type="hidden" name="with_sample_data"' not in text


def test_an_unknown_preset_is_not_found_and_no_file_is_read(root):
    assert root.get("/admin/presets/crm_for_cats/plan").status_code == 404
    # a name that looks like a file is looked up in the catalogue only
    response = root.get("/admin/presets/b2b_sales.json/plan")
    assert response.status_code == 404
    assert "there is no preset" in page_text(response)


# --- importing --------------------------------------------------------------------------------


def test_importing_with_sample_data_creates_the_app_and_its_records(root, engine):
    response = root.post(
        "/admin/presets/b2b_sales/import", data=import_form(root, with_sample_data=True)
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/presets#preset-b2b_sales"
    stored = installed(engine, "b2b_sales")
    assert stored.version == "1.0.0" and stored.action == "preset" and stored.author == "root"
    assert len(records_of(engine, "b2b_sales", "account")) == 8
    assert len(records_of(engine, "b2b_sales", "opportunity")) == 12
    with engine.connect() as conn:
        root_id = conn.execute(select(users.c.id).where(users.c.username == "root")).scalar_one()
    assert records_of(engine, "b2b_sales", "account")[0]["created_by"] == root_id
    page = root.get("/admin/presets")
    assert flashes(page) == ["Imported B2B sales 1.0.0. 48 sample records were created."]
    card = page_text(page).split('id="preset-b2b_sales"', 1)[1].split("</article>", 1)[0]
    assert "Installed: version 1.0.0" in card and ">Upgrade</button>" in card
    assert 'href="/a/b2b_sales/account">Accounts</a>' in card
    assert root.get("/a/b2b_sales/account").status_code == 200

    # the same import again: nothing to change, nothing added
    again = root.post(
        "/admin/presets/b2b_sales/import",
        data=import_form(root, with_sample_data=True),
        follow_redirects=True,
    )
    assert again.status_code == 200
    assert flashes(again) == ["B2B sales 1.0.0: nothing to change."]
    assert count(engine, app_versions, app="b2b_sales") == 1
    assert count(engine, preset_imports) == 1
    assert len(records_of(engine, "b2b_sales", "account")) == 8
    # and the plan says so, with no button to press
    text = page_text(root.get("/admin/presets/b2b_sales/plan?with_sample_data=1"))
    assert "B2B sales 1.0.0: nothing to change." in text
    assert "none is added again" in text
    assert 'action="/admin/presets/b2b_sales/import"' not in text


def test_a_designer_imports_with_sample_data_too(client, engine):
    sign_in(client, "dora")
    response = client.post(
        "/admin/presets/retail_membership/import",
        data=import_form(client, with_sample_data=True),
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert flashes(response)[0].startswith("Imported Retail membership 1.0.0.")
    members = records_of(engine, "retail_membership", "member")
    assert len(members) == 10
    with engine.connect() as conn:
        dora = conn.execute(select(users.c.id).where(users.c.username == "dora")).scalar_one()
    assert installed(engine, "retail_membership").author == "dora"
    assert {member["created_by"] for member in members} == {dora}


def test_importing_without_the_csrf_token_is_refused(root, engine):
    response = root.post("/admin/presets/b2b_sales/import", data={"with_sample_data": "1"})
    assert response.status_code == 400
    assert root.post("/admin/presets/b2b_sales/plan", data={}).status_code == 400
    assert installed(engine, "b2b_sales") is None


# --- upgrades and refusals --------------------------------------------------------------------


def older_b2b_sales() -> dict:
    """b2b_sales as it might have shipped before: accounts called clients, no website field."""
    older = load_preset("b2b_sales")
    older.pop("sample_data")
    older["version"] = "0.9.0"
    account = older["entities"][0]
    account["label"] = "Client"
    account["fields"] = [f for f in account["fields"] if f["name"] != "website"]
    for form in older.get("forms", []):
        for section in form.get("layout", []):
            section["fields"] = [f for f in section.get("fields", []) if f != "website"]
    for view in older.get("views", []):
        if "columns" in view:
            view["columns"] = [c for c in view["columns"] if c != "website"]
    return older


def test_an_upgrade_of_a_customised_app_shows_the_conflict_and_keeps_the_users_value(root, engine):
    run_import(engine, older_b2b_sales(), author="root")
    customised = copy.deepcopy(installed(engine, "b2b_sales").document)
    customised["version"] = "0.9.1"
    customised["entities"][0]["label"] = SCRIPT  # the users relabelled accounts
    publish.apply_document(engine, customised)

    response = root.get("/admin/presets/b2b_sales/plan")

    assert response.status_code == 200
    raw = response.get_data(as_text=True)
    assert SCRIPT not in raw and "&lt;script&gt;" in raw
    text = page_text(response)
    assert "Upgrade B2B sales" in text
    conflicts = text.split('class="problems merge-conflicts"', 1)[1].split("</ul>", 1)[0]
    assert "<code>/entities/0/label</code>:" in conflicts
    assert SCRIPT in conflicts and "Account" in conflicts
    taken = text.split('class="problems merge-taken"', 1)[1].split("</ul>", 1)[0]
    assert "website" in taken
    assert "add field 'account.website'" in text
    assert installed(engine, "b2b_sales").version == "0.9.1"  # a dry run

    done = root.post(
        "/admin/presets/b2b_sales/import",
        data=import_form(root, with_sample_data=False),
        follow_redirects=True,
    )
    assert flashes(done) == [
        "Upgraded B2B sales from 0.9.1 to 1.0.0. 1 conflict: the app's own value was kept."
    ]
    document = installed(engine, "b2b_sales").document
    assert document["version"] == "1.0.0"
    assert document["entities"][0]["label"] == SCRIPT
    assert "website" in [f["name"] for f in document["entities"][0]["fields"]]


def test_a_refused_import_changes_nothing_and_says_why(root, engine):
    run_import(engine, "b2b_sales", author="root")
    customised = copy.deepcopy(installed(engine, "b2b_sales").document)
    customised["version"] = "1.0.1"
    customised["entities"][0]["fields"].append(
        {"name": "sector_code", "type": "text", "label": "Sector code", "required": True}
    )
    publish.apply_document(engine, customised)

    plan = root.get("/admin/presets/b2b_sales/plan?with_sample_data=1")
    assert plan.status_code == 200
    assert "/sample_data/account/0/sector_code" in page_text(plan)
    assert 'action="/admin/presets/b2b_sales/import"' not in page_text(plan)

    response = root.post(
        "/admin/presets/b2b_sales/import", data=import_form(root, with_sample_data=True)
    )

    assert response.status_code == 422
    text = page_text(response)
    assert "The import is refused" in text and "Nothing was changed." in text
    assert re.search(r"<code>/sample_data/account/0/sector_code</code>: \S", text)
    assert records_of(engine, "b2b_sales", "account") == []
    assert installed(engine, "b2b_sales").version == "1.0.1"
    assert count(engine, preset_imports) == 1


# --- escaping ---------------------------------------------------------------------------------


def test_preset_labels_are_escaped(root, tmp_path, monkeypatch):
    preset = load_preset("sales_pipeline")
    preset["name"] = "tricky"
    preset["label"] = {"en": SCRIPT}
    preset["description"] = f"Costs {SCRIPT} & more"
    preset["entities"][0]["plural_label"] = {"en": SCRIPT}
    preset["workflows"][0]["label"] = {"en": SCRIPT}
    (tmp_path / "tricky.json").write_text(json.dumps(preset), encoding="utf-8")
    monkeypatch.setattr(catalog, "PRESETS_DIR", tmp_path)

    for path in ("/admin/presets", "/admin/presets/tricky/plan?with_sample_data=1"):
        response = root.get(path)
        assert response.status_code == 200, path
        raw = response.get_data(as_text=True)
        assert SCRIPT not in raw, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw, path
        assert "Costs &lt;script&gt;" in raw and "&amp; more" in raw, path


def test_the_nav_link_is_offered_to_admins(root):
    home = root.get("/").get_data(as_text=True)
    assert '<a href="/admin/presets">Presets</a>' in home
