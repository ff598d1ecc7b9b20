"""Messages: English text that keeps its template and values, so the edge can translate it."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle

import pytest

from metamodel import field_types
from metamodel.errors import Problem
from metamodel.field_types import ValueProblem
from metamodel.messages import Label, Message, joined, message_from_json
from metamodel.text import localise

CATALOGUE = {
    "'{value}' is not an e-mail address": "“{value}”不是有效的电子邮件地址",
    "{label}: {message}": "{label}：{message}",
    "is required": "为必填项",
    "must be at least {bound}": "{missing} is not a value here",
}


def zh(template: str) -> str:
    return CATALOGUE.get(template, template)


def test_a_message_is_its_english_text():
    message = Message("'{value}' is not an e-mail address", value="x@")
    assert message == "'x@' is not an e-mail address" and isinstance(message, str)
    assert str(message) == message and type(str(message)) is str
    assert json.dumps({"message": message}) == '{"message": "\'x@\' is not an e-mail address"}'
    assert f"{Problem('/email', message)}" == "/email: 'x@' is not an e-mail address"
    # Without values the template is the text as written, braces and all.
    assert Message("{seq} must appear in the pattern") == "{seq} must appear in the pattern"


def test_a_message_is_translated_with_its_values_filled_in_again():
    inner = Message("'{value}' is not an e-mail address", value="{x}@")
    outer = Message("{label}: {message}", label="邮箱", message=inner)
    assert outer == "邮箱: '{x}@' is not an e-mail address"
    assert outer.translated(zh) == "邮箱：“{x}@”不是有效的电子邮件地址"
    assert Message("is required").translated(zh) == "为必填项"
    assert Message("is too large").translated(zh) == "is too large"  # not in the catalogue


def test_a_translation_naming_another_placeholder_gives_the_english():
    message = Message("must be at least {bound}", bound=0)
    assert message.translated(zh) == "must be at least 0"


def in_chinese(text) -> str:
    return localise(text, "zh")


def test_a_label_says_its_english_and_is_shown_in_the_users_language():
    deal = Label({"en": "Deal", "zh": "商机"}, "deal")
    message = Message("there is no {entity} with id {id}", entity=deal, id=7)
    assert message == "there is no deal with id 7"  # the API's and the log's text
    catalogue = {"there is no {entity} with id {id}": "没有编号为 {id} 的{entity}"}
    assert message.translated(catalogue.get) == "没有编号为 7 的deal"
    assert message.translated(catalogue.get, in_chinese) == "没有编号为 7 的商机"
    # Without an English name, the label's English; a label with no text shows the name.
    assert Label({"en": "Deal", "zh": "商机"}) == "Deal"
    assert Message("{s}", s=Label("", "draft")).translated(str, in_chinese) == "draft"
    # Labels inside a message inside a message are localised too.
    outer = Message("{waiting}; later", waiting=Message("{e} waits", e=deal))
    assert outer.translated(lambda t: t, in_chinese) == "商机 waits; later"
    again = pickle.loads(pickle.dumps(deal))
    assert again == "deal" and again.text == {"en": "Deal", "zh": "商机"}


def test_a_message_kept_as_json_comes_back_whole():
    deal = Label({"en": "Deal", "zh": "商机"}, "deal")
    record = Message("{entity} '{title}' (#{id})", entity=deal, title="Pumps", id=3)
    message = Message(
        "{user} commented on {record}: {comment}", user="li", record=record, comment="ok"
    )
    kept = json.loads(json.dumps(message.as_json()))
    again = message_from_json(kept)
    assert again == message == "li commented on deal 'Pumps' (#3): ok"
    catalogue = {
        "{user} commented on {record}: {comment}": "{user} 评论了{record}：{comment}",
        "{entity} '{title}' (#{id})": "{entity}“{title}”（#{id}）",
    }
    assert again.translated(catalogue.get, in_chinese) == "li 评论了商机“Pumps”（#3）：ok"
    # Values that are not JSON are kept as their text.
    assert message_from_json(Message("at {when}", when=dt.date(2026, 11, 22)).as_json()) == (
        "at 2026-11-22"
    )


@pytest.mark.parametrize(
    "kept",
    [None, "text", {}, {"template": 3, "params": {}}, {"template": "{a}", "params": {"b": 1}}],
)
def test_anything_else_kept_is_no_message(kept):
    assert message_from_json(kept) is None


def test_labels_are_listed_in_each_of_their_languages():
    states = joined(
        [Label({"en": "Draft", "zh": "草稿"}), Label({"en": "Rejected", "zh": "已驳回"})]
    )
    assert states == "Draft, Rejected"
    assert in_chinese(states.text) == "草稿、已驳回"
    plain = joined([Label("", "draft"), Label("", "rejected")])
    assert plain == "draft, rejected" and in_chinese(plain.text) == "draft, rejected"
    mixed = joined([Label({"zh": "草稿"}, "draft"), Label("", "rejected")])
    assert mixed == "draft, rejected" and in_chinese(mixed.text) == "草稿、rejected"


def test_copies_and_pickles_keep_the_text_and_the_template():
    message = Message("must be at least {bound}", bound=5)
    for again in (copy.deepcopy(message), pickle.loads(pickle.dumps(message))):
        assert again == "must be at least 5" and isinstance(again, Message)
        assert (again.template, again.params) == (message.template, message.params)


@pytest.mark.parametrize(
    ("type_name", "spec", "value", "english", "template"),
    [
        (
            "email",
            {},
            "nope",
            "'nope' is not an e-mail address",
            "'{value}' is not an e-mail address",
        ),
        ("integer", {"min": 3}, 1, "must be at least 3", "must be at least {bound}"),
        ("integer", {"max": 3}, 9, "must be at most 3", "must be at most {bound}"),
        (
            "select",
            {"options": [{"value": "a"}, {"value": "b"}]},
            "c",
            "'c' is not one of the options: a, b",
            "'{value}' is not one of the options: {options}",
        ),
        (
            "text",
            {"max_length": 2},
            "abc",
            "is 3 characters long; at most 2 are allowed",
            "is {length} characters long; at most {limit} are allowed",
        ),
        (
            "date",
            {},
            "31/01/2026",
            "'31/01/2026' is not a date (use YYYY-MM-DD)",
            "'{value}' is not a date (use YYYY-MM-DD)",
        ),
        ("boolean", {}, "maybe", "'maybe' is not true or false", "'{value}' is not true or false"),
    ],
)
def test_field_types_say_what_they_always_said_and_keep_the_template(
    type_name, spec, value, english, template
):
    with pytest.raises(ValueProblem) as problem:
        field_types.get(type_name).coerce(value, {"type": type_name, **spec})
    assert problem.value.message == english and str(problem.value) == english
    assert isinstance(problem.value.message, Message)
    assert problem.value.message.template == template


def test_a_problem_raised_again_keeps_its_template():
    first = Message("'{value}' is not a number", value="x")
    again = ValueProblem(first)
    assert again.message is first
    assert ValueProblem("plain {text}").message == "plain {text}"
