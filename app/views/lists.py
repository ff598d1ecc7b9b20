"""The list pages of every entity: table, kanban board, calendar, export, bulk delete, bin.

Each view reads the request, asks the record service (or the workflow engine)
and shapes the answer; permissions, validation and locks are the service's.
Search, filters and sorting travel in the query string, so a list can be
bookmarked and the browser's back button works after htmx updates.
"""

from __future__ import annotations

import datetime as dt
import tempfile

from babel.dates import format_skeleton, get_day_names
from babel.numbers import format_decimal
from flask import Response, current_app, flash, jsonify, redirect, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _

from metamodel.errors import CrmError, NotFound
from metamodel.sqltypes import UTC
from records import access, exporting
from records.errors import Forbidden, StaleVersion
from records.query import MAX_PAGE, MAX_PER_PAGE, ListQuery
from records.runtime import EntityRuntime

from ..api.errors import status_of
from ..api.service import records_service, workflows_service
from ..i18n import language, reason, text
from ..identity import page_actor
from . import boards, list_filters, listing, recycle
from .cells import datetime_text
from .list_filters import combine, record_id_of
from .pages import page_blueprint, render_page

blueprint = page_blueprint("lists", __name__, url_prefix="/a")

PER_PAGE = 50
PER_PAGE_CHOICES = (25, 50, 100, 200)
BIN_PER_PAGE = 50
MAX_BULK = 200
EXPORT_CHUNK = 64 * 1024


# --- shared helpers ------------------------------------------------------------------


def entity_runtime(app: str, entity: str) -> EntityRuntime:
    """An entity with pages of its own that the signed-in user may read."""
    runtime = records_service().runtime(app, entity)
    if runtime.entity.is_child:
        raise NotFound(_("'%(entity)s' has no pages of its own", entity=entity))
    if access.grant(page_actor(), runtime.entity, "read") is None:
        raise Forbidden(_("you may not read %(entity)s records", entity=entity))
    return runtime


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole number from the query string, kept within [low, high]."""
    given = request.args.get(name, "").strip()
    if not (given.isascii() and given.isdigit()) or len(given) > 30:
        return default
    return max(low, min(int(given), high))


def list_url(endpoint: str, app: str, entity: str, drop=(), **changes) -> str:
    """The current page's URL on ``endpoint`` with some arguments changed or dropped."""
    args = {k: v for k, v in request.args.to_dict(flat=False).items() if k not in drop}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(endpoint, app=app, entity=entity, **args)


def count_text(total: int, estimate: bool) -> str:
    number = format_decimal(total, locale=get_locale())
    if estimate:
        return _("more than %(count)s records", count=number)
    return ngettext("%(count)s record", "%(count)s records", total, count=number)


def view_tabs(app: str, entity: str, views: list[dict], current: dict | None) -> list[dict]:
    endpoints = {"list": "lists.list_page", "kanban": "lists.kanban", "calendar": "lists.calendar"}
    tabs = [
        {
            "label": _("All"),
            "url": url_for("lists.list_page", app=app, entity=entity),
            "active": current is None and request.endpoint == "lists.list_page",
            "type": "list",
        }
    ]
    for view in views:
        kind = view.get("type", "list")
        tabs.append(
            {
                "label": listing.view_label(view),
                "url": url_for(endpoints[kind], app=app, entity=entity, view=view["name"]),
                "active": current is not None and current["name"] == view["name"],
                "type": kind,
            }
        )
    return tabs


def filter_rule(
    runtime: EntityRuntime, view: dict | None, columns: list[listing.Column]
) -> tuple[list, object]:
    """Filter widgets (the columns', then the other fields') and the one rule they make:
    the view's filter AND what the user chose."""
    actor = page_actor()
    shown = [(c.field, c.label) for c in columns if c.via is None]
    names = {fld.name for fld, _label in shown}
    others = [
        (fld, text(fld.label))
        for fld in runtime.entity.fields.values()
        if fld.name not in names and access.readable(actor, fld)
    ]
    widgets, clauses = list_filters.build(records_service(), actor, shown + others, request.args)
    for widget in widgets:
        widget.extra = widget.name not in names
    return widgets, combine((view or {}).get("filter"), *clauses)


