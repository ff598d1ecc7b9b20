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

A value that comes from the metadata (an entity's, a state's or a transition's
label) is a :class:`Label`: its English in the English text, its own language
at an edge that localises it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .text import localise

# How a list of labels is written in a language other than English's ", ".
LIST_SEPARATOR = {"zh": "、"}


class Message(str):
    """English text made from ``template`` and ``params``, which it keeps for translation."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Message:
        message = super().__new__(cls, template.format(**params) if params else template)
        message.template = template
        message.params = params
        return message

    def as_json(self) -> dict[str, Any]:
        """The template and values as JSON, to keep a message (a notification) and
        translate it when it is read: :func:`message_from_json` gives it back."""
        return {
            "template": self.template,
            "params": {k: _as_json(v) for k, v in self.params.items()},
        }

    def translated(
        self, translate: Callable[[str], str], localise_text: Callable[[Any], str] | None = None
    ) -> str:
        """The message with ``translate`` applied to its template and to the messages
        among its values (a label's prefix around a field's message, say), and
        ``localise_text`` to the labels among them.

        A translation that names a placeholder the message lacks gives the English
        instead: a bad catalogue entry must not break a page.
        """
        template = translate(self.template)
        if not self.params:
            return template
        params = {
            key: _translated(value, translate, localise_text) for key, value in self.params.items()
        }
        try:
            return template.format(**params)
        except (KeyError, IndexError, ValueError):
            return str(self)


class Label(str):
    """A metadata Text inside a message: its English (or ``english``) as a string,
    the Text kept for an edge that shows it in the user's language."""

    text: Any

    def __new__(cls, text: Any, english: str | None = None) -> Label:
        label = super().__new__(cls, localise(text) if english is None else english)
        label.text = text
        return label


def joined(labels: list[Label]) -> Label:
    """Several labels as one, listed in each of their languages; a label with no
    text in a language is shown there as in English."""
    english = ", ".join(labels)
    languages = {code for label in labels if isinstance(label.text, dict) for code in label.text}
    if not languages:
        return Label(english, english)
    return Label(
        {
            code: LIST_SEPARATOR.get(code, ", ").join(
                localise(label.text, code) or str(label) for label in labels
            )
            for code in languages | {"en"}
        },
        english,
    )


def message_from_json(data: Any) -> Message | None:
    """The message :meth:`Message.as_json` kept; None for anything else."""
    template = data.get("template") if isinstance(data, dict) else None
    params = data.get("params") if isinstance(data, dict) else None
    if not isinstance(template, str) or not isinstance(params, dict):
        return None
    try:
        return Message(template, **{k: _from_json(v) for k, v in params.items()})
    except (KeyError, IndexError, ValueError):
        return None


def _as_json(value: Any) -> Any:
    if isinstance(value, Message):
        return value.as_json()
    if isinstance(value, Label):
        return {"label": value.text, "english": str(value)}
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "template" in value:
            return message_from_json(value) or ""
        if "label" in value:
            return Label(value["label"], str(value.get("english", "")))
    return value


def _translated(
    value: Any, translate: Callable[[str], str], localise_text: Callable[[Any], str] | None
) -> Any:
    if isinstance(value, Message):
        return value.translated(translate, localise_text)
    if isinstance(value, Label) and localise_text is not None:
        return localise_text(value.text) or str(value)
    return value
