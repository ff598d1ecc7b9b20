"""The dashboard page shows snapshots: "as of", placeholders, stale ones refreshed, who shares.

The page never computes a widget: it shows what was computed last (by a refresh
from the page, from another worker, or ``crm dashboards refresh``), and when
that is old or missing the browser asks for fresh widgets at once.
"""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import event, update

from app import create_app
from app.api.service import KEY
from app.cli import main
from metamodel import publish
from metamodel.errors import CrmError
from metamodel.sqltypes import UTC
from metamodel.system_tables import dashboard_snapshots

from . import test_pages_dashboards as base
from .test_pages_dashboards import (
    APP,
    BOARD,
    dashboard_page,
    example_with_dashboards,
    refresh,
    widgets_of,
    words,
)
from .web import csrf_token, page_of, signed_in

# The dashboard tests' app, people and deals.
web_app, actors, deals = base.web_app, base.actors, base.deals
KPIS = f"{BOARD}/sales_kpis"
AUTO_REFRESH = re.compile(
    r'<span class="auto-refresh" hx-post="/a/sales_pipeline/dashboards/(\w+)/refresh" '
    r"hx-trigger=\"load\" hx-vals='\{\"stale\": \"1\"\}'"
)
AS_OF = re.compile(r'<p class="as-of muted" title="[^"]+" data-as-of="([^"]+)">As of ([^<]+)</p>')


def pipeline(page: str) -> str | None:
    """The open pipeline the page shows, or None while it is computed."""
    card = widgets_of(page)["Open pipeline"]
    found = re.search(r'<p class="big-number"[^>]*>(.*?)</p>', card)
    return found.group(1) if found else None


def add_deal(web_app, actors, amount: str, who: str = "root") -> None:
    service = web_app.extensions[KEY]
    account = service.create(actors["root"], APP, "account", {"name": "Extra"})["id"]
    values = {"title": "New", "account": account, "stage": "proposal", "amount": amount}
    service.create(actors[who], APP, "deal", values)


def age_snapshots(web_app, minutes: int) -> dt.datetime:
    """Make every snapshot ``minutes`` old; the moment they then say."""
    moment = dt.datetime.now(UTC) - dt.timedelta(minutes=minutes)
    with web_app.extensions["crm"].engine.begin() as conn:
        conn.execute(update(dashboard_snapshots).values(computed_at=moment))
    return moment


# --- fresh, stale, missing -----------------------------------------------------------------


def test_the_page_shows_its_snapshot_until_a_refresh(web_app, actors, deals):
    client = signed_in(web_app, "root")
    page = dashboard_page(client, "sales_kpis")
    assert pipeline(page) == "CN¥1,530.00"
    moment, shown = AS_OF.search(page).groups()
    assert re.fullmatch(r"\d\d:\d\d", shown)  # today: the time alone, in the user's zone
    assert dt.datetime.fromisoformat(moment) <= dt.datetime.now(UTC)
    assert 'hx-trigger="load"' not in page and "widget-stale" not in page
    assert '<button type="submit" class="refresh-button">Refresh</button>' in page
    add_deal(web_app, actors, "500.00")
    assert pipeline(page_of(client, KPIS)) == "CN¥1,530.00"  # the snapshot, not the table
    fresh = refresh(client, "sales_kpis")
    assert pipeline(fresh) == "CN¥2,030.00"
    assert fresh.lstrip().startswith('<div class="dashboard-body" id="dashboard-body"')
    assert "<html" not in fresh and 'hx-trigger="load"' not in fresh
    assert pipeline(page_of(client, KPIS)) == "CN¥2,030.00"


def test_missing_snapshots_show_placeholders_and_ask_for_them(web_app, deals):
    page = page_of(signed_in(web_app, "chen"), KPIS)
    cards = widgets_of(page)
    assert [name for name, card in cards.items() if "Computing…" in card] == [
        "Open pipeline",
        "Deals by stage",
        "Account value (ABC)",
    ]
    assert "widget-refused" in cards["Interactions by channel"]  # never computed: refused
    assert "<canvas" not in page and "big-number" not in page
    assert AUTO_REFRESH.search(page).group(1) == "sales_kpis"
    assert "Updating…" in page and not AS_OF.search(page)


def test_stale_snapshots_show_with_their_time_and_ask_for_fresh_ones(web_app, actors, deals):
    client = signed_in(web_app, "root")
    dashboard_page(client, "sales_kpis")
    add_deal(web_app, actors, "500.00")
    moment = age_snapshots(web_app, 60 * 30)  # 30 hours: yesterday or before
    page = page_of(client, KPIS)
    assert pipeline(page) == "CN¥1,530.00"
    assert page.count("widget-stale") == 4 and AUTO_REFRESH.search(page)
    shown = AS_OF.search(page)
    assert dt.datetime.fromisoformat(shown.group(1)) == moment
    assert re.fullmatch(r"\w{3} \d{1,2}, \d{4} \d\d:\d\d", shown.group(2))  # with its date
    # What the page asks: the widgets still old, computed anew; it asks no more.
    fresh = refresh(client, "sales_kpis", stale="1")
    assert pipeline(fresh) == "CN¥2,030.00"
    assert "widget-stale" not in fresh and not AUTO_REFRESH.search(fresh)
    assert re.fullmatch(r"\d\d:\d\d", AS_OF.search(fresh).group(2))


