"""Document versions: semver ordering and content digests."""

from __future__ import annotations

import hashlib
import json
import re

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$"
)


def is_semver(text: object) -> bool:
    return isinstance(text, str) and bool(SEMVER.match(text))


def _key(version: str):
    match = SEMVER.match(version)
    major, minor, patch, pre = match.groups()
    # A pre-release sorts before its release; its parts compare numerically when they can.
    pre_key = (
        (1,)
        if pre is None
        else (0, *((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")))
    )
    return (int(major), int(minor), int(patch), pre_key)


def is_newer(candidate: str, current: str) -> bool:
    return _key(candidate) > _key(current)


def next_patch(version: str) -> str:
    major, minor, patch, _ = _key(version)
    return f"{major}.{minor}.{patch + 1}"


def digest(document: dict) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
