"""Exporting an app as a preset: its current document, and its records as sample data.

With records, each live record becomes a sample record as
:func:`presets.catalog.import_sample_data` reads it: a reference names its record
by value (``{"$ref": "account", "name": "Acme"}``), by the target's title field
where that tells the record apart, else by a unique field or the fewest fields
that do; child tables as lists of rows; user fields by username. What a sample
record cannot give is left out and said so: files, read-only fields, owners,
and the values the system computes or numbers (they are computed afresh).

Pure Python: no Flask, for ``crm app export`` and the admin pages.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from metamodel import store
from metamodel.errors import CrmError, NotFound, Problem
from metamodel.model import EntityModel, FieldModel
from metamodel.pointer import join
from metamodel.system_tables import users
from records.actor import Actor
from records.query import MAX_PER_PAGE, ListQuery
from records.service import Records

from .catalog import REF

FILE_TYPES = ("file", "signature")
# Values a reference can name its record by: they are written as given and compared as such.
NAMING_TYPES = {
    "text",
    "long_text",
    "email",
    "phone",
    "url",
    "integer",
    "decimal",
    "currency",
    "percent",
    "date",
    "datetime",
    "select",
    "boolean",
    "rating",
}


class ExportRefused(CrmError):
    code = "export_refused"


@dataclass
class ExportedApp:
    document: dict[str, Any]
    # Sample records per entity (with records only).
    counts: dict[str, int] = field(default_factory=dict)
    # What the sample data leaves out, in words.
    notes: list[str] = field(default_factory=list)


def export_app(
    records: Records, actor: Actor, app: str, *, with_records: bool = False
) -> ExportedApp:
    """The current document of ``app``, as a preset; ``with_records`` adds its records.

    Refused (ExportRefused, pointing into the sample data) when a reference
    cannot name its record unambiguously: two records alike in every field a
    reference may name them by.
    """
    with records.reading() as conn:
        stored = store.current(conn, app)
    if stored is None:
        raise NotFound(f"there is no app named '{app}'")
    document = copy.deepcopy(stored.document)
    if not with_records:
        return ExportedApp(document)
    document.pop("sample_data", None)
    exporter = _Exporter(records, actor, app)
    sample = exporter.run()
    if exporter.problems:
        raise ExportRefused(
            f"{len(exporter.problems)} references cannot name their record unambiguously",
            problems=exporter.problems,
        )
    if sample:
        document["sample_data"] = sample
    counts = {entity: len(rows) for entity, rows in sample.items()}
    return ExportedApp(document, counts, exporter.notes())


class _Exporter:
    def __init__(self, records: Records, actor: Actor, app: str):
        self.records = records
        self.actor = actor
        self.app = app
        self.problems: list[Problem] = []
        self.left_out: Counter[tuple[str, str]] = Counter()
        self.owned = False
        self._items: dict[tuple[str, str], list[dict]] = {}
        self._names: dict[tuple[str, str], dict[int, dict | None]] = {}
        self._usernames: dict[int, str] | None = None

    def run(self) -> dict[str, list[dict]]:
        with self.records.reading() as conn:
            model = self.records.registry.app(self.app, conn).model
        sample = {}
        for entity in model.entities.values():
            if entity.is_child:
                continue
            rows = []
            for index, item in enumerate(self.items(self.app, entity.name)):
                at = join("/sample_data", entity.name, index)
                rows.append(self.record(entity, item, at))
                self.owned = True
            if rows:
                sample[entity.name] = rows
        return sample

    def notes(self) -> list[str]:
        notes = []
        for (entity, name), count in sorted(self.left_out.items()):
            fld = self.records.runtime(self.app, entity).entity.fields[name]
            why = (
                "files are not exported"
                if fld.type_name in FILE_TYPES
                else "a read-only field cannot be given in sample data"
            )
            notes.append(f"{entity}.{name}: {why} ({count} values left out)")
        if self.owned:
            notes.append(
                "owners are not exported: imported records belong to whoever imports them; "
                "autonumbers and computed fields are filled in afresh"
            )
        return notes

    # --- records ----------------------------------------------------------------

    def items(self, app: str, entity: str) -> list[dict]:
        """The live records of ``app.entity`` as the API gives them, oldest first."""
        key = (app, entity)
        if key not in self._items:
            found, page = [], 1
            while True:
                query = ListQuery(sort="id", page=page, per_page=MAX_PER_PAGE)
                batch = self.records.list(self.actor, app, entity, query)["items"]
                found += batch
                if len(batch) < MAX_PER_PAGE:
                    break
                page += 1
            self._items[key] = found
        return self._items[key]

    def record(self, entity: EntityModel, item: dict, at: str) -> dict:
        data = {}
        for fld in entity.fields.values():
            value = item.get(fld.name)
            if not exported(fld) or value is None or value == [] or value == "":
                continue
            if fld.type_name in FILE_TYPES or fld.doc.get("read_only"):
                self.left_out[(entity.name, fld.name)] += 1
                continue
            data[fld.name] = self.value(fld, value, join(at, fld.name))
        return data

    def value(self, fld: FieldModel, value: Any, at: str) -> Any:
        kind = fld.type_name
        if kind == "reference":
            return self.reference(fld, value, at)
        if kind == "multi_reference":
            return [self.reference(fld, v, join(at, i)) for i, v in enumerate(value)]
        if kind == "child_table":
            return [self.record(fld.target, row, join(at, i)) for i, row in enumerate(value)]
        if kind == "user":
            return self.username(value)
        return value

    def username(self, user_id: int) -> Any:
        if self._usernames is None:
            with self.records.reading() as conn:
                self._usernames = dict(conn.execute(select(users.c.id, users.c.username)).all())
        return self._usernames.get(user_id, user_id)

    # --- references by value ------------------------------------------------------

    def reference(self, fld: FieldModel, record_id: int, at: str) -> dict:
        target = fld.target
        app = target.app.name
        named = self.names(app, target).get(record_id)
        written = target.name if app == self.app else f"{app}.{target.name}"
        if named is None:
            self.problems.append(
                Problem(
                    at,
                    f"{written} record {record_id} cannot be named unambiguously: another "
                    "record has the same values in every field that could name it",
                )
            )
            return {REF: written, "id": record_id}
        return {REF: written, **named}

    def names(self, app: str, entity: EntityModel) -> dict[int, dict | None]:
        """For each record of ``entity``, the fewest fields that tell it apart (or None)."""
        key = (app, entity.name)
        if key not in self._names:
            items = self.items(app, entity.name)
            fields = naming_fields(entity)
            alike = {name: Counter(_text(item.get(name)) for item in items) for name in fields}
            self._names[key] = {item["id"]: _naming(item, items, fields, alike) for item in items}
        return self._names[key]


def exported(fld: FieldModel) -> bool:
    """Is the field written in sample data? (Computed and numbered fields are not.)"""
    return not fld.synthetic and not fld.computed and fld.type_name != "autonumber"


def naming_fields(entity: EntityModel) -> list[str]:
    """The fields a reference may name a record of ``entity`` by, best first."""
    usable = [
        f.name
        for f in entity.fields.values()
        if exported(f) and f.type_name in NAMING_TYPES and not f.doc.get("read_only")
    ]
    title = [entity.title_field] if entity.title_field in usable else []
    unique = [name for name in usable if entity.fields[name].unique]
    return list(dict.fromkeys(title + unique + usable))


def _naming(item: dict, items: list[dict], fields: list[str], alike: dict) -> dict | None:
    """The fields that name ``item``: one field, else the title field with one more, else all."""
    given = [name for name in fields if item.get(name) not in (None, "")]
    for name in given:
        if alike[name][_text(item[name])] == 1:
            return {name: item[name]}
    choices = [(given[0], name) for name in given[1:]] if given and given[0] == fields[0] else []
    choices += [tuple(given)] if len(given) > 2 else []
    others = [other for other in items if other["id"] != item["id"]]
    for names in choices:
        if not any(all(_text(other.get(n)) == _text(item[n]) for n in names) for other in others):
            return {name: item[name] for name in names}
    return None


def _text(value: Any) -> str:
    """A value as written in the document, to compare values as the import will."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


__all__ = ["ExportRefused", "ExportedApp", "export_app", "naming_fields"]
