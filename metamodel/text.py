"""Text values: a string, or a map of language code to string."""

from __future__ import annotations


def humanise(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def localise(text, language: str = "en") -> str:
    """The text in ``language``, then English, then any language there is."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    for key in (language, language.split("-")[0], "en"):
        if text.get(key):
            return text[key]
    return next(iter(text.values()), "")
