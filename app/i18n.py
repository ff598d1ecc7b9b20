"""Languages: the interface through Flask-Babel, the metadata's Text labels through ``text``.

The language of a request is the signed-in user's choice, else the session's
(set by the switch before signing in), else the browser's best match, else the
configured default. Metadata labels are Texts (a string, or a map of language
code to string) and follow the same language.
"""

from __future__ import annotations

from flask import Flask, current_app, request, session
from flask_babel import Babel, get_locale, gettext
from flask_login import current_user

from metamodel.errors import CrmError
from metamodel.messages import Message
from metamodel.text import localise

babel = Babel()

NAMES = {"en": "English", "zh": "中文"}
# Between the problems of one refusal, as each language punctuates.
PROBLEM_SEPARATOR = {"zh": "；"}


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


def translated(message: str) -> str:
    """A message of the core packages (a field's, a form's, a refusal) in the request's language.

    A :class:`~metamodel.messages.Message` has its template looked up in the
    catalogue, its values filled in again and, in another language than
    English, the metadata labels among them shown in that language (an English
    page says what the API says). Any other text is shown as it is. The HTTP
    API does not come through here: machine clients get the English.
    """
    if isinstance(message, Message):
        return message.translated(gettext, None if language() == "en" else text)
    return message


def reason(error: CrmError) -> str:
    """What went wrong, in words and the user's language (the pointers are for API clients)."""
    said = [translated(problem.message) for problem in error.problems if problem.message]
    return PROBLEM_SEPARATOR.get(language(), "; ").join(said) if said else translated(error.message)


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_language)
    app.jinja_env.globals.update(
        text=text, translated=translated, language=language, language_names=NAMES
    )
