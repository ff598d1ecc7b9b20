"""Exporting records to CSV or XLSX, a page at a time, so any table fits.

Records are read by keyset pages (``id > last``, ordered by id) through the
same visibility query the listing uses, so an export holds exactly what the
actor may read. The header is the fields' labels in the chosen language (or
their names); references are written as the target's title, users as their
username, multiselect values joined with ``;``, decimals exactly. CSV is UTF-8
with a BOM so Excel shows Chinese correctly; XLSX is written in openpyxl's
write-only mode. An exported file imports again (``importing.py``): computed
columns are recognised and skipped there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from metamodel.errors import CrmError
from metamodel.model import FieldModel
from metamodel.sqltypes import UTC
from metamodel.system_tables import users
from metamodel.text import localise

from . import access
from .actor import Actor
from .query import compile_rule, search_condition, visible
from .serialize import json_value

PAGE_SIZE = 1000
NOT_EXPORTED = {"child_table", "file", "signature"}
# Excel keeps 15 significant digits; longer decimals go out as text to stay exact.
EXCEL_DIGITS = 15
FORMATS = ("csv", "xlsx")


def format_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    raise CrmError(f"{Path(path).name}: cannot tell the format; use a .csv or .xlsx file")


def exported_fields(actor: Actor, runtime) -> list[FieldModel]:
    return [
        f
        for f in runtime.entity.fields.values()
        if f.type_name not in NOT_EXPORTED
        and (f.has_column or f.type_name == "multi_reference")
        and access.readable(actor, f)
    ]


def headers(fields: list[FieldModel], language: str, names: bool) -> list[str]:
    """Labels in ``language``; where a label would be read back as another field, the name."""
    if names:
        return [f.name for f in fields]
    labels = [localise(f.label, language).strip() or f.name for f in fields]
    folded = [label.casefold() for label in labels]
    field_names = (
        {f.name.casefold(): f.name for f in fields[0].entity.fields.values()} if fields else {}
    )
    return [
        f.name if folded.count(key) > 1 or field_names.get(key, f.name) != f.name else label
        for f, label, key in zip(fields, labels, folded, strict=True)
    ]


class _Titles:
    """Titles of referenced records, fetched per page for the ids the page names."""

    def __init__(self, records, fld: FieldModel):
        if fld.type_name == "user":
            self.table, self.column = users, users.c.username
        else:
            # A lookup of a reference holds the same ids as the reference it copies.
            target = fld.entity.app.resolve_entity(fld.value_spec["target"])
            self.table = records.tables_for(target)
            title = target.fields.get(target.title_field or "")
            self.column = (
                self.table.c[title.name] if title is not None and title.has_column else None
            )
        self.cache: dict[int, Any] = {}

    def fetch(self, conn, ids: set[int]) -> None:
        self.cache = {}
        if self.column is None or not ids:
            return
        wanted = sorted(ids)
        for start in range(0, len(wanted), 500):
            query = select(self.table.c.id, self.column).where(
                self.table.c.id.in_(wanted[start : start + 500])
            )
            self.cache.update(conn.execute(query).all())

    def title(self, record_id: int | None) -> Any:
        if record_id is None:
            return None
        if self.column is None:
            return record_id
        return self.cache.get(record_id, record_id)


def _text(value: Any) -> str:
    """A value as CSV text: exact decimals, ISO dates, UTC datetimes with Z."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date):
        return json_value(value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _cell(value: Any) -> Any:
    """A value as an XLSX cell: numbers, booleans and dates native, long decimals as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        digits = len(value.as_tuple().digits)
        return value if digits <= EXCEL_DIGITS else format(value, "f")
    if isinstance(value, dt.datetime):
        stamp = value.astimezone(UTC) if value.tzinfo else value
        return stamp.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return value
    return _text(value)


class _Writer:
    def __init__(self, target: str | Path | IO, fmt: str, header: list[str]):
        self.fmt = fmt
        self.owned: IO | None = None
        if fmt == "csv":
            if isinstance(target, str | Path):
                stream = self.owned = open(target, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            elif isinstance(target, io.TextIOBase):
                stream = target
                stream.write("\ufeff")
            else:
                stream = io.TextIOWrapper(target, encoding="utf-8-sig", newline="")
                self.wrapper = stream
            self.stream = stream
            self.csv = csv.writer(stream)
            self.csv.writerow(header)
        else:
            from openpyxl import Workbook

            self.target = target
            self.book = Workbook(write_only=True)
            self.sheet = self.book.create_sheet()
            self.sheet.append(header)

    def write(self, values: list[Any]) -> None:
        if self.fmt == "csv":
            self.csv.writerow([_text(v) for v in values])
        else:
            self.sheet.append([_cell(v) for v in values])

    def close(self) -> None:
        if self.fmt == "csv":
            self.stream.flush()
            if hasattr(self, "wrapper"):
                self.wrapper.detach()
            if self.owned is not None:
                self.owned.close()
        else:
            self.book.save(self.target)


def export_file(
    records,
    actor: Actor,
    app: str,
    entity: str,
    path_or_stream: str | Path | IO,
    *,
    fmt: str | None = None,
    filter: Any = None,
    q: str | None = None,
    language: str = "en",
    names: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the ``entity`` records ``actor`` may read (matching ``filter`` and the search
    ``q``, as a list page finds them); the row count.

    ``fmt`` is ``csv`` or ``xlsx``; by default the file name's extension decides
    (a stream without one is CSV). Needs the ``export`` permission.
    """
    if fmt is None:
        fmt = format_of(path_or_stream) if isinstance(path_or_stream, str | Path) else "csv"
    if fmt not in FORMATS:
        raise CrmError(f"'{fmt}' is not an export format: use csv or xlsx", "/format")
    with records.reading() as conn:
        runtime = records.runtime(app, entity, conn)
        access.require(actor, runtime.entity, "export")
        context = records.context(actor)
        query = visible(actor, runtime, records.tables_for, context)
        if filter is not None:
            query = query.where(
                compile_rule(filter, runtime, records.tables_for, context, "/filter")
            )
        if q:
            query = query.where(search_condition(conn, runtime, q, actor))
        fields = exported_fields(actor, runtime)
        titles = {
            f.name: _Titles(records, f)
            for f in fields
            if f.value_spec["type"] in ("reference", "user", "multi_reference")
        }
        writer = _Writer(path_or_stream, fmt, headers(fields, language, names))
        count = 0
        try:
            for page in _pages(conn, runtime, query):
                links = records._links(conn, runtime, [r["id"] for r in page])
                for name, resolver in titles.items():
                    if name in links:
                        ids = {t for targets in links[name].values() for t in targets}
                    else:
                        ids = {r[name] for r in page if r.get(name) is not None}
                    resolver.fetch(conn, ids)
                for record in page:
                    writer.write([_value(f, record, links, titles) for f in fields])
                count += len(page)
                if progress is not None:
                    progress(count)
        finally:
            writer.close()
        return count


def _pages(conn, runtime, query) -> Iterator[list[dict]]:
    table = runtime.table
    last = 0
    while True:
        rows = conn.execute(
            query.where(table.c.id > last).order_by(table.c.id).limit(PAGE_SIZE)
        ).mappings()
        page = [dict(row) for row in rows]
        if not page:
            return
        yield page
        last = page[-1]["id"]


def _value(fld: FieldModel, record: dict, links: dict, titles: dict[str, _Titles]) -> Any:
    kind = fld.value_spec["type"]
    if kind == "multi_reference":
        resolver = titles[fld.name]
        return ";".join(_text(resolver.title(t)) for t in links[fld.name][record["id"]])
    value = record.get(fld.name)
    if value is None:
        return None
    if fld.name in titles:
        return titles[fld.name].title(value)
    if kind == "multiselect":
        return ";".join(str(v) for v in value)
    return value
