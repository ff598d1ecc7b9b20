"""Importing CSV and XLSX files through /api/v1, in the background, on the database under test.

In the sales_pipeline example the sales manager (wang) may also import accounts
and contacts; the salesman li may not. A job runs in a thread of the app, so
each test polls its Location until it is done, as a client would.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select, update

from app import accounts
from metamodel import publish, store
from metamodel.system_tables import import_jobs as jobs_table
from records import import_jobs, importing

from .test_api import EXAMPLE, Caller, assert_error, make_app

FAST_HASH = "pbkdf2:sha256:1"
PEOPLE = {"root": ["admin"], "wang": ["sales_manager"], "li": ["sales"], "zhao": ["sales"]}
CONTACTS = "full_name,account,email,preferred_channel\n"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def example_doc():
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for entity in doc["entities"]:
        if entity["name"] in ("account", "contact"):
            entity["permissions"]["sales_manager"].append("import")
    return doc


def _app(db_url, tmp_path, example_doc, **settings):
    app = make_app(db_url, tmp_path, **settings)
    engine = app.extensions["crm"].engine
    store.ensure_system_tables(engine)
    publish.apply_document(engine, example_doc)
    return app


@pytest.fixture
def app(db_url, tmp_path, example_doc):
    app = _app(db_url, tmp_path, example_doc)
    yield app
    # No job may outlive its database.
    assert import_jobs.wait_for_jobs(timeout=120)
    app.extensions["crm"].engine.dispose()


@pytest.fixture
def engine(app):
    return app.extensions["crm"].engine


def callers(app) -> dict[str, Caller]:
    engine = app.extensions["crm"].engine
    tokens = {}
    with engine.begin() as conn:
        for name, roles in PEOPLE.items():
            accounts.create_user(conn, name, roles, password="pw", method=FAST_HASH)
            tokens[name] = accounts.issue_token(conn, accounts.user_id(conn, name))
    client = app.test_client()
    return {name: Caller(client, token) for name, token in tokens.items()}


@pytest.fixture
def as_(app):
    return callers(app)


@pytest.fixture
def acme(as_):
    for name in ("Acme", "Northwind"):
        response = as_["root"].post("/account", json={"name": name})
        assert response.status_code == 201, response.get_data(as_text=True)


def upload(caller, entity: str, content: bytes | str, name="data.csv", **form):
    data = content.encode("utf-8") if isinstance(content, str) else content
    return caller.post(
        f"/{entity}/import",
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
    )


def started(response) -> str:
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()
    assert job["status"] in ("queued", "running", "done", "failed")
    location = response.headers["Location"]
    assert location == f"/api/v1/imports/{job['id']}"
    return location


def finish(caller, location: str, timeout: float = 120) -> tuple[dict, list[dict]]:
    """Poll the job until it ends: (the job, every answer seen on the way)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = caller.get(location)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
        job = response.get_json()
        seen.append(job)
        if job["status"] in ("done", "failed"):
            return job, seen
        time.sleep(0.005)
    raise AssertionError(f"the import did not end within {timeout} s: {seen[-1]}")


def total(caller, entity: str, **query) -> int:
    response = caller.get(f"/{entity}", query_string={"per_page": 1, **query})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["total"]


# --- importing ---------------------------------------------------------------------


def test_a_good_csv_is_imported_in_the_background(as_, acme, engine):
    rows = [
        "王芳,Acme,wang.fang@example.com,wechat",
        "Li Lei,Northwind,li.lei@example.com,Email",
        "Han Meimei,Acme,,",
    ]
    location = started(upload(as_["wang"], "contact", CONTACTS + "\n".join(rows), "联系人.csv"))
    job, seen = finish(as_["wang"], location)
    assert job["status"] == "done", job
    assert (job["rows_read"], job["rows_imported"], job["rows_rejected"]) == (3, 3, 0)
    assert job["errors"] == [] and job["error_count"] == 0
    assert job["file_name"] == "联系人.csv" and job["format"] == "csv"
    assert job["has_rejects"] is False and job["stale"] is False
    assert job["finished_at"] and job["started_at"] and job["finished_at"].endswith("Z")
    assert "imported 3 of 3 rows" in job["message"]
    assert all(answer["rows_read"] <= 3 for answer in seen)
    assert total(as_["wang"], "contact") == 3
    found = as_["wang"].get("/contact", query_string={"q": "王芳"}).get_json()["items"]
    assert [(c["email"], c["preferred_channel"]) for c in found] == [
        ("wang.fang@example.com", "wechat")
    ]
    history = as_["wang"].get(f"/contact/{found[0]['id']}/history").get_json()["items"]
    assert history[0]["comment"] == "imported from 联系人.csv, row 2"


