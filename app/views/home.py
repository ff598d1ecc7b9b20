"""The landing page: the installed apps, and a health check for load balancers."""

from __future__ import annotations

from flask import Blueprint, render_template

from metamodel.text import localise

from ..runtime import runtime

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def index():
    crm = runtime()
    registry = crm.registry
    with crm.engine.connect() as conn:
        registry.refresh(conn)
        apps = [registry.app(name, conn) for name in registry.app_names()]
    return render_template("home.html", apps=apps, localise=localise)


@blueprint.get("/healthz")
def health():
    with runtime().engine.connect() as conn:
        runtime().registry.refresh(conn)
    return {"status": "ok", "generation": runtime().registry.generation}
