"""The dashboard pages: each widget of a dashboard as a number, a chart or an ABC table.

The page shows snapshots (``records.dashboard_snapshots``): the widgets as last
computed, "as of" that moment, and never computes one while it is asked for
(over a million rows that takes a second). Snapshots no older than
``dashboards.snapshot_max_age_seconds`` show as they are; older ones show with
their time while the browser asks for fresh ones at once (htmx, on load); a
widget without one shows "Computing…" until then. The Refresh button asks the
same endpoint, which computes the widgets anew (the core decides who may see a
dashboard and which widgets they may read), keeps them, and answers with the
widgets to swap in.

This view formats the numbers for the user's language and hands each chart its
data as JSON for ``static/js/dashboards.js``, which draws it with the vendored
Chart.js. Every chart also gets its data as a table, so the page reads without
the canvas.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from flask import current_app, redirect, render_template, request, url_for
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _

from metamodel.errors import CrmError
from metamodel.model import EntityModel
from metamodel.text import humanise, localise
from records import dashboard_snapshots as snapshots
from records.dashboards import localised
from records.errors import ValidationFailed

from ..api.service import records_service
from ..i18n import language, text
from ..identity import page_actor
from .pages import page_blueprint, render_page, wants_partial

blueprint = page_blueprint("dashboards", __name__, url_prefix="/a")

# Colours for charts whose groups have none of their own, and for the ABC classes.
PALETTE = (
    "#2563eb",
    "#f59e0b",
    "#10b981",
    "#ef4444",
    "#8b5cf6",
    "#0ea5e9",
    "#ec4899",
    "#84cc16",
    "#f97316",
    "#64748b",
)
CLASS_COLOURS = ("#057a55", "#d97706", "#6b7280", "#7c3aed", "#0e7490")
# Option colours are checked by the metadata schema; a colour is still only drawn if it is one.
COLOUR = re.compile(r"^#[0-9a-fA-F]{3,8}$")
NOTHING = "—"
# A pareto widget's table and chart show this many of the largest groups.
PARETO_ROWS = 50
MAX_AGE_SETTING = "/dashboards/snapshot_max_age_seconds"


def snapshot_max_age(settings: dict) -> dt.timedelta:
    """``dashboards.snapshot_max_age_seconds``, checked; a CrmError names it when wrong."""
    section = settings.get("dashboards")
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise CrmError("must hold settings, e.g. snapshot_max_age_seconds: 300", "/dashboards")
    seconds = section.get("snapshot_max_age_seconds", 300)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise CrmError(f"{seconds!r} is not a number of seconds (0 or more)", MAX_AGE_SETTING)
    return dt.timedelta(seconds=seconds)


# A wrong setting stops the app at start-up, not on the first dashboard shown.
blueprint.record_once(lambda state: snapshot_max_age(state.app.config["CRM"]))


@blueprint.get("/<app>/dashboards/<name>")
def show(app: str, name: str):
    service = records_service()
    with service.engine.connect() as conn:
        found = snapshots.board(service, conn, page_actor(), app, name)
    return render_page("dashboards/show.html", **_page(found))


@blueprint.post("/<app>/dashboards/<name>/refresh")
def refresh(app: str, name: str):
    """Compute the widgets anew: all of them (the Refresh button), or with ``stale`` set
    (the page asking by itself) only those still missing or old by now."""
    service = records_service()
    actor = page_actor()
    settings = current_app.config["CRM"]
    older_than = snapshot_max_age(settings) if request.form.get("stale") else None
    try:
        found = snapshots.refresh(service, actor, app, name, older_than=older_than)
        error = None
    except ValidationFailed as failed:
        # A widget the database cannot compute: the page says why, and asks no more.
        with service.engine.connect() as conn:
            found = snapshots.board(service, conn, actor, app, name)
        error = "; ".join(str(problem) for problem in failed.problems)
    if wants_partial():
        return render_template("dashboards/_board.html", **_page(found, True, error))
    if error is not None:
        return render_template("dashboards/show.html", **_page(found, True, error)), 422
    return redirect(url_for(".show", app=app, name=name), 303)


def _page(found: snapshots.Board, refreshed: bool = False, error: str | None = None) -> dict:
    """What the page and its refreshed part show: the heading, the widgets, "as of"."""
    service = records_service()
    model = service.registry.app(found.app).model
    now = service.clock()
    max_age = snapshot_max_age(current_app.config["CRM"])
    widgets, moments, due = [], [], False
    for slot in found.slots:
        state = slot.state(now, max_age)
        number = slot.index + 1
        if state == "missing":
            widgets.append(_pending(slot, number))
            due = True
            continue
        if state == "refused":
            data = slot.denied
        else:
            data = slot.snapshot.data
            moments.append(slot.snapshot.computed_at)
            due = due or state == "stale"
        entity = model.entities.get(slot.definition["entity"])
        shown = _widget(entity, localised(data, language()), number)
        # Just refreshed, a widget is as fresh as it gets (whatever the setting says).
        widgets.append(shown | {"pending": False, "stale": state == "stale" and not refreshed})
    heading = found.heading(language())
    return {
        "board": heading,
        "description": heading.get("description"),
        "app_label": text(model.label),
        "widgets": widgets,
        "as_of": _moment(min(moments), now) if moments else None,
        # Asked once: the answer never asks again, so a refresh cannot loop.
        "auto_refresh": due and not refreshed and error is None,
        "refresh_url": url_for(".refresh", app=found.app, name=found.name),
        "error": error,
    }


def _pending(slot: snapshots.Slot, number: int) -> dict[str, Any]:
    return {
        "id": f"widget-{number}",
        "type": slot.definition["type"],
        "label": localise(slot.label, language()),
        "permitted": True,
        "pending": True,
        "stale": False,
    }


def _moment(stamp: dt.datetime, now: dt.datetime) -> dict[str, str]:
    """When the widgets were computed, in the user's time zone: the time, the date too
    when not today."""
    zone, locale = get_timezone(), get_locale()
    local = stamp.astimezone(zone)
    time = format_time(local, "HH:mm", locale=locale)
    day = format_date(local.date(), "medium", locale=locale)
    return {
        "text": time if local.date() == now.astimezone(zone).date() else f"{day} {time}",
        "full": f"{day} {format_time(local, 'HH:mm:ss', locale=locale)}",
        "iso": stamp.isoformat(),
    }


# --- shaping each widget ----------------------------------------------------------------


def _widget(entity: EntityModel | None, widget: dict, index: int) -> dict[str, Any]:
    shown = {
        "id": f"widget-{index}",
        "type": widget["type"],
        "label": widget["label"],
        "permitted": widget["permitted"],
    }
    if not widget["permitted"]:
        return shown | {"message": widget.get("message", "")}
    currency = widget.get("currency")
    aggregate = widget.get("aggregate", "count")
    shown["measure"] = _measure_heading(aggregate, _path_label(entity, widget.get("field")))
    if widget["type"] == "number":
        return shown | {"text": amount_text(widget.get("value"), currency, aggregate)}
    shown["group"] = _path_label(entity, widget.get("group_by"))
    if widget["type"] == "chart":
        return shown | _chart(widget, currency, aggregate)
    return shown | _pareto(widget, currency, aggregate, shown["measure"])


def _chart(widget: dict, currency: str | None, aggregate: str) -> dict[str, Any]:
    series = widget.get("series", [])
    kind = widget.get("chart", "bar")
    colours = [_colour(item.get("color")) for item in series]
    if kind == "pie" or any(colours):
        # Each slice or bar its own colour: the option's, else the palette's.
        colours = [c or PALETTE[i % len(PALETTE)] for i, c in enumerate(colours)]
    else:
        colours = []
    return {
        "chart": kind,
        "rows": [
            {
                "label": item["label"],
                "text": amount_text(item.get("value"), currency, aggregate),
                "color": colours[i] if colours else None,
            }
            for i, item in enumerate(series)
        ],
        "data": {
            "chart": kind,
            "label": widget["label"],
            "labels": [item["label"] for item in series],
            "values": [_number(item.get("value")) for item in series],
            "colors": colours,
            "color": PALETTE[0],
            **_formatting(currency, aggregate),
        },
    }


def _pareto(widget: dict, currency: str | None, aggregate: str, measure: str) -> dict[str, Any]:
    class_colours = {
        summary["class"]: CLASS_COLOURS[i % len(CLASS_COLOURS)]
        for i, summary in enumerate(widget.get("classes", []))
    }
    ranked = widget.get("groups", [])
    # The largest groups only: formatting and drawing thousands of rows (every account of
    # a million deals) would cost seconds and help no one; the classes still count them all.
    # A snapshot keeps the largest groups only, and counts them all in group_count.
    count = widget.get("group_count", len(ranked))
    groups = ranked[:PARETO_ROWS]
    rows = [
        {
            "rank": group["rank"],
            "label": group["label"],
            "text": amount_text(group.get("value"), currency, aggregate),
            "share": share_text(group.get("share")),
            "cumulative": share_text(group.get("cumulative")),
            "class": group.get("class"),
            "color": class_colours.get(group.get("class")),
        }
        for group in groups
    ]
    classes = [
        {
            "class": summary["class"],
            "groups": summary["groups"],
            "text": amount_text(summary.get("value"), currency, aggregate),
            "share": share_text(summary.get("share")),
            "color": class_colours[summary["class"]],
        }
        for summary in widget.get("classes", [])
    ]
    return {
        "rows": rows,
        "hidden": count - len(groups),
        "groups": format_decimal(count, locale=get_locale()),
        "classes": classes,
        "total": amount_text(widget.get("total"), currency, aggregate),
        "data": {
            "chart": "pareto",
            "label": measure,
            "labels": [group["label"] for group in groups],
            "values": [_number(group.get("value")) for group in groups],
            "cumulative": [
                None if group.get("cumulative") is None else round(group["cumulative"] * 100, 2)
                for group in groups
            ],
            "colors": [class_colours.get(group.get("class"), PALETTE[0]) for group in groups],
            "cumulative_label": _("Cumulative share"),
            "cumulative_color": "#102a43",
            **_formatting(currency, aggregate),
        },
    }


def _formatting(currency: str | None, aggregate: str) -> dict[str, Any]:
    """What the script needs to write values as the tables do."""
    return {
        "locale": "zh-CN" if language() == "zh" else "en",
        "currency": currency,
        "decimals": 0 if aggregate == "count" else 2,
    }


def _measure_heading(aggregate: str, field: str | None) -> str:
    if aggregate == "count" or field is None:
        return _("Count")
    if aggregate == "avg":
        return _("Average %(field)s", field=field)
    return _("Sum of %(field)s", field=field)


def _path_label(entity: EntityModel | None, path: str | None) -> str | None:
    """The label of the field a widget names, following references (``account.tier``)."""
    if not path:
        return None
    label: Any = humanise(path.split(".")[-1])
    for segment in path.split("."):
        found = entity.fields.get(segment) if entity is not None else None
        if found is None:
            return localise(humanise(segment), language())
        label = found.label
        entity = found.target if found.type_name == "reference" else None
    return localise(label, language())


def _colour(value: Any) -> str | None:
    return value if isinstance(value, str) and COLOUR.match(value) else None


# --- numbers as words -------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _number(value: Any) -> int | float | None:
    """A value for the chart's axis (the tables show the exact one)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _decimal(value)
    return None if number is None else float(number)


def amount_text(value: Any, currency: str | None, aggregate: str = "sum") -> str:
    """A widget's value in the user's language: money with its currency, counts with separators.

    Sums keep the scale the core gives them (exact decimals); averages show up to two decimals.
    """
    number = _decimal(value)
    if number is None:
        return NOTHING if value is None else str(value)
    locale = get_locale()
    if currency:
        return format_currency(number, currency, locale=locale)
    if isinstance(value, int) or aggregate == "count":
        return format_decimal(number, format="#,##0", locale=locale)
    if aggregate == "avg":
        return format_decimal(number, format="#,##0.##", locale=locale)
    scale = max(0, -number.as_tuple().exponent)
    return format_decimal(
        number, format="#,##0" + ("." + "0" * scale if scale else ""), locale=locale
    )


def share_text(share: Any) -> str:
    if share is None:
        return NOTHING
    return format_percent(share, format="#,##0.0%", locale=get_locale())
