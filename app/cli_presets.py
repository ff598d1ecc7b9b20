"""``crm preset``: list the industry presets; import one as an app, or upgrade the app.

Importing a preset over an app that exists merges the preset's changes into it
(presets/merge.py): the app's own changes are kept, and where the app and the
preset changed the same thing differently the app's value is kept and the
conflict printed. Conflicts do not stop an import; a merged document that does
not validate does (exit 1, nothing changed). An upgrade asks before it changes
the app unless ``--yes``; ``--dry-run`` shows everything and changes nothing.
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from metamodel import store
from presets.catalog import list_presets, localised
from presets.exporting import export_app
from presets.importing import ImportPlan, ImportRefused, plan_import, read_source, run_import
from presets.merge import MergeResult
from records.service import Records

from .cli import _actor, _author, _print_plan, refusals
from .runtime import runtime


# An AppGroup: its commands run in the app context, where runtime() lives.
@click.group("preset", cls=AppGroup)
def preset_group():
    """Industry presets: ready-made apps with sample data."""


@preset_group.command("list")
@refusals
def preset_list():
    """One preset a line: name, industry, description."""
    for info in list_presets():
        click.echo("\t".join([info.name, info.industry or "-", localised(info.description)]))


@preset_group.command("import")
@click.argument("source", metavar="NAME_OR_FILE")
@click.option("--with-sample-data", is_flag=True, help="also create the preset's sample records")
@click.option("--dry-run", is_flag=True, help="print what the import would do; change nothing")
@click.option("--yes", is_flag=True, help="upgrade an existing app without asking")
@click.option("--as", "username", help="the user the sample records are created as")
@refusals
def preset_import(source, with_sample_data, dry_run, yes, username):
    """Import a preset (by name, or a preset file) as an app of the same name.

    An app of that name that exists is upgraded: the preset's changes are
    merged in, the app's own changes kept.
    """
    found = runtime()
    engine = found.engine
    preset = read_source(source)
    store.ensure_system_tables(engine)
    with engine.connect() as conn:
        actor = _actor(conn, username)
        exists = store.current(conn, preset["name"]) is not None
    options = {
        "with_sample_data": with_sample_data,
        "actor": actor,
        "records": Records(engine, found.registry),
    }
    try:
        if dry_run or (exists and not yes):
            plan = plan_import(engine, preset, **options)
            _report(plan)
            if dry_run:
                click.echo("dry run: nothing was changed")
                return
            if not plan.changed:
                return
            if plan.outcome.changed and not click.confirm("apply this upgrade?", default=False):
                click.echo("nothing applied", err=True)
                sys.exit(1)
        plan = run_import(engine, preset, author=_author(), **options)
    except ImportRefused as refused:
        _report_merge(refused.merge)
        raise
    if not exists or yes:
        _report(plan)
    _report_done(plan)


def _report(plan: ImportPlan) -> None:
    if plan.merge is not None and (plan.merge.taken or plan.merge.conflicts):
        click.echo(
            f"{plan.app} {plan.previous_version}: merging version {plan.preset_version} "
            "of the preset"
        )
        if plan.base:
            click.echo(f"  ({plan.base})")
        _report_merge(plan.merge)
    if plan.outcome.changed:
        click.echo(f"plan for {plan.app} {plan.version}:")
        _print_plan(plan.outcome.plan)
    if plan.sample_counts:
        total = sum(plan.sample_counts.values())
        each = ", ".join(f"{entity} {count}" for entity, count in plan.sample_counts.items())
        click.echo(f"sample records: {total} ({each})")
    if plan.sample_note:
        click.echo(plan.sample_note)
    if not plan.changed:
        click.echo(f"{plan.app} {plan.version}: nothing to change")


def _report_merge(merge: MergeResult) -> None:
    for change in merge.taken:
        click.echo(f"  + {change}")
    for conflict in merge.conflicts:
        click.echo(f"  ! conflict {conflict}")
    if merge.conflicts:
        count = len(merge.conflicts)
        click.echo(f"{count} conflict{'s' if count != 1 else ''}: the app's own values were kept")


def _report_done(plan: ImportPlan) -> None:
    if not plan.changed:
        return
    added = sum(plan.sample_counts.values())
    records = f" with {added} sample records" if added else ""
    if not plan.outcome.changed:
        click.echo(f"added {added} sample records to {plan.app}")
    elif plan.upgrade:
        click.echo(
            f"upgraded {plan.app} from {plan.previous_version} to {plan.version} "
            f"(#{plan.outcome.seq}){records}"
        )
    else:
        click.echo(f"imported {plan.app} {plan.version} (#{plan.outcome.seq}){records}")


def exported_with_records(app: str) -> dict:
    """``crm app export --with-records``: the app as a preset; notes go to stderr."""
    found = runtime()
    records = Records(found.engine, found.registry)
    with found.engine.connect() as conn:
        actor = _actor(conn, None)
    exported = export_app(records, actor, app, with_records=True)
    for note in exported.notes:
        click.echo(f"note: {note}", err=True)
    total = sum(exported.counts.values())
    click.echo(f"exported {total} records as sample data", err=True)
    return exported.document
