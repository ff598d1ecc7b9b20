"""A record's values as a list shows them: formatted per field type, in the user's language.

Each value becomes a :class:`Cell`, plain data a template macro draws
(``lists/_cells.html``); nothing here produces HTML, so every label and value
is escaped by the template. Values arrive as the record service serialises
them (decimals as strings, dates ISO 8601) or raw from the database (fields of
a referenced record); both are read alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal
from flask import current_app, g, url_for
from flask_babel import get_locale, get_timezone
from flask_babel import gettext as _

from metamodel import field_types
from metamodel.model import EntityModel, FieldModel
from metamodel.text import localise
from records.serialize import json_value

from ..i18n import language
from .titles import Targets, target_of

LONG_TEXT_CHARS = 120
NUMBER_TYPES = ("integer", "decimal", "currency", "percent")


@dataclass
class Chip:
    text: str
    color: str | None = None


@dataclass
class Link:
    text: str
    href: str | None


@dataclass
class Cell:
    """``kind`` picks the drawing: text, number, chips, links, stars, boolean, empty."""

    kind: str
    text: str = ""
    chips: list[Chip] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    stars: int = 0
    out_of: int = 0
    yes: bool = False
    title: str = ""  # the whole value, where the text is shortened


EMPTY = Cell("empty")


# A record id no real URL holds: the detail URL is built once per entity with it, then filled.
_ID_MARK = 987654321987654321


def detail_url(entity: EntityModel, record_id: Any) -> str | None:
    """The record's detail page, once the record pages exist.

    A page of records names hundreds of them (titles, references, cards): building
    each URL through the router would cost more than the rest of the cell, so the
    URL is built once per entity and request, and the id is put into it.
    """
    if "records.detail" not in current_app.view_functions:
        return None
    if not isinstance(record_id, int) or isinstance(record_id, bool) or record_id < 0:
        return url_for(
            "records.detail", app=entity.app.name, entity=entity.name, record_id=record_id
        )
    shapes = g.setdefault("crm_detail_urls", {})
    key = (entity.app.name, entity.name)
    shape = shapes.get(key)
    if shape is None:
        built = url_for(
            "records.detail", app=entity.app.name, entity=entity.name, record_id=_ID_MARK
        )
        head, mark, tail = built.partition(str(_ID_MARK))
        shape = shapes[key] = (head, tail) if mark and str(_ID_MARK) not in tail else ()
    if not shape:
        return url_for(
            "records.detail", app=entity.app.name, entity=entity.name, record_id=record_id
        )
    return f"{shape[0]}{record_id}{shape[1]}"


def option_chip(spec: dict, value: Any) -> Chip:
    for option in spec.get("options", []):
        if option["value"] == value:
            label = localise(option.get("label"), language()) or option["value"]
            return Chip(label, option.get("color"))
    return Chip(str(value))


def option_label(spec: dict, value: Any) -> str:
    return option_chip(spec, value).text


def decimal_of(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def number_text(spec: dict, value: Any) -> str:
    kind = spec["type"]
    number = decimal_of(value)
    if number is None:
        return str(value)
    locale = get_locale()
    if kind == "integer":
        return format_decimal(number, format="#,##0", locale=locale)
    if kind == "currency":
        currency = spec.get("currency") or current_app.config["CRM"]["default_currency"]
        return format_currency(number, currency, locale=locale)
    if kind == "percent":
        return format_decimal(number, locale=locale, decimal_quantization=False) + "%"
    scale = field_types.decimal_scale(spec)
    pattern = "#,##0" + ("." + "0" * scale if scale else "")
    return format_decimal(number, format=pattern, locale=locale)


def date_text(value: Any) -> str:
    try:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return format_date(day, "medium", locale=get_locale())


def datetime_text(value: Any) -> str:
    try:
        stamp = dt.datetime.fromisoformat(str(json_value(value)).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    locale, zone = get_locale(), get_timezone()
    day = format_date(stamp.astimezone(zone).date(), "medium", locale=locale)
    return f"{day} {format_time(stamp, 'HH:mm', tzinfo=zone, locale=locale)}"


def _safe_href(url: str) -> str | None:
    """Only web links become links: a ``javascript:`` value stays text."""
    return url if urlsplit(url).scheme in ("http", "https") else None


def cell(fld: FieldModel, value: Any, targets: Targets) -> Cell:
    """``value`` of field ``fld`` as a list cell."""
    value = json_value(value)
    if value is None or value == "" or value == []:
        return EMPTY
    spec = fld.value_spec
    kind = spec["type"]
    if kind in NUMBER_TYPES:
        return Cell("number", number_text(spec, value))
    if kind in ("select", "multiselect"):
        values = value if isinstance(value, list) else [value]
        return Cell("chips", chips=[option_chip(spec, v) for v in values])
    if kind == "rating":
        out_of = int(spec.get("max", 5))
        stars = max(0, min(int(value), out_of)) if isinstance(value, int) else 0
        return Cell("stars", _("%(n)s of %(max)s", n=stars, max=out_of), stars=stars, out_of=out_of)
    if kind == "boolean":
        return Cell("boolean", _("Yes") if value else _("No"), yes=bool(value))
    if kind == "date":
        return Cell("text", date_text(value))
    if kind == "datetime":
        return Cell("text", datetime_text(value))
    if kind in ("reference", "multi_reference"):
        return _references(fld, value, targets)
    if kind == "user":
        return Cell("text", targets.users.get(value, f"#{value}"))
    if kind == "email":
        return Cell("links", links=[Link(str(value), f"mailto:{value}")])
    if kind == "phone":
        return Cell("links", links=[Link(str(value), f"tel:{value}")])
    if kind == "url":
        return Cell("links", links=[Link(str(value), _safe_href(str(value)))])
    if kind == "location":
        return Cell("text", _location(value))
    if kind in ("file", "signature"):
        names = [str(f.get("name", "")) for f in value if isinstance(f, dict)]
        return Cell("text", ", ".join(names))
    text = str(value)
    if len(text) > LONG_TEXT_CHARS:
        return Cell("text", text[:LONG_TEXT_CHARS].rstrip() + "…", title=text)
    return Cell("text", text)


def _references(fld: FieldModel, value: Any, targets: Targets) -> Cell:
    target = target_of(fld)
    ids = value if isinstance(value, list) else [value]
    links = []
    for record_id in ids:
        title = targets.title(target, record_id) if target is not None else None
        readable = target is not None and targets.record(target, record_id) is not None
        href = detail_url(target, record_id) if readable else None
        links.append(Link(title or f"#{record_id}", href))
    return Cell("links", links=links)


def _location(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    if value.get("address"):
        return str(value["address"])
    return f"{value.get('lat')}, {value.get('lng')}"
