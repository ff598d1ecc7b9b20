"""What a record's page shows: its fields as the form lays them out, read-only and formatted,
its child rows, the records pointing at it, its timeline and its history.

Everything here is plain data for ``records/detail.html`` and its partials; nothing
produces HTML, so every label and value is escaped by the templates. References,
users and related records are fetched in bulk: a page costs the same number of
queries however many rows, references or events it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from flask_babel import gettext as _

from form_engine import FormSpec, Layout, evaluate_form
from form_engine.rules import base_record
from form_engine.values import same, typed
from metamodel.errors import CrmError
from metamodel.model import EntityModel, FieldModel
from metamodel.text import localise
from records import access
from records.actor import Actor
from records.errors import Forbidden
from records.query import visible
from records.service import Records

from ..i18n import language
from . import titles
from .cells import EMPTY, NUMBER_TYPES, Cell, Chip, cell, datetime_text, detail_url, option_chip
from .listing import record_title

RELATED_LIMIT = 5
FILE_TYPES = ("file", "signature")
INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def action_label(action: str) -> str:
    """An audit action of the record service or the workflow engine, in words."""
    words = {
        "create": _("Record created"),
        "update": _("Changed"),
        "delete": _("Moved to the recycle bin"),
        "restore": _("Restored"),
        "transition": _("State changed"),
        "submit": _("Submitted for approval"),
        "approve": _("Approved"),
        "reject": _("Rejected"),
        "send_back": _("Sent back"),
        "transfer": _("Transferred"),
        "add_approver": _("Approver added"),
        "comment": _("Commented"),
        "withdraw": _("Withdrawn"),
        "escalate": _("Escalated"),
    }
    return words.get(action, action)


# --- values -------------------------------------------------------------------------------


@dataclass
class FileLink:
    name: str
    url: str
    size: str
    image_url: str | None = None


@dataclass
class RowsTable:
    """Child rows as a small table: column labels, then a row of cells per child row."""

    columns: list[str]
    numeric: list[bool]
    rows: list[list[Cell]]


@dataclass
class Shown:
    """One field's value on a page: a cell, files, or child rows (``kind``)."""

    kind: str
    cell: Cell = field(default_factory=lambda: EMPTY)
    files: list[FileLink] = field(default_factory=list)
    table: RowsTable | None = None


FileUrl = Callable[[int], str]


def size_text(size: Any) -> str:
    if not isinstance(size, int):
        return ""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def shown(
    fld: FieldModel, value: Any, targets: titles.Targets, file_url: FileUrl | None = None
) -> Shown:
    kind = fld.value_spec["type"]
    if fld.type_name == "child_table" and fld.target is not None:
        return Shown("table", table=rows_table(fld.target, value or [], targets))
    if kind in FILE_TYPES:
        files = []
        for item in value or []:
            if not isinstance(item, dict) or "id" not in item:
                continue
            url = file_url(item["id"]) if file_url else ""
            image = url + "?inline=1" if url and item.get("mime") in INLINE_IMAGES else None
            files.append(
                FileLink(str(item.get("name", "")), url, size_text(item.get("size")), image)
            )
        return Shown("files", files=files) if files else Shown("cell", EMPTY)
    return Shown("cell", cell(fld, value, targets))


def rows_table(child: EntityModel, rows: list, targets: titles.Targets) -> RowsTable:
    fields = [f for f in child.fields.values() if f.type_name != "child_table"]
    numeric = [f.value_spec["type"] in NUMBER_TYPES for f in fields]
    cells = [
        [shown(f, row.get(f.name), targets).cell for f in fields]
        for row in rows
        if isinstance(row, dict)
    ]
    return RowsTable([localise(f.label, language()) for f in fields], numeric, cells)


def note_values(needs: titles.Needs, fld: FieldModel, value: Any) -> None:
    """Note the records and users a value names, so one fetch finds them all."""
    if value is None:
        return
    if fld.type_name == "child_table" and fld.target is not None:
        for row in value if isinstance(value, list) else []:
            if isinstance(row, dict):
                for child in fld.target.fields.values():
                    note_values(needs, child, row.get(child.name))
        return
    values = value if isinstance(value, list) else [value]
    kind = fld.value_spec["type"]
    target = titles.target_of(fld)
    if target is not None:
        needs.add(target, values)
    elif kind == "user":
        needs.add_users(values)


# --- the record's fields, as the form lays them out --------------------------------------


@dataclass
class ShownItem:
    name: str
    label: str
    type: str
    width: int
    value: Shown
    full_width: bool = False


@dataclass
class ShownSection:
    label: str
    columns: int
    items: list[ShownItem]


@dataclass
class ShownTab:
    label: str
    named: bool
    sections: list[ShownSection]


