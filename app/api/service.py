"""The record service and workflow engine one process shares (runtimes are cached)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from records.service import Records
from workflow_engine import Workflows

from ..mail import mailer_from

KEY = "crm.records"
WORKFLOWS = "crm.workflows"


def bind(app: Flask) -> None:
    crm = app.extensions["crm"]
    records = Records(crm.engine, crm.registry, files_root=Path(app.instance_path) / "uploads")
    app.extensions[KEY] = records
    # The engine registers its edit lock with the record service, so every write
    # through the API respects records under approval.
    app.extensions[WORKFLOWS] = Workflows(records, deliver=mailer_from(crm.settings, crm.engine))


def records_service() -> Records:
    return current_app.extensions[KEY]


def workflows_service() -> Workflows:
    return current_app.extensions[WORKFLOWS]
