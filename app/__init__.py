"""The web application: the only place Flask is imported.

Production serves ``app:create_app()`` with gunicorn; several workers share
nothing but the database.
"""

from __future__ import annotations

import gc
import secrets
from pathlib import Path

from flask import Flask
from jinja2 import StrictUndefined

from . import proxy
from .config import load_settings
from .runtime import Runtime


def _secret_key(settings: dict) -> str:
    if settings.get("secret_key"):
        return settings["secret_key"]
    # Without a configured key, keep one in the instance folder so sessions
    # survive restarts and every worker on this machine signs alike.
    path = Path(settings["instance_path"]) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(config: dict | None = None) -> Flask:
    settings = load_settings(overrides=config)
    Path(settings["instance_path"]).mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=settings["instance_path"])
    proxy.init_app(app, settings)
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        MAX_CONTENT_LENGTH=int(settings["max_request_mb"] * 1024 * 1024),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings["secure_cookies"]),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=bool(settings["secure_cookies"]),
        CRM=settings,
    )
    app.extensions["crm"] = Runtime(settings)
    app.jinja_env.undefined = StrictUndefined

    from . import api, errors, i18n, identity, navigation, security
    from .views import admin, approvals, auth, delegations, home, lists, public_forms, record_pages
    from .views import dashboards as dashboard_pages

    security.init_app(app)
    i18n.init_app(app)
    identity.login_manager.init_app(app)
    errors.init_app(app)
    navigation.init_app(app)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(home.blueprint)
    app.register_blueprint(lists.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(approvals.blueprint)
    app.register_blueprint(delegations.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(dashboard_pages.blueprint)
    app.register_blueprint(record_pages.blueprint)
    app.register_blueprint(public_forms.blueprint)
    # What start-up made (modules, templates, metadata) lives as long as the
    # worker: keep it out of the cyclic collector's full passes, which otherwise
    # walk all of it again and again, a pause of tens of milliseconds inside some
    # unlucky request.
    gc.freeze()
    return app
