"""``crm workflow``: the workflow engine's work that no user starts.

``crm workflow tick`` escalates approval tasks past their deadline. Run it from
cron (every few minutes) on any number of machines: each overdue task is
escalated once, however many ticks see it.
"""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import inspect

from metamodel.errors import CrmError
from metamodel.sqltypes import UTC
from metamodel.system_tables import approval_tasks
from records.service import Records
from workflow_engine import Workflows

from .cli import refusals
from .mail import mailer_from
from .runtime import runtime


# An AppGroup runs its commands inside the app context, as the groups of app/cli.py do.
@click.group("workflow", cls=AppGroup)
def workflow_group():
    """Work of the workflow engine that runs on a clock."""


def parse_moment(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time; one without an offset is UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CrmError(
            f"'{text}' is not an ISO 8601 moment, e.g. 2025-03-05T09:00:00Z", "/now"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@workflow_group.command("tick")
@click.option(
    "--now",
    "moment",
    metavar="ISO",
    help="the moment to take as now, e.g. 2025-03-05T09:00:00Z (default: the clock)",
)
@refusals
def tick(moment):
    """Escalate approval tasks past their deadline (safe to run again at any time)."""
    now = parse_moment(moment) if moment is not None else None
    found = runtime()
    if not inspect(found.engine).has_table(approval_tasks.name):
        raise CrmError("the system tables are missing: run 'crm init' first")
    records = Records(found.engine, found.registry)
    mailer = mailer_from(found.settings, found.engine)
    flow = Workflows(records, deliver=mailer)
    escalated = flow.tick(now)
    if mailer is not None:
        mailer.flush()  # before the command ends: the e-mails go from a thread
    click.echo(f"escalated {escalated} overdue task{'' if escalated == 1 else 's'}")
