"""Import jobs (records/import_jobs.py) on the database under test: no Flask, no HTTP.

The sales_pipeline example; wang (sales_manager) is given the import permission
on accounts.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from metamodel.errors import CrmError, NotFound
from metamodel.system_tables import import_jobs as jobs_table
from metamodel.system_tables import users as users_table
from records import import_jobs, importing
from records.errors import Forbidden

from .conftest import APP


@pytest.fixture
def example_doc(example_doc):
    for entity in example_doc["entities"]:
        if entity["name"] == "account":
            entity["permissions"]["sales_manager"].append("import")
    return example_doc


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "imports"


def job_from(engine, records, users, root, tmp_path, content: str, *, name="accounts.csv", **kw):
    """A queued job for a file of ``content``, started by wang."""
    incoming = tmp_path / "incoming"
    incoming.mkdir(exist_ok=True)
    upload = incoming / name
    upload.write_text(content, encoding="utf-8")
    actor = kw.pop("actor", users["wang"])
    return import_jobs.create_job(engine, actor, APP, "account", upload, root=root, **kw)


def accounts_in(records) -> int:
    table = records.registry.table(APP, "account")
    with records.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def read(engine, job_id, **kw):
    with engine.connect() as conn:
        return import_jobs.read_job(conn, job_id, **kw)


# --- names and uploads -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("客户.csv", "客户.csv"),
        ("../../etc/passwd.csv", "passwd.csv"),
        ("C:\\Users\\li\\deals.xlsx", "deals.xlsx"),
        ("bad\x00name\n.csv", "badname.csv"),
        ("..", "upload.csv"),
        ("", "upload.csv"),
        (None, "upload.csv"),
        ("名" * 300 + ".csv", "名" * 65 + ".csv"),
    ],
)
def test_upload_names_are_the_last_part_of_a_path_and_short(given, kept):
    assert import_jobs.upload_name(given) == kept


def test_check_upload_tells_the_format_or_why_the_file_does_not_read(tmp_path):
    good = tmp_path / "a.csv"
    good.write_text("Name\nAcme\n", encoding="utf-8")
    assert import_jobs.check_upload(good) == "csv"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(CrmError, match=r"empty\.csv: the file is empty"):
        import_jobs.check_upload(empty)
    broken = tmp_path / "b.xlsx"
    broken.write_bytes(b"PK but not really")
    with pytest.raises(CrmError, match=r"is not a readable \.xlsx file"):
        import_jobs.check_upload(broken)


def test_create_job_queues_it_and_moves_the_file_into_its_folder(
    engine, records, users, root, tmp_path
):
    (root / "1").mkdir(parents=True)
    (root / "1" / "left_over.csv").write_text("from a database since reset")
    job_id = job_from(engine, records, users, root, tmp_path, "Name\nAcme\n")
    assert sorted(p.name for p in (root / str(job_id)).iterdir()) == ["accounts.csv"]
    assert not (tmp_path / "incoming" / "accounts.csv").exists()
    job = read(engine, job_id)
    assert job["status"] == "queued" and job["format"] == "csv"
    assert job["created_by"] == users["wang"].id and job["stale"] is False
    assert "file_path" not in job and "rejects_path" not in job
    assert (job["rows_read"], job["rows_imported"], job["errors"]) == (0, 0, [])


# --- running -----------------------------------------------------------------------


def test_run_job_imports_and_records_the_outcome(engine, records, users, root, tmp_path):
    content = "Name,Value tier,Code\nAcme,A,X\nNorthwind,B,Y\n"
    job_id = job_from(engine, records, users, root, tmp_path, content)
    job = import_jobs.run_job(engine, records.registry, job_id)
    assert job["status"] == "done"
    assert (job["rows_read"], job["rows_imported"], job["rows_rejected"]) == (2, 2, 0)
    assert job["message"] == (
        "imported 2 of 2 rows; ignored column Code: is computed; its values are not imported"
    )
    assert job["started_at"] <= job["finished_at"] and job["stale"] is False
    assert read(engine, job_id) == job
    assert accounts_in(records) == 2
    # A job runs once: a second run (another worker, say) finds it taken.
    assert import_jobs.run_job(engine, records.registry, job_id) is None
    assert accounts_in(records) == 2


def test_a_bad_row_fails_the_job_and_imports_nothing(engine, records, users, root, tmp_path):
    content = "Name,Value tier,Website\nAcme,A,\nBad,Z,\n,B,ftp://x\n"
    job_id = job_from(engine, records, users, root, tmp_path, content)
    job = import_jobs.run_job(engine, records.registry, job_id)
    assert job["status"] == "failed" and job["rows_imported"] == 0
    assert [(e["path"], e["row"], e["column"]) for e in job["errors"]] == [
        ("/rows/3/Value tier", 3, "Value tier"),
        ("/rows/4/Name", 4, "Name"),
        ("/rows/4/Website", 4, "Website"),
    ]
    assert job["error_count"] == 3 and job["has_rejects"] is False
    assert job["message"] == "nothing was imported: 3 errors in 2 of 3 rows"
    assert accounts_in(records) == 0


def test_skip_invalid_keeps_the_rejects_for_the_creator_and_admins(
    engine, records, users, root, tmp_path
):
    content = "Name,Value tier\nAcme,A\nBad,Z\n"
    job_id = job_from(engine, records, users, root, tmp_path, content, skip_invalid=True)
    job = import_jobs.run_job(engine, records.registry, job_id)
    assert (job["status"], job["rows_imported"], job["rows_rejected"]) == ("done", 1, 1)
    assert job["has_rejects"] is True
    with engine.connect() as conn:
        path = import_jobs.rejects_file(conn, users["wang"], job_id)
        assert path == root / str(job_id) / "accounts.rejects.csv"
        assert (
            path.read_text(encoding="utf-8-sig").splitlines()[1].startswith('Bad,Z,"Value tier: ')
        )
        assert import_jobs.rejects_file(conn, users["admin"], job_id) == path
        with pytest.raises(Forbidden, match="started by someone else"):
            import_jobs.rejects_file(conn, users["li"], job_id)
        with pytest.raises(Forbidden):
            import_jobs.job_for(conn, users["li"], job_id)
        with pytest.raises(NotFound, match="no import 999"):
            import_jobs.job_for(conn, users["admin"], 999)
    job_id = job_from(engine, records, users, root, tmp_path, "Name\nGood\n", skip_invalid=True)
    import_jobs.run_job(engine, records.registry, job_id)
    with engine.connect() as conn, pytest.raises(NotFound, match="has no rejects file"):
        import_jobs.rejects_file(conn, users["wang"], job_id)


def test_a_creator_who_lost_the_permission_or_left_gets_a_failed_job(
    engine, records, users, root, tmp_path
):
    job_id = job_from(engine, records, users, root, tmp_path, "Name\nA\n", actor=users["li"])
    job = import_jobs.run_job(engine, records.registry, job_id)
    assert (job["status"], job["message"]) == ("failed", "you may not import account")
    assert job["errors"] == [{"path": "", "message": "you may not import account"}]
    job_id = job_from(engine, records, users, root, tmp_path, "Name\nA\n")
    with engine.begin() as conn:
        conn.execute(update(users_table).where(users_table.c.username == "wang").values(active=0))
    job = import_jobs.run_job(engine, records.registry, job_id)
    assert job["status"] == "failed" and "no longer active" in job["message"]
    assert accounts_in(records) == 0


def test_an_unexpected_error_fails_the_job_and_is_logged(
    engine, records, users, root, tmp_path, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(importing, "import_file", broken)
    job_id = job_from(engine, records, users, root, tmp_path, "Name\nA\n")
    with caplog.at_level(logging.ERROR, logger="records.import_jobs"):
        job = import_jobs.run_job(engine, records.registry, job_id)
    assert job["status"] == "failed" and "failed unexpectedly" in job["message"]
    assert "disk on fire" in caplog.text


def test_progress_is_seen_by_other_connections_while_the_import_transaction_is_open(
    engine, records, users, root, tmp_path, monkeypatch
):
    monkeypatch.setattr(importing, "BATCH_SIZE", 500)
    content = "Name\n" + "".join(f"Account {n}\n" for n in range(2000))
    job_id = job_from(engine, records, users, root, tmp_path, content)
    seen = []
    report = import_jobs.Progress.report

    def watched(progress, result):
        report(progress, result)
        # From another connection, as another worker would look.
        job = read(engine, job_id)
        seen.append((job["status"], job["rows_read"], job["rows_imported"], accounts_in(records)))

    monkeypatch.setattr(import_jobs.Progress, "report", watched)
    job = import_jobs.run_job(engine, records.registry, job_id, every=500)
    # The rows are counted as they go in, and committed only at the end. On
    # PostgreSQL a batch is written while the next is read (records.write_behind),
    # so the count of rows in trails the rows read by that one batch.
    behind = 500 if engine.dialect.name == "postgresql" else 0
    assert seen == [("running", n, n - behind, 0) for n in (500, 1000, 1500, 2000)]
    assert (job["status"], job["rows_imported"], accounts_in(records)) == ("done", 2000, 2000)


def test_a_reader_that_saw_the_job_running_never_sees_its_counts_go_back(
    engine, records, users, root, tmp_path, monkeypatch
):
    """A worker whose transaction began while the job ran still reads it as running
    after the job ended: it must read the progress it saw, not the row's zeros."""
    monkeypatch.setattr(importing, "BATCH_SIZE", 2)
    content = "Name\n" + "".join(f"Account {n}\n" for n in range(6))
    job_id = job_from(engine, records, users, root, tmp_path, content)
    report = import_jobs.Progress.report
    with engine.connect() as reader:
        seen = []

        def watched(progress, result):
            report(progress, result)
            if not seen:  # the reader's transaction begins with the first progress
                seen.append(import_jobs.read_job(reader, job_id))

        monkeypatch.setattr(import_jobs.Progress, "report", watched)
        done = import_jobs.run_job(engine, records.registry, job_id, every=1)
        after = import_jobs.read_job(reader, job_id)
    assert (seen[0]["status"], seen[0]["rows_read"]) == ("running", 2)
    assert after["rows_read"] >= 2 and after["status"] in ("running", "done")
    assert (done["status"], done["rows_read"]) == ("done", 6)
    assert read(engine, job_id) == done


