"""Sample data: records of real entities, with real fields and values that fit.

A reference is given by value, ``{"$ref": "account", "name": "Acme"}``: the
record of that entity whose fields have those values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import pointer
from ..errors import Problem
from .computed import COMPUTED_TYPES
from .fields import fit_problem
from .scope import AppScope, EntityScope

REF = "$ref"
# Values the system fills in: giving one would be ignored or refused.
GENERATED_TYPES = (*COMPUTED_TYPES, "autonumber")
# User values name accounts, which live outside the document.
UNCHECKED_TYPES = ("user",)


def check_sample_data(app: AppScope) -> Iterator[Problem]:
    data = app.doc.get("sample_data")
    if not isinstance(data, dict):
        return
    for name, records in data.items():
        at = pointer.join("/sample_data", name)
        entity = app.entity(name)
        if entity is None:
            yield Problem(at, app.no_entity(name))
        elif entity.is_child:
            yield Problem(
                at,
                f"'{name}' is a child entity: give its rows inside their parent records, in the "
                "child table field",
            )
        elif isinstance(records, list):
            for index, record in enumerate(records):
                if isinstance(record, dict):
                    yield from record_problems(app, entity, record, pointer.join(at, index))


def record_problems(app: AppScope, entity: EntityScope, record: dict, at: str):
    for name, value in record.items():
        where = pointer.join(at, name)
        field = entity.declared(name)
        kind = field.get("type") if field else None
        if field is None:
            yield Problem(where, entity.not_a_field(name))
        elif kind in GENERATED_TYPES:
            yield Problem(where, f"'{name}' is filled in automatically; leave it out")
        elif value is None or kind in UNCHECKED_TYPES:
            continue
        elif kind == "reference":
            yield from reference_problems(app, field, value, where)
        elif kind == "multi_reference" and not isinstance(value, list):
            yield Problem(where, "give the records a multi_reference points to as a list")
        elif kind == "multi_reference":
            for index, item in enumerate(value):
                yield from reference_problems(app, field, item, pointer.join(where, index))
        elif kind == "child_table":
            yield from child_rows_problems(app, field, value, where)
        elif problem := fit_problem(app, entity.fields[name][0], field, value):
            yield Problem(where, problem)


def reference_problems(app: AppScope, field: dict, value: Any, at: str) -> Iterator[Problem]:
    target = app.target(field.get("target")).entity
    if not isinstance(value, dict) or not isinstance(value.get(REF), str):
        yield Problem(
            at,
            f"give a reference by value, naming the record by one of its fields, e.g. "
            f'{{"{REF}": "{target.name if target else "account"}", "name": "Acme"}}',
        )
        return
    named = app.target(value[REF])
    if named.problem:
        yield Problem(pointer.join(at, REF), named.problem)
        return
    if target is not None and named.entity is not target:
        yield Problem(
            pointer.join(at, REF),
            f"this field refers to '{target.title}' records, not '{named.entity.title}'",
        )
    keys = [key for key in value if key != REF]
    if not keys:
        yield Problem(at, f"name the '{named.entity.title}' record by one of its fields")
    for key in keys:
        if named.entity.field(key) is None:
            yield Problem(pointer.join(at, key), named.entity.not_a_field(key))


def child_rows_problems(app: AppScope, field: dict, rows: Any, at: str) -> Iterator[Problem]:
    child = app.target(field.get("target")).entity
    if not isinstance(rows, list):
        yield Problem(at, "give the rows of a child table as a list of objects")
        return
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            yield Problem(pointer.join(at, index), "a child table row must be an object")
        elif child is not None:
            yield from record_problems(app, child, row, pointer.join(at, index))
