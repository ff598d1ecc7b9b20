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


def resolve(conn: Connection, spec: dict | None, subject: Subject) -> list[int]:
    """The active users ``spec`` names, in a stable order, each once."""
    if not spec:
        return []
    if "role" in spec:
        return with_role(conn, spec["role"])
    if "users" in spec:
        return by_username(conn, spec["users"])
    if "field" in spec:
        return active(conn, [_user_at(conn, subject, spec["field"])])
    if "manager_of" in spec:
        return managers(conn, _manager_base(conn, subject, spec["manager_of"]), spec)
    return []


def managers(conn: Connection, user_id: int | None, spec: dict) -> list[int]:
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
    return active(conn, found)


def with_role(conn: Connection, role: str) -> list[int]:
    rows = conn.execute(
        select(users.c.id, users.c.roles).where(users.c.active.is_(True)).order_by(users.c.id)
    )
    return [row.id for row in rows if role in (row.roles or [])]


def by_username(conn: Connection, names: Iterable[str]) -> list[int]:
    names = list(names)
    found = dict(
        conn.execute(
            select(users.c.username, users.c.id).where(
                users.c.username.in_(names), users.c.active.is_(True)
            )
        ).all()
    )
    return _unique(found[name] for name in names if name in found)


def active(conn: Connection, ids: Iterable[int | None]) -> list[int]:
    wanted = [i for i in ids if isinstance(i, int)]
    if not wanted:
        return []
    alive = set(
        conn.execute(
            select(users.c.id).where(users.c.id.in_(wanted), users.c.active.is_(True))
        ).scalars()
    )
    return _unique(i for i in wanted if i in alive)


def usernames(conn: Connection, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(
        conn.execute(select(users.c.id, users.c.username).where(users.c.id.in_(wanted))).all()
    )


def user_id(conn: Connection, username: str) -> int | None:
    return conn.execute(
        select(users.c.id).where(users.c.username == username, users.c.active.is_(True))
    ).scalar()


def notified(conn: Connection, party: Any, subject: Subject) -> list[int]:
    """The users a ``notify`` entry names: ``$owner``, a role, or an approvers object."""
    if party == OWNER:
        return active(conn, [subject.record.get("owner")])
    if isinstance(party, str):
        return with_role(conn, party)
    return resolve(conn, party, subject)


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
