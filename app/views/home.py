"""The home page: the apps and entities the user may open; a health check for load balancers."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from ..runtime import runtime

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
@login_required
def index():
    crm = runtime()
    with crm.engine.connect() as conn:
        crm.registry.refresh(conn)
    return render_template("home.html")


@blueprint.get("/healthz")
def health():
    with runtime().engine.connect() as conn:
        runtime().registry.refresh(conn)
    return {"status": "ok", "generation": runtime().registry.generation}
