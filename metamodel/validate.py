"""Reading and validating app documents: every problem, in one pass, with its pointer.

``validate_document`` reports the schema's problems first, then the semantic
checker's. A document that passes both can be given to ``AppModel``.
"""

from __future__ import annotations

import json
from typing import Any

from .checks import semantic_problems
from .checks.scope import ExternalApps
from .errors import InvalidDocument, Problem
from .schema.messages import schema_problems

# json's messages, in the words of someone who did not write the parser.
JSON_MESSAGES = {
    "Expecting value": "a value is missing or is not valid JSON (a trailing comma? text "
    "without double quotes?)",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes "
    "(a trailing comma before '}'? a key in single quotes?)",
    "Expecting ',' delimiter": "expected ',' between two items (or a closing bracket)",
    "Expecting ':' delimiter": "expected ':' after the key",
    "Extra data": "there is more text after the end of the document",
    "Unterminated string starting at": "a text in double quotes is not closed",
    "Invalid control character at": "a text contains a line break or tab: write it as \\n or \\t",
}


def parse_document(text: str, source: str = "<document>") -> dict[str, Any]:
    """The app document in ``text``; InvalidDocument says where the JSON is broken."""
    try:
        doc = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as error:
        what = JSON_MESSAGES.get(error.msg, error.msg)
        raise InvalidDocument(
            [Problem("", f"line {error.lineno}, column {error.colno}: {what}")]
        ) from None
    except RecursionError:
        raise InvalidDocument(
            [Problem("", f"{source} nests lists and objects too deeply to be an app document")]
        ) from None
    if not isinstance(doc, dict):
        kind = {list: "a list", str: "a text"}.get(type(doc), "a single value")
        raise InvalidDocument(
            [Problem("", f"{source} holds {kind}; an app document is a JSON object {{...}}")]
        )
    return doc


def validate_document(doc: Any, external: ExternalApps | None = None) -> list[Problem]:
    """Every problem of ``doc``: the schema's, then the semantic checker's.

    ``external(app_name)`` returns another installed app's document (or None); it
    resolves references written ``app.entity``.
    """
    problems = schema_problems(doc)
    if isinstance(doc, dict):
        unsound = [problem.path for problem in problems]
        problems += semantic_problems(doc, external, unsound)
    return problems


def load_and_validate(
    text: str, external: ExternalApps | None = None, source: str = "<document>"
) -> dict[str, Any]:
    """The document in ``text`` if it is valid; otherwise InvalidDocument lists every problem."""
    doc = parse_document(text, source)
    problems = validate_document(doc, external)
    if problems:
        raise InvalidDocument(problems)
    return doc
