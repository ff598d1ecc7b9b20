"""The ``crm`` command: a Flask CLI group, so ``crm run`` serves the app.

Exit status: 0 success, 1 refused (with a clear message), 2 usage error.
Refusals are CrmErrors raised below; this boundary prints them as
``path: message`` lines.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
from flask.cli import FlaskGroup

from metamodel import publish, store
from metamodel.errors import CrmError
from metamodel.text import localise
from metamodel.validate import parse_document, validate_document

from . import accounts
from .runtime import runtime


def _create_app():
    from . import create_app

    return create_app()


def refusals(command):
    """Turn CrmErrors into ``path: message`` lines on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CrmError as error:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            sys.exit(1)

    return wrapper


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False, load_dotenv=False)
def main():
    """Low-code CRM builder."""


def _read_document(path: str) -> dict:
    return parse_document(Path(path).read_text(encoding="utf-8"), source=path)


def _author() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _print_plan(plan) -> None:
    if plan.empty:
        click.echo("nothing to change in the database")
    for line in plan.words():
        click.echo(f"  - {line}")
    for warning in plan.warnings:
        click.echo(f"  ! {warning}")


# --- crm init ---------------------------------------------------------------------


@main.command()
@click.option("--admin-password", help="password of the admin user, if one is created")
@refusals
def init(admin_password):
    """Create or upgrade the system tables; create the admin user if none."""
    engine = runtime().engine
    store.ensure_system_tables(engine)
    with engine.begin() as conn:
        created, password = accounts.ensure_admin(conn, admin_password)
    click.echo(f"system tables ready in {engine.url.render_as_string(hide_password=True)}")
    if created:
        click.echo(
            "created user 'admin'" + ("" if admin_password else f" with password: {password}")
        )


# --- crm app ...--------------------------------------------------------------------


@main.group("app")
def app_group():
    """Validate, publish and manage app documents."""


@app_group.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@refusals
def app_validate(file):
    """Exit 0 if FILE is a valid app document; else print path: message lines."""
    document = _read_document(file)
    engine = runtime().engine
    try:
        with engine.connect() as conn:
            external = publish.installed_apps(conn)
            problems = validate_document(document, external=_tolerant(external))
    except CrmError:
        raise
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    click.echo(f"{file}: valid")


def _tolerant(lookup):
    """Cross-app references checked against the database when it has system tables."""

    def document(name):
        try:
            return lookup(name)
        except Exception:  # noqa: BLE001 - no system tables yet: nothing is installed
            return None

    return document


@app_group.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--sql", is_flag=True, help="also print the SQL the plan would run")
@refusals
def app_plan(file, sql):
    """Print the migration plan for FILE; change nothing."""
    outcome = publish.plan_document(runtime().engine, _read_document(file), sql=sql)
    if not outcome.changed:
        click.echo(f"{outcome.app} {outcome.version}: nothing to change")
        return
    click.echo(f"plan for {outcome.app} {outcome.version}:")
    _print_plan(outcome.plan)
    if outcome.plan.refused:
        for problem in outcome.plan.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    if sql:
        click.echo("SQL:")
        for statement in outcome.sql:
            click.echo(statement.rstrip() + ";")


@app_group.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="apply without asking")
@refusals
def app_apply(file, yes):
    """Validate, plan and apply FILE, recording a new version."""
    document = _read_document(file)
    engine = runtime().engine
    preview = publish.plan_document(engine, document)
    if not preview.changed:
        click.echo(f"{preview.app} {preview.version}: nothing to change")
        return
    if preview.plan.refused:
        raise publish.PlanRefused(preview.plan.problems)
    click.echo(f"plan for {preview.app} {preview.version}:")
    _print_plan(preview.plan)
    if not yes and not click.confirm("apply this plan?", default=False):
        click.echo("nothing applied", err=True)
        sys.exit(1)
    outcome = publish.apply_document(engine, document, author=_author())
    click.echo(
        f"applied {outcome.app} {outcome.version} (#{outcome.seq})"
        if outcome.changed
        else "nothing to change"
    )


@app_group.command("export")
@click.argument("app")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="file to write (default: stdout)"
)
@refusals
def app_export(app, output):
    """Write the current document of APP."""
    with runtime().engine.connect() as conn:
        stored = _current(conn, app)
    text = json.dumps(stored.document, ensure_ascii=False, indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def _current(conn, app):
    stored = store.current(conn, app)
    if stored is None:
        raise publish.NotFound(f"there is no app named '{app}'")
    return stored


@app_group.command("list")
@refusals
def app_list():
    """The installed apps and their versions."""
    store.ensure_system_tables(runtime().engine)
    with runtime().engine.connect() as conn:
        installed = store.all_current(conn)
    if not installed:
        click.echo("no apps installed")
    for stored in installed:
        label = localise(stored.document.get("label") or stored.app)
        click.echo(f"{stored.app}\t{stored.version}\t{label}")


@app_group.command("history")
@click.argument("app")
@refusals
def app_history(app):
    """Every version of APP, newest first."""
    with runtime().engine.connect() as conn:
        versions = store.history(conn, app)
    for stored in versions:
        steps = len(stored.plan.get("operations", []))
        when = stored.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
        note = f"  {stored.comment}" if stored.comment else ""
        click.echo(
            f"#{stored.seq}\t{stored.version}\t{stored.action}\t{stored.author or '-'}\t{when}\t{steps} steps{note}"
        )


@app_group.command("revert")
@click.argument("app")
@click.argument("version")
@click.option("--yes", is_flag=True, help="revert without asking")
@refusals
def app_revert(app, version, yes):
    """Publish the content of an earlier VERSION of APP again (as a new version)."""
    if not yes and not click.confirm(f"revert {app} to {version}?", default=False):
        click.echo("nothing applied", err=True)
        sys.exit(1)
    outcome = publish.revert(runtime().engine, app, version, author=_author())
    _print_plan(outcome.plan)
    click.echo(
        f"reverted {app} to the content of {version}, as version {outcome.version} (#{outcome.seq})"
    )


@app_group.command("purge")
@click.argument("app")
@click.argument("target", metavar="ENTITY[.FIELD]")
@click.option("--yes", is_flag=True, help="destroy the data (without it, only say what would go)")
@refusals
def app_purge(app, target, yes):
    """Destroy an archived entity or field of APP and every value it holds."""
    entity, _, field = target.partition(".")
    outcome = publish.purge(
        runtime().engine, app, entity, field or None, confirm=yes, author=_author()
    )
    _print_plan(outcome.plan)
    if not yes:
        click.echo("nothing destroyed: run again with --yes to destroy this data for good")
    else:
        click.echo(f"purged {target}")


# --- crm user ...-------------------------------------------------------------------


@main.group("user")
def user_group():
    """Manage users."""


@user_group.command("create")
@click.argument("username")
@click.option(
    "--role", "roles", multiple=True, required=True, help="an app role, admin or designer"
)
@click.option("--password", help="the password (default: generated and printed)")
@click.option("--manager", help="username of the user's manager (for manager_of approvers)")
@refusals
def user_create(username, roles, password, manager):
    """Create a user."""
    store.ensure_system_tables(runtime().engine)
    with runtime().engine.begin() as conn:
        generated = accounts.create_user(
            conn, username, list(roles), password=password, manager=manager
        )
    click.echo(f"created user '{username}'" + ("" if password else f" with password: {generated}"))
