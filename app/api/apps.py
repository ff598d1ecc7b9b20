"""``/api/v1/apps``: the installed apps, their documents, and publishing new versions."""

from __future__ import annotations

from flask import Blueprint, jsonify

from metamodel import publish
from metamodel.errors import InvalidDocument, Problem
from records.errors import Forbidden

from ..runtime import runtime
from .auth import current_actor
from .inputs import json_body, query_flag

blueprint = Blueprint("apps", __name__, url_prefix="/apps")

DESIGNERS = frozenset({"admin", "designer"})


@blueprint.get("")
def list_apps():
    registry = runtime().registry
    items = []
    for name in registry.app_names():
        document = registry.app(name).stored.document
        items.append(
            {"name": name, "version": document["version"], "label": document.get("label", name)}
        )
    return jsonify({"items": items})


@blueprint.get("/<app>")
def get_app(app: str):
    return jsonify(runtime().registry.app(app).stored.document)


@blueprint.post("")
def publish_app():
    """Validate and plan (``dry_run=1``), or apply, an app document."""
    actor = current_actor()
    dry_run = query_flag("dry_run")
    if not actor.roles & DESIGNERS:
        raise Forbidden("only the admin and designer roles may publish apps")
    document = json_body()
    if not isinstance(document, dict):
        raise InvalidDocument([Problem("", "an app document is a JSON object {...}")])
    engine = runtime().engine
    if dry_run:
        outcome = publish.plan_document(engine, document)
        plan = outcome.plan.as_json()
        plan.update(changed=outcome.changed, refused=outcome.plan.refused)
        return jsonify({"plan": plan})
    outcome = publish.apply_document(engine, document, author=actor.username)
    response = jsonify(
        {"name": outcome.app, "version": outcome.version, "plan": outcome.plan.as_json()}
    )
    response.status_code = 201 if outcome.changed else 200
    return response
