"""One exception root for the whole product.

Every error carries a machine code, a human message and, where it concerns
metadata or a field, a JSON Pointer. Boundaries (CLI, HTTP, pages) turn them
into exit codes, JSON bodies or inline messages; nothing below a boundary
prints.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located by a JSON Pointer (``""`` is the whole document)."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


class CrmError(Exception):
    """Root of every error the product raises on purpose."""

    code = "error"

    def __init__(self, message: str, path: str = "", problems: list[Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.problems = problems if problems is not None else [Problem(path, message)]

    def as_dicts(self) -> list[dict[str, str]]:
        return [p.as_dict() for p in self.problems]


class InvalidDocument(CrmError):
    """An app document that does not parse or does not validate."""

    code = "invalid_document"

    def __init__(self, problems: list[Problem]):
        count = len(problems)
        super().__init__(
            f"the document has {count} error{'s' if count != 1 else ''}", problems=problems
        )


class PlanRefused(CrmError):
    """A migration plan that would lose data, or that the data does not allow."""

    code = "plan_refused"

    def __init__(self, problems: list[Problem]):
        super().__init__(
            "the change was refused: " + "; ".join(map(str, problems)), problems=problems
        )


class NotFound(CrmError):
    code = "not_found"


class Conflict(CrmError):
    code = "conflict"