def test_the_max_age_setting_decides_what_is_stale(db_url, tmp_path, deals, web_app):
    dashboard_page(signed_in(web_app, "root"), "sales_kpis")
    age_snapshots(web_app, 10)
    assert AUTO_REFRESH.search(page_of(signed_in(web_app, "root"), KPIS))  # past 300 s
    patient = create_app(
        {
            "database_url": db_url,
            "instance_path": str(tmp_path / "other"),
            "secret_key": "t",
            "dashboards": {"snapshot_max_age_seconds": 3600},
        }
    )
    try:
        assert not AUTO_REFRESH.search(page_of(signed_in(patient, "root"), KPIS))
    finally:
        patient.extensions["crm"].engine.dispose()


def test_a_metadata_change_voids_the_snapshots(web_app, deals):
    client = signed_in(web_app, "root")
    assert pipeline(dashboard_page(client, "sales_kpis")) == "CN¥1,530.00"
    changed = example_with_dashboards()
    changed["version"] = "1.0.1"
    changed["dashboards"][0]["widgets"][0]["label"] = "Pipeline"
    publish.apply_document(web_app.extensions["crm"].engine, changed)
    page = page_of(client, KPIS)
    cards = widgets_of(page)
    assert "Computing…" in cards["Pipeline"] and AUTO_REFRESH.search(page)
    assert "big-number" not in page


def test_one_snapshot_serves_every_language(web_app, deals):
    dashboard_page(signed_in(web_app, "root"), "sales_kpis")  # computed in English
    page = page_of(signed_in(web_app, "wang", language="zh"), KPIS)
    assert not AUTO_REFRESH.search(page)
    cards = widgets_of(page)
    assert "¥1,530.00" in cards["在途金额"]
    assert "赢单" in words(cards["各阶段商机"]) and "截至" in page


# --- who shares a snapshot ------------------------------------------------------------------


def test_own_and_full_readers_never_see_each_others_numbers(web_app, deals):
    li, wang = signed_in(web_app, "li"), signed_in(web_app, "wang")
    assert pipeline(dashboard_page(li, "sales_kpis")) == "CN¥1,500.00"
    # li's deal numbers are li's: wang has none yet; the interactions everyone reads are shared.
    cards = widgets_of(page_of(wang, KPIS))
    assert "Computing…" in cards["Open pipeline"] and "Computing…" in cards["Deals by stage"]
    assert "Computing…" not in cards["Interactions by channel"]
    assert pipeline(dashboard_page(wang, "sales_kpis")) == "CN¥1,530.00"
    assert pipeline(page_of(li, KPIS)) == "CN¥1,500.00"
    assert pipeline(page_of(signed_in(web_app, "root"), KPIS)) == "CN¥1,530.00"  # wang's: all


def test_two_app_instances_share_a_snapshot(web_app, deals, db_url, tmp_path):
    other = create_app(
        {"database_url": db_url, "instance_path": str(tmp_path / "other"), "secret_key": "t"}
    )
    try:
        dashboard_page(signed_in(web_app, "root"), "sales_kpis")
        page = page_of(signed_in(other, "wang"), KPIS)
        assert pipeline(page) == "CN¥1,530.00" and not AUTO_REFRESH.search(page)
    finally:
        other.extensions["crm"].engine.dispose()


# --- what a page view costs ------------------------------------------------------------------


def statements_of(web_app, client, path: str) -> list[str]:
    engine = web_app.extensions["crm"].engine
    seen = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        page_of(client, path)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_page_view_reads_snapshots_and_aggregates_nothing(web_app, actors, deals):
    client = signed_in(web_app, "root")
    dashboard_page(client, "sales_kpis")
    page_of(client, KPIS)  # warm the caches
    few = statements_of(web_app, client, KPIS)
    for amount in range(20):
        add_deal(web_app, actors, f"{amount}.00")
    many = statements_of(web_app, client, KPIS)
    # The user, the metadata generation, the navigation's counts and one of snapshots.
    assert len(few) == len(many), "\n".join(many)
    assert len([s for s in many if s != "BEGIN"]) <= 10, "\n".join(many)
    assert not [s for s in many if "sales_pipeline__" in s]  # no record table read
    assert len([s for s in many if "crm_dashboard_snapshots" in s]) == 1


