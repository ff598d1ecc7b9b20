"""Files: uploads stored under the instance folder, attached to records by id.

An upload is checked against its field (``accept`` MIME patterns,
``max_size_mb``) and stored before any record exists; saving a record claims
the files it names. Only the uploader may attach an unclaimed file, and a file
is served only to users who may read the record it belongs to. The client's
name for a file is kept as its display name, never as a path.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, insert, select, update

from metamodel.errors import NotFound, Problem
from metamodel.messages import Message
from metamodel.model import FieldModel
from metamodel.sqltypes import UTC
from metamodel.system_tables import files

from .actor import Actor
from .errors import ValidationFailed

DEFAULT_MAX_MB = 20
CHUNK = 1 << 16


@dataclass(frozen=True)
class StoredFile:
    id: int
    name: str
    mime: str
    size: int
    path: Path

    def descriptor(self) -> dict:
        return {"id": self.id, "name": self.name, "mime": self.mime, "size": self.size}


def accepts(fld: FieldModel, mime: str, name: str) -> bool:
    patterns = fld.doc.get("accept")
    if fld.type_name == "signature":
        patterns = ["image/png"]
    if not patterns:
        return True
    suffix = Path(name).suffix.lower()
    return any(fnmatch.fnmatch(mime, p) if "/" in p else suffix == p for p in patterns)


def save_upload(
    conn: Connection,
    root: Path,
    fld: FieldModel,
    actor: Actor,
    stream: BinaryIO,
    name: str,
    mime: str,
) -> StoredFile:
    """Store an upload for ``fld`` and return it; refuses a type or size the field does not take."""
    pointer = f"/{fld.name}"
    display = Path(name or "file").name[:255] or "file"
    mime = (mime or "application/octet-stream").split(";")[0].strip().lower()
    if not accepts(fld, mime, display):
        allowed = ", ".join(fld.doc.get("accept", ["image/png"]))
        raise ValidationFailed(
            [
                Problem(
                    pointer,
                    Message(
                        "'{file}' is {mime}; this field takes {allowed}",
                        file=display,
                        mime=mime,
                        allowed=allowed,
                    ),
                )
            ]
        )
    limit = int(float(fld.doc.get("max_size_mb", DEFAULT_MAX_MB)) * 1024 * 1024)
    today = dt.datetime.now(UTC)
    relative = Path(f"{today:%Y/%m}") / uuid.uuid4().hex
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with target.open("wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed(
                        [
                            Problem(
                                pointer,
                                Message(
                                    "'{file}' is larger than {limit} MB",
                                    file=display,
                                    limit=limit // (1024 * 1024),
                                ),
                            )
                        ]
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    app, entity = fld.entity.app.name, fld.entity.name
    file_id = conn.execute(
        insert(files)
        .values(
            app=app,
            entity=entity,
            field=fld.name,
            name=display,
            mime=mime,
            size=size,
            sha256=digest.hexdigest(),
            path=str(relative),
            created_by=actor.id,
            created_at=today,
        )
        .returning(files.c.id)
    ).scalar_one()
    return StoredFile(file_id, display, mime, size, target)


def claim(
    conn: Connection,
    fld: FieldModel,
    actor: Actor,
    value: list,
    record_id: int | None,
    pointer: str,
) -> list[dict]:
    """The descriptors of the files ``value`` names, checked; raises ValidationFailed."""
    wanted = []
    for item in value:
        file_id = item.get("id") if isinstance(item, dict) else item
        if not isinstance(file_id, int) or isinstance(file_id, bool):
            raise ValidationFailed(
                [Problem(pointer, Message("name files by the id their upload returned"))]
            )
        wanted.append(file_id)
    if not fld.doc.get("multiple") and len(wanted) > 1 and fld.type_name == "file":
        raise ValidationFailed([Problem(pointer, Message("this field holds one file"))])
    rows = {row.id: row for row in conn.execute(select(files).where(files.c.id.in_(wanted)))}
    descriptors = []
    for file_id in wanted:
        row = rows.get(file_id)
        mine = row is not None and (
            (row.record_id is None and row.created_by == actor.id)
            or (row.record_id == record_id and record_id is not None)
        )
        if (
            row is None
            or not mine
            or (row.app, row.entity, row.field) != (fld.entity.app.name, fld.entity.name, fld.name)
        ):
            raise ValidationFailed(
                [
                    Problem(
                        pointer,
                        Message(
                            "there is no file {file_id} uploaded for this field", file_id=file_id
                        ),
                    )
                ]
            )
        descriptors.append({"id": row.id, "name": row.name, "mime": row.mime, "size": row.size})
    return descriptors


def attach(conn: Connection, descriptors: list[dict], record_id: int) -> None:
    ids = [d["id"] for d in descriptors]
    if ids:
        conn.execute(update(files).where(files.c.id.in_(ids)).values(record_id=record_id))


def find(
    conn: Connection, root: Path, file_id: int
) -> tuple[StoredFile, tuple[str, str, int | None]]:
    """A stored file and the (app, entity, record id) it belongs to."""
    row = conn.execute(select(files).where(files.c.id == file_id)).first()
    if row is None:
        raise NotFound(Message("there is no file {file_id}", file_id=file_id))
    stored = StoredFile(row.id, row.name, row.mime, row.size, root / row.path)
    return stored, (row.app, row.entity, row.record_id)
