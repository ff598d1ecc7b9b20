"""How problem messages quote values and suggest the word a user probably meant."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any


def show(value: Any) -> str:
    """A value as the user wrote it, shortened when long."""
    if isinstance(value, str):
        text = f"'{value}'"
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or nothing when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
