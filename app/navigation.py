"""The navigation a user sees: each app with the entities, views and dashboards they may read."""

from __future__ import annotations

from dataclasses import dataclass, field

from metamodel.registry import Registry
from records.access import grant
from records.actor import Actor


@dataclass
class NavEntity:
    name: str
    label: object  # a metadata Text
    views: list[dict] = field(default_factory=list)


@dataclass
class NavApp:
    name: str
    label: object
    entities: list[NavEntity] = field(default_factory=list)
    dashboards: list[dict] = field(default_factory=list)


def _role_allows(actor: Actor, roles: list[str] | None) -> bool:
    return actor.is_admin or not roles or bool(actor.roles & set(roles))


def navigation(registry: Registry, actor: Actor, conn) -> list[NavApp]:
    """Apps in name order; an app with nothing the actor may read is left out."""
    found = []
    for name in sorted(registry.app_names()):
        model = registry.app(name, conn).model
        nav = NavApp(name, model.label or name)
        for entity in model.entities.values():
            if entity.is_child or grant(actor, entity, "read") is None:
                continue
            views = [
                view
                for view in model.list_of("views")
                if view.get("entity") == entity.name and _role_allows(actor, view.get("roles"))
            ]
            nav.entities.append(NavEntity(entity.name, entity.plural_label, views))
        readable = {entity.name for entity in nav.entities}
        nav.dashboards = [
            board
            for board in model.list_of("dashboards")
            if _role_allows(actor, board.get("roles"))
            and all(
                w.get("entity") in readable for w in board.get("widgets", []) if w.get("entity")
            )
        ]
        if nav.entities or nav.dashboards:
            found.append(nav)
    return found


@dataclass
class NavLink:
    """A link below the apps (the approvals inbox, the admin pages), with an optional count.

    A link with a ``key`` shows its count in ``#nav-count-<key>``, which an htmx
    answer can replace out of band (see :func:`counts_out_of_band`).
    """

    url: str
    label: str
    count: int = 0
    key: str | None = None


NAV_LINKS = "crm.nav_links"


def add_nav_link(app, make_link) -> None:
    """Register ``make_link(actor) -> NavLink | None``, called for each page's navigation."""
    app.extensions.setdefault(NAV_LINKS, []).append(make_link)


def nav_links() -> list[NavLink]:
    """The links below the apps for the signed-in user, counts as they are now."""
    from flask import current_app

    from .identity import page_actor

    actor = page_actor()
    made = (make(actor) for make in current_app.extensions.get(NAV_LINKS, []))
    return [link for link in made if link is not None]


def counts_out_of_band() -> str:
    """The navigation's counts as htmx out-of-band swaps, for an answer to an action that
    may have changed them: the sidebar shows the new counts without a page load."""
    from flask import get_template_attribute

    nav_count = get_template_attribute("_nav_count.html", "nav_count")
    return "".join(str(nav_count(link, oob=True)) for link in nav_links() if link.key)


def init_app(app) -> None:
    from flask import current_app, g

    from .identity import page_actor
    from .runtime import runtime

    def _navigation() -> list[NavApp]:
        if "crm_navigation" not in g:
            crm = runtime()
            with crm.engine.connect() as conn:
                g.crm_navigation = navigation(crm.registry, page_actor(), conn)
        return g.crm_navigation

    def _has_endpoint(endpoint: str) -> bool:
        return endpoint in current_app.view_functions

    app.jinja_env.globals.update(
        navigation=_navigation, nav_links=nav_links, has_endpoint=_has_endpoint
    )
