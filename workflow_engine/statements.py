"""The statements the engine runs on every call, built once.

Building a SQLAlchemy statement and its cache key costs about as much as running
a small indexed query (see ``records.statements``): so the queries and writes of
firing a transition and deciding an approval are built here once, with bind
parameters, and each call passes only the values. The values an UPDATE sets come
with the parameters too, beside the ``_``-prefixed ones its WHERE reads (no
column's name starts with ``_``).
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from metamodel.system_tables import (
    approval_tasks,
    approvals,
    audit_log,
    delegations,
    notifications,
    users,
)

ID, IDS, VERSION, AT = "_id", "_ids", "_version", "_at"
APP, ENTITY, RECORD = "_app", "_entity", "_record_id"
TASK = "_task_id"
OPEN = "open"

# --- approvals ----------------------------------------------------------------------

open_approval = select(approvals).where(
    approvals.c.app == bindparam(APP),
    approvals.c.entity == bindparam(ENTITY),
    approvals.c.record_id == bindparam(RECORD),
    approvals.c.status == OPEN,
)
# An approval to work on comes with its submitter's name (for the messages and the view).
SUBMITTER_NAME = "submitter_name"
_with_submitter = select(approvals, users.c.username.label(SUBMITTER_NAME)).select_from(
    approvals.outerjoin(users, users.c.id == approvals.c.submitter_id)
)
approval = _with_submitter.where(approvals.c.id == bindparam(ID))
# A task's approval, found through the task in the same statement that locks it.
approval_of_task = _with_submitter.where(
    approvals.c.id
    == select(approval_tasks.c.approval_id)
    .where(approval_tasks.c.id == bindparam(TASK))
    .scalar_subquery()
)
# Only the approval's row is locked, not its submitter's.
approval_locked = approval.with_for_update(of=approvals)
approval_of_task_locked = approval_of_task.with_for_update(of=approvals)
insert_approval = insert(approvals).returning(approvals.c.id)
# Sets the columns given, at the version read.
save_approval = update(approvals).where(
    approvals.c.id == bindparam(ID), approvals.c.version == bindparam(VERSION)
)

# --- tasks --------------------------------------------------------------------------

# Every task of an approval, each with its assignee's name.
ASSIGNEE_NAME = "assignee_name"
tasks_of = (
    select(approval_tasks, users.c.username.label(ASSIGNEE_NAME))
    .select_from(approval_tasks.outerjoin(users, users.c.id == approval_tasks.c.assignee_id))
    .where(approval_tasks.c.approval_id == bindparam(ID))
    .order_by(approval_tasks.c.id)
)
insert_tasks_ordered = insert(approval_tasks).returning(
    approval_tasks.c.id, sort_by_parameter_order=True
)
insert_tasks = insert(approval_tasks).returning(approval_tasks.c.id)
own_seats = (
    update(approval_tasks)
    .where(approval_tasks.c.id.in_(bindparam(IDS, expanding=True)))
    .values(seat=approval_tasks.c.id)
)
# Sets the columns given.
update_task = update(approval_tasks).where(approval_tasks.c.id == bindparam(ID))
update_tasks = update(approval_tasks).where(approval_tasks.c.id.in_(bindparam(IDS, expanding=True)))
decide_task = update(approval_tasks).where(
    approval_tasks.c.id == bindparam(ID), approval_tasks.c.status == OPEN
)
# The open decisions of an approval's round (who may edit a record under approval).
deciders = select(approval_tasks.c.assignee_id).where(
    approval_tasks.c.approval_id == bindparam(ID),
    approval_tasks.c.round == bindparam("_round"),
    approval_tasks.c.kind == "approve",
    approval_tasks.c.status == OPEN,
)

# --- people -------------------------------------------------------------------------

active_users = (
    select(users.c.id, users.c.username, users.c.roles)
    .where(users.c.active.is_(True))
    .order_by(users.c.id)
)
active_among = select(users.c.id, users.c.username).where(
    users.c.id.in_(bindparam(IDS, expanding=True)), users.c.active.is_(True)
)
names_of = select(users.c.id, users.c.username).where(
    users.c.id.in_(bindparam(IDS, expanding=True))
)
delegations_of = (
    select(delegations.c.user_id, delegations.c.delegate_id)
    .where(
        delegations.c.user_id.in_(bindparam(IDS, expanding=True)),
        delegations.c.starts_at <= bindparam(AT),
        delegations.c.ends_at > bindparam(AT),
    )
    .order_by(delegations.c.created_at.desc(), delegations.c.id.desc())
)

# --- what a call leaves behind ---------------------------------------------------------

insert_notifications = insert(notifications)
insert_event = insert(audit_log)