def shown_tabs(
    spec: FormSpec,
    page_layout: Layout,
    record: dict,
    actor: Actor,
    service: Records,
    file_url: FileUrl,
) -> tuple[list[ShownTab], titles.Targets]:
    """The layout's tabs with each readable, visible field's value formatted."""
    context = service.context(actor)

    def resolve(entity: EntityModel, record_id: int):
        try:
            return service.get(actor, entity.app.name, entity.name, record_id)
        except CrmError:  # an unreadable or missing record reads as null
            return None

    states = evaluate_form(
        spec, base_record(spec, record, context), {}, context=context, resolve=resolve
    ).states
    readable = {n for n, i in spec.items.items() if access.readable(actor, i.field)}
    needs = titles.Needs()
    for name in readable:
        note_values(needs, spec.items[name].field, record.get(name))
    needs.add_users(record.get(n) for n in ("owner", "created_by", "updated_by"))
    targets = titles.fetch(service, actor, needs)
    tabs = []
    for tab in page_layout.tabs:
        sections = []
        for section in tab.sections:
            items = [
                ShownItem(
                    item.field,
                    item.label,
                    item.type,
                    item.width,
                    shown(spec.items[item.field].field, record.get(item.field), targets, file_url),
                    item.full_width,
                )
                for item in section.items
                if item.field in readable and states[item.field].visible
            ]
            if items:
                sections.append(ShownSection(section.label, section.columns, items))
        if sections:
            tabs.append(ShownTab(tab.label, tab.named, sections))
    return tabs, targets


# --- records pointing here ----------------------------------------------------------------


@dataclass
class Related:
    """The latest records of one entity whose reference field points at this record."""

    label: str
    field_label: str
    items: list[tuple[str, str | None]]
    more: bool
    list_url: str | None
    new_url: str | None


def reverse_references(entity: EntityModel) -> list[FieldModel]:
    """Reference fields of other (non-child) entities of the app that target ``entity``."""
    found = []
    for source in entity.app.entities.values():
        if source.is_child:
            continue
        for fld in source.fields.values():
            target = fld.target if fld.type_name == "reference" else None
            if target is not None and (target.app.name, target.name) == (
                entity.app.name,
                entity.name,
            ):
                found.append(fld)
    return found


def related_records(
    service: Records, actor: Actor, entity: EntityModel, record_id: int
) -> list[Related]:
    """One query per reverse reference, whatever the number of records pointing here."""
    out = []
    lang = language()
    with service.reading() as conn:
        context = service.context(actor)
        for fld in reverse_references(entity):
            source = fld.entity
            if access.grant(actor, source, "read") is None or not access.readable(actor, fld):
                continue
            runtime = service.runtime(source.app.name, source.name, conn)
            try:
                query = visible(actor, runtime, service.tables_for, context)
            except Forbidden:
                continue
            table = runtime.table
            title = source.fields.get(source.title_field or "")
            columns = [table.c.id]
            if title is not None and title.has_column and access.readable(actor, title):
                columns.append(table.c[title.name])
            rows = conn.execute(
                query.with_only_columns(*columns)
                .where(table.c[fld.name] == record_id)
                .order_by(table.c.id.desc())
                .limit(RELATED_LIMIT + 1)
            ).all()
            items = [
                (record_title(source, dict(row._mapping)), detail_url(source, row.id))
                for row in rows[:RELATED_LIMIT]
            ]
            list_url = url_for(
                "lists.list_page",
                app=source.app.name,
                entity=source.name,
                **{f"f.{fld.name}": record_id},
            )
            new_url = None
            if access.may(actor, source, "create"):
                new_url = url_for(
                    "records.new", app=source.app.name, entity=source.name, **{fld.name: record_id}
                )
            out.append(
                Related(
                    localise(source.plural_label, lang),
                    localise(fld.label, lang),
                    items,
                    len(rows) > RELATED_LIMIT,
                    list_url,
                    new_url,
                )
            )
    return out


# --- timeline and history ------------------------------------------------------------------


@dataclass
class Change:
    label: str
    before: Shown
    after: Shown


@dataclass
class Moment:
    """One entry of the timeline or the history."""

    kind: str  # "record" (a related record) or "event" (an audit entry)
    at: str
    at_iso: str
    who: str = ""
    title: str = ""
    url: str | None = None
    entity_label: str = ""
    channel: Chip | None = None
    action: str = ""
    state: tuple[str, str] | None = None
    changes: list[Change] = field(default_factory=list)
    changed_labels: list[str] = field(default_factory=list)
    comment: str | None = None


def _state_label(entity: EntityModel, state: Any) -> str:
    if state is None:
        return "—"
    for workflow in entity.app.list_of("workflows"):
        if workflow.get("entity") != entity.name:
            continue
        for candidate in workflow.get("states", []):
            if candidate.get("name") == state:
                return localise(candidate.get("label"), language()) or str(state)
    return str(state)


def _workflow_state(entity: EntityModel, changes: Any) -> tuple[str, str] | None:
    if not isinstance(changes, dict) or "state" not in changes or "details" not in changes:
        return None
    before, after = [*(changes.get("state") or []), None, None][:2]
    return _state_label(entity, before), _state_label(entity, after)


def _field_changes(entity: EntityModel, changes: Any) -> dict[str, list]:
    if not isinstance(changes, dict) or _workflow_state(entity, changes) is not None:
        return {}
    return {k: v for k, v in changes.items() if isinstance(v, list) and len(v) == 2}


