"""A record's pages: new, edit (with the conflict page), detail, delete and restore, files,
the reference type-ahead and inline validation.

The form engine decides what a submitted form may change and the record service
saves it; these views only read the request, ask them, and shape the answer.
Permissions, rules and locks are theirs: a refusal raised here (Forbidden,
NotFound) becomes the friendly error page, a refusal about values goes beside
the fields it concerns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import CombinedMultiDict

from form_engine import bind
from metamodel.errors import CrmError, NotFound
from records import access
from records.actor import Actor
from records.errors import Forbidden, StaleVersion
from records.rule_data import rule_data
from records.runtime import EntityRuntime
from records.serialize import json_value

from ..api.service import records_service
from ..i18n import language, reason, text
from ..identity import page_actor
from . import pickers, record_detail, record_forms
from .listing import record_title
from .lists import entity_runtime
from .pages import page_blueprint, render_page
from .record_forms import FILE_FIELD_TYPES, Filler, FormView

blueprint = page_blueprint("records", __name__, url_prefix="/a")

RECORD = "/<app>/<entity>/<int:record_id>"
INLINE_TYPES = record_detail.INLINE_IMAGES


# --- shared -------------------------------------------------------------------------------


def may(actor: Actor, runtime: EntityRuntime, verb: str, record: dict | None = None) -> bool:
    """As the record service decides: row rules read the records they follow (``account.x``)."""
    service = records_service()
    context = service.context(actor)
    if record is None:
        return access.may(actor, runtime.entity, verb, None, context)
    with service.reading() as conn:

        def data_for(rule):
            return rule_data(conn, runtime.entity, record, rule, service.tables_for)

        return access.may(actor, runtime.entity, verb, record, context, data_for)


def require(actor: Actor, runtime: EntityRuntime, verb: str, record: dict | None = None) -> None:
    if not may(actor, runtime, verb, record):
        what = text(runtime.entity.label)
        raise Forbidden(_("you may not %(verb)s this %(what)s", verb=_verb(verb), what=what))


def _verb(verb: str) -> str:
    return {"create": _("create"), "update": _("edit"), "delete": _("delete")}.get(verb, verb)


def edit_lock(actor: Actor, runtime: EntityRuntime, record: dict) -> str | None:
    """Why the record cannot be edited now (a workflow's lock), before anyone tries."""
    service = records_service()
    with service.reading() as conn:
        for guard in service.guards:
            try:
                guard(conn, actor, runtime, record, set())
            except CrmError as error:
                return reason(error)
    return None


def posted_version() -> int | None:
    given = request.form.get("version", "").strip()
    return int(given) if given.isascii() and given.isdigit() and len(given) < 19 else None


def title_of(runtime: EntityRuntime, record: dict) -> str:
    return record_title(runtime.entity, record)


def render_form(
    view: FormView,
    *,
    status: int = 200,
    title: str,
    action: str,
    cancel_url: str,
    record: dict | None = None,
    version: int | None = None,
    lock: str | None = None,
):
    app, entity = view.spec.app.name, view.spec.entity.name
    validate_url = (
        url_for("records.validate_field", app=app, entity=entity, record_id=record["id"])
        if record
        else url_for("records.validate_field", app=app, entity=entity)
    )
    view.validate_url = validate_url
    page = render_template(
        "records/form.html",
        view=view,
        title=title,
        action=action,
        cancel_url=cancel_url,
        record=record,
        version=version,
        lock=lock,
        message=record_forms.message,
        entity_label=text(view.spec.entity.label),
        list_url=url_for("lists.list_page", app=app, entity=entity),
    )
    return page, status


# --- new and edit -------------------------------------------------------------------------


@blueprint.route("/<app>/<entity>/new", methods=["GET", "POST"])
def new(app: str, entity: str):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    require(actor, runtime, "create")
    spec = record_forms.spec_of(app, entity)
    filler = record_forms.filler_for(spec, actor)
    label = text(runtime.entity.label)
    page = {
        "title": _("New %(entity)s", entity=label),
        "action": url_for("records.new", app=app, entity=entity),
        "cancel_url": url_for("lists.list_page", app=app, entity=entity),
    }
    if request.method == "GET":
        start = record_forms.new_record(spec, filler, request.args)
        form = bind(spec, current=start, language=language(), timezone=record_forms.timezone_name())
        return render_form(record_forms.form_view(spec, filler, form, start), **page)
    result = record_forms.submit_form(spec, filler, None)
    if result.ok:
        try:
            created = service.create(actor, app, entity, result.values)
        except (Forbidden, NotFound):
            raise
        except CrmError as error:
            record_forms.refused(result, error)
        else:
            flash(_("Created %(title)s.", title=title_of(runtime, created)), "success")
            return redirect(
                url_for("records.detail", app=app, entity=entity, record_id=created["id"])
            )
    view = record_forms.form_view(spec, filler, result.form, None, result.states)
    return render_form(view, status=422, **page)


@blueprint.route(RECORD + "/edit", methods=["GET", "POST"])
def edit(app: str, entity: str, record_id: int):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    record = service.get(actor, app, entity, record_id)
    require(actor, runtime, "update", record)
    spec = record_forms.spec_of(app, entity)
    filler = record_forms.filler_for(spec, actor)
    title = title_of(runtime, record)
    page = {
        "title": _("Edit %(title)s", title=title),
        "action": url_for("records.edit", app=app, entity=entity, record_id=record_id),
        "cancel_url": url_for("records.detail", app=app, entity=entity, record_id=record_id),
        "record": record,
        "lock": edit_lock(actor, runtime, record),
    }
    if request.method == "GET":
        form = bind(
            spec, current=record, language=language(), timezone=record_forms.timezone_name()
        )
        view = record_forms.form_view(spec, filler, form, record)
        return render_form(view, version=record["version"], **page)
    version = posted_version()
    result = record_forms.submit_form(spec, filler, record)
    if result.ok:
        try:
            saved = service.update(
                actor, app, entity, record_id, result.values, expected_version=version
            )
        except StaleVersion as stale:
            return conflict(runtime, spec, filler, record, result, stale)
        except (Forbidden, NotFound):
            raise
        except CrmError as error:
            record_forms.refused(result, error)
        else:
            flash(_("Saved %(title)s.", title=title_of(runtime, saved)), "success")
            return redirect(url_for("records.detail", app=app, entity=entity, record_id=record_id))
    view = record_forms.form_view(spec, filler, result.form, record, result.states)
    return render_form(view, status=422, version=version, **page)


def conflict(runtime: EntityRuntime, spec, filler: Filler, record: dict, result, stale):
    """Yours and theirs side by side; keep theirs, or save yours over them."""
    app, entity, record_id = spec.app.name, spec.entity.name, record["id"]
    theirs = stale.current or records_service().get(filler.actor, app, entity, record_id)
    mine = json_value(result.record)
    page_layout = record_forms.layout(spec, language(), locked=filler.locked)
    rows = record_detail.differences(
        spec, page_layout, mine, theirs, filler.actor, records_service()
    )
    # The form as sent, to send again at the current version; uploads are stored by
    # now, so file fields carry the ids of the files instead.
    files = {n for n, i in spec.items.items() if i.field.type_name in FILE_FIELD_TYPES}
    resend = [
        (key, value)
        for key, value in request.form.items(multi=True)
        if key not in ("csrf_token", "version") and key not in files
    ]
    for name in files & set(result.values):
        resend += [(name, str(file_id)) for file_id in result.values[name] or []]
    page = render_template(
        "records/conflict.html",
        title=title_of(runtime, theirs),
        entity_label=text(runtime.entity.label),
        rows=rows,
        resend=resend,
        current_version=stale.current_version,
        yours_version=posted_version(),
        edit_url=url_for("records.edit", app=app, entity=entity, record_id=record_id),
        detail_url=url_for("records.detail", app=app, entity=entity, record_id=record_id),
        theirs=theirs,
        changed_at=record_detail.datetime_text(theirs.get("updated_at")),
        changed_by=_user_name(theirs.get("updated_by")),
    )
    # A page of choices, not an error: 200, so the browser does not report a failed load.
    return page, 200


def _user_name(user_id: Any) -> str:
    if not isinstance(user_id, int):
        return _("system")
    needs = record_detail.titles.Needs()
    needs.add_users([user_id])
    found = record_detail.titles.fetch(records_service(), page_actor(), needs)
    return found.users.get(user_id, f"#{user_id}")


# --- inline validation and the type-ahead -------------------------------------------------


@blueprint.post("/<app>/<entity>/validate")
@blueprint.post(RECORD + "/validate")
def validate_field(app: str, entity: str, record_id: int | None = None):
    """The messages for the field the user just left (htmx: HX-Trigger-Name names it).

    The whole form comes along, so cross-field rules see the other fields as they
    are on the page; the answer replaces the field's message list out of band.
    """
    entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    record = None
    if record_id is not None:
        record = service.get(actor, app, entity, record_id)
    spec = record_forms.spec_of(app, entity)
    filler = record_forms.filler_for(spec, actor)
    name = request.headers.get("HX-Trigger-Name") or request.args.get("field", "")
    key = field_key(spec, name)
    messages: list[str] = []
    if key is not None:
        result = record_forms.submit_form(
            spec, filler, record, uploads=False, formdata=CombinedMultiDict([request.form])
        )
        skip = record_forms.validation_messages(spec)
        messages = [record_forms.message(m) for m in result.errors.get(key, []) if m not in skip]
    return render_template("records/_field_errors.html", key=key or "", messages=messages)


def field_key(spec, name: str) -> str | None:
    """The field (``amount``) or row cell (``lines-0-quantity``) an input name belongs to."""
    if name in spec.items:
        return name
    head, _sep, rest = name.partition("-")
    if head in spec.children:
        index, _sep, cell = rest.partition("-")
        if index.isdigit() and cell in spec.children[head].items:
            return name
        return None
    if head in spec.items and rest in ("lat", "lng", "address"):
        return head
    return None


@blueprint.get("/<app>/<entity>/search")
def search(app: str, entity: str):
    """Type-ahead: records whose title holds the typed text, among those one may read."""
    runtime = entity_runtime(app, entity)
    typed = request.args.get("q", "")
    found = pickers.search(records_service(), page_actor(), runtime.entity, typed) or []
    return render_page(
        "records/_search_results.html",
        "records/_search_results.html",
        results=found,
        typed=typed.strip(),
    )


# --- the record's page ------------------------------------------------------------------------


@blueprint.get(RECORD)
def detail(app: str, entity: str, record_id: int):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    record = service.get(actor, app, entity, record_id)
    spec = record_forms.spec_of(app, entity)

    def file_url(file_id: int) -> str:
        return url_for("records.file", app=app, entity=entity, record_id=record_id, file_id=file_id)

    page_layout = record_forms.layout(spec, language())
    tabs, targets = record_detail.shown_tabs(spec, page_layout, record, actor, service, file_url)
    related = record_detail.related_records(service, actor, runtime.entity, record_id)
    return render_template(
        "records/detail.html",
        app_name=app,
        entity=runtime.entity,
        entity_label=text(runtime.entity.label),
        record=record,
        title=title_of(runtime, record),
        tabs=tabs,
        related=related,
        people={
            name: targets.users.get(record.get(name), "")
            for name in ("owner", "created_by", "updated_by")
        },
        created_at=record_detail.datetime_text(record.get("created_at")),
        updated_at=record_detail.datetime_text(record.get("updated_at")),
        may_edit=may(actor, runtime, "update", record),
        may_delete=may(actor, runtime, "delete", record),
        list_url=url_for("lists.list_page", app=app, entity=entity),
        has_workflow=any(
            w.get("entity") == entity for w in runtime.entity.app.list_of("workflows")
        ),
    )


@blueprint.get(RECORD + "/timeline")
def timeline(app: str, entity: str, record_id: int):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    items = service.timeline(actor, app, entity, record_id)
    moments = record_detail.timeline(service, actor, runtime.entity, items)
    return render_page("records/_timeline.html", "records/_timeline.html", moments=moments)


@blueprint.get(RECORD + "/history")
def history(app: str, entity: str, record_id: int):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    events = service.history(actor, app, entity, record_id)
    moments = record_detail.history(service, actor, runtime.entity, events)
    return render_page("records/_history.html", "records/_history.html", moments=moments)


@blueprint.get(RECORD + "/files/<int:file_id>")
def file(app: str, entity: str, record_id: int, file_id: int):
    """A file of the record, to users who may read the record (the service checks again)."""
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    record = service.get(actor, app, entity, record_id)
    if file_id not in file_ids(runtime, record):
        raise NotFound(_("this record has no file %(id)s", id=file_id))
    stored = service.open_file(actor, file_id)
    inline = request.args.get("inline") == "1" and stored.mime in INLINE_TYPES
    return send_file(
        # Absolute: Flask reads a relative path from the app's package, not the process's folder.
        Path(stored.path).resolve(),
        mimetype=stored.mime if inline else "application/octet-stream",
        as_attachment=not inline,
        download_name=stored.name,
        max_age=0,
    )


def file_ids(runtime: EntityRuntime, record: dict) -> set[int]:
    """The ids of the files the record (and its child rows) hold."""
    ids: set[int] = set()

    def collect(entity, values: dict) -> None:
        for fld in entity.fields.values():
            value = values.get(fld.name)
            if fld.type_name in FILE_FIELD_TYPES:
                ids.update(f["id"] for f in value or [] if isinstance(f, dict) and "id" in f)
            elif fld.type_name == "child_table" and fld.target is not None:
                for row in value or []:
                    if isinstance(row, dict):
                        collect(fld.target, row)

    collect(runtime.entity, record)
    return ids


# --- delete and restore -------------------------------------------------------------------


@blueprint.post(RECORD + "/delete")
def delete(app: str, entity: str, record_id: int):
    runtime = entity_runtime(app, entity)
    actor, service = page_actor(), records_service()
    record = service.get(actor, app, entity, record_id)
    require(actor, runtime, "delete", record)
    detail_url = url_for("records.detail", app=app, entity=entity, record_id=record_id)
    try:
        service.delete(actor, app, entity, record_id)
    except (Forbidden, NotFound):
        raise
    except CrmError as error:
        flash(_("Not deleted: %(why)s", why=reason(error)), "error")
        return redirect(detail_url)
    flash(_("%(title)s was moved to the recycle bin.", title=title_of(runtime, record)), "success")
    return redirect(url_for("lists.list_page", app=app, entity=entity))


@blueprint.post(RECORD + "/restore")
def restore(app: str, entity: str, record_id: int):
    runtime = entity_runtime(app, entity)
    try:
        record = records_service().restore(page_actor(), app, entity, record_id)
    except (Forbidden, NotFound):
        raise
    except CrmError as error:
        flash(_("Not restored: %(why)s", why=reason(error)), "error")
        return redirect(url_for("lists.recycle_bin", app=app, entity=entity))
    flash(_("Restored %(title)s.", title=title_of(runtime, record)), "success")
    return redirect(url_for("records.detail", app=app, entity=entity, record_id=record_id))
