"""Languages: the interface through Flask-Babel, the metadata's Text labels through ``text``.

The language of a request is the signed-in user's choice, else the session's
(set by the switch before signing in), else the browser's best match, else the
configured default. Metadata labels are Texts (a string, or a map of language
code to string) and follow the same language.
"""

from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from metamodel.messages import Message
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


# The record service's own refusals are plain English; these are the ones a form shows.
SERVICE_MESSAGES = {
    "is required": _l("is required"),
    "you may not change this field": _l("you may not change this field"),
    "is computed or read-only and cannot be set": _l("is computed or read-only and cannot be set"),
}


def translated(message: str) -> str:
    """A message of the core packages (a field's, a form's) in the request's language.

    A :class:`~metamodel.messages.Message` has its template looked up in the
    catalogue and its values filled in again; any other text is shown as it is,
    bar the few the record service says in plain English. The HTTP API does not
    come through here: machine clients get the English.
    """
    if isinstance(message, Message):
        return message.translated(gettext)
    known = SERVICE_MESSAGES.get(message)
    return str(known) if known is not None else message


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_language)
    app.jinja_env.globals.update(text=text, language=language, language_names=NAMES)