def page_links(app: str, entity: str, found: dict) -> dict:
    page, per_page, total = found["page"], found["per_page"], found["total"]
    last = None if found["total_is_estimate"] else max(1, -(-total // per_page))
    has_next = found["total_is_estimate"] or page * per_page < total

    def to(number):
        return list_url("lists.list_page", app, entity, page=str(number))

    return {
        "page": page,
        "last": last,
        "prev_url": to(page - 1) if page > 1 else None,
        "next_url": to(page + 1) if has_next and page < MAX_PAGE else None,
        "first_url": to(1) if page > 1 else None,
    }


def sort_headers(app: str, entity: str, columns: list[listing.Column], sort: str | None):
    """Each column with its sort direction now and the URL that sorts by it (or reverses)."""
    keys = listing.sort_keys(sort)
    directions = dict(keys)
    headers = []
    for col in columns:
        descending = directions.get(col.path)
        url = None
        if col.sortable:
            reverse = keys[:1] == [(col.path, False)]
            url = list_url(
                "lists.list_page", app, entity, sort=("-" if reverse else "") + col.path, page=None
            )
        direction = None if descending is None else ("desc" if descending else "asc")
        headers.append({"column": col, "direction": direction, "url": url})
    return headers


# --- the list ------------------------------------------------------------------------


@blueprint.get("/<app>/<entity>")
def list_page(app: str, entity: str):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    model = runtime.entity.app
    view = listing.chosen_view(model, entity, request.args.get("view"), actor, "list")
    if view is not None and view.get("type") in ("kanban", "calendar"):
        return redirect(list_url(f"lists.{view['type']}", app, entity))
    columns = listing.view_columns(actor, runtime.entity, view)
    filters, rule = filter_rule(runtime, view, columns)
    sort = request.args.get("sort") or listing.view_sort(view, runtime.entity)
    query = ListQuery(
        filter=rule,
        q=request.args.get("q", "").strip() or None,
        sort=sort,
        page=int_arg("page", 1, 1, MAX_PAGE),
        per_page=int_arg("per_page", PER_PAGE, 1, MAX_PER_PAGE),
    )
    found = service.list(actor, app, entity, query)
    targets = listing.fetch_targets(service, actor, columns, found["items"])
    rows = listing.shape(runtime.entity, columns, found["items"], targets)
    may_delete = access.grant(actor, runtime.entity, "delete") is not None
    context = {
        "app_name": app,
        "entity": runtime.entity,
        "title": text(runtime.entity.plural_label),
        "tabs": view_tabs(app, entity, listing.entity_views(model, entity, actor), view),
        "view": view,
        "headers": sort_headers(app, entity, columns, sort),
        "rows": rows,
        "count": count_text(found["total"], found["total_is_estimate"]),
        "pages": page_links(app, entity, found),
        "filters": filters,
        "q": query.q or "",
        "sort": sort or "",
        "per_page": query.per_page,
        "per_page_choices": PER_PAGE_CHOICES,
        "list_url": url_for("lists.list_page", app=app, entity=entity),
        "here": request.full_path,
        "new_url": url_for("records.new", app=app, entity=entity)
        if access.may(actor, runtime.entity, "create") and has_endpoint("records.new")
        else None,
        "export_url": list_url("lists.export", app, entity, drop=("page", "per_page", "sort"))
        if access.may(actor, runtime.entity, "export")
        else None,
        "may_delete": may_delete,
        "bin_url": url_for("lists.recycle_bin", app=app, entity=entity) if may_delete else None,
        "bulk_url": url_for("lists.bulk_delete", app=app, entity=entity),
    }
    return render_page("lists/list.html", "lists/_results.html", **context)


def has_endpoint(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


@blueprint.get("/<app>/<entity>/options/<field>")
def reference_options(app: str, entity: str, field: str):
    """Type-ahead for a reference filter: the target's records whose text matches."""
    runtime = entity_runtime(app, entity)
    fld = runtime.entity.fields.get(field)
    target = None if fld is None else listing.titles.target_of(fld)
    if target is None or not access.readable(page_actor(), fld):
        raise NotFound(_("%(entity)s has no reference '%(field)s'", entity=entity, field=field))
    typed = (request.args.get(f"f.{field}") or request.args.get("q") or "").strip()
    options = []
    if typed and record_id_of(typed) is None:
        found = records_service().list(
            page_actor(), target.app.name, target.name, ListQuery(q=typed, per_page=20)
        )
        options = [(item["id"], listing.record_title(target, item)) for item in found["items"]]
    return render_page("lists/_options.html", "lists/_options.html", options=options)


# --- export --------------------------------------------------------------------------


@blueprint.get("/<app>/<entity>/export")
def export(app: str, entity: str):
    """The records the list shows (view, filters, search), all pages, as CSV."""
    runtime = entity_runtime(app, entity)
    actor = page_actor()
    if not access.may(actor, runtime.entity, "export"):
        raise Forbidden(_("you may not export %(entity)s records", entity=entity))
    view = listing.chosen_view(runtime.entity.app, entity, request.args.get("view"), actor, "list")
    columns = listing.view_columns(actor, runtime.entity, view)
    _widgets, rule = filter_rule(runtime, view, columns)
    # Written to a temporary file (on disk past a few MB), then streamed: any size fits.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (the response closes it)
    try:
        exporting.export_file(
            records_service(),
            actor,
            app,
            entity,
            spool,
            fmt="csv",
            filter=rule,
            q=request.args.get("q", "").strip() or None,
            language=language(),
        )
    except Exception:
        spool.close()
        raise
    spool.seek(0)

    def chunks():
        with spool:
            while block := spool.read(EXPORT_CHUNK):
                yield block

    stamp = dt.datetime.now(UTC).strftime("%Y%m%d-%H%M")
    # App and entity names are identifiers: the file name needs no quoting.
    disposition = f'attachment; filename="{app}-{entity}-{stamp}.csv"'
    return Response(
        chunks(),
        mimetype="text/csv",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


# --- delete, recycle bin, restore ----------------------------------------------------


def back_to(default: str) -> str:
    """Where a form came from, if it is one of our pages (never another site)."""
    target = request.form.get("next", "")
    if target.startswith("/a/") and not target.startswith("//"):
        return target
    return default


@blueprint.post("/<app>/<entity>/bulk-delete")
def bulk_delete(app: str, entity: str):
    entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    given = request.form.getlist("ids")
    if len(given) > MAX_BULK:
        flash(_("Select at most %(n)s records at a time.", n=MAX_BULK), "error")
        return redirect(back_to(url_for("lists.list_page", app=app, entity=entity)))
    ids = sorted({i for i in map(record_id_of, given) if i is not None})
    if not ids:
        flash(_("Select the records to delete first."), "error")
    deleted, refused = 0, []
    for record_id in ids:
        try:
            service.delete(actor, app, entity, record_id)
            deleted += 1
        except CrmError as error:
            refused.append(f"#{record_id}: {reason(error)}")
    if deleted:
        flash(
            ngettext(
                "%(num)s record moved to the recycle bin.",
                "%(num)s records moved to the recycle bin.",
                deleted,
            ),
            "success",
        )
    if refused:
        flash(
            ngettext(
                "%(num)s record was not deleted: %(why)s",
                "%(num)s records were not deleted: %(why)s",
                len(refused),
                why="; ".join(refused),
            ),
            "error",
        )
    return redirect(back_to(url_for("lists.list_page", app=app, entity=entity)))


@blueprint.get("/<app>/<entity>/bin")
def recycle_bin(app: str, entity: str):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    page = int_arg("page", 1, 1, MAX_PAGE)
    found = recycle.deleted_page(service, actor, app, entity, page, BIN_PER_PAGE)
    found.update(page=page, per_page=BIN_PER_PAGE)
    columns = listing.view_columns(actor, runtime.entity, None)[:4]
    columns += listing.columns_of(actor, runtime.entity, ["updated_by"])
    targets = listing.fetch_targets(service, actor, columns, found["items"])
    # A deleted record has no page to open.
    rows = listing.shape(runtime.entity, columns, found["items"], targets, linked=False)
    last = None if found["total_is_estimate"] else max(1, -(-found["total"] // BIN_PER_PAGE))
    more = found["total_is_estimate"] or page * BIN_PER_PAGE < found["total"]
    return render_page(
        "lists/bin.html",
        app_name=app,
        entity=runtime.entity,
        title=text(runtime.entity.plural_label),
        columns=columns,
        rows=rows,
        deleted_at={r.id: datetime_text(r.record.get("deleted_at")) for r in rows},
        count=count_text(found["total"], found["total_is_estimate"]),
        pages={
            "page": page,
            "last": last,
            "prev_url": list_url("lists.recycle_bin", app, entity, page=str(page - 1))
            if page > 1
            else None,
            "next_url": list_url("lists.recycle_bin", app, entity, page=str(page + 1))
            if more
            else None,
            "first_url": None,
        },
        list_url=url_for("lists.list_page", app=app, entity=entity),
        here=request.full_path,
    )


@blueprint.post("/<app>/<entity>/bin/<int:record_id>/restore")
def restore(app: str, entity: str, record_id: int):
    runtime = entity_runtime(app, entity)
    bin_url = url_for("lists.recycle_bin", app=app, entity=entity)
    try:
        record = records_service().restore(page_actor(), app, entity, record_id)
    except CrmError as error:
        flash(_("Not restored: %(why)s", why=reason(error)), "error")
        return redirect(back_to(bin_url))
    title = listing.record_title(runtime.entity, record)
    flash(_("Restored %(title)s.", title=title), "success")
    return redirect(back_to(bin_url))


# --- kanban --------------------------------------------------------------------------


def board_setup(app: str, entity: str):
    runtime = entity_runtime(app, entity)
    actor = page_actor()
    view = listing.chosen_view(
        runtime.entity.app,
        entity,
        request.args.get("view") or request.form.get("view"),
        actor,
        "kanban",
    )
    if view.get("type") != "kanban":
        raise NotFound(_("'%(name)s' is not a kanban view", name=view["name"]))
    group = boards.group_of(actor, runtime.entity, view)
    return runtime, actor, view, group


def board_query(view: dict, runtime: EntityRuntime, page: int = 1) -> ListQuery:
    return ListQuery(
        q=request.args.get("q", "").strip() or None,
        sort=listing.view_sort(view, runtime.entity),
        page=page,
        per_page=boards.CARDS_PER_COLUMN,
    )


@blueprint.get("/<app>/<entity>/kanban")
def kanban(app: str, entity: str):
    runtime, actor, view, group = board_setup(app, entity)
    service = records_service()
    cards = boards.card_columns(actor, runtime.entity, view, group)
    columns = boards.board(
        service, actor, runtime.entity, group, cards, view.get("filter"), board_query(view, runtime)
    )
    model = runtime.entity.app
    return render_page(
        "lists/kanban.html",
        app_name=app,
        entity=runtime.entity,
        title=text(runtime.entity.plural_label),
        tabs=view_tabs(app, entity, listing.entity_views(model, entity, actor), view),
        view=view,
        columns=columns,
        cards=cards,
        counts={c.key: count_text(c.total, c.estimate) for c in columns},
        q=request.args.get("q", "").strip(),
        move_url=url_for("lists.move_card", app=app, entity=entity),
    )


@blueprint.get("/<app>/<entity>/kanban/column")
def kanban_column(app: str, entity: str):
    """More cards of one column (the "load more" link)."""
    runtime, actor, view, group = board_setup(app, entity)
    value = request.args.get("value", boards.NO_VALUE)
    value = None if value == boards.NO_VALUE else value
    if value is not None and value not in group.values():
        raise NotFound(_("'%(value)s' is not a column of this board", value=value))
    service = records_service()
    cards = boards.card_columns(actor, runtime.entity, view, group)
    query = board_query(view, runtime, int_arg("page", 2, 1, MAX_PAGE))
    board_column, items = boards.column_page(
        service, actor, runtime.entity, group, value, view.get("filter"), query
    )
    targets = listing.fetch_targets(service, actor, cards, items)
    board_column.rows = listing.shape(runtime.entity, cards, items, targets)
    return render_page(
        "lists/_cards.html",
        "lists/_cards.html",
        app_name=app,
        entity=runtime.entity,
        view=view,
        board_column=board_column,
        cards=cards,
        q=request.args.get("q", "").strip(),
    )


@blueprint.post("/<app>/<entity>/kanban/move")
def move_card(app: str, entity: str):
    """Drop a card on another column: JSON for the board's script, refusals with reasons."""
    runtime, actor, _view, group = board_setup(app, entity)
    record_id = record_id_of(request.form.get("id", ""))
    version = record_id_of(request.form.get("version", ""))
    if record_id is None or version is None:
        return jsonify({"ok": False, "message": _("The card names no record.")}), 400
    to = request.form.get("to", boards.NO_VALUE)
    try:
        moved = boards.move(
            records_service(),
            workflows_service(),
            actor,
            runtime.entity,
            group,
            record_id,
            version,
            None if to == boards.NO_VALUE else to,
        )
    except StaleVersion as error:
        body = {
            "ok": False,
            "stale": True,
            "message": _(
                "Someone changed this record meanwhile; the card went back. "
                "Reload the board to see the change."
            ),
        }
        if error.current is not None:
            body["version"] = error.current.get("version")
        return jsonify(body), 412
    except CrmError as error:
        return jsonify({"ok": False, "message": reason(error)}), status_of(error)
    record = moved["record"]
    value = record.get(group.field.name)
    if group.workflow is not None and value is None:
        value = group.workflow.initial
    return jsonify(
        {
            "ok": True,
            "id": record["id"],
            "version": record["version"],
            "value": boards.NO_VALUE if value is None else value,
            "message": moved["note"],
        }
    )


# --- calendar ------------------------------------------------------------------------


@blueprint.get("/<app>/<entity>/calendar")
def calendar(app: str, entity: str):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    model = runtime.entity.app
    view = listing.chosen_view(model, entity, request.args.get("view"), actor, "calendar")
    if view.get("type") != "calendar":
        raise NotFound(_("'%(name)s' is not a calendar view", name=view["name"]))
    fld = boards.date_field_of(actor, runtime.entity, view)
    month = boards.parse_month(request.args.get("month"), dt.datetime.now(UTC).date())
    found = service.list(
        actor,
        app,
        entity,
        ListQuery(
            filter=combine(view.get("filter"), boards.month_rule(fld, month)),
            sort=fld.name if fld.name in runtime.entity.fields else None,
            per_page=boards.MONTH_LIMIT,
        ),
        count_cap=boards.MONTH_COUNT_CAP,
    )
    rows = listing.shape(runtime.entity, [], found["items"], listing.titles.Targets())
    locale = get_locale()
    names = get_day_names("abbreviated", locale=locale)

    def month_url(shifted):
        if shifted is None:
            return None
        return list_url("lists.calendar", app, entity, month=shifted.strftime("%Y-%m"))

    return render_page(
        "lists/calendar.html",
        app_name=app,
        entity=runtime.entity,
        title=text(runtime.entity.plural_label),
        tabs=view_tabs(app, entity, listing.entity_views(model, entity, actor), view),
        view=view,
        month_title=format_skeleton("yMMMM", month, locale=locale),
        weekdays=[names[i] for i in range(7)],
        weeks=boards.weeks_of(month, rows, fld),
        with_time=fld.value_spec["type"] == "datetime",
        date_field=fld.name,
        prev_url=month_url(boards.shift(month, -1)),
        next_url=month_url(boards.shift(month, 1)),
        today_url=list_url("lists.calendar", app, entity, month=None),
        today=dt.datetime.now(UTC).date(),
        shown=len(rows),
        total=count_text(found["total"], found["total_is_estimate"]),
        more=found["total_is_estimate"] or found["total"] > len(rows),
    )
