"""Importing records from CSV and XLSX files, row by row, every value checked.

``import_file`` reads a file as a stream (a million rows never sit in memory),
maps its header to fields (by name, or by the field's label in any language),
checks every cell with the field type's own ``coerce`` (the rules the API and the
forms apply), resolves references by the target's title field, and writes the
good rows in batches through ``bulk.py``: autonumbers, lookups and formulas per
row, an audit entry ("import") per record naming the file and row it came from,
and the rollups of parent records refreshed once per parent at the end.

Errors name the line of the file (the header is row 1) and the column as the
file heads it. By default an import is all or nothing: one bad row and nothing is
written (every error is reported, the first ``MAX_LISTED_ERRORS`` listed). With
``skip_invalid`` the good rows go in and the bad ones are written to a rejects
file: the original columns plus an ``error`` column, ready to be fixed and
imported again.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from metamodel import field_types
from metamodel.errors import CrmError, Problem
from metamodel.field_types import ValueProblem
from metamodel.model import FieldModel
from metamodel.system_tables import audit_log, users
from metamodel.text import humanise, localise
from metamodel.wording import did_you_mean, show

from . import access, bulk
from . import read_ahead as reading_ahead
from .actor import Actor
from .computed import computing, normalised_context, rollup_value
from .copy_text import copy_text
from .errors import Forbidden, ValidationFailed
from .rule_data import follow
from .runtime import EntityRuntime
from .serialize import SYSTEM_FIELDS
from .write_behind import WriteBehind

MAX_LISTED_ERRORS = 1000
BATCH_SIZE = 1000
# Ids of parent records whose rollups wait for the end of the import; past this
# many they are refreshed early, so the set never grows with the file.
PARENT_FLUSH = 100_000
# Titles and lookups remembered between batches; past this the cache starts over.
CACHE_LIMIT = 100_000
QUERY_CHUNK = 500
# New ids taken from PostgreSQL's sequences at a time, and audit entries written at a
# time: an import's writer waits on every round trip (see bulk.NewIds).
ID_BLOCK = 10_000
AUDIT_BLOCK = 10_000
IMPORT_PAGE_CACHE_KIB = 16 * 1024

SEPARATORS = re.compile(r"[;,、；，\n]")
SLASH_DATE = re.compile(r"^(\d{4})[/.\-年](\d{1,2})[/.\-月](\d{1,2})日?$")
SLASH_DATETIME = re.compile(
    r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?$"
)
GROUPED_NUMBER = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
CURRENCY_SIGNS = "¥￥$€£"
TEXTUAL = {"text", "long_text", "email", "phone", "url", "autonumber"}
NOT_IMPORTABLE = {
    "child_table": "is a child table: its rows cannot be imported from a flat file; "
    "import the records, then add their rows on the form or through the API",
    "file": "holds files, which cannot be imported from a flat file",
    "signature": "holds a signature, which cannot be imported from a flat file",
}
REJECTS_ERROR_COLUMN = "error"


# --- results and errors --------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """One bad cell: ``row`` is the line of the file (the header is row 1)."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}, column {self.column}" if self.column else f"row {self.row}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class ImportResult:
    imported: int = 0
    rejected: int = 0
    # The first MAX_LISTED_ERRORS errors; error_count counts them all.
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    rows: int = 0
    # Columns the file has that an import does not set: (column, why).
    ignored_columns: list[tuple[str, str]] = field(default_factory=list)
    rejects_path: str | None = None
    seconds: float = 0.0

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append(error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "rejected": self.rejected,
            "rows": self.rows,
            "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors],
            "ignored_columns": [{"column": c, "reason": r} for c, r in self.ignored_columns],
            "rejects_path": self.rejects_path,
        }


class ImportRefused(CrmError):
    """Nothing was imported: the header does not fit, or (all or nothing) some row is bad."""

    code = "import_refused"

    def __init__(self, result: ImportResult, message: str | None = None):
        self.result = result
        if message is None:
            plural = "s" if result.error_count != 1 else ""
            message = (
                f"nothing was imported: {result.error_count} error{plural} in "
                f"{result.rejected} of {result.rows} rows"
            )
        problems = [
            Problem(f"/rows/{e.row}/{_pointer_token(e.column)}", e.message) for e in result.errors
        ]
        super().__init__(message, problems=problems)


