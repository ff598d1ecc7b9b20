"""Who is calling: the one place a request becomes an :class:`Actor`.

An API client sends ``Authorization: Bearer <token>``; the token is looked up by
its sha256 hash and must be unrevoked and belong to an active user. The
browser session is the other way in (app/security.py checks its CSRF token);
every view asks this one function either way.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import g, request
from sqlalchemy.exc import OperationalError

from metamodel.db import IMMEDIATE
from metamodel.sqltypes import UTC
from records.actor import Actor

from .. import accounts
from ..identity import session_actor
from ..runtime import runtime
from .errors import Unauthenticated

log = logging.getLogger(__name__)


def current_actor() -> Actor:
    """The authenticated caller of this request; raises Unauthenticated (401) without one."""
    actor = g.get("crm_actor")
    if actor is None:
        session_user = None if "Authorization" in request.headers else session_actor()
        actor = g.crm_actor = session_user or _from_bearer_token()
    return actor


def _from_bearer_token() -> Actor:
    header = request.headers.get("Authorization")
    if header is None:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("the Authorization header must read 'Bearer <token>'")
    engine = runtime().engine
    with engine.connect() as conn:
        found = accounts.token_user(conn, token)
    if found is None:
        raise Unauthenticated(
            "the token is not valid: unknown, revoked, or its user is inactive", invalid_token=True
        )
    now = dt.datetime.now(UTC)
    if accounts.token_needs_touch(found, now):
        try:
            with engine.connect() as conn:
                conn.execution_options(**{IMMEDIATE: True})
                with conn.begin():
                    accounts.touch_token(conn, found.token_id, now)
        except OperationalError:
            # "Last used" is a courtesy: a database busy with a long write (an import
            # holding SQLite's lock) must not turn a valid call into a failure.
            log.warning("could not record the use of token %s", found.token_id, exc_info=True)
    return Actor(found.user_id, found.username, frozenset(found.roles))
