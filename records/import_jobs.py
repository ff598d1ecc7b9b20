"""Import jobs: a CSV or XLSX file imported in the background, its progress seen by every worker.

The API stores the upload and records a job (``create_job``: queued); a thread
of the same worker runs it (``start_job`` → ``run_job``: running, then done or
failed). The import itself is ``importing.import_file`` as the command line
runs it: one transaction, all or nothing unless ``skip_invalid`` (whose good
rows also commit together, at the end).

Workers share nothing but the database, so the job lives in ``crm_import_jobs``
and any worker answers ``read_job``. Progress (rows read, imported, rejected,
and a heartbeat) is written every ``PROGRESS_EVERY`` rows, and at least every
``HEARTBEAT_SECONDS``, outside the import's transaction:

- PostgreSQL: the job's row, on a connection of its own, committed at once.
- SQLite lets one connection write at a time, and the import is that writer
  until it commits, so progress goes to ``progress.json`` in the job's folder
  (replaced atomically). The workers of one SQLite database share a machine and
  so the instance folder; ``read_job`` lays the file over the row while the job
  runs. The outcome always goes to the row. The file stays with the job's
  upload: a worker whose transaction began while the job ran still reads the
  row as running after the job ended, and must find the progress it saw.

A job whose worker died stays ``running`` (or ``queued``); ``read_job`` reports
``stale: true`` once nothing was heard from it for ``STALE_AFTER``. Nothing
restarts it, on purpose: the dead worker's transaction was rolled back, so none
of the file went in, and the user can simply import it again. (Only a worker
dying in the instant between the import's commit and recording the outcome
leaves a stale job whose rows did go in; its audit entries name the file.)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from metamodel.db import is_sqlite
from metamodel.errors import CrmError, NotFound
from metamodel.pointer import escape
from metamodel.registry import Registry
from metamodel.sqltypes import UTC
from metamodel.system_tables import import_jobs, users

from . import importing
from .actor import Actor
from .errors import Forbidden
from .serialize import json_value
from .service import Records

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
PROGRESS_EVERY = 500
HEARTBEAT_SECONDS = 30
STALE_AFTER = dt.timedelta(minutes=5)
# The first errors kept with the job; error_count counts them all.
LISTED_ERRORS = 200
PROGRESS_FILE = "progress.json"
# Bytes of a stored file name: room left for ".rejects.csv" within a file system's 255.
MAX_NAME_BYTES = 200

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


# --- the upload ------------------------------------------------------------------------


def upload_name(name: str | None, default: str = "upload.csv") -> str:
    """The client's name for a file, safe as the last part of a path (never a path itself)."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if c.isprintable()).strip()
    text = text.encode("utf-8", "ignore").decode("utf-8")
    if text in ("", ".", ".."):
        return default
    suffix = Path(text).suffix
    if len(suffix.encode("utf-8")) > 20:
        suffix = ""
    stem = text[: len(text) - len(suffix)] if suffix else text
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def check_upload(path: Path) -> str:
    """The file's format (``csv`` or ``xlsx``) once its header reads; raises CrmError (422).

    Only what makes the file unreadable is refused here, before any job exists;
    whether its columns and rows fit the entity is the job's to report.
    """
    kind = importing.file_kind(path)
    with importing.open_source(path):
        pass
    return kind


def create_job(
    engine: Engine,
    actor: Actor,
    app: str,
    entity: str,
    upload: Path,
    *,
    root: Path,
    skip_invalid: bool = False,
    now: dt.datetime | None = None,
) -> int:
    """Record a queued job and move ``upload`` into its folder, ``root/<job id>/``."""
    now = now or _now()
    with engine.begin() as conn:
        job_id = conn.execute(
            insert(import_jobs).values(
                app=app,
                entity=entity,
                file_name=upload.name,
                format=importing.file_kind(upload),
                status=QUEUED,
                skip_invalid=skip_invalid,
                rows_read=0,
                rows_imported=0,
                rows_rejected=0,
                error_count=0,
                errors=[],
                created_by=actor.id,
                created_at=now,
            )
        ).inserted_primary_key[0]
        folder = root / str(job_id)
        # The id is new to this database: a folder by that name is left over from a
        # database since reset, and nothing refers to it.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        target = folder / upload.name
        upload.replace(target)
        conn.execute(
            update(import_jobs).where(import_jobs.c.id == job_id).values(file_path=str(target))
        )
    return job_id


