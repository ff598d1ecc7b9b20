"""Dashboard snapshots: each widget's data as computed at a moment, shared through the database.

A widget sums or counts a whole table; over a million rows that takes a second,
which no page may spend. So a dashboard page shows snapshots with the moment
they were computed ("as of"), and a refresh (a button, the page itself when its
snapshots are old, or ``crm dashboards refresh`` from cron) computes them anew.

One snapshot serves an **audience**, the people whose numbers are the same:

* ``all``: whoever reads, in full and without row rules, every entity the
  widget reads (its entity, the parents of a child entity, every entity a
  reference in its field, group or filter leads to), may read the title of
  the records it groups by, and whose filter does not read ``$user``. Their
  numbers are the admin's, so they share one snapshot.
* anyone else (``read:own``, row rules, a filter on ``$user``...) gets snapshots
  of their own: ``user:<id>:<digest of who they are>`` (id, username, roles:
  all a rule can read of them), so a change of roles never shows numbers
  computed with the old ones, and no one ever sees another's.

Whether the actor may see a widget at all (its entity, field and group) is
decided each time from the metadata, never kept: a widget they may not see is
"refused" and needs no snapshot.

A snapshot holds the app document's digest when computed: after a publish that
changes the document it is void (as if missing). Labels are kept as written
(every language; ``records.dashboards.localised`` words them), and a pareto
keeps its ``KEPT_GROUPS`` largest groups, with ``group_count`` counting all.

Refreshes may run at once in several workers: each writes with an upsert, so
the last one wins and none fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from metamodel.errors import NotFound
from metamodel.jsonlogic import variables
from metamodel.model import EntityModel, FieldModel
from metamodel.system_tables import dashboard_snapshots as snapshots

from . import access
from .actor import SYSTEM, Actor
from .dashboards import (
    compute_widgets,
    find_dashboard,
    heading,
    refusal,
    refused,
    widget_label,
)

ALL = "all"
# A pareto widget keeps its largest groups only: a page shows fewer, and ten
# thousand accounts would make every page read a megabyte. Its classes count all.
KEPT_GROUPS = 100


@dataclass(frozen=True)
class Snapshot:
    data: dict[str, Any]  # the widget as ``compute_widgets`` gives it
    computed_at: dt.datetime


@dataclass
class Slot:
    """One widget of a dashboard for one actor: refused, or its snapshot if there is one."""

    index: int
    definition: dict[str, Any]
    label: Any  # as written
    audience: str | None  # None when refused
    denied: dict[str, Any] | None = None  # the refused widget (``refused``), labels as written
    snapshot: Snapshot | None = None

    def state(self, now: dt.datetime, max_age: dt.timedelta) -> str:
        """``refused``, ``missing``, ``stale`` (older than ``max_age``) or ``fresh``."""
        if self.audience is None:
            return "refused"
        if self.snapshot is None:
            return "missing"
        return "fresh" if now - self.snapshot.computed_at <= max_age else "stale"


@dataclass
class Board:
    """A dashboard as an actor's page shows it: its definition and a slot per widget."""

    app: str
    index: int  # the dashboard's position in the app document
    definition: dict[str, Any]
    digest: str  # of the app document the snapshots must match
    slots: list[Slot] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.definition["name"]

    def heading(self, language: str) -> dict[str, Any]:
        return heading(self.definition, language)


# --- audiences -----------------------------------------------------------------------


def audience(actor: Actor, entity: EntityModel, widget: dict) -> str:
    """``all``, or the actor's own audience: see the module's docstring."""
    shared = (
        not _reads_user(widget)
        and all(_reads_in_full(actor, read) for read in entities_read(entity, widget))
        and all(_titles_readable(actor, read) for read in entities_read(entity, widget))
    )
    return ALL if shared else personal(actor)


def personal(actor: Actor) -> str:
    """The actor's own audience: their id, and a digest of all a rule can read of them."""
    who = json.dumps(actor.context(), sort_keys=True, ensure_ascii=False)
    return f"user:{actor.id}:{hashlib.sha256(who.encode()).hexdigest()[:16]}"


