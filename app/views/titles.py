"""Titles of the records and users a page of records points at, fetched in bulk.

A list page shows a reference as its target's title and a user as a name. Asking
the record service for each target would cost one query per row; here every
referenced entity costs ONE query for the whole page (and users one more), so a
page costs the same number of queries whatever its size.

A title is only shown where the actor may read the target: the query is the
record service's own visibility query (``:own``, row rules), so a reference to a
record the actor may not read shows its id alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from metamodel.model import EntityModel, FieldModel
from metamodel.system_tables import users
from records import access
from records.actor import Actor
from records.errors import Forbidden
from records.query import visible
from records.service import Records

# Far above any page; ids beyond it (a wide multi_reference) are fetched in slices.
ID_SLICE = 1000


@dataclass
class Wanted:
    """What a page needs of one entity: these ids, with their title and these fields."""

    ids: set[int] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)


@dataclass
class Targets:
    """Found rows by entity key (``app.entity``) and id; users by id."""

    records: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)

    def record(self, entity: EntityModel, record_id: Any) -> dict[str, Any] | None:
        return self.records.get(entity_key(entity), {}).get(record_id)

    def title(self, entity: EntityModel, record_id: Any) -> str | None:
        found = self.record(entity, record_id)
        if found is None:
            return None
        title = found.get("$title")
        return None if title is None or title == "" else str(title)


def entity_key(entity: EntityModel) -> str:
    return f"{entity.app.name}.{entity.name}"


class Needs:
    """Collects, while a page is shaped, which targets and users it names."""

    def __init__(self) -> None:
        self.entities: dict[str, tuple[EntityModel, Wanted]] = {}
        self.user_ids: set[int] = set()

    def add(self, target: EntityModel, ids: Iterable[Any], fields: Iterable[str] = ()) -> None:
        _, wanted = self.entities.setdefault(entity_key(target), (target, Wanted()))
        wanted.ids.update(i for i in ids if isinstance(i, int) and not isinstance(i, bool))
        wanted.fields.update(fields)

    def add_users(self, ids: Iterable[Any]) -> None:
        self.user_ids.update(i for i in ids if isinstance(i, int) and not isinstance(i, bool))


def fetch(service: Records, actor: Actor, needs: Needs) -> Targets:
    """One query per referenced entity (ids in slices of ID_SLICE), one for the users."""
    found = Targets()
    if not needs.entities and not needs.user_ids:
        return found
    with service.reading() as conn:
        for key, (target, wanted) in needs.entities.items():
            if wanted.ids:
                found.records[key] = _records(conn, service, actor, target, wanted)
        if needs.user_ids:
            found.users = _user_names(conn, needs.user_ids)
    return found


def _records(conn, service: Records, actor: Actor, target: EntityModel, wanted: Wanted):
    runtime = service.runtime(target.app.name, target.name, conn)
    entity = runtime.entity
    try:
        query = visible(actor, runtime, service.tables_for, service.context(actor))
    except Forbidden:
        return {}
    table = runtime.table
    title = entity.fields.get(entity.title_field or "")
    columns = [table.c.id]
    if title is not None and title.has_column and access.readable(actor, title):
        columns.append(table.c[title.name].label("$title"))
    for name in sorted(wanted.fields):
        fld = entity.fields.get(name)
        if fld is not None and fld.has_column and access.readable(actor, fld):
            columns.append(table.c[name])
    ids = sorted(wanted.ids)
    rows: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), ID_SLICE):
        chosen = query.with_only_columns(*columns).where(
            table.c.id.in_(ids[start : start + ID_SLICE])
        )
        rows.update((row.id, dict(row._mapping)) for row in conn.execute(chosen))
    return rows


def first_titles(
    service: Records, actor: Actor, target: EntityModel, limit: int
) -> list[tuple[int, str]] | None:
    """Up to ``limit`` records of ``target`` the actor may read, as (id, title) by title.

    One query with a LIMIT and no count, so asking costs little however big the
    table is; None when the actor may not read the target at all.
    """
    with service.reading() as conn:
        runtime = service.runtime(target.app.name, target.name, conn)
        try:
            query = visible(actor, runtime, service.tables_for, service.context(actor))
        except Forbidden:
            return None
        table = runtime.table
        title = runtime.entity.fields.get(runtime.entity.title_field or "")
        if title is None or not title.has_column or not access.readable(actor, title):
            ids = conn.execute(
                query.with_only_columns(table.c.id).order_by(table.c.id).limit(limit)
            )
            return [(record_id, f"#{record_id}") for record_id in ids.scalars()]
        column = table.c[title.name]
        chosen = query.with_only_columns(table.c.id, column).order_by(column, table.c.id)
        rows = conn.execute(chosen.limit(limit)).all()
    return [(row[0], str(row[1]) if row[1] not in (None, "") else f"#{row[0]}") for row in rows]


def _user_names(conn, ids: set[int]) -> dict[int, str]:
    query = select(users.c.id, users.c.display_name, users.c.username).where(
        users.c.id.in_(sorted(ids))
    )
    return {row.id: row.display_name or row.username for row in conn.execute(query)}


def target_of(fld: FieldModel) -> EntityModel | None:
    """The entity a field's values point at (a reference, or a lookup copying one)."""
    while fld.type_name == "lookup":
        fld = fld.lookup_source()
    if fld.value_spec["type"] not in ("reference", "multi_reference"):
        return None
    return fld.target
