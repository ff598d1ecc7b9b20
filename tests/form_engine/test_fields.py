"""One WTForms field per field type: good input parses, bad input is refused with a message."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from werkzeug.datastructures import FileStorage, MultiDict

from form_engine import bind, field_for
from form_engine.build import EngineForm
from form_engine.fields import FIELD_TYPES, FORM_ATTRIBUTES, FieldOptions, unbound_field
from metamodel import field_types
from metamodel.errors import CrmError
from metamodel.model import FieldModel
from metamodel.sqltypes import UTC

from .conftest import CONTEXT, model

PNG = "data:image/png;base64,iVBORw0KGgo="

GOOD = [
    ("title", {"title": "Pump order"}, "Pump order"),
    ("notes", {"notes": "two\nlines"}, "two\nlines"),
    ("count", {"count": "7"}, 7),
    ("count", {"count": " 10 "}, 10),
    ("ratio", {"ratio": "1.125"}, Decimal("1.125")),
    ("price", {"price": "0.1"}, Decimal("0.10")),
    ("share", {"share": "12.5"}, Decimal("12.50")),
    ("active", {"active": "true"}, True),
    ("active", {}, False),
    ("due", {"due": "2026-02-28"}, dt.date(2026, 2, 28)),
    ("at", {"at": "2026-03-01T09:30"}, dt.datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
    ("colour", {"colour": "red"}, "red"),
    ("colour", {"colour": ""}, None),
    ("tags", {"tags": ["c", "a", "c"]}, ["c", "a"]),
    ("tags", {}, []),
    ("email", {"email": " wang@example.com "}, "wang@example.com"),
    ("phone", {"phone": "138 0013 8000"}, "+8613800138000"),
    ("site", {"site": "https://example.com/x"}, "https://example.com/x"),
    ("stars", {"stars": "4"}, 4),
    (
        "place",
        {"place-lat": "31.2304", "place-lng": "121.4737", "place-address": "上海"},
        {"lat": 31.2304, "lng": 121.4737, "address": "上海"},
    ),
    ("sign", {"sign": "12"}, [12]),
    ("other", {"other": "3"}, 3),
    ("linked", {"linked": ["2", "1", "2"]}, [2, 1]),
    ("assignee", {"assignee": "5"}, 5),
    ("assignee", {"assignee": "li"}, "li"),
    ("docs", {"docs": ["4", "9"]}, [4, 9]),
]

BAD = [
    ("title", {"title": "x" * 21}, "is 21 characters long; at most 20"),
    ("notes", {"notes": "a\x00b"}, "NUL"),
    ("count", {"count": "7.5"}, "is not a whole number"),
    ("count", {"count": "11"}, "must be at most 10"),
    ("count", {"count": "0x10"}, "is not a whole number"),
    ("ratio", {"ratio": "1.1255"}, "has more than 3 decimal places"),
    ("ratio", {"ratio": "1,5"}, "is not a number"),
    ("price", {"price": "1e30"}, "is too large"),
    ("share", {"share": "101"}, "must be at most 100"),
    ("active", {"active": "maybe"}, "is not true or false"),
    ("due", {"due": "2026-02-30"}, "is not a date"),
    ("at", {"at": "yesterday"}, "is not a date and time"),
    ("colour", {"colour": "green"}, "'green' is not one of the options"),
    ("tags", {"tags": ["a", "z"]}, "'z' is not one of the options"),
    ("email", {"email": "wang@"}, "is not an e-mail address"),
    ("phone", {"phone": "12"}, "phone number"),
    ("site", {"site": "example.com"}, "is not a web address"),
    ("stars", {"stars": "9"}, "must be between 0 and 5"),
    ("place", {"place-lat": "95", "place-lng": "10"}, "lat must be within"),
    ("place", {"place-lat": "north", "place-lng": "10"}, "is not a number"),
    ("sign", {"sign": "hello"}, "is not a drawn signature"),
    ("sign", {"sign": "data:image/png;base64,%%%"}, "not base64"),
    ("other", {"other": "x"}, "is not a whole number"),
    ("other", {"other": "0"}, "must be a record id"),
    ("linked", {"linked": ["1", "0"]}, "must be a record id"),
    ("assignee", {"assignee": "-3"}, "must be a record id"),
    ("docs", {"docs": ["x"]}, "name kept files by their ids"),
]


def formdata(values: dict) -> MultiDict:
    pairs = []
    for key, value in values.items():
        pairs += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    return MultiDict(pairs)


@pytest.fixture
def thing(cache, kit):
    return cache.spec(kit, "thing")


def test_there_is_a_field_for_every_field_type():
    assert set(FIELD_TYPES) == set(field_types.REGISTRY)
    assert len(FIELD_TYPES) == 26


def test_an_unknown_type_raises(kit):
    fld = FieldModel(kit.entities["thing"], {"name": "x", "type": "hologram"}, "/x")
    with pytest.raises(CrmError, match="no field for type 'hologram'"):
        unbound_field(fld, FieldOptions(label="X"))


@pytest.mark.parametrize(("name", "given", "expected"), GOOD, ids=lambda v: str(v)[:30])
def test_good_input_parses(thing, name, given, expected):
    form = bind(thing, formdata(given))
    fld = field_for(form, name)
    assert fld.process_errors == []
    assert fld.data == expected
    assert type(fld.data) is type(expected)  # Decimal stays Decimal, never float


@pytest.mark.parametrize(("name", "given", "message"), BAD, ids=lambda v: str(v)[:30])
def test_bad_input_is_refused_with_a_message(thing, name, given, message):
    form = bind(thing, formdata(given))
    assert not form.validate()
    assert any(message in m for m in form.errors[name]), form.errors[name]
    # The text stays in the input, so the user can correct it.
    if name in ("title", "count", "ratio", "due", "email"):
        assert f'value="{given[name]}"' in str(field_for(form, name)())


def test_computed_fields_never_take_input(thing):
    form = bind(
        thing,
        formdata({"code": "T-999", "double": "100", "other_tier": "A", "parts_total": "5"}),
    )
    for name in ("code", "double", "other_tier", "parts_total"):
        fld = field_for(form, name)
        assert fld.data is None and fld.process_errors == []
        assert str(fld()).startswith("<output")


def test_datetimes_are_wall_time_in_the_forms_zone(thing):
    form = bind(thing, formdata({"at": "2026-03-01T17:30"}), timezone="Asia/Shanghai")
    assert form.at.data == dt.datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    shown = bind(thing, current={"at": "2026-03-01T09:30:15Z"}, timezone="Asia/Shanghai")
    assert 'value="2026-03-01T17:30:15"' in str(shown.at())
    with pytest.raises(CrmError, match="not a time zone"):
        bind(thing, formdata({"at": "2026-03-01T17:30"}), timezone="Mars/Olympus")


def test_inputs_have_the_right_html_types(thing):
    form = bind(thing, current={"price": "12.50", "colour": "red", "other": 3})
    html = {name: str(field_for(form, name)()) for name in thing.items}
    assert 'type="text"' in html["title"] and 'maxlength="20"' in html["title"]
    assert html["title"].count("required") == 1
    assert html["notes"].startswith("<textarea")
    assert 'type="number"' in html["count"] and 'min="0"' in html["count"]
    assert 'step="0.001"' in html["ratio"] and 'step="0.01"' in html["price"]
    assert 'value="12.50"' in html["price"]
    assert 'type="checkbox"' in html["active"]
    assert 'type="date"' in html["due"] and 'type="datetime-local"' in html["at"]
    assert 'type="email"' in html["email"] and 'type="tel"' in html["phone"]
    assert 'type="url"' in html["site"]
    assert 'data-color="#ff0000" selected value="red"' in html["colour"]
    assert "multiple" in html["tags"]
    assert 'type="hidden"' in html["other"] and 'data-target="kit.other"' in html["other"]
    assert 'data-title-field="name"' in html["other"]
    assert 'type="file"' in html["docs"] and "multiple" in html["docs"]
    assert 'name="place-lat"' in html["place"] and 'name="place-address"' in html["place"]


def test_option_colours_and_reference_targets_are_on_the_fields(thing):
    form = bind(thing, language="zh")
    assert form.colour.options[0] == {"value": "red", "label": "红", "color": "#ff0000"}
    assert form.other.target == {"app": "kit", "entity": "other", "title_field": "name"}
    assert form.stars.stars == 5


def test_child_rows_are_indexed_and_keep_their_order(thing):
    form = bind(
        thing,
        formdata(
            {
                "parts-2-label": "third",
                "parts-0-label": "first",
                "parts-0-id": "11",
                "parts-0-qty": "2",
                "parts-1-label": "second",
                "parts-1-price": "1.5",
                "parts-2-qty": "x",
            }
        ),
    )
    rows = form.parts.entries
    assert [r.form.label.data for r in rows] == ["first", "second", "third"]
    assert [r.form.id.data for r in rows] == [11, None, None]
    assert rows[1].form.price.data == Decimal("1.50")
    assert rows[2].form.qty.process_errors == ["'x' is not a whole number"]
    assert rows[2].form.qty.name == "parts-2-qty"


def test_rows_can_be_added_and_a_template_row_renders_with_a_placeholder(thing):
    form = bind(thing, current={"parts": [{"id": 4, "label": "bolt", "qty": 3}]})
    assert [r.form.label.data for r in form.parts.entries] == ["bolt"]
    form.parts.append_entry()
    assert form.parts.entries[1].form.label.name == "parts-1-label"
    template = form.parts.row_template()
    assert 'name="parts-__index__-label"' in str(template.form.label())
    assert form.parts.entries[0].form.total() is not None


def test_files_keep_ids_and_collect_uploads(thing):
    upload = FileStorage(io.BytesIO(b"hi"), filename="a.txt", content_type="text/plain")
    empty = FileStorage(io.BytesIO(b""), filename="")
    form = bind(thing, MultiDict([("docs", "4"), ("docs", upload), ("docs", empty)]))
    assert form.docs.data == [4]
    assert form.docs.uploads == [upload]
    form = bind(thing, formdata({"sign": PNG}))
    assert form.sign.data == [] and form.sign.uploads[0].mimetype == "image/png"


def test_a_field_named_like_a_form_attribute_keeps_its_html_name(cache, kit_doc):
    for name in ("data", "language", "prefix"):
        kit_doc["entities"][0]["fields"].append({"name": name, "type": "integer"})
    spec = cache.spec(model(kit_doc), "other")
    form = bind(spec, formdata({"data": "5", "language": "6", "prefix": "7", "name": "x"}))
    assert isinstance(form.data, dict)  # still the form's own property
    assert [field_for(form, n).data for n in ("data", "language", "prefix")] == [5, 6, 7]
    assert 'name="data"' in str(field_for(form, "data")())
    shown = bind(spec, current={"data": 8, "language": 9, "prefix": 10})
    assert [field_for(shown, n).data for n in ("data", "language", "prefix")] == [8, 9, 10]


def test_every_attribute_of_a_generated_form_is_kept_from_fields():
    names = {n for n in dir(EngineForm) if re.fullmatch(r"[a-z][a-z0-9_]*", n)}
    assert names <= FORM_ATTRIBUTES


def test_a_new_form_and_a_new_row_show_the_defaults(cache, sales):
    form = bind(cache.spec(sales, "deal"), context=CONTEXT)
    assert (form.stage.data, form.discount_pct.data) == ("lead", Decimal("0.00"))
    row = form.lines.append_entry()
    assert row.form.quantity.data == 1
    assert 'value="1"' in str(form.lines.row_template().form.quantity())
    interaction = bind(cache.spec(sales, "interaction"), context=CONTEXT)
    assert 'value="2026-03-01T09:30"' in str(interaction.occurred_at())


def test_generated_classes_are_wtforms_forms_without_flask(cache, kit):
    cls = cache.form_class(kit, "thing")
    assert issubclass(cls, EngineForm)
    assert cls.__mro__[1].__mro__[1].__module__ == "wtforms.form"
