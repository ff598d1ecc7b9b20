"""Behind a reverse proxy: the client's address (and scheme, host) from X-Forwarded-*.

Behind nginx every request comes from the proxy's address, so the sign-in
lock-out and the public forms' rate limit would record everyone as one client.
The ``proxy:`` settings say how many proxies in front of the app set each
header; werkzeug's ProxyFix then reads that many values back from the right of
the header, the ones those proxies wrote, and ignores whatever a client put
before them. With every count 0 (the default) nothing is read: without a proxy
a client could write X-Forwarded-For itself and pose as any address.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from metamodel.errors import CrmError

# ProxyFix's arguments, each the number of proxies that set X-Forwarded-For, -Proto, ...
HEADERS = ("x_for", "x_proto", "x_host", "x_port", "x_prefix")
# More hops than any real chain of proxies; a larger number is a mistake in the settings.
MAX_HOPS = 10


def proxy_hops(settings: dict[str, Any]) -> dict[str, int]:
    """The ``proxy:`` settings, checked; a CrmError names the setting at fault."""
    raw = settings.get("proxy")
    if raw is None:
        return dict.fromkeys(HEADERS, 0)
    if not isinstance(raw, dict):
        raise CrmError(
            f"proxy must be a mapping of X-Forwarded-* headers to the number of proxies "
            f"that set them (e.g. proxy: {{x_for: 1}}), not {raw!r}",
            "/proxy",
        )
    for key in raw:
        if key not in HEADERS:
            raise CrmError(
                f"proxy.{key} is not a proxy setting; use {', '.join(HEADERS)}", f"/proxy/{key}"
            )
    hops = {}
    for key in HEADERS:
        value = raw.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_HOPS:
            raise CrmError(
                f"proxy.{key} must be the number of proxies that set the header "
                f"(0 to {MAX_HOPS}), not {value!r}",
                f"/proxy/{key}",
            )
        hops[key] = value
    return hops


def init_app(app: Flask, settings: dict[str, Any]) -> None:
    """Trust the configured proxies' headers; with none configured, change nothing."""
    hops = proxy_hops(settings)
    if any(hops.values()):
        app.wsgi_app = ProxyFix(app.wsgi_app, **hops)
