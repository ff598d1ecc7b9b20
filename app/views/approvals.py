"""Workflow pages: a record's actions and diagram, the approvals inbox, notifications.

Every rule is the workflow engine's (``workflow_engine.Workflows``); these views
read the form, call the engine and show its answer. A refusal is shown where the
user acted, in the engine's words: for htmx the partial comes back (200, so htmx
swaps it without a script) with the message; without htmx the whole page comes
back with the refusal's own status. A change answers with the fresh partial and
``HX-Trigger: record-changed`` so the page around it can refresh; its htmx answer
carries the navigation's counts too, swapped into the sidebar out of band.
"""

from __future__ import annotations

import datetime as dt
import re

from flask import (
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime
from flask_babel import gettext as _

from metamodel.errors import CrmError, NotFound, Problem
from metamodel.text import localise
from records.actor import Actor
from records.errors import ValidationFailed
from workflow_engine import Workflows
from workflow_engine.actions import ACTIONS
from workflow_engine.definitions import workflows_of
from workflow_engine.inbox import BOXES

from ..api.errors import status_of
from ..api.service import records_service, workflows_service
from ..i18n import language, reason, translated
from ..identity import page_actor
from ..navigation import NavLink, add_nav_link, counts_out_of_band
from . import inbox_rows, workflow_diagram, workflow_panel
from .pages import page_blueprint, render_page, wants_partial

blueprint = page_blueprint("approvals", __name__)

RECORD = "/w/<app>/<entity>/<int:record_id>"
INBOX_LIMIT = 100
BATCH_LIMIT = 100
NOTIFICATIONS_LIMIT = 100
DECISIONS = ("approve", "reject")  # what a row of the inbox decides
REFUSED = "X-Workflow-Refused"  # the refusal's status, when the answer itself is 200


def flow() -> Workflows:
    return workflows_service()


def record_url(app: str, entity: str, record_id: int) -> str:
    """The record's detail page once it exists; until then, the page of its actions."""
    endpoint = "records.detail" if "records.detail" in current_app.view_functions else None
    endpoint = endpoint or "approvals.record_actions"
    return url_for(endpoint, app=app, entity=entity, record_id=record_id)


# --- reading forms ------------------------------------------------------------------


def form_text(name: str) -> str | None:
    value = request.form.get(name, "")
    if "\x00" in value:
        # No database text holds a NUL (PostgreSQL refuses it outright).
        raise ValidationFailed([Problem(f"/{name}", "contains a NUL character")])
    return value.strip() or None


def form_version() -> int | None:
    value = request.form.get("version", "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise ValidationFailed([Problem("/version", "must be the record's version number")])
    return int(value)


USER_LIST = re.compile(r"[\s,;，、；]+")


def action_payload(action: str) -> dict:
    """The engine's payload for ``action`` from the panel's form."""
    payload: dict = {}
    comment = form_text("comment")
    if comment is not None:
        payload["comment"] = comment
    if action == "send_back":
        payload["to"] = form_text("to") or "previous"
    elif action == "transfer":
        username = form_text("transfer_to")
        if username is None:
            raise ValidationFailed([Problem("/to", "name the user to hand the task to")])
        payload["to"] = username
    elif action == "add_approver":
        names = [name for name in USER_LIST.split(form_text("add_users") or "") if name]
        if not names:
            raise ValidationFailed([Problem("/users", "name at least one user to add")])
        payload["users"] = names
    return payload


# --- a record's actions ---------------------------------------------------------------


def _panel(actor: Actor, app: str, entity: str, record_id: int, **kwargs):
    return workflow_panel.panel(flow(), actor, app, entity, record_id, language(), **kwargs)


@blueprint.app_template_global("workflow_panel")
def workflow_panel_global(app: str, entity: str, record_id: int):
    """For pages that include ``workflow/_record_actions.html`` instead of loading it."""
    return _panel(page_actor(), app, entity, record_id)


@blueprint.get(RECORD + "/actions")
def record_actions(app: str, entity: str, record_id: int):
    panel = _panel(page_actor(), app, entity, record_id)
    return render_page("workflow/record_actions.html", "workflow/_record_actions.html", panel=panel)


def _acted(app: str, entity: str, record_id: int, run, done: str):
    """Run an action (``run()`` returns the engine's outcome) and answer with the panel."""
    actor = page_actor()
    try:
        outcome = run()
    except CrmError as error:
        message = reason(error)
        panel = _panel(actor, app, entity, record_id, error=message, tolerate_forbidden=True)
        if wants_partial():
            response = make_response(render_template("workflow/_record_actions.html", panel=panel))
            response.headers[REFUSED] = str(status_of(error))
            return response
        page = render_template("workflow/record_actions.html", panel=panel)
        return page, status_of(error)
    message = done(outcome) if callable(done) else done
    if not wants_partial():
        flash(message, "success")
        return redirect(record_url(app, entity, record_id))
    panel = _panel(actor, app, entity, record_id, message=message, tolerate_forbidden=True)
    response = make_response(
        render_template("workflow/_record_actions.html", panel=panel) + fresh_counts()
    )
    response.headers["HX-Trigger"] = "record-changed"
    return response


@blueprint.post(RECORD + "/transitions/<name>")
def fire(app: str, entity: str, record_id: int, name: str):
    def run():
        return flow().fire(
            page_actor(),
            app,
            entity,
            record_id,
            name,
            form_text("comment"),
            expected_version=form_version(),
        )

    def done(outcome: dict) -> str:
        approval = outcome["approval"]
        if approval is not None:
            return _("Sent for approval: %(label)s.", label=_text(approval["label"]))
        return _("Done: the record is now %(state)s.", state=_state_label(app, entity, outcome))

    return _acted(app, entity, record_id, run, done)


@blueprint.post(RECORD + "/tasks/<int:task_id>/<action>")
def act(app: str, entity: str, record_id: int, task_id: int, action: str):
    def run():
        if action not in ACTIONS:
            raise NotFound(f"there is no approval action '{action}'; use one of {ACTIONS}")
        return flow().act(page_actor(), task_id, action, action_payload(action))

    def done(outcome: dict) -> str:
        return _action_done(action, outcome)

    return _acted(app, entity, record_id, run, done)


@blueprint.post(RECORD + "/withdraw")
def withdraw(app: str, entity: str, record_id: int):
    def run():
        return flow().withdraw(page_actor(), app, entity, record_id)

    return _acted(app, entity, record_id, run, _("You withdrew the approval."))


def _action_done(action: str, outcome: dict) -> str:
    approval = outcome.get("approval") or {}
    closed = approval.get("status") not in (None, "open")
    if action == "approve":
        if closed:
            return _("You approved. The approval is complete.")
        return _("You approved.")
    if action == "reject":
        return _("You rejected the request.")
    if action == "send_back":
        return _("You sent the request back.")
    if action == "transfer":
        return _("You handed the task to %(user)s.", user=request.form.get("transfer_to", ""))
    if action == "add_approver":
        return _("You added approvers to this step.")
    return _("Your comment was added.")


def _text(value) -> str:
    return localise(value, language())


def _state_label(app: str, entity: str, outcome: dict) -> str:
    runtime = records_service().runtime(app, entity)
    for workflow in workflows_of(runtime.entity):
        if outcome["state"] in workflow.states:
            return workflow_panel.state_label(workflow, outcome["state"], language())
    return outcome["state"]


# --- the diagram ----------------------------------------------------------------------


def diagrams(actor: Actor, app: str, entity: str, record_id: int) -> dict:
    """The record's workflows as diagrams, and its open approval (Forbidden if unreadable)."""
    flow_ = flow()
    runtime = records_service().runtime(app, entity)
    approval = flow_.approval(actor, app, entity, record_id)
    try:
        record = records_service().get(actor, app, entity, record_id)
    except CrmError:
        record = None  # an approver without read access sees the approval's states only
    lang = language()
    drawn = []
    for workflow in workflows_of(runtime.entity):
        mine = approval if approval and approval["workflow"] == workflow.name else None
        if record is not None:
            current = workflow.state_of(record)
        elif mine is not None:
            current = mine["pending_state"] or mine["from"]
        else:
            continue
        arrows = workflow_diagram.arrows_of(workflow, lang, _("approved"), _("rejected"))
        drawn.append(
            {
                "workflow": workflow,
                "diagram": workflow_diagram.layout(
                    workflow,
                    arrows,
                    language=lang,
                    current=current,
                    pending=mine["pending_state"] if mine else None,
                    target=mine["to"] if mine else None,
                ),
                "approval": mine,
            }
        )
    return {
        "app_name": app,
        "entity_name": entity,
        "record_id": record_id,
        "diagrams": drawn,
        "approval": approval,
    }


@blueprint.app_template_global("workflow_diagram")
def workflow_diagram_global(app: str, entity: str, record_id: int) -> dict:
    """For pages that include ``workflow/_diagram.html``: ``{% with diagram = ... %}``."""
    return diagrams(page_actor(), app, entity, record_id)


@blueprint.get(RECORD + "/diagram")
def diagram(app: str, entity: str, record_id: int):
    found = diagrams(page_actor(), app, entity, record_id)
    return render_page("workflow/diagram.html", "workflow/_diagram.html", diagram=found)


# --- the inbox ------------------------------------------------------------------------


def counts(actor: Actor) -> dict[str, int]:
    """The box counts, once per request (the navigation asks twice)."""
    cached = g.get("crm_approval_counts")
    if cached is None or cached[0] != actor.id:
        cached = g.crm_approval_counts = (actor.id, flow().counts(actor))
    return cached[1]


def fresh_counts() -> str:
    """The navigation's counts, read again after an action and swapped in out of band:
    htmx answers update the sidebar's badges in place."""
    g.pop("crm_approval_counts", None)
    return counts_out_of_band()


def _box() -> str:
    box = request.args.get("box", "waiting")
    if box not in BOXES:
        raise ValidationFailed(
            [Problem("/box", f"there is no box '{box}'; use one of {', '.join(BOXES)}")]
        )
    return box


def inbox_context(
    actor: Actor, box: str, *, batch: list[dict] | None = None, error: str | None = None
) -> dict:
    g.pop("crm_approval_counts", None)  # an action may just have changed them
    items = flow().inbox(actor, box, INBOX_LIMIT)
    return {
        "box": box,
        "boxes": BOXES,
        "counts": counts(actor),
        "rows": inbox_rows.describe(items, language()),
        "limited": len(items) == INBOX_LIMIT,
        "batch": batch,
        "error": error,
    }


@blueprint.get("/approvals")
def inbox():
    context = inbox_context(page_actor(), _box())
    return render_page("workflow/inbox.html", "workflow/_inbox.html", **context)


@blueprint.post("/approvals/tasks/<int:task_id>/<action>")
def decide(task_id: int, action: str):
    """Approve or reject from an inbox row; the row answers, showing the decision."""
    actor = page_actor()
    try:
        if action not in DECISIONS:
            raise NotFound(f"an inbox row can only {' or '.join(DECISIONS)}")
        payload = {"comment": comment} if (comment := form_text("comment")) else {}
        outcome = flow().act(actor, task_id, action, payload)
    except CrmError as error:
        message = reason(error)
        if wants_partial():
            # The row stays as it is; only its message slot tells why.
            response = make_response(render_template("workflow/_refusal.html", message=message))
            response.headers["HX-Retarget"] = f"#wf-task-{task_id}-message"
            response.headers["HX-Reswap"] = "innerHTML"
            response.headers[REFUSED] = str(status_of(error))
            return response
        context = inbox_context(actor, "waiting", error=message)
        return render_template("workflow/inbox.html", **context), status_of(error)
    done = _action_done(action, outcome)
    if not wants_partial():
        flash(done, "success")
        return redirect(url_for(".inbox"))
    row = inbox_rows.describe([_decided_item(outcome, task_id)], language())[0]
    counts_now = fresh_counts()
    response = make_response(
        render_template(
            "workflow/_inbox_decided.html",
            row=row,
            box="waiting",
            boxes=BOXES,
            counts=counts(actor),
            message=done,
        )
        + counts_now
    )
    response.headers["HX-Trigger"] = "record-changed"
    return response


def _decided_item(outcome: dict, task_id: int) -> dict:
    """The inbox item of a task just decided, from the engine's answer."""
    approval = outcome["approval"]
    task = next((t for step in approval["steps"] for t in step["tasks"] if t["id"] == task_id), {})
    return {
        "id": task_id,
        "approval_id": approval["id"],
        "app": approval["app"],
        "entity": approval["entity"],
        "record_id": approval["record_id"],
        "workflow": approval["workflow"],
        "transition": approval["transition"],
        "label": approval["label"],
        "approval_status": approval["status"],
        "step": task.get("step"),
        "submitter": approval["submitter"]["username"],
        "started_at": approval["started_at"],
        "status": task.get("status"),
        "comment": task.get("comment"),
        "acted_at": task.get("acted_at"),
    }


def _task_ids() -> list[int]:
    values = request.form.getlist("task")
    problems = [
        Problem(f"/task/{index}", f"'{value}' is not a task number")
        for index, value in enumerate(values)
        if not value.isdigit() or len(value) > 12
    ]
    if problems:
        raise ValidationFailed(problems)
    ids = list(dict.fromkeys(int(value) for value in values))
    if not ids:
        raise ValidationFailed([Problem("/task", "select at least one approval")])
    if len(ids) > BATCH_LIMIT:
        raise ValidationFailed([Problem("/task", f"select at most {BATCH_LIMIT} at a time")])
    return ids


@blueprint.post("/approvals/batch")
def batch():
    """Approve the selected tasks with one comment: each on its own, each reported."""
    actor = page_actor()
    try:
        ids = _task_ids()
        comment = form_text("comment")
    except CrmError as error:
        context = inbox_context(actor, "waiting", error=reason(error))
        return _inbox_answer(context, 200 if wants_partial() else status_of(error))
    waiting = {
        row["id"]: row
        for row in inbox_rows.describe(flow().inbox(actor, "waiting", INBOX_LIMIT), language())
    }
    results = []
    for task_id in ids:
        known = waiting.get(task_id)
        entry = {
            "task_id": task_id,
            "title": known["title"] if known else _("Task #%(id)s", id=task_id),
            "url": record_url(known["app"], known["entity"], known["record_id"])
            if known and known["has_title"]
            else None,
        }
        try:
            flow().act(actor, task_id, "approve", {"comment": comment} if comment else {})
        except CrmError as error:
            entry.update(ok=False, message=reason(error))
        else:
            entry.update(ok=True, message=_("Approved"))
        results.append(entry)
    context = inbox_context(actor, "waiting", batch=results)
    response = _inbox_answer(context, 200)
    if any(entry["ok"] for entry in results):
        response.headers["HX-Trigger"] = "record-changed"
    return response


def _inbox_answer(context: dict, status: int):
    if wants_partial():
        # inbox_context has just read the counts afresh.
        page = render_template("workflow/_inbox.html", **context) + counts_out_of_band()
    else:
        page = render_template("workflow/inbox.html", **context)
    return make_response(page, status)


# --- notifications --------------------------------------------------------------------


@blueprint.get("/notifications")
def notifications():
    actor = page_actor()
    items = [
        {**item, "message": translated(item["message"])}
        for item in flow().notifications(actor, limit=NOTIFICATIONS_LIMIT)
    ]
    return render_page(
        "workflow/notifications.html",
        None,
        items=items,
        unread=counts(actor)["unread"],
        limited=len(items) == NOTIFICATIONS_LIMIT,
    )


@blueprint.post("/notifications/read")
def mark_read():
    marked = flow().mark_read(page_actor())
    flash(_("%(n)s notifications marked read.", n=marked), "success")
    return redirect(url_for(".notifications"))


# --- template helpers and navigation ---------------------------------------------------


@blueprint.app_template_global("wf_when")
def when(value) -> str:
    """A stored time (ISO text or datetime) in the user's time zone, to the minute."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return format_datetime(value, "yyyy-MM-dd HH:mm")


@blueprint.app_template_global("wf_record_url")
def wf_record_url(app: str, entity: str, record_id: int) -> str:
    return record_url(app, entity, record_id)


def _approvals_link(actor: Actor) -> NavLink:
    waiting = counts(actor)["waiting"]
    return NavLink(url_for("approvals.inbox"), _("Approvals"), waiting, key="approvals")


def _notifications_link(actor: Actor) -> NavLink:
    unread = counts(actor)["unread"]
    return NavLink(
        url_for("approvals.notifications"), _("Notifications"), unread, key="notifications"
    )


@blueprint.record_once
def _add_nav_links(state) -> None:
    add_nav_link(state.app, _approvals_link)
    add_nav_link(state.app, _notifications_link)