def entities_read(entity: EntityModel, widget: dict) -> list[EntityModel]:
    """The widget's entity, the parents owning its rows, and every entity its paths reach."""
    found = [entity]
    owner = entity
    while owner.is_child and (parent := owner.parent) is not None:
        owner = parent[0]
        found.append(owner)
    paths = [widget.get(key) for key in ("field", "group_by")]
    if widget.get("filter") is not None:
        paths += [name for name, _ in variables(widget["filter"])]
    for path in paths:
        if not isinstance(path, str) or path.startswith("$"):
            continue
        here: EntityModel | None = entity
        for segment in path.split("."):
            fld = here.fields.get(segment) if here is not None else None
            here = _records_of(fld) if fld is not None else None
            if here is None:
                break
            if here not in found:
                found.append(here)
    return found


def _records_of(fld: FieldModel) -> EntityModel | None:
    """The entity whose records a field's values are (a lookup's too), or None."""
    while fld.type_name == "lookup":
        fld = fld.lookup_source()
    return fld.target


def _reads_user(widget: dict) -> bool:
    rule = widget.get("filter")
    names = [name for name, _ in variables(rule)] if rule is not None else []
    return any(name == "$user" or name.startswith("$user.") for name in names)


def _reads_in_full(actor: Actor, entity: EntityModel) -> bool:
    return (
        access.grant(actor, entity, "read") == "all" and access.row_rules_for(actor, entity) is None
    )


def _titles_readable(actor: Actor, entity: EntityModel) -> bool:
    title = entity.fields.get(entity.title_field or "")
    return title is None or access.readable(actor, title)


# --- reading -------------------------------------------------------------------------


def board(records, conn: Connection, actor: Actor, app: str, name: str) -> Board:
    """The dashboard ``name`` of ``app`` for ``actor``, with the snapshots there are.

    One query (the snapshots); NotFound for an unknown app or dashboard,
    Forbidden when its roles leave the actor out.
    """
    published = records.registry.app(app, conn)
    model = published.model
    index, definition = find_dashboard(model, actor, name)
    found = Board(app, index, definition, published.stored.digest)
    for w_index, widget in enumerate(definition.get("widgets", [])):
        entity = model.entities.get(widget.get("entity"))
        if entity is None:
            raise NotFound(f"app '{app}' has no entity '{widget.get('entity')}'")
        label = widget_label(entity, widget)
        reason = refusal(actor, entity, widget)
        if reason is not None:
            slot = Slot(w_index, widget, label, None, refused(entity, widget, reason))
        else:
            slot = Slot(w_index, widget, label, audience(actor, entity, widget))
        found.slots.append(slot)
    wanted = {slot.audience for slot in found.slots if slot.audience is not None}
    if wanted:
        query = select(
            snapshots.c.widget,
            snapshots.c.audience,
            snapshots.c.data,
            snapshots.c.computed_at,
        ).where(
            snapshots.c.app == app,
            snapshots.c.dashboard == name,
            snapshots.c.audience.in_(sorted(wanted)),
            snapshots.c.digest == found.digest,
        )
        kept = {(row.widget, row.audience): row for row in conn.execute(query)}
        for slot in found.slots:
            row = kept.get((slot.index, slot.audience))
            if row is not None:
                slot.snapshot = Snapshot(row.data, row.computed_at)
    return found


# --- refreshing ----------------------------------------------------------------------


def refresh(
    records,
    actor: Actor,
    app: str,
    name: str,
    *,
    older_than: dt.timedelta | None = None,
) -> Board:
    """Compute the actor's snapshots of the dashboard anew and keep them; the board after.

    With ``older_than``, only the snapshots missing or older than that (another
    worker may have refreshed the rest meanwhile). The computing reads in one
    transaction; the writing is a short one of its own, so a long computation
    never holds SQLite's write lock.
    """
    with records.reading() as conn:
        found = board(records, conn, actor, app, name)
        now = records.clock()
        due = [
            slot
            for slot in found.slots
            if slot.audience is not None
            and (older_than is None or slot.state(now, older_than) != "fresh")
        ]
        computed = compute_widgets(
            records, conn, actor, app, found.index, found.definition, [s.index for s in due]
        )
    for slot in due:
        slot.snapshot = Snapshot(kept_data(computed[slot.index]), now)
    if due:
        with records.writing(fresh=True) as conn:
            store(conn, found, due)
            if actor.id is not None:
                _forget_old(conn, found, actor)
    return found


