"""Errors of the record service; each maps to one HTTP status at the API boundary."""

from __future__ import annotations

from metamodel.errors import CrmError, NotFound, Problem
from metamodel.messages import Message

__all__ = ["Forbidden", "NotFound", "RecordConflict", "StaleVersion", "ValidationFailed"]


class ValidationFailed(CrmError):
    """Values that do not fit their fields (422); each problem names its field."""

    code = "invalid_record"

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)), problems=problems)


class Forbidden(CrmError):
    """The actor may not do this (403)."""

    code = "forbidden"


class RecordConflict(CrmError):
    """The data forbids it: a unique value taken, a restricted delete (409)."""

    code = "conflict"


class StaleVersion(CrmError):
    """The record changed since the caller read it (412)."""

    code = "stale_version"

    def __init__(self, current_version: int, current: dict | None = None):
        super().__init__(
            Message(
                "the record was changed by someone else (it is now at version {version}); "
                "reload it and apply your change again",
                version=current_version,
            ),
            path="/version",
        )
        self.current_version = current_version
        self.current = current
