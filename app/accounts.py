"""Users: creation, passwords and the reporting line."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy import Connection, insert, select
from werkzeug.security import generate_password_hash

from metamodel.errors import CrmError
from metamodel.sqltypes import UTC
from metamodel.system_tables import users

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,150}$")
ROLE = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


def create_user(
    conn: Connection,
    username: str,
    roles: list[str],
    *,
    password: str | None = None,
    manager: str | None = None,
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
    password = password or secrets.token_urlsafe(12)
    conn.execute(
        insert(users).values(
            username=username,
            password_hash=generate_password_hash(password),
            roles=sorted(set(roles)),
            manager_id=manager_id,
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