def test_bad_rows_import_nothing_and_are_named_by_row_and_column(as_, acme):
    rows = [
        "Good One,Acme,good@example.com,phone",
        "Bad Mail,Acme,not-an-email,phone",
        "Lost,Nobody Ltd,,",
        ",Acme,,",
    ]
    location = started(upload(as_["wang"], "contact", CONTACTS + "\n".join(rows)))
    job, _ = finish(as_["wang"], location)
    assert job["status"] == "failed"
    assert (job["rows_read"], job["rows_imported"], job["rows_rejected"]) == (4, 0, 3)
    assert job["error_count"] == 3
    assert [(e["path"], e["row"], e["column"]) for e in job["errors"]] == [
        ("/rows/3/email", 3, "email"),
        ("/rows/4/account", 4, "account"),
        ("/rows/5/full_name", 5, "full_name"),
    ]
    assert "no account with name 'Nobody Ltd'" in job["errors"][1]["message"]
    assert job["message"].startswith("nothing was imported: 3 errors in 3 of 4 rows")
    assert total(as_["wang"], "contact") == 0
    assert as_["wang"].get(location + "/rejects").status_code == 404


def test_columns_that_do_not_fit_fail_the_job_with_the_header_row(as_):
    job, _ = finish(as_["wang"], started(upload(as_["wang"], "account", "Name,Colour\nAcme,red")))
    assert job["status"] == "failed" and job["rows_imported"] == 0
    assert [e["path"] for e in job["errors"]] == ["/rows/1/Colour"]
    assert "is not a field of account" in job["errors"][0]["message"]


def test_skip_invalid_imports_the_good_rows_and_offers_the_rejects(as_, acme):
    rows = ["Good One,Acme,good@example.com,", "Bad Mail,Acme,not-an-email,", "Lost,Nobody,,"]
    response = upload(as_["wang"], "contact", CONTACTS + "\n".join(rows), skip_invalid="1")
    job, _ = finish(as_["wang"], started(response))
    assert job["status"] == "done" and job["skip_invalid"] is True
    assert (job["rows_read"], job["rows_imported"], job["rows_rejected"]) == (3, 1, 2)
    assert [e["path"] for e in job["errors"]] == ["/rows/3/email", "/rows/4/account"]
    assert job["has_rejects"] is True
    assert total(as_["wang"], "contact") == 1

    rejects = as_["wang"].get(f"/api/v1/imports/{job['id']}/rejects")
    assert rejects.status_code == 200 and rejects.mimetype == "text/csv"
    assert "data.rejects.csv" in rejects.headers["Content-Disposition"]
    lines = rejects.get_data().decode("utf-8-sig").splitlines()
    rejects.close()
    assert lines[0] == "full_name,account,email,preferred_channel,error"
    assert lines[1].startswith("Bad Mail,Acme,not-an-email,,email: ")
    assert lines[2].startswith("Lost,Nobody,,,account: there is no account")
    assert_error(as_["li"].get(f"/api/v1/imports/{job['id']}/rejects"), 403)


