"""Signing in and reading pages with Flask's test client, as the page tests all do."""

from __future__ import annotations

import re

PASSWORD = "pw-123456"
# The token in the body's hx-headers (pages), or in a form's hidden field (public forms).
CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/sign-in") -> str:
    """The CSRF token the page at ``path`` hands the browser."""
    found = CSRF.search(client.get(path).get_data(as_text=True))
    return found.group(1) or found.group(2)


def signed_in(web_app, username: str, language: str | None = None):
    """A test client signed in as ``username`` (in ``language``, if given)."""
    client = web_app.test_client()
    response = client.post(
        "/sign-in",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    if language:
        token = csrf_token(client, "/")
        client.post("/language", data={"language": language, "next": "/", "csrf_token": token})
    return client


def page_of(client, path: str, status: int = 200, **kwargs) -> str:
    """The page at ``path``, which must answer ``status``."""
    response = client.get(path, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:3000]
    return response.get_data(as_text=True)
