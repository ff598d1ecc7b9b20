"""Who is signed in: Flask-Login sessions, password checks and lock-out.

A browser signs in with a username and password; the session then names the
user, who is loaded afresh on every request so a deactivated user or a changed
role takes effect at once, in every worker. Repeated failures lock the
username for a while: the failures are rows in ``crm_sign_in_failures``, so
every worker counts the same ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import g
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import Connection, delete, func, insert, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from metamodel.errors import CrmError
from metamodel.system_tables import sign_in_failures, users
from records.actor import Actor

from .runtime import runtime

MAX_FAILURES = 5
LOCK_OUT = dt.timedelta(minutes=15)
# Checked against when the username is unknown, so both refusals take as long.
_DUMMY_HASH = generate_password_hash("not a password")

login_manager = LoginManager()
login_manager.login_view = "auth.sign_in"
login_manager.session_protection = "basic"


class SignInRefused(CrmError):
    code = "sign_in_refused"


@dataclass(frozen=True)
class SignedInUser(UserMixin):
    id: int
    username: str
    display_name: str | None
    roles: frozenset[str]
    language: str | None

    def get_id(self) -> str:
        return str(self.id)

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.username, self.roles)

    @property
    def name(self) -> str:
        return self.display_name or self.username


def _signed_in_user(row) -> SignedInUser:
    return SignedInUser(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        roles=frozenset(row.roles or ()),
        language=row.language,
    )


@login_manager.user_loader
def _load_user(user_id: str) -> SignedInUser | None:
    if not user_id.isdigit():
        return None
    with runtime().engine.connect() as conn:
        row = conn.execute(
            select(users).where(users.c.id == int(user_id), users.c.active.is_(True))
        ).first()
    return _signed_in_user(row) if row else None


def locked_until(conn: Connection, username: str, now: dt.datetime) -> dt.datetime | None:
    """When the username's lock-out ends, or None if it may try now."""
    recent = conn.execute(
        select(func.count(), func.max(sign_in_failures.c.at)).where(
            sign_in_failures.c.username == username, sign_in_failures.c.at > now - LOCK_OUT
        )
    ).one()
    count, last = recent
    if count >= MAX_FAILURES:
        return last + LOCK_OUT
    return None


def authenticate(
    conn: Connection, username: str, password: str, remote_addr: str | None, now: dt.datetime
) -> SignedInUser:
    """The user these credentials name; SignInRefused (recorded as a failure) otherwise."""
    username = username.strip()
    until = locked_until(conn, username, now)
    if until is not None:
        minutes = max(1, int((until - now).total_seconds() // 60) + 1)
        raise SignInRefused(
            f"too many failed sign-ins: this account is locked for {minutes} more minute(s)"
        )
    row = conn.execute(select(users).where(users.c.username == username)).first()
    good = check_password_hash(
        row.password_hash if row and row.password_hash else _DUMMY_HASH, password
    )
    if not (row and row.active and row.password_hash and good):
        conn.execute(
            insert(sign_in_failures).values(username=username, remote_addr=remote_addr, at=now)
        )
        raise SignInRefused("wrong username or password")
    conn.execute(delete(sign_in_failures).where(sign_in_failures.c.username == username))
    return _signed_in_user(row)


def set_language(conn: Connection, user_id: int, language: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(language=language))


def session_actor() -> Actor | None:
    """The actor of the browser session, if someone is signed in."""
    if current_user and current_user.is_authenticated:
        return current_user.actor
    return None


def page_actor() -> Actor:
    """The signed-in actor of a page; pages are behind ``login_required``."""
    actor = g.get("crm_actor")
    if actor is None:
        actor = g.crm_actor = current_user.actor
    return actor
