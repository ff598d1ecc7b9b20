"""Forms: an entity that exists, fields placed once, validations beside real fields."""

from __future__ import annotations

from collections.abc import Iterator

from .. import pointer
from ..errors import Problem
from .entities import entity_problem
from .scope import AppScope, EntityScope, items, strings, text


def check_forms(app: AppScope) -> Iterator[Problem]:
    defaults: dict[str, str] = {}
    for index, form in items(app.doc, "forms"):
        at = pointer.join("/forms", index)
        yield from entity_problem(app, form, at)
        entity = app.entity(form.get("entity"))
        if entity is None:
            continue
        if form.get("default") is True:
            first = defaults.setdefault(entity.name, at)
            if first != at:
                yield Problem(
                    pointer.join(at, "default"),
                    f"the form at {first} is already the default form of '{entity.name}'; "
                    "an entity has one default form",
                )
        yield from layout_problems(entity, form, at)
        for v_index, validation in items(form, "validations"):
            for f_index, name in strings(validation, "fields"):
                where = pointer.join(at, "validations", v_index, "fields", f_index)
                if entity.field(name) is None:
                    yield Problem(where, entity.not_a_field(name))


def layout_problems(entity: EntityScope, form: dict, at: str) -> Iterator[Problem]:
    placed: dict[str, str] = {}
    for s_index, section in items(form, "layout"):
        fields = section.get("fields")
        for f_index, item in enumerate(fields if isinstance(fields, list) else []):
            where = pointer.join(at, "layout", s_index, "fields", f_index)
            name = item if isinstance(item, str) else text(item, "field")
            if isinstance(item, dict):
                where = pointer.join(where, "field")
            if name is None:
                continue
            if entity.field(name) is None:
                yield Problem(where, entity.not_a_field(name))
            elif name in placed:
                yield Problem(where, f"'{name}' is already placed in this form (at {placed[name]})")
            else:
                placed[name] = where