def _pointer_token(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


# --- reading files -------------------------------------------------------------------


@dataclass
class Source:
    header: list[str]
    # (line of the file, cells) for each row that is not entirely blank
    rows: Iterator[tuple[int, list[Any]]]


def file_kind(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix == ".xls":
        raise CrmError(
            f"{Path(path).name}: the old Excel format (.xls) is not supported; "
            "save the sheet as .xlsx or CSV"
        )
    raise CrmError(f"{Path(path).name}: cannot tell the format; use a .csv or .xlsx file")


def detect_encoding(path: str | Path) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else GB18030 (Chinese Excel)."""
    with open(path, "rb") as stream:
        head = stream.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        stream.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := stream.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


@contextmanager
def open_source(path: str | Path) -> Iterator[Source]:
    if file_kind(path) == "csv":
        with _csv_source(path) as source:
            yield source
    else:
        with _xlsx_source(path) as source:
            yield source


@contextmanager
def _csv_source(path) -> Iterator[Source]:
    encoding = detect_encoding(path)
    with open(path, encoding=encoding, newline="") as stream:
        try:
            first = stream.readline()
        except UnicodeDecodeError:
            raise CrmError(f"{Path(path).name}: is neither UTF-8 nor GB18030 text") from None
        stream.seek(0)
        delimiter = ","
        if "," not in first:
            delimiter = "\t" if "\t" in first else ";" if ";" in first else ","
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as error:
            raise CrmError(f"{Path(path).name}: cannot read the header: {error}") from None
        if header is None:
            raise CrmError(f"{Path(path).name}: the file is empty")

        def rows() -> Iterator[tuple[int, list[Any]]]:
            line = reader.line_num
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except (UnicodeDecodeError, csv.Error) as error:
                    raise CrmError(
                        f"{Path(path).name}, line {reader.line_num + 1}: cannot read: {error}"
                    ) from None
                start, line = line + 1, reader.line_num
                if any(cells) and any(cell.strip() for cell in cells):
                    yield start, cells

        yield Source([cell.strip() for cell in header], rows())


@contextmanager
def _xlsx_source(path) -> Iterator[Source]:
    import zipfile

    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise CrmError(f"{Path(path).name}: is not a readable .xlsx file ({error})") from None
    values = None
    try:
        sheet = workbook.active
        sheet.reset_dimensions()  # some writers record wrong dimensions; read every row
        values = sheet.iter_rows(values_only=True)
        first = next(values, None)
        if first is None:
            raise CrmError(f"{Path(path).name}: the first sheet is empty")
        header = ["" if c is None else str(c).strip() for c in first]
        while header and not header[-1]:
            header.pop()

        def rows() -> Iterator[tuple[int, list[Any]]]:
            for number, cells in enumerate(values, start=2):
                if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
                    yield number, list(cells)

        yield Source(header, rows())
    finally:
        # Closed here, not by reading to the end: a read-ahead process read its own copy.
        if values is not None:
            values.close()
        workbook.close()


def cell_text(raw: Any) -> str:
    """A cell as text, for the rejects file and for text fields given numbers or dates."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float):
        return str(int(raw)) if raw.is_integer() else repr(raw)
    if isinstance(raw, dt.datetime):
        if raw.time() == dt.time(0) and raw.tzinfo is None:
            return raw.date().isoformat()
        return raw.isoformat()
    if isinstance(raw, dt.date | dt.time):
        return raw.isoformat()
    return str(raw)


# --- from a cell to a value ----------------------------------------------------------


def _fail(message: str):
    raise ValueProblem(message)


def _option_map(spec: dict) -> dict[str, str]:
    """Option values by value, and by label in any language (case-insensitive)."""
    found: dict[str, str] = {}
    labels: dict[str, str | None] = {}
    for option in spec.get("options", []):
        value = option["value"]
        found[value] = value
        label = option.get("label")
        texts = label.values() if isinstance(label, dict) else [label] if label else []
        for text in [value, *texts]:
            key = str(text).strip().casefold()
            labels[key] = value if labels.get(key, value) == value else None
    for key, value in labels.items():
        if value is not None:
            found.setdefault(key, value)
    return found


def _number_text(raw: Any, *, percent: bool = False) -> Any:
    if not isinstance(raw, str):
        return raw
    text = raw.strip().replace(" ", "")
    if text[:1] in CURRENCY_SIGNS:
        text = text[1:]
    elif text[:1] in "+-" and text[1:2] in CURRENCY_SIGNS and text[1:2]:
        text = text[0] + text[2:]
    if percent and text.endswith("%"):
        text = text[:-1]
    if GROUPED_NUMBER.match(text):
        text = text.replace(",", "")
    return text


def _whole_float(raw: Any) -> Any:
    return int(raw) if isinstance(raw, float) and raw.is_integer() else raw


def _date_value(raw: Any) -> Any:
    if isinstance(raw, str):
        text = raw.strip()
        match = SLASH_DATE.match(text)
        if match:
            try:
                return dt.date(*map(int, match.groups()))
            except ValueError:
                _fail(f"'{text}' is not a date")
        return text
    return raw


def _datetime_value(raw: Any) -> Any:
    if isinstance(raw, str):
        text = raw.strip()
        match = SLASH_DATETIME.match(text)
        if match:
            y, m, d, hh, mm, ss = match.groups()
            try:
                return dt.datetime(int(y), int(m), int(d), int(hh), int(mm), int(ss or 0))
            except ValueError:
                _fail(f"'{text}' is not a date and time")
        match = SLASH_DATE.match(text)
        if match:
            try:
                return dt.datetime(*map(int, match.groups()))
            except ValueError:
                _fail(f"'{text}' is not a date")
        return text
    return raw


def _location_value(raw: Any) -> Any:
    text = cell_text(raw).strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            _fail("is not a location: write 'lat, lng' or a JSON object")
    parts = [p.strip() for p in text.split(",", 2)]
    if len(parts) < 2:
        _fail("is not a location: write 'lat, lng' (and optionally ', address')")
    value: dict[str, Any] = {"lat": parts[0], "lng": parts[1]}
    if len(parts) == 3 and parts[2]:
        value["address"] = parts[2]
    return value


def converter(fld: FieldModel) -> Callable[[Any], Any]:
    """A function from a non-blank cell to the field's value; raises ValueProblem."""
    spec = fld.value_spec
    kind = spec["type"]
    coerce = field_types.get(kind).coerce
    if kind in TEXTUAL:
        strip = kind != "long_text"

        def textual(raw):
            text = raw if isinstance(raw, str) else cell_text(raw)
            return coerce(text.strip() if strip else text, spec)

        return textual
    if kind in ("integer", "rating"):
        return lambda raw: coerce(_number_text(raw), spec)
    if kind in ("decimal", "currency", "percent"):
        percent = kind == "percent"
        return lambda raw: coerce(_number_text(raw, percent=percent), spec)
    if kind == "boolean":
        return lambda raw: coerce(_whole_float(raw), spec)
    if kind == "date":
        return lambda raw: coerce(_date_value(raw), spec)
    if kind == "datetime":
        return lambda raw: coerce(_datetime_value(raw), spec)
    if kind in ("select", "multiselect"):
        options = _option_map(spec)

        def option(text: str) -> str:
            text = text.strip()
            return options.get(text) or options.get(text.casefold()) or text

        if kind == "select":
            return lambda raw: coerce(option(cell_text(raw)), spec)
        return lambda raw: coerce(
            [option(p) for p in SEPARATORS.split(cell_text(raw)) if p.strip()], spec
        )
    if kind == "location":
        return lambda raw: coerce(_location_value(raw), spec)
    return lambda raw: coerce(raw, spec)


MEMO_SIZE = 4096


def memoised(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` remembering its answer for the first MEMO_SIZE distinct texts.

    Files repeat themselves (stages, percentages, dates, account names), and a
    conversion depends on nothing but the text and the field, so a column of
    repeated values is checked once per distinct value. A column that fills the
    memo with fewer repeats than distinct texts (names, amounts) stops looking in it.
    """
    memo: dict[str, tuple[bool, Any]] = {}
    hits = 0
    bypass = False

    def run(raw: Any) -> Any:
        nonlocal hits
        if bypass or type(raw) is not str:
            return convert(raw)
        known = memo.get(raw)
        if known is not None:
            hits += 1
            ok, value = known
            if not ok:
                raise ValueProblem(value)
            return value.copy() if isinstance(value, list | dict) else value
        try:
            value = convert(raw)
        except ValueProblem as problem:
            remember(raw, False, problem.message)
            raise
        remember(raw, True, value.copy() if isinstance(value, list | dict) else value)
        return value

    def remember(raw: str, ok: bool, value: Any) -> None:
        nonlocal bypass
        if len(memo) < MEMO_SIZE:
            memo[raw] = (ok, value)
            if len(memo) == MEMO_SIZE and hits < MEMO_SIZE:
                bypass = True

    return run


# --- references by title ---------------------------------------------------------------


@dataclass(frozen=True)
class _Ambiguous:
    count: int


_MISSING = _Ambiguous(0)


class Reference:
    """How one reference column turns cells into ids: by the target's title field.

    Keys are looked up a batch at a time and remembered (up to CACHE_LIMIT) so a
    file naming a few accounts a million times costs a few queries. A target
    without a title field is referred to by id. User fields take usernames.
    """

    def __init__(self, records, fld: FieldModel):
        self.many = fld.type_name == "multi_reference"
        if fld.type_name == "user":
            self.table, column, self.noun, self.what = users, "username", "user", "username"
            self.key = lambda raw: cell_text(raw).strip()
        else:
            target = fld.target
            self.table, self.noun = records.tables_for(target), target.name
            title = target.fields.get(target.title_field or "")
            if title is not None and title.has_column:
                column, self.what = title.name, title.name
                convert = memoised(converter(title))

                def key(raw):
                    try:
                        return convert(raw)
                    except ValueProblem:
                        self._missing(cell_text(raw))

                self.key = key
            else:
                column, self.what = "id", "id"
                self.key = lambda raw: field_types.coerce_id(_whole_float(raw), {})
        self.column = self.table.c[column]
        self.cache: dict[Any, int | _Ambiguous] = {}
        self.pending: set[Any] = set()

    def keys(self, raw: Any) -> Any:
        """The key of a cell (a list of keys for multi_reference); raises ValueProblem.

        Touches nothing of this object, so it may run in the read-ahead process;
        :meth:`want` then asks for the keys.
        """
        if not self.many:
            return self.key(raw)
        return [self.key(part.strip()) for part in SEPARATORS.split(cell_text(raw)) if part.strip()]

    def want(self, keys: Any) -> None:
        """Look these keys (of one cell) up at the next :meth:`lookup`, unless known."""
        cache, pending = self.cache, self.pending
        for key in keys if self.many else (keys,):
            if key not in cache:
                pending.add(key)

    def lookup(self, conn: Connection) -> None:
        """Find the ids of every key asked for since the last lookup."""
        if not self.pending:
            return
        if len(self.cache) + len(self.pending) > CACHE_LIMIT:
            self.cache.clear()
        keys = list(self.pending)
        self.pending.clear()
        found: dict[Any, list[int]] = {}
        for start in range(0, len(keys), QUERY_CHUNK):
            query = select(self.column, self.table.c.id).where(
                self.column.in_(keys[start : start + QUERY_CHUNK])
            )
            if "deleted_at" in self.table.c:
                query = query.where(self.table.c.deleted_at.is_(None))
            for key, record_id in conn.execute(query):
                found.setdefault(key, []).append(record_id)
        for key in keys:
            ids = found.get(key, ())
            self.cache[key] = ids[0] if len(ids) == 1 else _Ambiguous(len(ids))

    def ids(self, keys: Any) -> Any:
        if not self.many:
            return self._id(keys)
        chosen: list[int] = []
        for key in keys:
            found = self._id(key)
            if found not in chosen:
                chosen.append(found)
        return chosen

    def _id(self, key: Any) -> int:
        found = self.cache.get(key, _MISSING)
        if isinstance(found, _Ambiguous):
            if found.count == 0:
                self._missing(key)
            _fail(
                f"{found.count} {self.noun} records have {self.what} {show(_plain(key))}; "
                "the reference is ambiguous (make the titles unique, then import again)"
            )
        return found

    def _missing(self, key: Any):
        _fail(f"there is no {self.noun} with {self.what} {show(_plain(key))}")


def _plain(key: Any) -> Any:
    return cell_text(key) if not isinstance(key, str) else key


# --- the header ------------------------------------------------------------------------


@dataclass
class Column:
    index: int
    header: str
    field: FieldModel
    convert: Callable[[Any], Any]
    reference: Reference | None = None

    @property
    def name(self) -> str:
        return self.field.name


def _texts(label: Any) -> list[str]:
    if isinstance(label, dict):
        return [str(v) for v in label.values() if v]
    return [str(label)] if label else []


def _normal(text: str) -> str:
    return text.strip().strip("*＊").strip().casefold()


def match_header(
    records, actor: Actor, runtime: EntityRuntime, header: list[str]
) -> tuple[list[Column], list[tuple[str, str]], list[RowError]]:
    """Columns of the file mapped to fields; columns ignored (and why); header errors."""
    entity = runtime.entity
    by_name = {name.casefold(): fld for name, fld in entity.fields.items()}
    by_label: dict[str, list[FieldModel]] = {}
    for fld in entity.fields.values():
        texts = _texts(fld.doc.get("label")) or [humanise(fld.name)]
        for text in texts:
            candidates = by_label.setdefault(_normal(text), [])
            if fld not in candidates:
                candidates.append(fld)
    writable = {f.name for f in runtime.writable}
    columns: list[Column] = []
    ignored: list[tuple[str, str]] = []
    errors: list[RowError] = []
    taken: dict[str, str] = {}
    for index, text in enumerate(header):
        key = _normal(text)
        if not key:
            ignored.append((f"#{index + 1}", "has no header"))
            continue
        fld = by_name.get(key)
        if fld is None:
            candidates = by_label.get(key, [])
            if len(candidates) > 1:
                names = ", ".join(f.name for f in candidates)
                errors.append(
                    RowError(1, text, f"is the label of several fields ({names}); use the name")
                )
                continue
            fld = candidates[0] if candidates else None
        if fld is None:
            if key in SYSTEM_FIELDS or key == "deleted_at":
                ignored.append((text, "is set by the system"))
            elif key == REJECTS_ERROR_COLUMN:
                ignored.append((text, "is the error column of a rejects file"))
            else:
                choices = [*entity.fields, *(localise(f.label) for f in entity.fields.values())]
                errors.append(
                    RowError(
                        1,
                        text,
                        f"is not a field of {entity.name}{did_you_mean(text.strip(), choices)}",
                    )
                )
            continue
        if fld.type_name in NOT_IMPORTABLE:
            errors.append(RowError(1, text, NOT_IMPORTABLE[fld.type_name]))
            continue
        if fld.name not in writable:
            why = "is computed" if fld.computed or fld.type_name == "autonumber" else "is read-only"
            ignored.append((text, f"{why}; its values are not imported"))
            continue
        if not access.writable(actor, fld):
            errors.append(RowError(1, text, "you may not set this field"))
            continue
        if fld.name in taken:
            errors.append(RowError(1, text, f"names the same field as column {taken[fld.name]!r}"))
            continue
        taken[fld.name] = text
        reference = (
            Reference(records, fld)
            if fld.type_name in ("reference", "multi_reference", "user")
            else None
        )
        columns.append(Column(index, text, fld, memoised(converter(fld)), reference))
    for fld in runtime.writable:
        if (
            fld.required
            and fld.has_column
            and fld.name not in taken
            and fld.doc.get("default") is None
        ):
            label = localise(fld.label)
            errors.append(
                RowError(1, label, f"is required, and the file has no column for {fld.name}")
            )
    return columns, ignored, errors


# --- importing -----------------------------------------------------------------------


@dataclass
class _Row:
    line: int
    cells: list[Any] | None
    values: dict[str, Any]
    errors: list[tuple[str, str]] | None = None
    # Whether the formulas the cells decide alone are among the values (see ``convert``).
    early: bool = False

    def fail(self, column: str, message: str) -> None:
        if self.errors is None:
            self.errors = []
        self.errors.append((column, message))


class _Importer:
    def __init__(
        self,
        records,
        conn: Connection,
        actor: Actor,
        runtime: EntityRuntime,
        columns: list[Column],
        result: ImportResult,
        *,
        skip_invalid: bool,
        rejects: _Rejects | None,
        source_name: str = "a file",
    ):
        self.records = records
        self.conn = conn
        self.actor = actor
        self.runtime = runtime
        self.result = result
        self.skip_invalid = skip_invalid
        self.rejects = rejects
        entity = runtime.entity
        self.table = runtime.table
        self.references = [c for c in columns if c.reference is not None]
        # (cell index, field, header, conversion): references give keys, resolved per batch.
        self.steps = [
            (c.index, c.name, c.header, c.convert if c.reference is None else c.reference.keys)
            for c in columns
        ]
        self.links = [c.name for c in columns if c.field.type_name == "multi_reference"]
        self.headers = {c.name: c.header for c in columns}
        self.order = {c.header: c.index for c in columns}
        self.required = [
            (f.name, self.headers.get(f.name) or localise(f.label))
            for f in runtime.writable
            if f.required and f.has_column
        ]
        self.defaults = [
            f for f in runtime.writable if f.doc.get("default") is not None and f.has_column
        ]
        self.unique = [
            c
            for c in columns
            if c.field.unique and c.field.type_name != "autonumber" and c.field.has_column
        ]
        self.source_name = source_name
        self.column_names = [c.name for c in self.table.c if c.name not in ("id", "deleted_at")]
        self.states = records._initial_states(runtime)
        self.scope = f"{runtime.app_name}.{runtime.name}"
        # A new record has no children yet: its own rollups are those of nothing.
        self.rollups = {
            f.name: rollup_value(conn, f, {"id": None}, records.tables_for, {})
            for f in runtime.rollups
        }
        self.lookups = [
            (f, via, f.doc["field"], records.tables_for(entity.fields[via].target))
            for f in runtime.lookups
            for via in [f.doc["via"]]
        ]
        self.lookup_cache: dict[tuple[str, int], dict[str, Any]] = {}
        # (formula, the references it reads through), as the record service computes them.
        self.formulas = computing(runtime, records.tables_for).formulas
        self.early_formulas, self.late_formulas = self._split_formulas()
        self.early_reads = dict.fromkeys(
            name for formula in self.early_formulas for name in formula.reads
        )
        self.followed: dict[tuple[Any, int], dict | None] = {}
        self.backs = sorted(
            {rollup.rollup_children()[1].name for _parent, rollup in runtime.rollups_over_me}
        )
        self.parents: dict[str, set[int]] = {back: set() for back in self.backs}
        self.pending_parents = 0
        self.inserting = True
        self.writer = WriteBehind(conn)
        self.ids = bulk.NewIds(self.table, ID_BLOCK)
        self.audit_ids = bulk.NewIds(audit_log, AUDIT_BLOCK)
        # Records waiting for their audit entries (id, line, time), AUDIT_BLOCK at most.
        self.audit_entries: list[tuple[int, int, dt.datetime]] = []
        self.search_index = bulk.SearchIndexInBulk(conn, runtime)

    def db(self) -> Connection:
        """The connection, once the batch being written (if any) is in."""
        return self.writer.settle()

    # --- one batch ------------------------------------------------------------------

    def convert(self, batch: list[tuple[int, list[Any]]]) -> list[tuple]:
        """A batch's cells as values, each checked by its field type; needs no database.

        Runs in the read-ahead process when there is one (see ``read_ahead.py``):
        it reads nothing of this importer that a batch changes. Each row comes as
        the fields of a ``_Row``: tuples cross between processes at half the cost.
        """
        convert = self._convert
        return [convert(line, cells) for line, cells in batch]

    def batch(self, converted: list[tuple]) -> None:
        """Write a converted batch: references resolved, completed, checked, inserted."""
        rows = [_Row(*fields) for fields in converted]
        for column in self.references:
            name, want = column.name, column.reference.want
            for row in rows:
                keys = row.values.get(name)
                if keys is not None:
                    want(keys)
            if column.reference.pending:
                column.reference.lookup(self.db())
        now = self.records.clock()
        defaults = {f.name: self.records._default(f, self.actor) for f in self.defaults}
        for row in rows:
            self._complete(row, defaults)
        self._check_unique([row for row in rows if row.errors is None])
        good = []
        for row in rows:
            if row.errors is None:
                good.append(row)
            else:
                self._reject(row)
        if good and self.inserting:
            self._insert(good, now)
        if not self.skip_invalid and self.result.error_count >= MAX_LISTED_ERRORS:
            # All or nothing and already refused: check the rest, write nothing more.
            self.inserting = False

    def _computed_errors(self, formula, failed: ValidationFailed) -> list[tuple[str, str]]:
        """A computed value the row's values make impossible (too large to store): an
        error of the row, in the formula field's column."""
        column = self.headers.get(formula.name) or localise(formula.field.label)
        return [(column, problem.message) for problem in failed.problems]

    def _split_formulas(self) -> tuple[list, list]:
        """The formulas that read only values converted from the file, which nothing
        changes later (no reference, no default, no context, no other record):
        computed with the cells, by the read-ahead process when there is one; and
        the rest, (formula, paths) as ``self.formulas`` has them."""
        decided = {name for _index, name, _header, _convert in self.steps}
        decided -= {column.name for column in self.references}
        decided -= {fld.name for fld in self.defaults}
        early, late = [], []
        for formula, paths in self.formulas:
            reads = formula.reads
            if (
                not paths
                and reads is not None
                and not formula.context
                and decided.issuperset(reads)
            ):
                early.append(formula)
                decided.add(formula.name)
            else:
                late.append((formula, paths))
        return early, late

    def _convert(self, line: int, cells: list[Any]) -> tuple:
        values: dict[str, Any] = {}
        errors = None
        width = len(cells)
        for index, name, header, convert in self.steps:
            raw = cells[index] if index < width else None
            if raw is None or raw == "" or (type(raw) is str and raw.isspace()):
                continue
            try:
                values[name] = convert(raw)
            except ValueProblem as problem:
                if errors is None:
                    errors = []
                errors.append((header, problem.message))
        early = False
        if errors is None and self.early_formulas:
            # A blank cell reads as null, as the record's empty column does later.
            data = self.early_reads | values
            try:
                for formula in self.early_formulas:
                    data[formula.name] = values[formula.name] = formula(data, None, {})
                early = True
            except ValidationFailed as failed:
                errors = self._computed_errors(formula, failed)
            except Exception:  # the importer computes them again, and fails alike
                for formula in self.early_formulas:
                    values.pop(formula.name, None)
        # Only a rejects file needs a row's cells once it is converted.
        return line, cells if self.rejects is not None else None, values, errors, early

    def _complete(self, row: _Row, defaults: dict[str, Any]) -> None:
        values = row.values
        for column in self.references:
            name = column.field.name
            if name in values:
                try:
                    values[name] = column.reference.ids(values[name])
                except ValueProblem as problem:
                    values.pop(name)
                    row.fail(column.header, problem.message)
        for name, value in defaults.items():
            if name not in values:
                values[name] = value
        failed = {column for column, _ in row.errors} if row.errors else ()
        for name, header in self.required:
            if values.get(name) is None and header not in failed:
                row.fail(header, "is required")

    def _check_unique(self, rows: list[_Row]) -> None:
        for column in self.unique:
            name = column.field.name
            seen: dict[Any, int] = {}
            for row in rows:
                value = row.values.get(name)
                if value is None or row.errors:
                    continue
                if value in seen:
                    row.fail(column.header, f"{show(value)} is also in row {seen[value]}")
                else:
                    seen[value] = row.line
            taken: dict[Any, int] = {}
            values = list(seen)
            target = self.table.c[name]
            for start in range(0, len(values), QUERY_CHUNK):
                query = select(target, self.table.c.id).where(
                    target.in_(values[start : start + QUERY_CHUNK]),
                    self.table.c.deleted_at.is_(None),
                )
                taken.update(self.db().execute(query).all())
            if not taken:
                continue
            for row in rows:
                value = row.values.get(name)
                if value in taken and not row.errors:
                    row.fail(
                        column.header,
                        f"{show(value)} is already used by {self.runtime.name} {taken[value]}",
                    )

    def _reject(self, row: _Row) -> None:
        self.result.rejected += 1
        row.errors.sort(key=lambda error: self.order.get(error[0], -1))
        for column, message in row.errors:
            self.result.add_error(RowError(row.line, column, message))
        if self.rejects is not None:
            self.rejects.write(row.cells, "; ".join(f"{c}: {m}" for c, m in row.errors))

    # --- writing --------------------------------------------------------------------

    def _insert(self, rows: list[_Row], now: dt.datetime) -> None:
        actor_id = self.actor.id
        base = dict.fromkeys(self.column_names)
        base.update(
            created_at=now,
            updated_at=now,
            created_by=actor_id,
            updated_by=actor_id,
            owner=actor_id,
            version=1,
            **self.states,
            **self.rollups,
        )
        numbers = {
            f.name: bulk.reserve_autonumbers(
                self.db(), f"{self.scope}.{f.name}", f.doc["pattern"], now.date(), len(rows)
            )
            for f in self.runtime.autonumbers
        }
        self._fetch_lookups(rows)
        context = self.records.context(self.actor)
        normalised = normalised_context(context)
        records = []
        width = len(base)
        refused = []
        for index, row in enumerate(rows):
            record = base | row.values
            if len(record) != width:
                # Values kept elsewhere (multi_reference: link tables) are no columns.
                record = {name: record[name] for name in base}
            for name, values in numbers.items():
                record[name] = values[index]
            for fld, via, source, _table in self.lookups:
                target = record.get(via)
                record[fld.name] = (
                    None if target is None else self.lookup_cache[(fld.name, target)].get(source)
                )
            try:
                for formula, paths in self.late_formulas if row.early else self.formulas:
                    data = self._follow(record, paths) if paths else record
                    record[formula.name] = formula(data, context, normalised)
            except ValidationFailed as failed:
                for column, message in self._computed_errors(formula, failed):
                    row.fail(column, message)
                refused.append(row)
                continue
            records.append(record)
        if refused:
            for row in refused:
                self._reject(row)
            rows = [row for row in rows if row.errors is None]
            if not rows:
                return

        prepared = bulk.prepare_rows(self.conn.dialect, self.table, records)
        if self.conn.dialect.name == "postgresql":
            # Ids and COPY text made here, so the writer thread only sends (copy_text.py).
            prepared.assign(self.ids.take(self.db, len(records)))
            prepared.copy = copy_text(prepared.values)

        def write(conn: Connection) -> list[int] | None:
            try:
                with conn.begin_nested():
                    ids = bulk.write_prepared(conn, self.table, prepared, self.ids)
            except IntegrityError:
                return None
            self._write_related(conn, rows, ids, now)
            self.search_index.add(ids)
            return ids

        def written(ids: list[int] | None) -> None:
            if ids is None:
                # A record saved meanwhile took a unique value: find the rows at fault.
                ids = self._insert_one_by_one(rows, records)
                self._write_related(self.conn, rows, ids, now)
                self.search_index.add(ids)
            self._count(records, ids)

        self.writer.submit(write, written)

    def _write_related(
        self, conn: Connection, rows: list[_Row], ids: list[int | None], now: dt.datetime
    ) -> None:
        """The link rows and audit entries of records just written (``None``: not written)."""
        entries = self.audit_entries
        pairs: dict[str, list[tuple[int, list[int]]]] = {name: [] for name in self.links}
        for row, record_id in zip(rows, ids, strict=True):
            if record_id is None:
                continue
            entries.append((record_id, row.line, now))
            for name in self.links:
                targets = row.values.get(name)
                if targets:
                    pairs[name].append((record_id, targets))
        bulk.insert_links(conn, self.runtime, pairs)
        if len(entries) >= AUDIT_BLOCK:
            self._write_audit(conn)

    def _write_audit(self, conn: Connection) -> None:
        # Many batches' entries at a time: each write is a round trip the writer waits on.
        entries, self.audit_entries = self.audit_entries, []
        bulk.audit_import(conn, self.runtime, self.actor, entries, self.source_name, self.audit_ids)

    def finish(self) -> None:
        """Once the last batch is in: the audit entries still waiting."""
        self._write_audit(self.db())

    def _count(self, records: list[dict], ids: list[int | None]) -> None:
        for record, record_id in zip(records, ids, strict=True):
            if record_id is None:
                continue
            self.result.imported += 1
            for back in self.backs:
                parent = record.get(back)
                if parent is not None and parent not in self.parents[back]:
                    self.parents[back].add(parent)
                    self.pending_parents += 1
        if self.pending_parents >= PARENT_FLUSH:
            self.refresh_parents()

    def _follow(self, record: dict, paths: list[str]) -> dict:
        if len(self.followed) > CACHE_LIMIT:
            self.followed.clear()
        tables_for = self.records.tables_for
        return follow(self.db(), self.runtime.entity, record, paths, tables_for, self.followed)

    def _insert_one_by_one(self, rows: list[_Row], records: list[dict]) -> list[int | None]:
        """After a batch hit a constraint (a record saved meanwhile): find the rows at fault."""
        ids: list[int | None] = []
        for row, record in zip(rows, records, strict=True):
            try:
                with self.conn.begin_nested():
                    ids.extend(bulk.insert_rows(self.conn, self.table, [record]))
            except IntegrityError as error:
                ids.append(None)
                reason = str(error.orig).splitlines()[0] if error.orig else str(error)
                row.fail("", f"conflicts with a record saved meanwhile ({reason})")
                self._reject(row)
        return ids

    def _fetch_lookups(self, rows: list[_Row]) -> None:
        for fld, via, source, table in self.lookups:
            wanted = {
                row.values[via]
                for row in rows
                if row.values.get(via) is not None
                and (fld.name, row.values[via]) not in self.lookup_cache
            }
            if not wanted:
                continue
            if len(self.lookup_cache) + len(wanted) > CACHE_LIMIT:
                self.lookup_cache.clear()
                wanted = {row.values[via] for row in rows if row.values.get(via) is not None}
            ids = sorted(wanted)
            for start in range(0, len(ids), QUERY_CHUNK):
                query = select(table.c.id, table.c[source]).where(
                    table.c.id.in_(ids[start : start + QUERY_CHUNK])
                )
                for target_id, value in self.db().execute(query):
                    self.lookup_cache[(fld.name, target_id)] = {source: value}
            for target_id in ids:
                self.lookup_cache.setdefault((fld.name, target_id), {})

    def refresh_parents(self) -> None:
        if not self.pending_parents:
            return
        records = self.records
        app = self.runtime.app_name

        def propagate(conn, parent_runtime, before, after, changed):
            records._propagate(conn, parent_runtime, before, after, changed, 1)

        bulk.refresh_parents(
            self.db(),
            self.runtime,
            self.parents,
            lambda name: records.runtime(app, name, self.conn),
            propagate,
            records.tables_for,
        )
        self.parents = {back: set() for back in self.backs}
        self.pending_parents = 0
        # Refreshed parents may be what the next rows look up or read through.
        self.lookup_cache.clear()
        self.followed.clear()


class _Rejects:
    """The rejects file: the file's own columns plus ``error``, opened at the first reject."""

    def __init__(self, path: Path, header: list[str]):
        self.path = path
        self.header = header
        self.stream = None
        self.writer = None

    def write(self, cells: list[Any], error: str) -> None:
        if self.writer is None:
            self.stream = open(self.path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self.writer = csv.writer(self.stream)
            self.writer.writerow([*self.header, REJECTS_ERROR_COLUMN])
        width = len(self.header)
        texts = [cell_text(c) for c in cells[:width]]
        texts += [""] * (width - len(texts))
        self.writer.writerow([*texts, error])

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def default_rejects_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.stem}.rejects.csv")


def _batches(rows: Iterator[tuple[int, list[Any]]]) -> Iterator[list[tuple[int, list[Any]]]]:
    batch: list[tuple[int, list[Any]]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _page_cache(conn: Connection) -> Iterator[None]:
    """SQLite: a larger page cache while the import's transaction lasts.

    SQLite's default (2 MiB) is soon full of the table's and its indexes' pages, and
    every page pushed out is written to the log and read back; a fixed larger cache
    saves about a twentieth of an import, and memory still does not grow with the
    file. The connection goes back to the pool with its own setting.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar())
    conn.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_PAGE_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {before}")


def import_file(
    records,
    actor: Actor,
    app: str,
    entity: str,
    path: str | Path,
    *,
    skip_invalid: bool = False,
    rejects_path: str | Path | None = None,
    progress: Callable[[ImportResult], None] | None = None,
    read_ahead: bool | None = None,
) -> ImportResult:
    """Import the rows of a CSV or XLSX file as new ``entity`` records of ``app``.

    Returns what was imported. Raises :class:`ImportRefused` (nothing imported) when
    the header does not fit the entity, or, unless ``skip_invalid``, when any row is
    bad; ``Forbidden`` without the ``import`` permission. ``progress`` is called
    after each batch with the result so far. ``read_ahead`` reads and converts the
    file in a second process (see ``read_ahead.py``); by default, for big files.
    """
    started = time.perf_counter()
    result = ImportResult()
    file_kind(path)
    with records.writing() as conn, _page_cache(conn):
        runtime = records.runtime(app, entity, conn)
        if runtime.entity.is_child:
            raise Forbidden(f"rows of {entity} are imported with their parent record")
        access.require(actor, runtime.entity, "import")
        with open_source(path) as source:
            columns, ignored, header_errors = match_header(records, actor, runtime, source.header)
            result.ignored_columns = ignored
            if header_errors:
                for error in header_errors:
                    result.add_error(error)
                raise ImportRefused(
                    result, f"nothing was imported: the columns do not fit {entity}"
                )
            rejects = None
            if skip_invalid:
                target = Path(rejects_path) if rejects_path else default_rejects_path(path)
                rejects = _Rejects(target, source.header)
            importer = _Importer(
                records,
                conn,
                actor,
                runtime,
                columns,
                result,
                skip_invalid=skip_invalid,
                rejects=rejects,
                source_name=Path(path).name,
            )
            if read_ahead is None:
                read_ahead = reading_ahead.worth_it(path)
            try:
                with (
                    importer.search_index,
                    reading_ahead.converted_batches(
                        _batches(source.rows), importer.convert, parallel=read_ahead
                    ) as batches,
                ):
                    for rows in batches:
                        result.rows += len(rows)
                        importer.batch(rows)
                        if progress is not None:
                            progress(result)
                    importer.finish()
            finally:
                importer.writer.close()
                if rejects is not None:
                    rejects.close()
                    if rejects.writer is not None:
                        result.rejects_path = str(rejects.path)
        if result.error_count and not skip_invalid:
            result.imported = 0
            raise ImportRefused(result)
        importer.refresh_parents()
    result.seconds = time.perf_counter() - started
    return result