# --- running ---------------------------------------------------------------------------


# The threads of this process running jobs, for ``wait_for_jobs``.
_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


def start_job(
    engine: Engine, registry: Registry, job_id: int, *, every: int = PROGRESS_EVERY
) -> threading.Thread:
    """Run the job in a thread of this process; the thread is returned, already started.

    Not a daemon: a worker shutting down normally lets its imports finish.
    """
    thread = threading.Thread(
        target=_run_logged, args=(engine, registry, job_id, every), name=f"crm-import-{job_id}"
    )
    with _running_lock:
        _running.add(thread)
    thread.start()
    return thread


def wait_for_jobs(timeout: float | None = None) -> bool:
    """Wait until the jobs this process started have ended; False if some still run."""
    with _running_lock:
        threads = list(_running)
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _run_logged(engine: Engine, registry: Registry, job_id: int, every: int) -> None:
    # Nothing is above a background thread to hear an error: log it, never lose it.
    try:
        run_job(engine, registry, job_id, every=every)
    except Exception:
        log.exception("import job %s could not be run or recorded", job_id)
    finally:
        with _running_lock:
            _running.discard(threading.current_thread())


def run_job(
    engine: Engine,
    registry: Registry,
    job_id: int,
    *,
    every: int = PROGRESS_EVERY,
    clock=_now,
) -> dict[str, Any] | None:
    """Run a queued job to its end and return it as ``read_job`` does.

    None when the job is not queued (another run has it, or it ran already).
    """
    started = clock()
    with engine.begin() as conn:
        claimed = conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job_id, import_jobs.c.status == QUEUED)
            .values(status=RUNNING, started_at=started, heartbeat_at=started)
        ).rowcount
        job = conn.execute(select(import_jobs).where(import_jobs.c.id == job_id)).first()
    if not claimed:
        return None
    upload = Path(job.file_path)
    progress = Progress(engine, job_id, upload.parent, every=every, clock=clock)
    outcome = _import(engine, registry, job, upload, progress, clock)
    with engine.begin() as conn:
        finished = clock()
        conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job_id)
            .values(**outcome, finished_at=finished, heartbeat_at=finished)
        )
        return read_job(conn, job_id, now=finished)


def _import(engine, registry, job, upload: Path, progress: Progress, clock) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            actor = _actor(conn, job.created_by)
        result = importing.import_file(
            Records(engine, registry, clock=clock),
            actor,
            job.app,
            job.entity,
            upload,
            skip_invalid=job.skip_invalid,
            rejects_path=importing.default_rejects_path(upload),
            progress=progress.report,
        )
    except importing.ImportRefused as refused:
        return _outcome(FAILED, refused.result, refused.message)
    except CrmError as error:
        return {
            **progress.counts(imported=0),
            "status": FAILED,
            "message": error.message,
            "error_count": len(error.problems),
            "errors": [p.as_dict() for p in error.problems[:LISTED_ERRORS]],
        }
    except Exception:
        log.exception("import job %s failed", job.id)
        return {
            **progress.counts(imported=0),
            "status": FAILED,
            "message": "the import failed unexpectedly and nothing was imported; "
            "the error has been logged for the administrator",
            "error_count": 0,
            "errors": [],
        }
    return _outcome(DONE, result, _summary(result))


def _actor(conn: Connection, user_id: int | None) -> Actor:
    row = conn.execute(
        select(users.c.id, users.c.username, users.c.roles, users.c.active).where(
            users.c.id == user_id
        )
    ).first()
    if row is None or not row.active:
        raise Forbidden("the user who started this import is no longer active")
    return Actor(row.id, row.username, frozenset(row.roles or ()))


def _outcome(status: str, result: importing.ImportResult, message: str | None) -> dict[str, Any]:
    return {
        "status": status,
        "rows_read": result.rows,
        "rows_imported": result.imported,
        "rows_rejected": result.rejected,
        "error_count": result.error_count,
        "errors": [row_problem(e) for e in result.errors[:LISTED_ERRORS]],
        "message": message,
        "rejects_path": result.rejects_path,
    }


def row_problem(error: importing.RowError) -> dict[str, Any]:
    """A bad cell as the API's problems are: a JSON Pointer to row and column, and more."""
    path = f"/rows/{error.row}" + (f"/{escape(error.column)}" if error.column else "")
    return {"path": path, "row": error.row, "column": error.column, "message": error.message}


