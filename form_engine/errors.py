"""Errors beside fields: ``{field or row cell: [messages]}``, from the form or the service.

The record service locates each problem by a JSON Pointer (``/amount``,
``/lines/0/qty``); a form names the same places ``amount`` and ``lines-0-qty``
(WTForms' names for row cells). Problems about something the form does not
show (a field not placed on it, the record's version) go under ``__all__``,
prefixed with the field's label so they still say what they concern.
"""

from __future__ import annotations

from collections.abc import Iterable

from wtforms import Form

from metamodel.errors import CrmError, Problem
from metamodel.messages import Message
from metamodel.text import localise

from .definition import FormSpec

FORM = "__all__"


def add(errors: dict[str, list[str]], key: str, message: str) -> None:
    messages = errors.setdefault(key, [])
    if message not in messages:
        messages.append(message)


def _tokens(path: str) -> list[str]:
    if not path:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in path.lstrip("/").split("/")]


def _label(spec: FormSpec | None, name: str, language: str) -> str:
    if spec is not None and name in spec.entity.fields:
        return localise(spec.entity.fields[name].label, language)
    return name


def locate(problem: Problem, spec: FormSpec | None = None, language: str = "en"):
    """Where a problem goes on the form, and its message there."""
    tokens = _tokens(problem.path)
    if not tokens:
        return FORM, problem.message
    top = tokens[0]
    if spec is None:
        return "-".join(tokens), problem.message
    item = spec.items.get(top)
    if item is None:
        label = _label(spec, top, language)
        return FORM, Message("{label}: {message}", label=label, message=problem.message)
    child = spec.children.get(top)
    if child is None or len(tokens) < 2 or not tokens[1].isdigit():
        return top, problem.message
    row = int(tokens[1])
    if len(tokens) >= 3 and tokens[2] in child.items:
        return f"{top}-{row}-{tokens[2]}", problem.message
    if len(tokens) > 2:
        label = _label(child, tokens[2], language)
        message = Message(
            "row {row}, {label}: {message}", row=row + 1, label=label, message=problem.message
        )
        return top, message
    return top, Message("row {row}: {message}", row=row + 1, message=problem.message)


def errors_from_problems(
    problems: Iterable[Problem], spec: FormSpec | None = None, language: str = "en"
) -> dict[str, list[str]]:
    """The record service's problems as errors beside the form's fields."""
    errors: dict[str, list[str]] = {}
    for problem in problems:
        key, message = locate(problem, spec, language)
        add(errors, key, message)
    return errors


def form_errors(
    error: CrmError, spec: FormSpec | None = None, language: str = "en"
) -> dict[str, list[str]]:
    """Any CrmError from the record service (ValidationFailed, StaleVersion, ...) for the form."""
    return errors_from_problems(error.problems, spec, language)


def attach_errors(form: Form, errors: dict[str, list[str]]) -> None:
    """Put messages on the bound fields they belong to (``field.errors`` in templates)."""
    by_name = {}
    for fld in form:
        by_name[fld.name] = fld
        for entry in getattr(fld, "entries", []):
            for cell in getattr(entry, "form", []):
                by_name[cell.name] = cell
    for key, messages in errors.items():
        fld = by_name.get(key)
        if fld is not None:
            fld.errors = list(fld.errors or []) + [m for m in messages if m not in fld.errors]
    form.form_errors = list(errors.get(FORM, []))
