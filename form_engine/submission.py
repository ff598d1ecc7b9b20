"""From a submitted form to the field map the record service takes, or errors beside fields.

What a request may change is decided here, not in the browser:

* only fields placed on the form are read; everything else in the request is
  ignored;
* computed fields, engine-owned fields (a workflow's state) and fields declared
  ``read_only`` are display fields: whatever a request sends for them is ignored
  and nothing changes (as Salesforce and Frappe do);
* a field hidden by ``visible_when`` keeps its stored value (a new record leaves
  it unset, so the service applies its default);
* a field made read-only by ``read_only_when`` (or locked by the caller, e.g.
  for lack of a write role) is not taken either, but a request that sends a
  *different* value for it gets an explicit error on the field: the user sees
  why the edit did not stick, rather than losing it silently. The browser script
  puts the stored value back when the rule makes a field read-only, and it
  disables selects and checkboxes (which then send nothing), so an honest
  browser never meets that error;
* ``required_when`` (and ``required``) on a visible, editable field that ends up
  blank is an error on that field; ``validations`` failing on the would-be
  record are errors on each visible field they name.

A scalar input absent from the request leaves its field unchanged; for
checkboxes, multi-selects, id lists, files and child rows absence means empty,
because browsers send nothing for those when they are empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wtforms.fields import Field

from metamodel.messages import Message
from metamodel.text import localise
from records.serialize import json_value

from .build import EngineForm, field_for, form_class
from .definition import FormSpec
from .errors import FORM, add, attach_errors
from .fields import (
    CheckField,
    FilesField,
    MultiOptionField,
    ReferencesField,
    RowsField,
    SignatureField,
    UserField,
    Values,
)
from .rules import (
    Evaluation,
    ItemState,
    Resolver,
    base_record,
    defaults,
    evaluate_form,
    failed_validations,
    unchanged,
)
from .values import blank, kind, rule_value, zone

REQUIRED = Message("is required")
NEEDS_ROWS = Message("needs at least one row")
READ_ONLY = Message("cannot be changed here (the form shows it read-only)")
# Fields for which a browser sends nothing when they are empty.
ABSENT_IS_EMPTY = (CheckField, MultiOptionField, ReferencesField, FilesField, RowsField)

# (field name, upload) -> the stored file's descriptor {id, name, mime, size}.
FileStore = Callable[[str, Any], dict]
# username -> the user's id, or None when there is no such user.
UserLookup = Callable[[str], int | None]


@dataclass
class Submission:
    form: EngineForm
    # The field map for Records.create / Records.update (JSON values).
    values: dict[str, Any]
    # {field name or row path ("lines-0-qty") or "__all__": [messages]}
    errors: dict[str, list[str]]
    states: dict[str, ItemState]
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class ListDict(dict):
    """A plain ``{name: [values]}`` with the ``getlist`` WTForms reads formdata through."""

    def getlist(self, key):
        value = self.get(key, [])
        return list(value) if isinstance(value, list | tuple) else [value]


def formdata_of(data: Any) -> Any:
    if data is None or hasattr(data, "getlist"):
        return data
    return ListDict(data)


def bind(
    spec: FormSpec,
    formdata: Any = None,
    current: dict | None = None,
    *,
    language: str = "en",
    timezone: str = "UTC",
    context: dict | None = None,
) -> EngineForm:
    """A form instance: from a request's data, or showing ``current``.

    Without formdata and without ``current`` the form shows a new record's
    defaults (``context`` fills ``$user``, ``$now`` and ``$today``). With both,
    inputs the request lacks (a hidden field's) show the stored value when the
    form is shown again; child rows come from the request alone, since WTForms
    would pair stored rows with submitted ones by position.
    """
    cls = form_class(spec, language)
    meta = {"timezone": timezone}
    if formdata is not None:
        stored = None
        if current is not None:
            stored = _as_object({k: v for k, v in current.items() if k not in spec.children})
        return cls(formdata=formdata_of(formdata), obj=stored, meta=meta)
    shown = current if current is not None else defaults(spec.entity, context)
    return cls(obj=_as_object(shown), meta=meta)


def _as_object(record: dict) -> Values:
    """The record as object data; child rows as objects too (see fields.Values)."""
    return Values(
        {
            key: [Values(row) for row in value]
            if isinstance(value, list) and value and all(isinstance(r, dict) for r in value)
            else value
            for key, value in record.items()
        }
    )


def submit(
    spec: FormSpec,
    formdata: Any,
    current: dict | None = None,
    *,
    language: str = "en",
    timezone: str = "UTC",
    context: dict | None = None,
    resolve: Resolver | None = None,
    locked: frozenset[str] | set[str] = frozenset(),
    store_file: FileStore | None = None,
    users: UserLookup | None = None,
) -> Submission:
    """Read a submitted form against its rules; see the module docstring.

    ``current`` is the stored record for an edit (as the record service returns
    it), None for a new record. ``context`` gives ``$user``, ``$now``, ``$today``
    (``Records.context(actor)``). ``locked`` names fields the caller does not let
    this user change. ``store_file`` stores uploads, ``users`` resolves usernames.
    """
    form = bind(spec, formdata, current, language=language, timezone=timezone)
    locked = frozenset(locked)
    base = base_record(spec, current, context)
    submitted, sent = read_submitted(spec, form, timezone, base)
    evaluation = evaluate_form(
        spec, base, submitted, context=context, resolve=resolve, locked=locked
    )
    errors: dict[str, list[str]] = {}
    taken: list[str] = []
    for name, item in spec.items.items():
        state = evaluation.states[name]
        if item.display_only or not state.visible:
            continue
        if state.read_only:
            if name in sent and not unchanged(item.field, submitted.get(name), base.get(name)):
                add(errors, name, READ_ONLY)
            continue
        if not given(form, name, submitted, sent):
            # Not in the request: the stored value stays, and must do if required.
            if state.required and blank(evaluation.record.get(name)):
                add(errors, name, REQUIRED)
            continue
        problems = field_problems(spec, form, name, state, evaluation)
        for key, messages in problems.items():
            for message in messages:
                add(errors, key, message)
        if not problems:
            taken.append(name)
    for key, message in validation_errors(spec, evaluation, language):
        add(errors, key, message)
    values = {} if errors else field_map(spec, form, taken, errors, store_file, users)
    show_computed(spec, form, evaluation)
    attach_errors(form, errors)
    return Submission(form, values, errors, evaluation.states, evaluation.record)


def given(form: EngineForm, name: str, submitted: dict, sent: set[str]) -> bool:
    """Does the request give a value for ``name`` (absence counts for some fields)?"""
    return name in submitted or name in sent or isinstance(field_for(form, name), ABSENT_IS_EMPTY)


def read_submitted(
    spec: FormSpec, form: EngineForm, timezone: str, base: dict
) -> tuple[dict[str, Any], set[str]]:
    """The values the request gives for input items, as rules read them, and which it sent.

    A scalar input that is absent gives nothing (the stored value stays); for
    the fields in ``ABSENT_IS_EMPTY`` absence means empty.
    """
    tz = zone(timezone)
    submitted: dict[str, Any] = {}
    sent: set[str] = set()
    for name in spec.inputs:
        fld = field_for(form, name)
        how = kind(spec.items[name].field)
        if how == "stored":
            if fld.raw_data:
                sent.add(name)
            continue
        if isinstance(fld, RowsField):
            if fld.entries:
                sent.add(name)
            submitted[name] = rows_submitted(spec.children[name], fld, tz, base.get(name))
            continue
        if fld.raw_data:
            sent.add(name)
        elif not isinstance(fld, ABSENT_IS_EMPTY):
            continue
        submitted[name] = rule_value(spec.items[name].field, fld.raw_data or [], tz)
    return submitted, sent


def rows_submitted(child: FormSpec, rows: RowsField, tz, stored_rows: Any) -> list[dict]:
    """Each submitted row as rules read it, over the stored row it updates (if any)."""
    stored = {r.get("id"): r for r in stored_rows or [] if isinstance(r, dict) and r.get("id")}
    out = []
    for entry in rows.entries:
        row_form = entry.form
        row_id = row_form.id.data
        row = dict(stored[row_id]) if row_id in stored else {}
        row["id"] = row_id if row_id in stored else None
        for name in child.inputs:
            fld = field_for(row_form, name)
            if kind(child.items[name].field) == "stored":
                continue
            if fld.raw_data or isinstance(fld, ABSENT_IS_EMPTY):
                row[name] = rule_value(child.items[name].field, fld.raw_data or [], tz)
        out.append(row)
    return out


def field_problems(
    spec: FormSpec, form: EngineForm, name: str, state: ItemState, evaluation: Evaluation
) -> dict[str, list[str]]:
    """Parse errors, then "is required", for one accepted field (rows: per cell)."""
    fld = field_for(form, name)
    problems: dict[str, list[str]] = {}
    if isinstance(fld, RowsField):
        child = spec.children[name]
        for entry in fld.entries:
            for child_name in child.inputs:
                cell = field_for(entry.form, child_name)
                if cell.process_errors:
                    problems[cell.name] = list(cell.process_errors)
                elif child.items[child_name].static_required and _blank_field(cell):
                    problems[cell.name] = [REQUIRED]
        if state.required and not fld.entries:
            problems[name] = [NEEDS_ROWS]
        return problems
    if fld.process_errors:
        return {name: list(fld.process_errors)}
    if state.required and _blank_field(fld):
        return {name: [REQUIRED]}
    return {}


def _blank_field(fld: Field) -> bool:
    if isinstance(fld, FilesField | SignatureField):
        return not fld.data and not fld.uploads
    return blank(fld.data)


def validation_errors(spec: FormSpec, evaluation: Evaluation, language: str):
    """(field, message) for each failing validation, on the visible fields it names."""
    for validation in failed_validations(spec, evaluation.data):
        message = localise(validation["message"], language)
        named = validation.get("fields") or []
        if not named:
            yield FORM, message
        for name in named:
            state = evaluation.states.get(name)
            if state is not None and state.visible:
                yield name, message


def field_map(
    spec: FormSpec,
    form: EngineForm,
    taken: list[str],
    errors: dict[str, list[str]],
    store_file: FileStore | None,
    users: UserLookup | None,
) -> dict[str, Any]:
    """The values to send to the record service, JSON as its API takes them."""
    values: dict[str, Any] = {}
    files = []
    for name in taken:
        fld = field_for(form, name)
        if isinstance(fld, RowsField):
            values[name] = [row_values(spec.children[name], entry.form) for entry in fld.entries]
        elif isinstance(fld, FilesField | SignatureField):
            files.append((name, fld))
        elif isinstance(fld, UserField) and isinstance(fld.data, str):
            values[name] = user_id(name, fld, errors, users)
        else:
            values[name] = json_value(fld.data)
    # Files are stored last, once nothing else can stop the save.
    for name, fld in files if not errors else []:
        values[name] = stored_files(name, fld, errors, store_file)
    return {} if errors else values


def row_values(child: FormSpec, row_form: EngineForm) -> dict[str, Any]:
    row: dict[str, Any] = {"id": row_form.id.data} if row_form.id.data else {}
    for name in child.inputs:
        if kind(child.items[name].field) != "stored":
            row[name] = json_value(field_for(row_form, name).data)
    return row


def stored_files(name: str, fld, errors: dict, store_file: FileStore | None) -> list[int]:
    """The kept files' ids plus those of the uploads, stored through ``store_file``."""
    ids = list(fld.data or [])
    if fld.uploads and store_file is None:
        add(errors, name, Message("this form cannot take file uploads"))
        return ids
    for upload in fld.uploads:
        descriptor = store_file(name, upload)
        fld.files.append(descriptor)
        ids.append(descriptor["id"])
    fld.data, fld.uploads = ids, []
    return ids


def user_id(name: str, fld: UserField, errors: dict, users: UserLookup | None) -> int | None:
    found = users(fld.data) if users is not None else None
    if found is None:
        message = Message("there is no user named '{user}'; pick one from the list", user=fld.data)
        add(errors, name, message)
    return found


def show_computed(spec: FormSpec, form: EngineForm, evaluation: Evaluation) -> None:
    """Display fields show the would-be record's values (a formula after the change)."""
    for name, item in spec.items.items():
        fld = field_for(form, name)
        if item.display_only:
            fld.data = evaluation.record.get(name)
        elif isinstance(fld, RowsField):
            rows = evaluation.record.get(name) or []
            child = spec.children[name]
            for entry, row in zip(fld.entries, rows, strict=False):
                for child_name, child_item in child.items.items():
                    if child_item.display_only:
                        field_for(entry.form, child_name).data = row.get(child_name)


def validate_field(
    spec: FormSpec,
    name: str,
    value: Any,
    record: dict | None = None,
    *,
    language: str = "en",
    timezone: str = "UTC",
    context: dict | None = None,
    resolve: Resolver | None = None,
    locked: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Messages for one field as the user leaves it (htmx "validate on blur").

    ``name`` is a field of the form or a row cell (``lines-0-qty``); ``value`` its
    input (a string, or a list of strings); ``record`` the values of the rest of
    the form (the stored record, or a submission's ``record``).
    """
    raw = [] if value is None else list(value) if isinstance(value, list | tuple) else [value]
    head, _, rest = name.partition("-")
    if rest and head in spec.children:
        return _validate_cell(spec, name, raw, language, timezone)
    if name not in spec.items:
        return []
    item = spec.items[name]
    form = bind(spec, {name: raw}, language=language, timezone=timezone)
    locked = frozenset(locked)
    base = base_record(spec, record, context)
    submitted, sent = read_submitted(spec, form, timezone, base)
    submitted = {name: submitted[name]} if name in submitted else {}
    evaluation = evaluate_form(
        spec, base, submitted, context=context, resolve=resolve, locked=locked
    )
    state = evaluation.states[name]
    if item.display_only or not state.visible:
        return []
    if state.read_only:
        changed = name in sent and not unchanged(item.field, submitted.get(name), base.get(name))
        return [READ_ONLY] if changed else []
    messages = field_problems(spec, form, name, state, evaluation).get(name, [])
    messages += [m for key, m in validation_errors(spec, evaluation, language) if key == name]
    return messages


def _validate_cell(spec: FormSpec, path: str, raw: list, language: str, timezone: str):
    form = bind(spec, {path: raw}, language=language, timezone=timezone)
    table, index, child_name = path.split("-", 2) if path.count("-") >= 2 else (path, "", "")
    child = spec.children[table]
    if child_name not in child.inputs or not index.isdigit():
        return []
    entries = field_for(form, table).entries
    cell = field_for(entries[0].form, child_name)
    if cell.process_errors:
        return list(cell.process_errors)
    if child.items[child_name].static_required and _blank_field(cell):
        return [REQUIRED]
    return []