def test_the_flag_may_also_come_in_the_query(as_, acme):
    response = as_["wang"].post(
        "/contact/import?skip_invalid=yes",
        data={"file": (io.BytesIO(b"full_name,email\nA,bad\nB,b@example.com"), "c.csv")},
        content_type="multipart/form-data",
    )
    job, _ = finish(as_["wang"], started(response))
    assert (job["skip_invalid"], job["rows_imported"], job["rows_rejected"]) == (True, 1, 1)
    assert_error(upload(as_["wang"], "contact", "full_name\nA", skip_invalid="maybe"), 400)


def test_a_raw_csv_body_with_a_file_name(as_):
    response = as_["wang"].post(
        "/account/import?filename=accounts.csv",
        data=b"Name,Value tier\nAcme,A\nNorthwind,B\n",
        content_type="text/csv; charset=utf-8",
    )
    job, _ = finish(as_["wang"], started(response))
    assert job["status"] == "done" and job["file_name"] == "accounts.csv"
    assert job["rows_imported"] == 2
    assert total(as_["wang"], "account", filter=json.dumps({"==": [{"var": "tier"}, "B"]})) == 1
    response = as_["wang"].post("/account/import", data=b"Name\nSolo\n", content_type="text/csv")
    job, _ = finish(as_["wang"], started(response))
    assert (job["status"], job["file_name"]) == ("done", "upload.csv")


def test_an_xlsx_file(as_):
    book = Workbook()
    sheet = book.active
    sheet.append(["名称", "价值等级", "年营收"])
    sheet.append(["华东精工", "A", 1250000.5])
    sheet.append(["Northwind", "C", 300])
    data = io.BytesIO()
    book.save(data)
    job, _ = finish(as_["wang"], started(upload(as_["wang"], "account", data.getvalue(), "a.xlsx")))
    assert job["status"] == "done", job
    assert (job["format"], job["rows_imported"]) == ("xlsx", 2)
    items = as_["wang"].get("/account", query_string={"sort": "name"}).get_json()["items"]
    assert [(a["name"], a["tier"], a["annual_revenue"]) for a in items] == [
        ("Northwind", "C", "300.00"),
        ("华东精工", "A", "1250000.50"),
    ]


# --- refusals ----------------------------------------------------------------------


def test_without_the_import_permission_it_is_403_and_nothing_is_kept(as_, app, engine):
    assert_error(upload(as_["li"], "account", "Name\nAcme"), 403)
    assert_error(upload(as_["wang"], "deal", "title\nBig"), 403)
    with engine.connect() as conn:
        assert conn.execute(select(jobs_table.c.id)).first() is None
    folder = Path(app.instance_path) / "imports"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_only_its_creator_or_an_admin_reads_a_job(as_):
    location = started(upload(as_["wang"], "account", "Name\nAcme"))
    finish(as_["wang"], location)
    assert_error(as_["li"].get(location), 403)
    assert as_["root"].get(location).get_json()["status"] == "done"
    assert_error(as_["li"].get("/api/v1/imports/999"), 404)
    assert_error(as_["root"].get("/api/v1/imports/999/rejects"), 404)
    assert_error(Caller(as_["li"].client, None).get(location), 401)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/records/sales_pipeline/nowhere/import",
        "/api/v1/records/no_such_app/account/import",
        "/api/v1/records/sales_pipeline/deal_line/import",
    ],
)
def test_an_unknown_app_or_entity_is_404(as_, path):
    response = as_["root"].post(
        path, data={"file": (io.BytesIO(b"Name\nA"), "a.csv")}, content_type="multipart/form-data"
    )
    assert_error(response, 404)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("old.xls", b"whatever", "the old Excel format (.xls) is not supported"),
        ("notes.pdf", b"%PDF", "cannot tell the format"),
        ("empty.csv", b"", "empty.csv: the file is empty"),
        ("broken.xlsx", b"not a zip", "broken.xlsx: is not a readable .xlsx file"),
    ],
)
def test_a_file_that_does_not_read_is_422_and_starts_no_job(
    as_, engine, app, name, content, message
):
    response = upload(as_["wang"], "account", content, name)
    assert_error(response, 422)
    assert message in response.get_json()["errors"][0]["message"]
    with engine.connect() as conn:
        assert conn.execute(select(jobs_table.c.id)).first() is None
    assert list((Path(app.instance_path) / "imports").iterdir()) == []