def _summary(result: importing.ImportResult) -> str:
    text = f"imported {result.imported:,} of {result.rows:,} rows"
    if result.rejected:
        text += f"; {result.rejected:,} rejected, written to the rejects file"
    for column, why in result.ignored_columns:
        text += f"; ignored column {column}: {why}"
    return text


class Progress:
    """How far a running job got, written where other workers read it (see the module's doc)."""

    def __init__(self, engine: Engine, job_id: int, folder: Path, *, every: int, clock):
        self.engine = engine
        self.job_id = job_id
        self.file = folder / PROGRESS_FILE if is_sqlite(engine) else None
        self.every = max(1, every)
        self.clock = clock
        self.sent_rows = 0
        self.sent_at = clock()
        self.last: dict[str, int] = {"rows_read": 0, "rows_imported": 0, "rows_rejected": 0}

    def report(self, result: importing.ImportResult) -> None:
        """The import's progress callback: called after each batch with the result so far."""
        self.last = {
            "rows_read": result.rows,
            "rows_imported": result.imported,
            "rows_rejected": result.rejected,
        }
        now = self.clock()
        due = now - self.sent_at >= dt.timedelta(seconds=HEARTBEAT_SECONDS)
        if result.rows - self.sent_rows < self.every and not due:
            return
        # Progress is a courtesy to whoever watches: failing to write it must not
        # stop the import.
        try:
            self._write({**self.last, "heartbeat_at": now})
        except (SQLAlchemyError, OSError):
            log.warning("import job %s: progress not recorded", self.job_id, exc_info=True)
        self.sent_rows, self.sent_at = result.rows, now

    def counts(self, *, imported: int | None = None) -> dict[str, int]:
        counts = dict(self.last)
        if imported is not None:
            counts["rows_imported"] = imported
        return counts

    def _write(self, values: dict[str, Any]) -> None:
        if self.file is None:
            with self.engine.begin() as conn:
                conn.execute(
                    update(import_jobs).where(import_jobs.c.id == self.job_id).values(**values)
                )
            return
        part = self.file.with_suffix(".part")
        part.write_text(json.dumps(json_value(values)), encoding="utf-8")
        os.replace(part, self.file)


def _file_progress(folder: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((folder / PROGRESS_FILE).read_text(encoding="utf-8"))
        found["heartbeat_at"] = dt.datetime.fromisoformat(found["heartbeat_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found


# --- reading ---------------------------------------------------------------------------


def read_job(conn: Connection, job_id: int, *, now: dt.datetime | None = None) -> dict | None:
    """The job as the API shows it, with ``stale``; None when there is no such job."""
    row = conn.execute(select(import_jobs).where(import_jobs.c.id == job_id)).first()
    if row is None:
        return None
    job = dict(row._mapping)
    if job["status"] == RUNNING and is_sqlite(conn) and job["file_path"]:
        found = _file_progress(Path(job["file_path"]).parent)
        if found is not None and found["heartbeat_at"] > _aware(job["heartbeat_at"]):
            job.update(found)
    heard = _aware(job["heartbeat_at"] or job["created_at"])
    silent = (now or _now()) - heard > STALE_AFTER
    job["stale"] = job["status"] in (QUEUED, RUNNING) and silent
    job["has_rejects"] = bool(job.pop("rejects_path"))
    job.pop("file_path")
    return json_value(job)


def job_for(conn: Connection, actor: Actor, job_id: int) -> dict:
    """The job, if ``actor`` may see it: its creator or an admin (403 otherwise, 404 unknown)."""
    job = read_job(conn, job_id)
    if job is None:
        raise NotFound(f"there is no import {job_id}")
    if not actor.is_admin and job["created_by"] != actor.id:
        raise Forbidden(f"import {job_id} was started by someone else; only they may see it")
    return job


def rejects_file(conn: Connection, actor: Actor, job_id: int) -> Path:
    """The rejects file of the job (as ``job_for`` allows); NotFound when it has none."""
    job_for(conn, actor, job_id)
    path = conn.execute(
        select(import_jobs.c.rejects_path).where(import_jobs.c.id == job_id)
    ).scalar()
    if not path or not Path(path).is_file():
        raise NotFound(f"import {job_id} has no rejects file")
    return Path(path)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
