"""Lists of records (placeholder until the list pages land)."""

from __future__ import annotations

from .pages import page_blueprint, render_page

blueprint = page_blueprint("lists", __name__, url_prefix="/a")


@blueprint.get("/<app>/<entity>")
def list_page(app: str, entity: str):
    return render_page("home.html")
