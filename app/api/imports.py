"""Importing a CSV or XLSX file through the API, in the background, with progress.

``POST /records/{app}/{entity}/import`` takes the file (a multipart ``file``
part, or the body itself as ``text/csv`` with ``?filename=``), checks that the
caller may import and that the file reads, and answers 202 with the job; a
thread of this worker runs it (records/import_jobs.py). ``GET /imports/{id}``
shows how far it got, to its creator and to admins; ``/imports/{id}/rejects``
hands out the rows ``skip_invalid`` left out.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, send_file, url_for

from records import access, import_jobs

from ..runtime import runtime
from .auth import current_actor
from .errors import BadRequest
from .inputs import FALSE_WORDS, MAX_ID, TRUE_WORDS
from .records import entity_runtime

blueprint = Blueprint("imports", __name__)

# Under the instance folder: a folder per job holds its upload and rejects file.
FOLDER = "imports"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A body sent as the file itself: its type, and the name it gets without ?filename=.
RAW_TYPES = {"text/csv": "upload.csv", XLSX: "upload.xlsx"}
CHUNK = 1 << 16
JOB = f"/imports/<int(min=1, max={MAX_ID}):job_id>"


@blueprint.post("/records/<app>/<entity>/import")
def start_import(app: str, entity: str):
    actor = current_actor()
    access.require(actor, entity_runtime(app, entity).entity, "import")
    skip_invalid = _skip_invalid()
    root = Path(current_app.instance_path) / FOLDER
    incoming = root / f"incoming-{uuid.uuid4().hex}"
    incoming.mkdir(parents=True)
    crm = runtime()
    try:
        upload = _save_upload(incoming)
        import_jobs.check_upload(upload)
        job_id = import_jobs.create_job(
            crm.engine, actor, app, entity, upload, root=root, skip_invalid=skip_invalid
        )
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    import_jobs.start_job(crm.engine, crm.registry, job_id)
    with crm.engine.connect() as conn:
        job = import_jobs.read_job(conn, job_id)
    response = jsonify(job)
    response.status_code = 202
    response.headers["Location"] = url_for(".get_import", job_id=job_id)
    return response


@blueprint.get(JOB)
def get_import(job_id: int):
    with runtime().engine.connect() as conn:
        job = import_jobs.job_for(conn, current_actor(), job_id)
    response = jsonify(job)
    # Polled for progress: every answer must come from the database, not a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get(JOB + "/rejects")
def get_rejects(job_id: int):
    with runtime().engine.connect() as conn:
        path = import_jobs.rejects_file(conn, current_actor(), job_id)
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=path.name)


def _skip_invalid() -> bool:
    raw = request.args.get("skip_invalid")
    if raw is None and request.mimetype == "multipart/form-data":
        raw = request.form.get("skip_invalid")
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise BadRequest(f"'{raw}' is not a flag: use 1 or 0", "/skip_invalid")


def _save_upload(folder: Path) -> Path:
    """The file the request sends, saved in ``folder`` under the client's name for it."""
    kind = request.mimetype
    if kind == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            if "file" in request.form:
                raise BadRequest(
                    "the 'file' part has no file name: send it as a file (curl -F file=@data.csv)",
                    "/file",
                )
            raise BadRequest("the form has no 'file' part: send the file to import as 'file'")
        target = folder / import_jobs.upload_name(upload.filename)
        upload.save(target)
        return target
    if kind in RAW_TYPES:
        target = folder / import_jobs.upload_name(request.args.get("filename"), RAW_TYPES[kind])
        with open(target, "wb") as stream:
            shutil.copyfileobj(request.stream, stream, CHUNK)
        return target
    raise BadRequest(
        "send the file as multipart/form-data (a 'file' part), or as the request body "
        f"with Content-Type text/csv (or {XLSX}); got {kind or 'no Content-Type'}"
    )
