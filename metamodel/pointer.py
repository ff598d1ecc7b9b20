"""JSON Pointers (RFC 6901): how problems say where in a document they are."""

from __future__ import annotations

from collections.abc import Iterable


def escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def join(base: str, *parts: str | int) -> str:
    """``base`` (a pointer) extended by ``parts`` (keys or list indexes)."""
    return base + "".join("/" + escape(part) for part in parts)


def from_parts(parts: Iterable[str | int]) -> str:
    return join("", *parts)
