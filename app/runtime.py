"""What a process holds for its lifetime: the settings, the engine, the registry."""

from __future__ import annotations

from flask import current_app

from metamodel.db import make_engine
from metamodel.registry import Registry


class Runtime:
    def __init__(self, settings: dict):
        self.settings = settings
        self.engine = make_engine(settings["database_url"])
        self.registry = Registry(self.engine)


def runtime() -> Runtime:
    return current_app.extensions["crm"]