def refresh_shared(records, app: str | None = None, name: str | None = None) -> Iterator[dict]:
    """Compute the ``all`` snapshots of every dashboard (of ``app``, or only ``name``).

    Yields ``{app, dashboard, computed, personal}`` per dashboard: how many widgets
    were computed, and how many only have audiences of one user each (a filter
    on ``$user``), which only their users' pages refresh. NotFound for an unknown
    app or dashboard.
    """
    with records.reading() as conn:
        apps = [app] if app is not None else records.registry.app_names()
        chosen = []
        for app_name in apps:
            model = records.registry.app(app_name, conn).model
            names = [d["name"] for d in model.list_of("dashboards")]
            if name is not None:
                if name not in names:
                    raise NotFound(f"app '{app_name}' has no dashboard '{name}'")
                names = [name]
            chosen += [(app_name, dashboard) for dashboard in names]
    for app_name, dashboard in chosen:
        with records.reading() as conn:
            found = board(records, conn, SYSTEM, app_name, dashboard)
            shared = [slot for slot in found.slots if slot.audience == ALL]
            now = records.clock()
            computed = compute_widgets(
                records,
                conn,
                SYSTEM,
                app_name,
                found.index,
                found.definition,
                [s.index for s in shared],
            )
        for slot in shared:
            slot.snapshot = Snapshot(kept_data(computed[slot.index]), now)
        with records.writing(fresh=True) as conn:
            store(conn, found, shared)
        yield {
            "app": app_name,
            "dashboard": dashboard,
            "computed": len(shared),
            "personal": len(found.slots) - len(shared),
        }


def kept_data(widget: dict[str, Any]) -> dict[str, Any]:
    """What a snapshot keeps of a computed widget: a pareto's largest groups only."""
    groups = widget.get("groups")
    if groups is None:
        return widget
    return widget | {"groups": groups[:KEPT_GROUPS], "group_count": len(groups)}


def store(conn: Connection, found: Board, slots: list[Slot]) -> None:
    """Insert or replace the snapshots of ``slots``; those of older metadata go."""
    conn.execute(
        delete(snapshots).where(
            snapshots.c.app == found.app,
            snapshots.c.dashboard == found.name,
            snapshots.c.digest != found.digest,
        )
    )
    if not slots:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(snapshots)
    statement = statement.on_conflict_do_update(
        index_elements=[
            snapshots.c.app,
            snapshots.c.dashboard,
            snapshots.c.widget,
            snapshots.c.audience,
        ],
        set_={
            "data": statement.excluded.data,
            "digest": statement.excluded.digest,
            "computed_at": statement.excluded.computed_at,
        },
    )
    # In the order of the primary key, so concurrent refreshes lock rows alike.
    rows = sorted(
        (
            {
                "app": found.app,
                "dashboard": found.name,
                "widget": slot.index,
                "audience": slot.audience,
                "data": slot.snapshot.data,
                "digest": found.digest,
                "computed_at": slot.snapshot.computed_at,
            }
            for slot in slots
        ),
        key=lambda row: (row["widget"], row["audience"]),
    )
    conn.execute(statement, rows)


def _forget_old(conn: Connection, found: Board, actor: Actor) -> None:
    """Drop the actor's snapshots kept under an audience no longer theirs (their roles
    changed): no one would read them again."""
    conn.execute(
        delete(snapshots).where(
            snapshots.c.app == found.app,
            snapshots.c.dashboard == found.name,
            snapshots.c.audience.like(f"user:{actor.id}:%"),
            snapshots.c.audience != personal(actor),
        )
    )
