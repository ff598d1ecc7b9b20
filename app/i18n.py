"""Languages: the interface through Flask-Babel, the metadata's Text labels through ``text``.

The language of a request is the signed-in user's choice, else the session's
(set by the switch before signing in), else the browser's best match, else the
configured default. Metadata labels are Texts (a string, or a map of language
code to string) and follow the same language.
"""

from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale
from flask_login import current_user

from metamodel.text import localise

babel = Babel()

NAMES = {"en": "English", "zh": "中文"}


def languages() -> list[str]:
    return current_app.config["CRM"]["languages"]


def select_language() -> str:
    offered = languages()
    user_choice = getattr(current_user, "language", None) if current_user else None
    for choice in (user_choice, session.get("language")):
        if choice in offered:
            return choice
    return (
        request.accept_languages.best_match(offered)
        or current_app.config["CRM"]["default_language"]
    )


def language() -> str:
    return str(get_locale() or "en").split("_")[0]


def text(value) -> str:
    """A metadata Text in the request's language."""
    return localise(value, language())


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_language)
    app.jinja_env.globals.update(text=text, language=language, language_names=NAMES)
