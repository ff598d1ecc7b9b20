"""The record service's problems, put back beside the form's fields."""

from __future__ import annotations

from form_engine import FORM, attach_errors, bind, errors_from_problems, form_errors
from metamodel.errors import Problem
from metamodel.messages import Message
from records.errors import StaleVersion, ValidationFailed


def test_pointers_become_field_and_cell_names(cache, sales):
    spec = cache.spec(sales, "deal")
    problems = [
        Problem("/amount", "has more than 2 decimal places"),
        Problem("/lines/0/quantity", "must be at least 1"),
        Problem("/lines/0/quantity", "must be at least 1"),
        Problem("/lines/2", "must be an object of field values"),
        Problem("/lines/1/parent_id", "is not a field of this entity"),
        Problem("/owner", "there is no user with id 9"),
        Problem("", "the record is locked"),
    ]
    assert errors_from_problems(problems, spec) == {
        "amount": ["has more than 2 decimal places"],
        "lines-0-quantity": ["must be at least 1"],
        "lines": [
            "row 3: must be an object of field values",
            "row 2, parent_id: is not a field of this entity",
        ],
        FORM: ["owner: there is no user with id 9", "the record is locked"],
    }


def test_the_places_a_message_is_put_in_can_be_translated_with_it(cache, sales):
    spec = cache.spec(sales, "deal")
    problems = [
        Problem("/lines/2", Message("must be a list of rows")),
        Problem("/lines/1/parent_id", "is not a field of this entity"),
        Problem("/owner", Message("must be a record id")),
    ]
    errors = errors_from_problems(problems, spec)
    catalogue = {
        "row {row}: {message}": "第 {row} 行：{message}",
        "row {row}, {label}: {message}": "第 {row} 行，{label}：{message}",
        "{label}: {message}": "{label}：{message}",
        "must be a list of rows": "必须是行列表",
        "must be a record id": "必须是记录 ID",
    }
    translated = {
        key: [m.translated(lambda t: catalogue.get(t, t)) for m in messages]
        for key, messages in errors.items()
    }
    assert translated == {
        "lines": ["第 3 行：必须是行列表", "第 2 行，parent_id：is not a field of this entity"],
        FORM: ["owner：必须是记录 ID"],
    }


def test_fields_the_form_does_not_show_go_to_the_form_with_their_label(cache, sales):
    spec = cache.spec(sales, "contact", "web_enquiry")
    problems = [Problem("/account", "there is no account with id 3")]
    assert errors_from_problems(problems, spec, "zh") == {
        FORM: ["Account: there is no account with id 3"]
    }


def test_without_a_spec_pointers_map_by_name(cache):
    problems = [Problem("/lines/0/qty", "bad"), Problem("/a~1b", "odd")]
    assert errors_from_problems(problems) == {"lines-0-qty": ["bad"], "a/b": ["odd"]}


def test_service_errors_map_and_attach(cache, sales):
    spec = cache.spec(sales, "deal")
    error = ValidationFailed([Problem("/title", "is required"), Problem("/stage", "no")])
    errors = form_errors(error, spec)
    assert errors == {"title": ["is required"], "stage": ["no"]}
    stale = form_errors(StaleVersion(4), spec)
    assert list(stale) == [FORM] and "version 4" in stale[FORM][0]
    form = bind(spec, {"title": [""], "lines-0-product": ["x"]})
    attach_errors(form, {"title": ["is required"], "lines-0-product": ["taken"], FORM: ["stale"]})
    assert form.title.errors == ["is required"]
    assert form.lines.entries[0].form.product.errors == ["taken"]
    assert form.form_errors == ["stale"]
