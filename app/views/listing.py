"""What a list shows: the views a user may open, their columns and sort, the rows as cells.

Shared by the list, the kanban board and the calendar. Columns come from the
view, or, without one, the title field and the first fields that fit a table
cell; a column may follow a reference (``account.tier``). Fields the user may
not read are never columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from metamodel.errors import NotFound
from metamodel.model import AppModel, EntityModel, FieldModel
from records import access
from records.actor import Actor
from records.errors import Forbidden
from records.query import SORTABLE_SYSTEM
from records.service import Records

from ..i18n import text
from . import titles
from .cells import NUMBER_TYPES, Cell, Link, cell, detail_url

DEFAULT_COLUMNS = 7
# Types that do not fit a table cell: they are shown on the record's page.
NOT_IN_TABLES = ("child_table", "long_text", "file", "signature", "location")
SYSTEM_TYPES = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
    "created_by": "user",
    "updated_by": "user",
    "owner": "user",
    "version": "integer",
}


def system_labels() -> dict[str, str]:
    return {
        "id": _("ID"),
        "created_at": _("Created"),
        "updated_at": _("Updated"),
        "created_by": _("Created by"),
        "updated_by": _("Updated by"),
        "owner": _("Owner"),
        "version": _("Version"),
    }


@dataclass
class Column:
    path: str
    field: FieldModel  # the field shown: in the referenced entity for a dotted path
    via: FieldModel | None
    label: str
    sortable: bool

    @property
    def numeric(self) -> bool:
        return self.field.value_spec["type"] in NUMBER_TYPES


@dataclass
class Row:
    id: int
    version: int
    title: str
    href: str | None
    cells: list[Cell] = field(default_factory=list)
    record: dict = field(default_factory=dict)


# --- views ---------------------------------------------------------------------------


def admits(actor: Actor, view: dict) -> bool:
    roles = view.get("roles")
    return actor.is_admin or not roles or bool(actor.roles & set(roles))


def entity_views(model: AppModel, entity: str, actor: Actor) -> list[dict]:
    """The entity's views the actor's roles admit, in document order."""
    return [
        view
        for view in model.list_of("views")
        if view.get("entity") == entity and admits(actor, view)
    ]


def chosen_view(
    model: AppModel, entity: str, name: str | None, actor: Actor, kind: str
) -> dict | None:
    """The view ``name`` (any type); without a name, the entity's first view of ``kind``
    for boards and calendars, none for lists."""
    if not name:
        if kind == "list":
            return None
        found = [v for v in entity_views(model, entity, actor) if v.get("type") == kind]
        if not found:
            raise NotFound(_("%(entity)s has no %(kind)s view", entity=entity, kind=kind))
        return found[0]
    for view in model.list_of("views"):
        if view.get("entity") == entity and view.get("name") == name:
            if not admits(actor, view):
                raise Forbidden(_("the view '%(name)s' is not for your roles", name=name))
            return view
    raise NotFound(_("%(entity)s has no view '%(name)s'", entity=entity, name=name))


def view_label(view: dict) -> str:
    return text(view.get("label")) or view["name"].replace("_", " ").capitalize()


# --- columns -------------------------------------------------------------------------


def system_field(entity: EntityModel, name: str) -> FieldModel:
    doc = {"name": name, "type": SYSTEM_TYPES[name], "label": system_labels()[name]}
    return FieldModel(entity, doc, "", synthetic=True)


def field_named(entity: EntityModel, name: str) -> FieldModel | None:
    if name in entity.fields:
        return entity.fields[name]
    if name in SYSTEM_TYPES:
        return system_field(entity, name)
    return None


def column(actor: Actor, entity: EntityModel, path: str) -> Column | None:
    """The column ``path`` names, if the actor may read every field on the way."""
    head, _dot, rest = path.partition(".")
    first = field_named(entity, head)
    if first is None or not access.readable(actor, first):
        return None
    if not rest:
        sortable = first.name in SORTABLE_SYSTEM or (
            first.name in entity.fields and first.has_column and first.storage != "json"
        )
        return Column(path, first, None, text(first.label), sortable)
    target = titles.target_of(first) if first.type_name == "reference" else None
    if target is None or "." in rest:
        return None  # one reference deep: further paths stay on the record's own page
    shown = field_named(target, rest)
    if shown is None or not access.readable(actor, shown) or not shown.has_column:
        return None
    return Column(path, shown, first, f"{text(first.label)} · {text(shown.label)}", False)


def default_columns(actor: Actor, entity: EntityModel) -> list[Column]:
    names = [entity.title_field] if entity.title_field else []
    names += [
        f.name
        for f in entity.fields.values()
        if f.name != entity.title_field and f.type_name not in NOT_IN_TABLES
    ]
    return columns_of(actor, entity, names)[:DEFAULT_COLUMNS]


def columns_of(actor: Actor, entity: EntityModel, paths: list[str]) -> list[Column]:
    found = (column(actor, entity, path) for path in paths)
    return [c for c in found if c is not None]


def view_columns(actor: Actor, entity: EntityModel, view: dict | None) -> list[Column]:
    if view and view.get("columns"):
        chosen = columns_of(actor, entity, view["columns"])
        if chosen:
            return chosen
    return default_columns(actor, entity)


def view_sort(view: dict | None, entity: EntityModel) -> str | None:
    """A view's sort as the service reads it (``a,-b``); paths it cannot sort are left out."""
    parts = []
    for item in (view or {}).get("sort", []):
        name = item.get("field", "")
        fld = entity.fields.get(name)
        if name in SORTABLE_SYSTEM or (
            fld is not None and fld.has_column and fld.storage != "json"
        ):
            parts.append(("-" if item.get("dir") == "desc" else "") + name)
    return ",".join(parts) or None