# --- the refresh endpoint ---------------------------------------------------------------------


def test_the_refresh_endpoint_checks_csrf_roles_and_names(web_app, deals):
    li = signed_in(web_app, "li")
    token = csrf_token(li, KPIS)
    headers = {"X-CSRFToken": token, "HX-Request": "true"}
    assert li.post(f"{KPIS}/refresh", headers={"HX-Request": "true"}).status_code == 400
    assert li.post(f"{BOARD}/managers/refresh", headers=headers).status_code == 403
    assert li.post(f"{BOARD}/nothing/refresh", headers=headers).status_code == 404
    assert li.post("/a/nowhere/dashboards/sales_kpis/refresh", headers=headers).status_code == 404
    assert li.get(f"{KPIS}/refresh").status_code == 405
    anonymous = web_app.test_client().post(f"{KPIS}/refresh")
    assert anonymous.status_code in (302, 400)
    # Nothing was computed by the refusals.
    assert "Computing…" in page_of(signed_in(web_app, "wang"), f"{BOARD}/managers")


def test_a_refresh_without_htmx_comes_back_to_the_page(web_app, deals):
    client = signed_in(web_app, "root")
    response = client.post(f"{KPIS}/refresh", data={"csrf_token": csrf_token(client, KPIS)})
    assert response.status_code == 303 and response.headers["Location"] == KPIS
    assert pipeline(page_of(client, KPIS)) == "CN¥1,530.00"


def test_a_widget_the_database_cannot_compute_says_why(web_app, deals):
    broken = copy.deepcopy(example_with_dashboards())
    broken["version"] = "1.0.1"
    broken["dashboards"].append(
        {
            "name": "broken",
            "widgets": [
                {
                    "type": "number",
                    "entity": "deal",
                    "filter": {"==": [{"cat": [{"var": "title"}, "!"]}, "x!"]},
                }
            ],
        }
    )
    publish.apply_document(web_app.extensions["crm"].engine, broken)
    client = signed_in(web_app, "root")
    answer = refresh(client, "broken")
    assert "The dashboard could not be computed: /dashboards/3/widgets/0/filter" in words(answer)
    assert not AUTO_REFRESH.search(answer) and "Computing…" in answer
    token = csrf_token(client, f"{BOARD}/broken")
    plain = client.post(f"{BOARD}/broken/refresh", data={"csrf_token": token})
    assert plain.status_code == 422 and "could not be computed" in plain.get_data(True)


# --- settings and the command line ------------------------------------------------------------


@pytest.mark.parametrize("wrong", [-1, "soon", True, {"minutes": 5}])
def test_a_wrong_max_age_stops_the_app_at_start(db_url, tmp_path, wrong):
    settings = {"database_url": db_url, "instance_path": str(tmp_path / "i"), "secret_key": "t"}
    with pytest.raises(CrmError) as refused:
        create_app(settings | {"dashboards": {"snapshot_max_age_seconds": wrong}})
    assert refused.value.problems[0].path == "/dashboards/snapshot_max_age_seconds"
    with pytest.raises(CrmError, match="must hold settings"):
        create_app(settings | {"dashboards": 300})


def test_the_command_line_refreshes_the_shared_snapshots(web_app, deals, db_url, tmp_path):
    env = {"CRM_DATABASE_URL": db_url, "CRM_INSTANCE_PATH": str(tmp_path / "cli")}
    runner = CliRunner()
    done = runner.invoke(main, ["dashboards", "refresh"], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert [line.split(" in ")[0] for line in lines] == [
        f"{APP}/sales_kpis: 4 widgets computed",
        f"{APP}/managers: 3 widgets computed",
        f"{APP}/marked_up: 2 widgets computed",
    ]
    assert all(re.search(r" in \d+\.\d s$", line) for line in lines)
    wang = page_of(signed_in(web_app, "wang"), KPIS)
    assert pipeline(wang) == "CN¥1,530.00" and not AUTO_REFRESH.search(wang)
    assert "Computing…" in page_of(signed_in(web_app, "li"), KPIS)  # li's numbers are li's
    one = runner.invoke(main, ["dashboards", "refresh", APP, "managers"], env=env)
    assert one.exit_code == 0 and one.output.startswith(f"{APP}/managers: 3 widgets computed")
    unknown = runner.invoke(main, ["dashboards", "refresh", APP, "nothing"], env=env)
    assert unknown.exit_code == 1 and "no dashboard 'nothing'" in unknown.output
    nowhere = runner.invoke(main, ["dashboards", "refresh", "nowhere"], env=env)
    assert nowhere.exit_code == 1 and "no app named 'nowhere'" in nowhere.output
    empty = {"CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    uninitialised = runner.invoke(main, ["dashboards", "refresh"], env=env | empty)
    assert uninitialised.exit_code == 1 and "run 'crm init' first" in uninitialised.output
