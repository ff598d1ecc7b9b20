"""Dashboards, computed: each widget's number, series or ABC groups, from the database.

A dashboard (``{name, label, roles, widgets}`` in the app document) is seen by
the roles it lists (``admin`` always; without ``roles``, by everyone). Each
widget aggregates, in SQL, the live records of its entity that the caller may
read (``read:own`` and row rules apply as in a list; see ``aggregation``),
narrowed by its ``filter``. A widget whose entity, field or group the caller
may not read is not computed: it comes back with ``"permitted": false`` and a
``message``, so the rest of the dashboard still shows. A widget the database
cannot compute (a filter SQL cannot evaluate exactly) refuses the whole
dashboard with a ValidationFailed naming ``/dashboards/N/widgets/M/...``.

What :func:`compute_dashboard` returns (JSON-ready; Chart.js can take it as is)::

    {"name": "sales_kpis", "label": "Sales KPIs", "description": "...",  # if any
     "as_of": "2025-03-05T09:00:00.123456Z",  # when the computation started
     "widgets": [
       {"type": "number", "label": "Open pipeline", "entity": "deal", "permitted": true,
        "aggregate": "sum", "field": "amount", "currency": "CNY",  # currency fields only
        "value": "1250000.00"},
       {"type": "chart", "chart": "funnel", "label": "Deals by stage", "entity": "deal",
        "permitted": true, "aggregate": "count", "group_by": "stage",  # + field, period
        "series": [{"key": "lead", "label": "Lead", "value": 3, "color": "#7f8c8d"}, ...]},
       {"type": "pareto", "label": "Account value (ABC)", "entity": "deal", "permitted": true,
        "aggregate": "sum", "group_by": "account", "field": "amount",
        "total": "5000.00",
        "groups": [{"key": 7, "label": "Acme", "value": "2500.00", "rank": 1,
                    "share": 0.5, "cumulative": 0.5, "class": "A"}, ...],
        "classes": [{"class": "A", "limit": 0.8, "groups": 2, "value": "4000.00",
                     "share": 0.8}, ...]},
       {"type": "chart", "label": "...", "entity": "contract", "permitted": false,
        "message": "you may not read contract records"}]}

Values: counts and sums of integer fields are JSON integers; sums of decimal,
currency and percent fields are exact decimal strings at the field's scale;
averages are decimal strings with at least 4 decimals, or null over no rows.
Over no rows a count is 0 and a sum is 0. Chart.js reads numeric strings as
numbers, so ``series[].value`` can be a dataset's data directly, ``label`` its
labels and ``color`` its backgroundColor.

Series: one item per group (see ``chart_groups`` for keys, labels and order:
select and state options in their order, funnels included, every option even
without rows; periods in time order with the empty ones between; other groups
by value, largest first); rows without a value last, under key null, label
"(empty)". Pareto groups: only groups with rows, ranked by value, with share,
cumulative share and class (see ``pareto``); ``classes`` sums them up per
class, the rest (C by default) last.

Texts (labels) are given in ``language``, then English, then any.
:func:`compute_widgets` gives the widgets with their labels as written instead
(a string, or a map of language code to string), keyed by position: the page
keeps them as snapshots (``records.dashboard_snapshots``) for every language,
and :func:`localised` words them when shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from metamodel.errors import NotFound
from metamodel.messages import Label, Message
from metamodel.model import AppModel, EntityModel
from metamodel.text import localise

from . import access
from .actor import Actor
from .aggregation import (
    Measure,
    check_groupable,
    check_measure,
    grouped,
    period_bucket,
    resolve,
    unreadable,
    widget_rows,
)
from .chart_groups import Groups
from .errors import Forbidden
from .pareto import classify
from .serialize import json_value

DEFAULT_AGGREGATE = {"number": "count", "chart": "count", "pareto": "sum"}
# The keys of a widget's definition its result repeats, for the page to title and format it.
ECHOED = ("chart", "group_by", "field", "period")


def may_see(actor: Actor, dashboard: dict) -> bool:
    roles = dashboard.get("roles")
    return actor.is_admin or roles is None or bool(actor.roles & set(roles))


def list_dashboards(records, actor: Actor, app: str, language: str = "en") -> list[dict]:
    """``[{name, label, description?, widgets}]``: the dashboards of ``app`` the actor may see."""
    with records.reading() as conn:
        model = records.registry.app(app, conn).model
        return [
            heading(dashboard, language) | {"widgets": len(dashboard.get("widgets", []))}
            for dashboard in model.list_of("dashboards")
            if may_see(actor, dashboard)
        ]


def find_dashboard(model: AppModel, actor: Actor, name: str) -> tuple[int, dict]:
    """The position and definition of the dashboard ``name`` the actor may see.

    NotFound for an unknown dashboard; Forbidden when its roles leave the actor out.
    """
    found = next(
        (
            (index, dashboard)
            for index, dashboard in enumerate(model.list_of("dashboards"))
            if dashboard.get("name") == name
        ),
        None,
    )
    if found is None:
        raise NotFound(Message("app '{app}' has no dashboard '{name}'", app=model.name, name=name))
    index, dashboard = found
    if not may_see(actor, dashboard):
        roles = ", ".join(dashboard.get("roles") or ["admin"])
        raise Forbidden(
            Message(
                "the dashboard '{name}' is for these roles: {roles}",
                name=Label(dashboard.get("label") or name, name),
                roles=roles,
            )
        )
    return index, dashboard


def compute_dashboard(records, actor: Actor, app: str, name: str, language: str = "en") -> dict:
    """The dashboard ``name`` of ``app`` with every widget computed for ``actor``, now.

    ``as_of`` is the moment the computation started. NotFound for an unknown app
    or dashboard; Forbidden when its roles leave the actor out.
    """
    with records.reading() as conn:
        model = records.registry.app(app, conn).model
        index, dashboard = find_dashboard(model, actor, name)
        as_of = records.clock()
        widgets = compute_widgets(records, conn, actor, app, index, dashboard)
    return heading(dashboard, language) | {
        "as_of": json_value(as_of),
        "widgets": [localised(widget, language) for widget in widgets.values()],
    }


def compute_widgets(
    records,
    conn,
    actor: Actor,
    app: str,
    index: int,
    dashboard: dict,
    which: Iterable[int] | None = None,
) -> dict[int, dict]:
    """Widgets of the dashboard at ``index`` (those at the positions ``which``, else all),
    computed for ``actor``, by position, with their labels as written (see ``localised``)."""
    computer = _Computer(records, conn, actor, app)
    wanted = None if which is None else set(which)
    return {
        w_index: computer.widget(widget, f"/dashboards/{index}/widgets/{w_index}")
        for w_index, widget in enumerate(dashboard.get("widgets", []))
        if wanted is None or w_index in wanted
    }


def localised(widget: dict, language: str) -> dict:
    """A computed widget with its labels (and its groups') in ``language``."""
    worded = dict(widget, label=localise(widget.get("label"), language))
    for key in ("series", "groups"):
        if key in widget:
            worded[key] = [
                dict(item, label=localise(item.get("label"), language)) for item in widget[key]
            ]
    return worded


def heading(dashboard: dict, language: str) -> dict[str, Any]:
    found = {
        "name": dashboard["name"],
        "label": localise(dashboard.get("label"), language) or dashboard["name"],
    }
    if dashboard.get("description"):
        found["description"] = localise(dashboard["description"], language)
    return found


def widget_label(entity: EntityModel, widget: dict) -> Any:
    """The widget's label as written: its own, else its entity's plural."""
    return widget.get("label") or entity.plural_label


def refusal(actor: Actor, entity: EntityModel, widget: dict) -> str | None:
    """Why the actor may not see this widget, or None."""
    if access.grant(actor, entity, "read") is None:
        return f"you may not read {entity.name} records"
    for key in ("field", "group_by"):
        name = widget.get(key)
        if isinstance(name, str) and (reason := unreadable(actor, entity, name)):
            return reason
    return None


def refused(entity: EntityModel, widget: dict, message: str) -> dict[str, Any]:
    """The result of a widget the actor may not see (its label as written)."""
    return {
        "type": widget["type"],
        "label": widget_label(entity, widget),
        "entity": entity.name,
        "permitted": False,
        "message": message,
    }


class _Computer:
    """Computes the widgets of one dashboard, in one transaction, for one actor.

    Labels stay as written (no language for ``Groups``): ``localised`` words them.
    """

    def __init__(self, records, conn, actor: Actor, app: str):
        self.records = records
        self.conn = conn
        self.actor = actor
        self.app = app
        self.context = records.context(actor)

    def widget(self, widget: dict, at: str) -> dict[str, Any]:
        kind = widget["type"]
        runtime = self.records.runtime(self.app, widget["entity"], self.conn)
        aggregate = widget.get("aggregate", DEFAULT_AGGREGATE[kind])
        reason = refusal(self.actor, runtime.entity, widget)
        if reason is not None:
            return refused(runtime.entity, widget, reason)
        head = {
            "type": kind,
            "label": widget_label(runtime.entity, widget),
            "entity": runtime.name,
            "permitted": True,
            "aggregate": aggregate,
        }
        head |= {key: widget[key] for key in ECHOED if key in widget}
        field = widget.get("field")
        path = resolve(runtime, self.records.tables_for, field, at + "/field") if field else None
        measure = Measure(aggregate, path)
        check_measure(measure, at)
        if path is not None and path.spec["type"] == "currency" and path.spec.get("currency"):
            head["currency"] = path.spec["currency"]
        where = widget_rows(self.records, self.conn, self.actor, runtime, self.context, widget, at)
        measured = [path] if path is not None else []
        if kind == "number":
            ((_, value),) = grouped(self.conn, runtime.table, where, measure, None, measured)
            return json_value(head | {"value": value})
        group_path = resolve(
            runtime, self.records.tables_for, widget.get("group_by"), at + "/group_by"
        )
        period = widget.get("period")
        if period is not None:
            key = period_bucket(group_path, period, self.conn.dialect.name, at)
        else:
            check_groupable(group_path, at + "/group_by")
            key = group_path.column
        found = grouped(self.conn, runtime.table, where, measure, key, [group_path, *measured])
        groups = Groups(self.records, self.actor, self.context, group_path, period)
        if kind == "chart":
            series = groups.series(self.conn, found, measure.empty, None)
            return json_value(head | {"series": series})
        items = groups.series(self.conn, found, measure.empty, None, complete=False)
        return json_value(head | self._pareto(items, measure, widget.get("classes")))

    @staticmethod
    def _pareto(items: list[dict], measure: Measure, classes: dict | None) -> dict[str, Any]:
        # By key first, so that equal values always rank in the same order.
        items.sort(
            key=lambda item: (item["key"] is None, 0 if item["key"] is None else item["key"])
        )
        ranked = classify(items, classes)
        for summary in ranked["classes"]:
            summary["value"] = measure.value(0, summary["value"])
        return {
            "total": measure.value(0, ranked["total"]),
            "groups": ranked["groups"],
            "classes": ranked["classes"],
        }
