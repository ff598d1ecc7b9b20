"""``crm dashboards refresh``: the dashboards' shared snapshots computed anew, from cron.

Dashboard pages show snapshots (``records.dashboard_snapshots``) and refresh the
old ones when shown. Run ``crm dashboards refresh`` every few minutes and most
pages never wait: it computes, for every dashboard (of APP, or only DASHBOARD),
the widgets whose numbers everyone reading in full shares (the "all" audience).
Widgets whose numbers are each user's own are refreshed by their users' pages.
Safe to run on several machines at once: the last one's numbers stay.
"""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup
from sqlalchemy import inspect

from metamodel.errors import CrmError
from metamodel.system_tables import dashboard_snapshots
from records.dashboard_snapshots import refresh_shared
from records.service import Records

from .cli import refusals
from .runtime import runtime


# An AppGroup runs its commands inside the app context, as the groups of app/cli.py do.
@click.group("dashboards", cls=AppGroup)
def dashboards_group():
    """Dashboard snapshots."""


@dashboards_group.command("refresh")
@click.argument("app", required=False)
@click.argument("dashboard", required=False)
@refusals
def refresh(app, dashboard):
    """Compute the shared snapshots of every dashboard (of APP; only DASHBOARD) anew."""
    found = runtime()
    if not inspect(found.engine).has_table(dashboard_snapshots.name):
        raise CrmError("the system tables are missing or old: run 'crm init' first")
    records = Records(found.engine, found.registry)
    done = 0
    started = time.perf_counter()
    for outcome in refresh_shared(records, app, dashboard):
        done += 1
        line = (
            f"{outcome['app']}/{outcome['dashboard']}: {outcome['computed']} "
            f"widget{'' if outcome['computed'] == 1 else 's'} computed"
        )
        if outcome["personal"]:
            line += f", {outcome['personal']} left to their users' pages (numbers of their own)"
        click.echo(f"{line} in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
    if not done:
        click.echo("no dashboards to refresh")
