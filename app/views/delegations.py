"""The delegation page: who takes my approval tasks while I am away (委托).

Every rule is the workflow engine's (``workflow_engine.delegations``): the
delegate is another active user, the period ends after it starts and in the
future, and only tasks assigned during it go to the delegate, on my behalf.
The page reads times in the user's time zone, as the record forms do.
"""

from __future__ import annotations

import datetime as dt

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import select

from form_engine.values import parse_local_datetime, zone
from metamodel.errors import CrmError, Problem
from metamodel.messages import Message
from metamodel.system_tables import users
from records.actor import Actor
from records.errors import ValidationFailed

from ..api.errors import status_of
from ..api.service import workflows_service
from ..i18n import reason
from ..identity import page_actor
from .pages import page_blueprint
from .record_forms import timezone_name

blueprint = page_blueprint("delegations", __name__)

PAGE = "/approvals/delegations"
MAX_USERS = 500  # offered as suggestions; any active username is accepted


@blueprint.get(PAGE)
def delegations():
    return _page(page_actor())


@blueprint.post(PAGE)
def delegate():
    actor = page_actor()
    flow = workflows_service()
    form = request.form
    try:
        delegate_name = (form.get("delegate") or "").strip()
        starts_at, ends_at = _period(flow.records.clock())
        if not delegate_name:
            raise ValidationFailed(
                [Problem("/delegate", Message("name the user who takes your tasks"))]
            )
        made = flow.delegate(actor, delegate_name, starts_at, ends_at)
    except CrmError as error:
        return _page(actor, error=reason(error), given=form, status=status_of(error))
    flash(
        _(
            "Your approval tasks go to %(user)s from %(start)s until %(end)s.",
            user=made["delegate"],
            start=_shown(made["starts_at"]),
            end=_shown(made["ends_at"]),
        ),
        "success",
    )
    return redirect(url_for(".delegations"))


@blueprint.post(PAGE + "/<int:delegation_id>/end")
def end(delegation_id: int):
    workflows_service().end_delegation(page_actor(), delegation_id)
    flash(_("The delegation is ended: your approval tasks are yours again."), "success")
    return redirect(url_for(".delegations"))


def _period(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The form's start (now when left empty) and end, read in the user's time zone."""
    tz = zone(timezone_name())
    problems, moments = [], {}
    for key in ("starts_at", "ends_at"):
        text = (request.form.get(key) or "").strip()
        if not text and key == "starts_at":
            moments[key] = now
            continue
        moment = parse_local_datetime(text, tz)
        if moment is None:
            problems.append(Problem(f"/{key}", Message("pick a date and a time")))
        moments[key] = moment
    if problems:
        raise ValidationFailed(problems)
    return moments["starts_at"], moments["ends_at"]


def _shown(moment: dt.datetime) -> str:
    """A time as the user reads it: their time zone, to the minute."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm")


def _others(actor: Actor) -> list[tuple[str, str]]:
    """(username, name) of the active users one may delegate to."""
    query = (
        select(users.c.username, users.c.display_name)
        .where(users.c.active.is_(True), users.c.id != actor.id)
        .order_by(users.c.username)
        .limit(MAX_USERS)
    )
    with workflows_service().records.engine.connect() as conn:
        return [(row.username, row.display_name or row.username) for row in conn.execute(query)]


def _page(actor: Actor, *, error: str | None = None, given=None, status: int = 200):
    flow = workflows_service()
    now = flow.records.clock()
    rows = [
        {**row, "current": row["starts_at"] <= now < row["ends_at"], "over": row["ends_at"] <= now}
        for row in flow.delegations(actor)
    ]
    page = render_template(
        "workflow/delegations.html",
        rows=rows,
        error=error,
        given=given or {},
        shown=_shown,
        others=_others(actor),
    )
    return page, status
