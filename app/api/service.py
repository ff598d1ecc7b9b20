"""The record service one process shares: its per-version runtimes are cached."""

from __future__ import annotations

from flask import Flask, current_app

from records.service import Records

KEY = "crm.records"


def bind(app: Flask) -> None:
    crm = app.extensions["crm"]
    app.extensions[KEY] = Records(crm.engine, crm.registry)


def records_service() -> Records:
    return current_app.extensions[KEY]
