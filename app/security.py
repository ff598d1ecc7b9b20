"""What every response and every state-changing request goes through.

CSRF: every POST/PUT/PATCH/DELETE made with the browser session carries the
token (a form field, or the ``X-CSRFToken`` header htmx sends). API clients
that authenticate with a bearer token are not browsers and carry no cookie a
third party could ride on, so they are exempt; so is an API call without a
session, which is refused as unauthenticated anyway.

Headers: a Content-Security-Policy that allows only what the app serves
itself (no inline script, no remote asset), and the usual hardening headers.
"""

from __future__ import annotations

from flask import Flask, request
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
API_PREFIX = "/api/"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Option colours from the metadata are style attributes; style elements stay banned.
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def uses_bearer_token() -> bool:
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked below, bearer calls aside
    csrf.init_app(app)

    @app.before_request
    def _check_csrf():
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        if uses_bearer_token():
            return
        if request.path.startswith(API_PREFIX) and not current_user.is_authenticated:
            return  # no session to ride on: the API answers 401 itself
        csrf.protect()

    @app.after_request
    def _harden(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.headers.get("HX-Request"):
            response.vary.add("HX-Request")
        return response