def test_progress_is_written_every_so_many_rows_or_when_the_heartbeat_is_due(
    engine, records, users, root, tmp_path, monkeypatch
):
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    content = "Name\n" + "".join(f"Account {n}\n" for n in range(500))
    written = []
    write = import_jobs.Progress._write
    monkeypatch.setattr(
        import_jobs.Progress,
        "_write",
        lambda progress, values: (written.append(values["rows_read"]), write(progress, values)),
    )
    job_id = job_from(engine, records, users, root, tmp_path, content)
    import_jobs.run_job(engine, records.registry, job_id, every=250)
    # After 300 rows (250 since the last write), then not again: the outcome has the rest.
    assert written == [300]

    written.clear()
    start = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC)
    ticks = iter(range(10_000))

    def clock():
        # Each reading of the clock is a minute later: every report finds the heartbeat due.
        return start + dt.timedelta(minutes=next(ticks))

    job_id = job_from(engine, records, users, root, tmp_path, content.replace("Acc", "Bcc"))
    job = import_jobs.run_job(engine, records.registry, job_id, every=10**9, clock=clock)
    assert written == [100, 200, 300, 400, 500]
    assert job["status"] == "done"


def test_a_job_silent_for_minutes_is_stale(engine, records, users, root, tmp_path):
    job_id = job_from(engine, records, users, root, tmp_path, "Name\nA\n")
    created = read(engine, job_id)["created_at"]
    created_at = dt.datetime.fromisoformat(created)
    assert read(engine, job_id, now=created_at + dt.timedelta(minutes=1))["stale"] is False
    assert read(engine, job_id, now=created_at + dt.timedelta(minutes=6))["stale"] is True
    beat = created_at + dt.timedelta(minutes=10)
    with engine.begin() as conn:
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(status="running", heartbeat_at=beat)
        )
    assert read(engine, job_id, now=beat + dt.timedelta(minutes=4))["stale"] is False
    assert read(engine, job_id, now=beat + dt.timedelta(minutes=5, seconds=1))["stale"] is True
    with engine.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(status="done"))
    assert read(engine, job_id, now=beat + dt.timedelta(days=9))["stale"] is False


def test_start_job_runs_it_in_a_thread(engine, records, users, root, tmp_path):
    job_id = job_from(engine, records, users, root, tmp_path, "Name\nAcme\n")
    thread = import_jobs.start_job(engine, records.registry, job_id)
    assert thread.name == f"crm-import-{job_id}" and not thread.daemon
    assert import_jobs.wait_for_jobs(timeout=60)
    assert read(engine, job_id)["status"] == "done"
    assert accounts_in(records) == 1
