"""What every signed-in page shares: sign-in required, fresh metadata, whole page or partial."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required

from ..runtime import runtime


def page_blueprint(name: str, import_name: str, **kwargs) -> Blueprint:
    """A blueprint whose pages need a signed-in user and see every publish made anywhere."""
    blueprint = Blueprint(name, import_name, **kwargs)

    @blueprint.before_request
    @login_required
    def _signed_in_and_fresh():
        crm = runtime()
        with crm.engine.connect() as conn:
            crm.registry.refresh(conn)

    return blueprint


def wants_partial() -> bool:
    """An htmx request for part of a page (a history restore needs the whole page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render_page(template: str, partial: str | None = None, **context):
    """The whole page, or only its ``partial`` template when htmx asks for it."""
    if partial is not None and wants_partial():
        return render_template(partial, **context)
    return render_template(template, **context)
