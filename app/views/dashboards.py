"""The dashboard pages: each widget of a dashboard as a number, a chart or an ABC table.

The numbers are the core's (``records.dashboards.compute_dashboard``, which also
decides who may see a dashboard and which widgets they may read); this view
formats them for the user's language and hands each chart its data as JSON for
``static/js/dashboards.js``, which draws it with the vendored Chart.js. Every
chart also gets its data as a table, so the page reads without the canvas.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency, format_decimal, format_percent
from flask_babel import get_locale
from flask_babel import gettext as _

from metamodel.model import EntityModel
from metamodel.text import humanise, localise
from records.dashboards import compute_dashboard

from ..api.service import records_service
from ..i18n import language, text
from ..identity import page_actor
from .pages import page_blueprint, render_page

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


@blueprint.get("/<app>/dashboards/<name>")
def show(app: str, name: str):
    service = records_service()
    board = compute_dashboard(service, page_actor(), app, name, language())
    model = service.registry.app(app).model
    widgets = [
        _widget(model.entities.get(widget["entity"]), widget, index)
        for index, widget in enumerate(board["widgets"], start=1)
    ]
    return render_page(
        "dashboards/show.html",
        board=board,
        description=board.get("description"),
        app_label=text(model.label),
        widgets=widgets,
    )


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
        "hidden": len(ranked) - len(groups),
        "groups": format_decimal(len(ranked), locale=get_locale()),
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
