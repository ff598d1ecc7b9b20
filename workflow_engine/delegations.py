"""Delegation: a user names someone to take their approval tasks for a period.

Only tasks assigned during the period go to the delegate; the task keeps the
original approver in ``on_behalf_of`` so the record shows on whose behalf the
delegate acted. Delegation is not followed further: a delegate's own delegate
does not receive the task, so two users delegating to each other cannot loop.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select, update

from metamodel.errors import NotFound, Problem
from metamodel.messages import Message
from metamodel.system_tables import delegations, users
from records.errors import Forbidden, ValidationFailed

from . import statements
from .approvers import active, user_id


def delegates_of(conn: Connection, users_: list[int], at: dt.datetime) -> dict[int, int]:
    """Whom each of ``users_`` hands tasks to at ``at``: the latest delegation to an active user.

    One query for all of them (a second only when someone has delegated).
    """
    wanted = sorted(set(users_))
    if not wanted:
        return {}
    rows = conn.execute(
        statements.delegations_of, {statements.IDS: wanted, statements.AT: at}
    ).all()
    if not rows:
        return {}
    alive = set(active(conn, [delegate for _, delegate in rows]))
    found: dict[int, int] = {}
    for user, delegate in rows:
        if user not in found and delegate in alive:
            found[user] = delegate
    return found


def create(
    conn: Connection,
    user: int,
    delegate_name: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    now: dt.datetime,
) -> dict:
    delegate = user_id(conn, delegate_name)
    if delegate is None:
        raise ValidationFailed(
            [Problem("/delegate", Message("there is no active user '{user}'", user=delegate_name))]
        )
    if delegate == user:
        raise ValidationFailed([Problem("/delegate", Message("you cannot delegate to yourself"))])
    if ends_at <= starts_at:
        raise ValidationFailed(
            [Problem("/ends_at", Message("the period must end after it starts"))]
        )
    if ends_at <= now:
        raise ValidationFailed([Problem("/ends_at", Message("the period must end in the future"))])
    new_id = conn.execute(
        insert(delegations)
        .values(
            user_id=user,
            delegate_id=delegate,
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
        )
        .returning(delegations.c.id)
    ).scalar_one()
    return {
        "id": new_id,
        "delegate": delegate_name,
        "starts_at": starts_at,
        "ends_at": ends_at,
    }


def listed(conn: Connection, user: int) -> list[dict]:
    rows = conn.execute(
        select(delegations, users.c.username)
        .join(users, users.c.id == delegations.c.delegate_id)
        .where(delegations.c.user_id == user)
        .order_by(delegations.c.starts_at.desc(), delegations.c.id.desc())
    )
    return [
        {
            "id": row.id,
            "delegate": row.username,
            "starts_at": row.starts_at,
            "ends_at": row.ends_at,
        }
        for row in rows
    ]


def end(conn: Connection, user: int, delegation_id: int, now: dt.datetime, admin: bool) -> None:
    row = conn.execute(select(delegations).where(delegations.c.id == delegation_id)).first()
    if row is None:
        raise NotFound(
            Message("there is no delegation {delegation_id}", delegation_id=delegation_id)
        )
    if row.user_id != user and not admin:
        raise Forbidden(Message("only the user who delegated may end a delegation"))
    if row.ends_at > now:
        conn.execute(
            update(delegations)
            .where(delegations.c.id == delegation_id)
            .values(ends_at=max(now, row.starts_at))
        )