def test_a_request_without_a_file_is_400(as_):
    response = as_["wang"].post(
        "/account/import", data={"other": "x"}, content_type="multipart/form-data"
    )
    assert_error(response, 400)
    assert "no 'file' part" in response.get_json()["errors"][0]["message"]
    response = as_["wang"].post(
        "/account/import", data={"file": "Name\nAcme"}, content_type="multipart/form-data"
    )
    assert_error(response, 400, "/file")
    assert_error(as_["wang"].post("/account/import", json={"name": "Acme"}), 400)


def test_a_body_above_the_limit_is_413(db_url, tmp_path, example_doc):
    app = _app(db_url, tmp_path, example_doc, max_request_mb=0.01)
    caller = callers(app)["wang"]
    content = "Name\n" + "\n".join(f"Account {n:05}" for n in range(2000))
    response = upload(caller, "account", content)
    assert_error(response, 413)
    assert "0.01 MB" in response.get_json()["errors"][0]["message"]
    response = caller.post("/account/import", data=content.encode(), content_type="text/csv")
    assert_error(response, 413)
    finish(caller, started(upload(caller, "account", "Name\nAcme")))
    app.extensions["crm"].engine.dispose()


# --- progress ----------------------------------------------------------------------


def test_rows_read_grows_while_a_larger_file_imports(as_, monkeypatch):
    # Batches (and so progress reports) of 500 rows, as the job writes its progress.
    monkeypatch.setattr(importing, "BATCH_SIZE", 500)
    content = "Name,Value tier,Annual revenue\n" + "\n".join(
        f"Account {n:05},{'ABC'[n % 3]},{n * 10}.50" for n in range(5000)
    )
    job, seen = finish(as_["wang"], started(upload(as_["wang"], "account", content)))
    assert job["status"] == "done", job
    assert (job["rows_read"], job["rows_imported"]) == (5000, 5000)
    read = [answer["rows_read"] for answer in seen]
    assert read == sorted(read)
    assert {n for n in read if 0 < n < 5000} <= set(range(500, 5000, 500))
    assert any(0 < n < 5000 for n in read), read
    assert all(answer["status"] == "running" for answer in seen if 0 < answer["rows_read"] < 5000)
    assert total(as_["wang"], "account") == 5000


def test_a_running_job_that_went_silent_is_stale(as_, engine):
    location = started(upload(as_["wang"], "account", "Name\nAcme"))
    job, _ = finish(as_["wang"], location)
    assert job["stale"] is False
    with engine.begin() as conn:
        moment = conn.execute(select(jobs_table.c.finished_at)).scalar()
        conn.execute(
            update(jobs_table).values(
                status="running", finished_at=None, heartbeat_at=moment.replace(year=2020)
            )
        )
    job = as_["wang"].get(location).get_json()
    assert (job["status"], job["stale"]) == ("running", True)


def test_a_big_file_is_read_ahead_by_a_process_forked_from_the_job(as_, acme, monkeypatch):
    from records import read_ahead

    # Every file counts as big, and batches are small: the job's thread forks a child
    # that reads while the job writes, through several batches, rejects included.
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0)
    monkeypatch.setattr(importing, "BATCH_SIZE", 4)
    rows = [
        f"Person {n},Acme,p{n}@example.com,{'fax' if n % 7 == 3 else 'email'}" for n in range(30)
    ]
    response = upload(as_["wang"], "contact", CONTACTS + "\n".join(rows), skip_invalid="1")
    job, _ = finish(as_["wang"], started(response))
    assert job["status"] == "done", job
    assert (job["rows_read"], job["rows_imported"], job["rows_rejected"]) == (30, 26, 4)
    assert [e["path"] for e in job["errors"]] == [
        f"/rows/{n + 2}/preferred_channel" for n in range(30) if n % 7 == 3
    ]
    assert total(as_["wang"], "contact") == 26
    assert multiprocessing.active_children() == []
