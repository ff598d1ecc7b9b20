"""Users: creation, passwords, API tokens and the reporting line."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from werkzeug.security import generate_password_hash

from metamodel.errors import CrmError
from metamodel.field_types import EMAIL
from metamodel.sqltypes import UTC
from metamodel.system_tables import api_tokens, users

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,150}$")
ROLE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
# Strong by default; tests may choose a cheaper one.
PASSWORD_METHOD = "scrypt"


def create_user(
    conn: Connection,
    username: str,
    roles: list[str],
    *,
    password: str | None = None,
    manager: str | None = None,
    email: str | None = None,
    method: str = PASSWORD_METHOD,
) -> str:
    """Create a user; returns the password (generated when none is given)."""
    if not USERNAME.match(username):
        raise CrmError(
            f"'{username}' is not a valid username: use letters, digits and _ . @ -", "/username"
        )
    for role in roles:
        if not ROLE.match(role):
            raise CrmError(f"'{role}' is not a valid role name", "/roles")
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise CrmError(f"a user named '{username}' already exists", "/username")
    manager_id = None
    if manager is not None:
        manager_id = conn.execute(select(users.c.id).where(users.c.username == manager)).scalar()
        if manager_id is None:
            raise CrmError(f"there is no user named '{manager}' to be the manager", "/manager")
    if email is not None:
        email = email.strip()
        if not EMAIL.match(email):
            raise CrmError(f"'{email}' is not an e-mail address", "/email")
    password = password or secrets.token_urlsafe(12)
    conn.execute(
        insert(users).values(
            username=username,
            password_hash=generate_password_hash(password, method=method),
            roles=sorted(set(roles)),
            manager_id=manager_id,
            email=email or None,
            active=True,
            created_at=dt.datetime.now(UTC),
        )
    )
    return password


def ensure_admin(conn: Connection, password: str | None) -> tuple[bool, str | None]:
    """Create the user 'admin' unless some admin exists; returns (created, password)."""
    for (roles,) in conn.execute(select(users.c.roles)):
        if "admin" in (roles or []):
            return False, None
    return True, create_user(conn, "admin", ["admin"], password=password)


# --- API tokens ------------------------------------------------------------------

TOKEN_PREFIX = "crm_"
# last_used_at is a hint for people auditing tokens, not a log: writing it at most
# this often keeps a busy client from turning every read into a write.
TOUCH_INTERVAL = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class TokenUser:
    token_id: int
    user_id: int
    username: str
    roles: tuple[str, ...]
    last_used_at: dt.datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(conn: Connection, user_id: int, label: str | None = None) -> str:
    """A new API token of the user; only its hash is stored, so this is the one chance to see it."""
    if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
        raise CrmError(f"there is no user with id {user_id}", "/user_id")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(
            user_id=user_id,
            token_hash=hash_token(token),
            label=label,
            created_at=dt.datetime.now(UTC),
        )
    )
    return token


def token_user(conn: Connection, token: str) -> TokenUser | None:
    """The active user a live token belongs to; None for unknown or revoked tokens."""
    row = conn.execute(
        select(
            api_tokens.c.id,
            api_tokens.c.last_used_at,
            users.c.id.label("user_id"),
            users.c.username,
            users.c.roles,
        )
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(
            api_tokens.c.token_hash == hash_token(token),
            api_tokens.c.revoked_at.is_(None),
            users.c.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    return TokenUser(row.id, row.user_id, row.username, tuple(row.roles or ()), row.last_used_at)


def token_needs_touch(found: TokenUser, now: dt.datetime) -> bool:
    return found.last_used_at is None or now - found.last_used_at >= TOUCH_INTERVAL


def touch_token(conn: Connection, token_id: int, now: dt.datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def revoke_token(conn: Connection, token: str) -> bool:
    """Revoke a token; False when no live token matches."""
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(UTC))
    )
    return result.rowcount == 1


def user_id(conn: Connection, username: str) -> int | None:
    return conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