def timeline(
    service: Records, actor: Actor, entity: EntityModel, items: list[dict]
) -> list[Moment]:
    """The record's 360 view (records.timeline) as entries: channels and states in words."""
    needs = titles.Needs()
    needs.add_users(
        i.get("owner") if i.get("kind") == "record" else i.get("actor_id") for i in items
    )
    targets = titles.fetch(service, actor, needs)
    lang = language()
    moments = []
    for item in items:
        at = item.get("at") or ""
        if item.get("kind") == "record":
            source = entity.app.entities.get(item.get("entity"))
            channel = None
            if source is not None and item.get("channel") is not None:
                channel_field = source.fields.get("channel")
                spec = channel_field.value_spec if channel_field is not None else {}
                channel = option_chip(spec, item["channel"])
            moments.append(
                Moment(
                    "record",
                    datetime_text(at) if at else "",
                    at,
                    who=targets.users.get(item.get("owner"), ""),
                    title=str(item.get("title", "")),
                    url=detail_url(source, item["id"]) if source is not None else None,
                    entity_label=localise(source.label, lang) if source else item.get("entity", ""),
                    channel=channel,
                )
            )
            continue
        changes = item.get("changes")
        fields = _field_changes(entity, changes)
        labels = [
            localise(entity.fields[n].label, lang) if n in entity.fields else n for n in fields
        ]
        moments.append(
            Moment(
                "event",
                datetime_text(at) if at else "",
                at,
                who=targets.users.get(item.get("actor_id"), _("system")),
                action=action_label(item.get("action", "")),
                state=_workflow_state(entity, changes),
                changed_labels=labels,
                comment=item.get("comment"),
            )
        )
    return moments


def history(
    service: Records, actor: Actor, entity: EntityModel, events: list[dict]
) -> list[Moment]:
    """Each audit event with its field changes, before and after, formatted."""
    needs = titles.Needs()
    needs.add_users(e.get("actor_id") for e in events)
    for event in events:
        for name, pair in _field_changes(entity, event.get("changes")).items():
            fld = entity.fields.get(name)
            if fld is not None:
                for value in pair:
                    note_values(needs, fld, value)
    targets = titles.fetch(service, actor, needs)
    lang = language()
    moments = []
    for event in events:
        at = event.get("at") or ""
        changes = []
        for name, (before, after) in _field_changes(entity, event.get("changes")).items():
            fld = entity.fields.get(name)
            if fld is None:
                changes.append(Change(name, _plain(before), _plain(after)))
            else:
                label = localise(fld.label, lang)
                changes.append(
                    Change(label, shown(fld, before, targets), shown(fld, after, targets))
                )
        moments.append(
            Moment(
                "event",
                datetime_text(at) if at else "",
                at,
                who=targets.users.get(event.get("actor_id"), _("system")),
                action=action_label(event.get("action", "")),
                state=_workflow_state(entity, event.get("changes")),
                changes=changes,
                comment=event.get("comment"),
            )
        )
    return moments


def _plain(value: Any) -> Shown:
    if value in (None, "", []):
        return Shown("cell", EMPTY)
    return Shown("cell", Cell("text", str(value)))


# --- yours and theirs -------------------------------------------------------------------


@dataclass
class Difference:
    label: str
    mine: Shown
    theirs: Shown
    differs: bool


def differences(
    spec: FormSpec,
    page_layout: Layout,
    mine: dict,
    theirs: dict,
    actor: Actor,
    service: Records,
) -> list[Difference]:
    """Each readable field of the form, as you would save it and as it is now."""
    readable = [
        item for item in page_layout.items() if access.readable(actor, spec.items[item.field].field)
    ]
    needs = titles.Needs()
    for item in readable:
        fld = spec.items[item.field].field
        note_values(needs, fld, mine.get(item.field))
        note_values(needs, fld, theirs.get(item.field))
    targets = titles.fetch(service, actor, needs)
    out = []
    for item in readable:
        fld = spec.items[item.field].field
        mine_value, their_value = mine.get(item.field), theirs.get(item.field)
        out.append(
            Difference(
                item.label,
                shown(fld, mine_value, targets),
                shown(fld, their_value, targets),
                not same_value(fld, mine_value, their_value),
            )
        )
    return out


def same_value(fld: FieldModel, left: Any, right: Any) -> bool:
    if fld.type_name == "child_table" and fld.target is not None:
        left_rows, right_rows = _rows(left), _rows(right)
        if len(left_rows) != len(right_rows):
            return False
        inputs = [f for f in fld.target.fields.values() if not f.computed]
        return all(
            same_value(f, a.get(f.name), b.get(f.name))
            for a, b in zip(left_rows, right_rows, strict=True)
            for f in inputs
        )
    if fld.value_spec["type"] in FILE_TYPES:
        return _file_ids(left) == _file_ids(right)
    return same(typed(fld, left), typed(fld, right))


def _rows(value: Any) -> list[dict]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def _file_ids(value: Any) -> list:
    items: Iterable = value if isinstance(value, list) else []
    return [i.get("id") if isinstance(i, dict) else i for i in items]
