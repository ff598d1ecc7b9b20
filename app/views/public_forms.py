"""Public forms: a shareable link where people without an account submit a new record.

Only a form marked ``public: true`` answers (any other name is "not found"). A
submission can only create a record: it is made by the system, owned by nobody
or by the user the settings name (``public_forms.owner``). The URL may prefill
inputs placed on the form (a campaign link: ``?campaign=3``); nothing else of the
request reaches the record.

Each address may submit a form ``public_forms.max_submissions`` times per
``public_forms.window_minutes`` (10 per 10 minutes unless configured); attempts
are rows in ``crm_public_submissions``, so every worker counts the same ones.
CSRF is checked as for every POST (the form carries the token of the session
the first visit started). The pages show no navigation and nothing of anyone's
data: the form follows no reference and offers no picker (see record_forms).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import delete, func, insert, select

from form_engine import FormSpec, bind
from metamodel.db import IMMEDIATE
from metamodel.errors import CrmError, NotFound
from metamodel.sqltypes import UTC
from metamodel.system_tables import public_submissions, users
from metamodel.text import localise
from records.actor import SYSTEM

from ..api.service import records_service
from ..i18n import language
from ..runtime import runtime
from . import record_forms

blueprint = Blueprint("public", __name__, url_prefix="/f")

DEFAULT_MAX_SUBMISSIONS = 10
DEFAULT_WINDOW_MINUTES = 10


@blueprint.before_request
def _fresh_metadata():
    crm = runtime()
    with crm.engine.connect() as conn:
        crm.registry.refresh(conn)


def public_spec(app: str, form: str) -> FormSpec:
    """The public form ``form`` of ``app``; NotFound for any other form or app."""
    try:
        published = records_service().registry.app(app)
    except CrmError:
        raise NotFound(_("there is no form '%(form)s'", form=form)) from None
    doc = next(
        (
            f
            for f in published.model.list_of("forms")
            if f.get("name") == form and f.get("public") is True
        ),
        None,
    )
    if doc is None:
        raise NotFound(_("there is no form '%(form)s'", form=form))
    return record_forms.form_cache().spec(published, doc["entity"], form)


def settings() -> dict:
    return current_app.config["CRM"].get("public_forms") or {}


def over_limit(app: str, form: str) -> bool:
    """Count this attempt; True when the address has used up its submissions for now.

    The attempt is written before counting, so two workers answering at once both
    see both attempts: the limit may refuse one too many, never admit one.
    """
    limit = int(settings().get("max_submissions", DEFAULT_MAX_SUBMISSIONS))
    window = dt.timedelta(minutes=float(settings().get("window_minutes", DEFAULT_WINDOW_MINUTES)))
    now = dt.datetime.now(UTC)
    address = (request.remote_addr or "unknown")[:64]
    key = f"{app}/{form}"[:100]
    table = public_submissions
    mine = (table.c.remote_addr == address, table.c.form == key)
    with runtime().engine.connect() as conn:
        conn.execution_options(**{IMMEDIATE: True})
        with conn.begin():
            conn.execute(delete(table).where(*mine, table.c.at <= now - window))
            conn.execute(insert(table).values(form=key, remote_addr=address, at=now))
            count = conn.execute(select(func.count()).where(*mine)).scalar_one()
    return count > limit


def owner_id() -> int | None:
    """The user public submissions belong to, if the settings name one that exists."""
    username = settings().get("owner")
    if not username:
        return None
    query = select(users.c.id).where(users.c.username == str(username), users.c.active.is_(True))
    with runtime().engine.connect() as conn:
        return conn.execute(query).scalar()


def form_label(spec: FormSpec) -> str:
    return localise(spec.doc.get("label") or spec.entity.label, language())


@blueprint.route("/<app>/<form>", methods=["GET", "POST"])
def form(app: str, form: str):
    spec = public_spec(app, form)
    filler = record_forms.filler_for(spec, SYSTEM, public=True)
    action = url_for("public.form", app=app, form=form, **request.args)
    if request.method == "GET":
        start = record_forms.new_record(spec, filler, request.args)
        bound = bind(
            spec, current=start, language=language(), timezone=record_forms.timezone_name()
        )
        view = record_forms.form_view(spec, filler, bound, start)
        return render_page(view, action)
    if over_limit(app, form):
        minutes = settings().get("window_minutes", DEFAULT_WINDOW_MINUTES)
        page = render_template("public/too_many.html", label=form_label(spec), minutes=minutes)
        return page, 429, {"Retry-After": str(int(float(minutes) * 60))}
    result = record_forms.submit_form(spec, filler, None)
    if result.ok:
        values = dict(result.values)
        owner = owner_id()
        if owner is not None:
            values["owner"] = owner
        try:
            records_service().create(SYSTEM, app, spec.entity.name, values)
        except CrmError as error:
            record_forms.refused(result, error)
        else:
            return redirect(url_for("public.thanks", app=app, form=form))
    view = record_forms.form_view(spec, filler, result.form, None, result.states)
    return render_page(view, action, status=422)


def render_page(view: record_forms.FormView, action: str, status: int = 200):
    page = render_template(
        "public/form.html",
        view=view,
        label=form_label(view.spec),
        action=action,
        record=None,
        message=record_forms.message,
    )
    return page, status


@blueprint.get("/<app>/<form>/thanks")
def thanks(app: str, form: str):
    spec = public_spec(app, form)
    again = url_for("public.form", app=app, form=form)
    return render_template("public/thanks.html", label=form_label(spec), again=again)
