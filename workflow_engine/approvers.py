"""Who approves: an approvers object of the document turned into user ids.

``{role}`` is every active user holding the role; ``{users}`` names users;
``{field}`` reads a user field of the record (dotted paths follow references);
``{manager_of, levels}`` walks up the reporting line (``crm_users.manager_id``)
from the owner (``$owner``), the submitter (``$user``) or a user field, one
level, N levels, or to the top with ``levels: -1``. Only active users approve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from metamodel.model import EntityModel
from metamodel.system_tables import users

from . import statements
from .definitions import OWNER
from .paths import value_at

SUBMITTER = "$user"


@dataclass(frozen=True)
class Subject:
    """What approvers are resolved against: the record and who submitted it."""

    entity: EntityModel
    record: dict
    submitter_id: int | None
    tables_for: Any


# Each lookup below takes an optional ``names`` dict (id -> username) that it fills with the
# users it read, so a caller showing them later needs no second query.


def resolve(
    conn: Connection, spec: dict | None, subject: Subject, names: dict | None = None
) -> list[int]:
    """The active users ``spec`` names, in a stable order, each once."""
    if not spec:
        return []
    if "role" in spec:
        return with_role(conn, spec["role"], names)
    if "users" in spec:
        return by_username(conn, spec["users"], names)
    if "field" in spec:
        return active(conn, [_user_at(conn, subject, spec["field"])], names)
    if "manager_of" in spec:
        return managers(conn, _manager_base(conn, subject, spec["manager_of"]), spec, names)
    return []


def managers(
    conn: Connection, user_id: int | None, spec: dict, names: dict | None = None
) -> list[int]:
    """The reporting line above ``user_id``: ``levels`` managers, or all of them for -1."""
    levels = spec.get("levels", 1)
    found: list[int] = []
    seen = {user_id}
    current = user_id
    while current is not None and (levels == -1 or len(found) < levels):
        current = conn.execute(select(users.c.manager_id).where(users.c.id == current)).scalar()
        if current is None or current in seen:
            break
        seen.add(current)
        found.append(current)
    return active(conn, found, names)


def with_role(conn: Connection, role: str, names: dict | None = None) -> list[int]:
    rows = conn.execute(statements.active_users)
    found = [row for row in rows if role in (row.roles or [])]
    if names is not None:
        names.update((row.id, row.username) for row in found)
    return [row.id for row in found]


def by_username(
    conn: Connection, usernames_: Iterable[str], names: dict | None = None
) -> list[int]:
    usernames_ = list(usernames_)
    found = dict(
        conn.execute(
            select(users.c.username, users.c.id).where(
                users.c.username.in_(usernames_), users.c.active.is_(True)
            )
        ).all()
    )
    if names is not None:
        names.update((i, name) for name, i in found.items())
    return _unique(found[name] for name in usernames_ if name in found)


def active(conn: Connection, ids: Iterable[int | None], names: dict | None = None) -> list[int]:
    wanted = [i for i in ids if isinstance(i, int)]
    if not wanted:
        return []
    alive = dict(conn.execute(statements.active_among, {statements.IDS: wanted}).all())
    if names is not None:
        names.update(alive)
    return _unique(i for i in wanted if i in alive)


def usernames(conn: Connection, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(conn.execute(statements.names_of, {statements.IDS: sorted(wanted)}).all())


def user_id(conn: Connection, username: str) -> int | None:
    return conn.execute(
        select(users.c.id).where(users.c.username == username, users.c.active.is_(True))
    ).scalar()


def notified(
    conn: Connection, party: Any, subject: Subject, names: dict | None = None
) -> list[int]:
    """The users a ``notify`` entry names: ``$owner``, a role, or an approvers object."""
    if party == OWNER:
        return active(conn, [subject.record.get("owner")], names)
    if isinstance(party, str):
        return with_role(conn, party, names)
    return resolve(conn, party, subject, names)


def _user_at(conn: Connection, subject: Subject, path: str) -> int | None:
    value = value_at(conn, subject.tables_for, subject.entity, subject.record, path)
    return value if isinstance(value, int) else None


def _manager_base(conn: Connection, subject: Subject, whose: str) -> int | None:
    if whose == OWNER:
        return subject.record.get("owner")
    if whose == SUBMITTER:
        return subject.submitter_id
    return _user_at(conn, subject, whose)


def _unique(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(ids))
