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

    try:
        return create_app()
    except CrmError as error:
        # Wrong settings stop every command: say which, without a traceback.
        click.echo("crm: cannot start; check config.yaml and the CRM_* variables:", err=True)
        for problem in error.problems:
            click.echo(f"  {_setting_problem(problem)}", err=True)
        sys.exit(1)


def _setting_problem(problem) -> str:
    name = problem.path.strip("/").replace("/", ".")
    if not name or problem.message.startswith(name):
        return problem.message
    return f"{name}: {problem.message}"


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
        finally:
            # One command, one process: give its connections back before it ends.
            runtime().engine.dispose()

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
        except Exception:
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
@click.option("--with-records", is_flag=True, help="add the records as sample data (a preset)")
@refusals
def app_export(app, output, with_records):
    """Write the current document of APP; --with-records makes it a preset with its records."""
    if with_records:
        from .cli_presets import exported_with_records

        document = exported_with_records(app)
    else:
        with runtime().engine.connect() as conn:
            document = _current(conn, app).document
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
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
        author = stored.author or "-"
        columns = [f"#{stored.seq}", stored.version, stored.action, author, when, f"{steps} steps"]
        click.echo("\t".join(columns) + note)


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
@click.option("--email", help="e-mail address (for notifications by e-mail)")
@click.option(
    "--token", is_flag=True, help="also issue an API token, printed alone on the last line"
)
@refusals
def user_create(username, roles, password, manager, email, token):
    """Create a user."""
    store.ensure_system_tables(runtime().engine)
    with runtime().engine.begin() as conn:
        generated = accounts.create_user(
            conn, username, list(roles), password=password, manager=manager, email=email
        )
        issued = accounts.issue_token(conn, accounts.user_id(conn, username)) if token else None
    click.echo(f"created user '{username}'" + ("" if password else f" with password: {generated}"))
    if issued:
        click.echo(issued)


# --- crm records ...----------------------------------------------------------------


@main.group("records")
def records_group():
    """Import and export records (CSV or XLSX, by the file's extension)."""


def _actor(conn, username: str | None):
    """The user a command acts as: ``username``, or else the first admin."""
    from sqlalchemy import select

    from metamodel.system_tables import users
    from records.actor import Actor

    query = select(users.c.id, users.c.username, users.c.roles).order_by(users.c.id)
    if username:
        row = conn.execute(query.where(users.c.username == username)).first()
        if row is None:
            raise CrmError(f"there is no user named '{username}'", "/as")
        return Actor(row.id, row.username, frozenset(row.roles or []))
    for row in conn.execute(query):
        if "admin" in (row.roles or []):
            return Actor(row.id, row.username, frozenset(row.roles))
    return Actor(None, "cli", frozenset({"admin"}))


def _records_service():
    from records.service import Records

    found = runtime()
    return Records(found.engine, found.registry)


@records_group.command("import")
@click.argument("app")
@click.argument("entity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="import the good rows; write the bad ones")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="where --skip-invalid writes the bad rows (default: FILE.rejects.csv)",
)
@click.option("--as", "username", help="the user to import as (default: the admin user)")
@refusals
def records_import(app, entity, file, skip_invalid, rejects, username):
    """Create ENTITY records of APP from the rows of FILE (all or nothing by default)."""
    from records import importing

    records = _records_service()
    with records.engine.connect() as conn:
        actor = _actor(conn, username)

    def progress(result):
        click.echo(
            f"\r{result.rows:,} rows read, {result.imported:,} imported, "
            f"{result.rejected:,} rejected",
            nl=False,
            err=True,
        )

    try:
        result = importing.import_file(
            records,
            actor,
            app,
            entity,
            file,
            skip_invalid=skip_invalid,
            rejects_path=rejects,
            progress=progress,
        )
    except importing.ImportRefused as refused:
        click.echo("", err=True)
        for error in refused.result.errors:
            click.echo(str(error), err=True)
        unlisted = refused.result.error_count - len(refused.result.errors)
        if unlisted:
            click.echo(f"... and {unlisted:,} more errors", err=True)
        click.echo(refused.message, err=True)
        sys.exit(1)
    click.echo("", err=True)
    for column, why in result.ignored_columns:
        click.echo(f"ignored column {column}: {why}")
    click.echo(f"imported {result.imported:,} {entity} records in {result.seconds:.1f} s")
    if result.rejected:
        click.echo(f"rejected {result.rejected:,} rows, written to {result.rejects_path}")


@records_group.command("export")
@click.argument("app")
@click.argument("entity")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="file to write (default: stdout)"
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx"]), help="default: by the extension"
)
@click.option("--names", is_flag=True, help="head the columns with field names, not labels")
@click.option("--lang", default="en", show_default=True, help="language of the labels")
@click.option("--filter", "rule", help="a JsonLogic rule (JSON) the records must satisfy")
@click.option("--as", "username", help="the user to export as (default: the admin user)")
@refusals
def records_export(app, entity, output, fmt, names, lang, rule, username):
    """Write the ENTITY records of APP as CSV (UTF-8 with BOM) or XLSX."""
    from records import exporting

    if rule is not None:
        try:
            rule = json.loads(rule)
        except ValueError as error:
            raise CrmError(f"--filter is not JSON: {error}", "/filter") from None
    records = _records_service()
    with records.engine.connect() as conn:
        actor = _actor(conn, username)
    fmt = fmt or (exporting.format_of(output) if output else "csv")
    target = output or sys.stdout.buffer
    count = exporting.export_file(
        records, actor, app, entity, target, fmt=fmt, filter=rule, language=lang, names=names
    )
    if output:
        click.echo(f"wrote {count:,} {entity} records to {output}", err=True)


# --- command groups kept in modules of their own ----------------------------------

# Imported last: these modules use ``refusals`` and ``runtime`` from above.
from .cli_dashboards import dashboards_group  # noqa: E402
from .cli_presets import preset_group  # noqa: E402
from .cli_workflow import workflow_group  # noqa: E402

main.add_command(dashboards_group)
main.add_command(preset_group)
main.add_command(workflow_group)
