"""Messages the core says in English and the edge may say in the user's language.

A :class:`Message` is its English text, a ``str`` like any other: the API, the
CLI, logs and every comparison see exactly that text. It also remembers the
template it was made from and the values filled in, so a boundary that speaks
another language (``app/``, through its catalogue) can translate the template and
fill in the same values. The core has no catalogue and imports nothing of Flask.

``scripts/translations update`` extracts the templates: every string literal
passed first to ``Message(...)`` or ``ValueProblem(...)`` in the core.
A template with values uses ``str.format`` placeholders (``'{value}' is not a
number``; a literal brace is doubled); one without values is the text as written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Message(str):
    """English text made from ``template`` and ``params``, which it keeps for translation."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Message:
        message = super().__new__(cls, template.format(**params) if params else template)
        message.template = template
        message.params = params
        return message

    def translated(self, translate: Callable[[str], str]) -> str:
        """The message with ``translate`` applied to its template and to the messages
        among its values (a label's prefix around a field's message, say).

        A translation that names a placeholder the message lacks gives the English
        instead: a bad catalogue entry must not break a page.
        """
        template = translate(self.template)
        if not self.params:
            return template
        params = {
            key: value.translated(translate) if isinstance(value, Message) else value
            for key, value in self.params.items()
        }
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError):
            return str(self)