def sort_keys(sort: str | None) -> list[tuple[str, bool]]:
    """(name, descending) pairs of a sort string."""
    keys = []
    for part in (sort or "").split(","):
        name = part.strip()
        if name:
            keys.append((name.lstrip("-+"), name.startswith("-")))
    return keys


# --- rows ----------------------------------------------------------------------------


def record_title(entity: EntityModel, item: dict) -> str:
    value = item.get(entity.title_field) if entity.title_field else None
    return str(value) if value not in (None, "") else f"#{item['id']}"


def collect(needs: titles.Needs, columns: list[Column], items: list[dict]) -> None:
    """Note the targets and users the ``items``' cells will name."""
    for col in columns:
        source = col.via or col.field
        values = [item.get(source.name) for item in items]
        flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
        if col.via is not None:
            needs.add(titles.target_of(col.via), flat, [col.field.name])
            continue
        kind = col.field.value_spec["type"]
        if kind in ("reference", "multi_reference"):
            target = titles.target_of(col.field)
            if target is not None:
                needs.add(target, flat)
        elif kind == "user":
            needs.add_users(flat)


def fetch_targets(
    service: Records, actor: Actor, columns: list[Column], items: list[dict]
) -> titles.Targets:
    needs = titles.Needs()
    collect(needs, columns, items)
    found = titles.fetch(service, actor, needs)
    # A followed field that holds a user (``account.account_manager``) needs the user too.
    user_columns = [
        c for c in columns if c.via is not None and c.field.value_spec["type"] == "user"
    ]
    if user_columns:
        later = titles.Needs()
        for col in user_columns:
            target = titles.target_of(col.via)
            rows = found.records.get(titles.entity_key(target), {}).values()
            later.add_users(row.get(col.field.name) for row in rows)
        found.users.update(titles.fetch(service, actor, later).users)
    return found


def value_of(col: Column, item: dict, targets: titles.Targets) -> Any:
    if col.via is None:
        return item.get(col.field.name)
    target = titles.target_of(col.via)
    found = targets.record(target, item.get(col.via.name))
    return None if found is None else found.get(col.field.name)


def shape(
    entity: EntityModel,
    columns: list[Column],
    items: list[dict],
    targets: titles.Targets,
    *,
    linked: bool = True,
) -> list[Row]:
    """Rows of cells; the title links to the record's page where ``linked``."""
    rows = []
    for item in items:
        title = record_title(entity, item)
        href = detail_url(entity, item["id"]) if linked else None
        cells = []
        for col in columns:
            if col.via is None and col.field.name == entity.title_field:
                cells.append(Cell("links", links=[Link(title, href)]))
            else:
                cells.append(cell(col.field, value_of(col, item, targets), targets))
        rows.append(Row(item["id"], item.get("version", 0), title, href, cells, item))
    return rows
