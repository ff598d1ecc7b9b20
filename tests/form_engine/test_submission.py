"""The server decides: hidden, required, read-only and computed fields, validations, rows."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from werkzeug.datastructures import FileStorage, MultiDict

from form_engine import FORM, submit, validate_field
from form_engine.submission import READ_ONLY, REQUIRED

from .conftest import CONTEXT, model, with_form

DEAL = {
    "title": ["Pumps"],
    "account": ["1"],
    "stage": ["qualified"],
    "amount": ["1000"],
    "probability": ["40"],
    "expected_close": ["2026-06-30"],
    "discount_pct": ["0"],
}
STORED = {
    "id": 5,
    "version": 3,
    "title": "Pumps",
    "account": 1,
    "account_tier": "B",
    "stage": "qualified",
    "amount": "1000.00",
    "probability": "40.00",
    "weighted_amount": "400.00",
    "expected_close": "2026-06-30",
    "lost_reason": "was lost once",
    "discount_pct": "0.00",
    "lines": [
        {"id": 31, "product": "Valve", "quantity": 2, "unit_price": "10.00", "line_total": "20.00"}
    ],
}


def deal(**changes) -> dict:
    data = {key: list(value) for key, value in DEAL.items()}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value if isinstance(value, list) else [value]
    return data


@pytest.fixture
def deal_form(cache, sales):
    return cache.spec(sales, "deal")


def send(spec, data, current=None, **options):
    options.setdefault("context", CONTEXT)
    return submit(spec, data, current, **options)


def test_a_good_new_deal_becomes_a_field_map(deal_form):
    result = send(deal_form, deal())
    assert result.ok, result.errors
    assert result.values == {
        "title": "Pumps",
        "account": 1,
        "stage": "qualified",
        "amount": "1000.00",
        "probability": "40.00",
        "expected_close": "2026-06-30",
        "discount_pct": "0.00",
        "lines": [],
    }
    assert result.record["weighted_amount"] == Decimal("400.00")


def test_a_hidden_fields_value_is_ignored(deal_form):
    created = send(deal_form, deal(lost_reason="too expensive"))
    assert created.ok and "lost_reason" not in created.values
    assert not created.states["lost_reason"].visible
    edited = send(deal_form, deal(lost_reason="rewritten"), STORED)
    assert edited.ok and "lost_reason" not in edited.values
    assert edited.record["lost_reason"] == "was lost once"


def test_required_when_is_enforced(deal_form):
    result = send(deal_form, deal(stage="lost", lost_reason="  "))
    assert result.errors == {"lost_reason": [REQUIRED]}
    assert result.values == {}
    assert result.states["lost_reason"].required and result.states["lost_reason"].visible
    assert result.form.lost_reason.errors == [REQUIRED]
    # Leaving the field out of the request does not get round it.
    crafted = send(deal_form, deal(stage="lost", lost_reason=None))
    assert crafted.errors == {"lost_reason": [REQUIRED]}
    filled = send(deal_form, deal(stage="lost", lost_reason="price"))
    assert filled.ok and filled.values["lost_reason"] == "price"


def test_a_stored_value_satisfies_required_when_the_input_is_absent(deal_form):
    result = send(deal_form, deal(stage="lost", lost_reason=None), STORED)
    assert result.ok and "lost_reason" not in result.values


def test_computed_fields_cannot_be_set_by_a_crafted_request(deal_form):
    result = send(deal_form, deal(weighted_amount="999999", account_tier="A"), STORED)
    assert result.ok
    assert "weighted_amount" not in result.values and "account_tier" not in result.values
    assert result.record["weighted_amount"] == Decimal("400.00")
    assert result.record["account_tier"] == "B"
    assert "400.00" in str(result.form.weighted_amount())


def test_fields_not_on_the_form_cannot_be_set(cache, sales):
    enquiry = cache.spec(sales, "contact", "web_enquiry")
    result = send(enquiry, {"full_name": ["王芳"], "account": ["3"], "owner": ["1"]})
    assert result.ok and result.values == {"full_name": "王芳", "consent_marketing": False}


@pytest.fixture
def locking_form(cache, sales_doc):
    doc = with_form(
        sales_doc,
        {
            "name": "deal_review",
            "entity": "deal",
            "layout": [
                {
                    "section": "Review",
                    "fields": [
                        "title",
                        "stage",
                        {"field": "amount", "read_only_when": {"==": [{"var": "stage"}, "won"]}},
                        {
                            "field": "expected_close",
                            "read_only_when": {"==": [{"var": "stage"}, "won"]},
                        },
                    ],
                }
            ],
            "validations": [
                {"rule": {"<=": [{"var": "amount"}, 5000]}, "message": "Too big to review"},
                {
                    "rule": {"!=": [{"var": "title"}, "x"]},
                    "message": {"en": "Not x", "zh": "不能是 x"},
                    "fields": ["title", "amount"],
                },
            ],
        },
    )
    return cache.spec(model(doc), "deal", "deal_review")


def test_read_only_when_refuses_a_different_value_with_an_error(locking_form):
    won = {**STORED, "stage": "won"}
    crafted = send(locking_form, {"title": ["Pumps"], "stage": ["won"], "amount": ["1"]}, won)
    assert crafted.errors == {"amount": [READ_ONLY]}
    same = send(locking_form, {"title": ["Pumps"], "stage": ["won"], "amount": ["1000"]}, won)
    assert same.ok and "amount" not in same.values
    absent = send(locking_form, {"title": ["Pumps"], "stage": ["won"]}, won)
    assert absent.ok and "amount" not in absent.values
    # A datetime-free date shown as text comes back as the same value.
    dated = send(
        locking_form, {"title": ["P"], "stage": ["won"], "expected_close": ["2026-06-30"]}, won
    )
    assert dated.ok


def test_read_only_when_follows_the_would_be_record(locking_form):
    # Moving the stage to won in the same request makes amount read-only at once.
    result = send(locking_form, {"title": ["P"], "stage": ["won"], "amount": ["7"]}, STORED)
    assert result.errors == {"amount": [READ_ONLY]}
    reopened = send(
        locking_form,
        {"title": ["P"], "stage": ["qualified"], "amount": ["7"]},
        {**STORED, "stage": "won"},
    )
    assert reopened.ok and reopened.values["amount"] == "7.00"


def test_locked_fields_are_read_only_too(deal_form):
    result = send(deal_form, deal(amount="5"), STORED, locked={"amount"})
    assert result.errors == {"amount": [READ_ONLY]}
    assert result.states["amount"].read_only
    result = send(deal_form, deal(amount="1000.00"), STORED, locked={"amount"})
    assert result.ok and "amount" not in result.values


def test_validations_are_reported_on_their_fields(deal_form, locking_form):
    past = send(deal_form, deal(expected_close="2026-01-01"))
    assert past.errors == {"expected_close": ["Expected close cannot be in the past"]}
    zh = send(locking_form, {"title": ["x"], "stage": ["lead"], "amount": ["9000"]}, language="zh")
    assert zh.errors == {FORM: ["Too big to review"], "title": ["不能是 x"], "amount": ["不能是 x"]}
    assert zh.form.form_errors == ["Too big to review"]


def test_validations_read_the_would_be_record_and_today(deal_form):
    today = CONTEXT["today"].isoformat()
    assert send(deal_form, deal(expected_close=today)).ok
    # The stored date is in the past, but the request moves it: the new value counts.
    stored = {**STORED, "expected_close": "2020-01-01"}
    assert send(deal_form, deal(expected_close="2026-12-31"), stored).ok
    kept = send(deal_form, deal(expected_close=None), stored)
    assert kept.errors == {"expected_close": ["Expected close cannot be in the past"]}


def test_child_rows_are_parsed_in_order(deal_form):
    data = deal(
        **{
            "lines-1-product": "Pump",
            "lines-1-quantity": "3",
            "lines-1-unit_price": "99.99",
            "lines-0-id": "31",
            "lines-0-product": "Valve",
            "lines-0-quantity": "2",
            "lines-0-unit_price": "10",
            "lines-0-line_total": "1000000",
        }
    )
    result = send(deal_form, data, STORED)
    assert result.ok, result.errors
    assert result.values["lines"] == [
        {"id": 31, "product": "Valve", "quantity": 2, "unit_price": "10.00"},
        {"product": "Pump", "quantity": 3, "unit_price": "99.99"},
    ]
    assert [r["line_total"] for r in result.record["lines"]] == [
        Decimal("20.00"),
        Decimal("299.97"),
    ]


def test_child_row_errors_name_their_cell(deal_form):
    data = deal(
        **{
            "lines-0-product": "Valve",
            "lines-0-quantity": "0",
            "lines-1-product": "",
            "lines-1-quantity": "1",
        }
    )
    result = send(deal_form, data)
    assert result.errors == {
        "lines-0-quantity": ["must be at least 1"],
        "lines-1-product": [REQUIRED],
    }
    assert result.form.lines.entries[0].form.quantity.errors == ["must be at least 1"]


def test_removing_every_row_empties_the_table(deal_form):
    result = send(deal_form, deal(), STORED)
    assert result.ok and result.values["lines"] == []


def test_an_absent_scalar_input_leaves_the_stored_value(deal_form):
    result = send(deal_form, deal(probability=None), STORED)
    assert result.ok and "probability" not in result.values
    assert result.record["probability"] == Decimal("40.00")


def test_bad_values_are_errors_and_nothing_is_sent(deal_form):
    result = send(deal_form, deal(amount="12.345", probability="abc"))
    assert result.errors == {
        "amount": ["has more than 2 decimal places"],
        "probability": ["'abc' is not a number"],
    }
    assert result.values == {}
    assert 'value="12.345"' in str(result.form.amount())


def chain_form(kit_doc, *items):
    doc = with_form(
        kit_doc,
        {
            "name": "chain",
            "entity": "thing",
            "layout": [{"section": "S", "fields": ["title", "colour", *items]}],
        },
    )
    return model(doc)


def test_rules_depending_on_hidden_fields_settle(cache, kit_doc):
    app = chain_form(
        kit_doc,
        {"field": "notes", "visible_when": {"==": [{"var": "colour"}, "red"]}},
        {"field": "count", "visible_when": {"==": [{"var": "notes"}, "show"]}},
    )
    spec = cache.spec(app, "thing", "chain")
    data = {"title": ["t"], "colour": ["blue"], "notes": ["show"], "count": ["5"]}
    hidden = send(spec, data)
    # notes is hidden, so its "show" does not count, so count is hidden too.
    assert hidden.ok and set(hidden.values) == {"title", "colour"}
    assert not hidden.states["notes"].visible and not hidden.states["count"].visible
    shown = send(spec, {**data, "colour": ["red"]})
    assert shown.values == {"title": "t", "colour": "red", "notes": "show", "count": 5}


def test_rules_that_keep_flipping_are_cut_off_and_held_read_only(cache, kit_doc):
    app = chain_form(
        kit_doc,
        {"field": "notes", "visible_when": {"==": [{"var": "count"}, 1]}},
        {"field": "count", "visible_when": {"!=": [{"var": "notes"}, "a"]}},
    )
    spec = cache.spec(app, "thing", "chain")
    result = send(spec, {"title": ["t"], "notes": ["a"], "count": ["1"]})
    again = send(spec, {"title": ["t"], "notes": ["a"], "count": ["1"]})
    assert result.states == again.states
    for name in ("notes", "count"):
        state = result.states[name]
        assert not state.accepts
        assert name not in result.values


def test_rules_follow_references_through_a_resolver(cache, sales_doc):
    doc = with_form(
        sales_doc,
        {
            "name": "by_tier",
            "entity": "deal",
            "layout": [
                {
                    "section": "S",
                    "fields": [
                        "title",
                        "account",
                        {
                            "field": "discount_pct",
                            "visible_when": {"==": [{"var": "account.tier"}, "A"]},
                        },
                    ],
                }
            ],
        },
    )
    spec = cache.spec(model(doc), "deal", "by_tier")
    assert spec.followed == ["account"]
    tiers = {1: "A", 2: "C"}
    asked = []

    def resolve(entity, record_id):
        asked.append((entity.name, record_id))
        return {"id": record_id, "name": "Acme", "tier": tiers.get(record_id)}

    data = {"title": ["t"], "account": ["1"], "discount_pct": ["5"]}
    shown = send(spec, data, resolve=resolve)
    assert shown.values["discount_pct"] == "5.00"
    assert shown.record["account"] == 1  # the record keeps the id; rules saw the account
    hidden = send(spec, {**data, "account": ["2"]}, resolve=resolve)
    assert "discount_pct" not in hidden.values
    assert "discount_pct" not in send(spec, data).values  # no resolver: null, hidden
    assert set(asked) == {("account", 1), ("account", 2)}


def test_lookups_follow_a_changed_reference(deal_form):
    def resolve(entity, record_id):
        return {"id": record_id, "tier": "A"}

    changed = send(deal_form, deal(account="2"), STORED, resolve=resolve)
    assert changed.record["account_tier"] == "A"
    kept = send(deal_form, deal(), STORED, resolve=resolve)
    assert kept.record["account_tier"] == "B"


def test_usernames_resolve_through_a_hook(cache, kit):
    spec = cache.spec(kit, "thing")
    data = {"title": ["t"], "assignee": ["li"]}
    assert send(spec, data, users={"li": 7}.get).values["assignee"] == 7
    unknown = send(spec, {**data, "assignee": ["nobody"]}, users={"li": 7}.get)
    assert unknown.errors == {
        "assignee": ["there is no user named 'nobody'; pick one from the list"]
    }


def test_uploads_are_stored_only_when_the_form_is_valid(cache, kit):
    spec = cache.spec(kit, "thing")
    stored = []

    def store_file(name, upload):
        stored.append((name, upload.filename, upload.stream.read()))
        return {"id": 40 + len(stored), "name": upload.filename, "mime": "text/plain", "size": 2}

    def data(title):
        upload = FileStorage(io.BytesIO(b"hi"), filename="a.txt", content_type="text/plain")
        return MultiDict([("title", title), ("docs", "4"), ("docs", upload)])

    refused = send(spec, data("x" * 30), store_file=store_file)
    assert "title" in refused.errors and stored == []
    result = send(spec, data("ok"), store_file=store_file)
    assert result.values["docs"] == [4, 41]
    assert stored == [("docs", "a.txt", b"hi")]
    no_hook = send(spec, data("ok"))
    assert no_hook.errors == {"docs": ["this form cannot take file uploads"]}


def test_checkboxes_and_multiselects_sent_empty_are_false_and_empty(cache, kit):
    spec = cache.spec(kit, "thing")
    stored = {"id": 1, "title": "t", "active": True, "tags": ["a"]}
    result = send(spec, {"title": ["t"]}, stored)
    assert result.values["active"] is False and result.values["tags"] == []


def test_datetimes_are_read_in_the_users_zone(cache, kit):
    spec = cache.spec(kit, "thing")
    result = send(spec, {"title": ["t"], "at": ["2026-03-01T08:00"]}, timezone="Asia/Shanghai")
    assert result.values["at"] == "2026-03-01T00:00:00Z"
    assert result.record["at"] == dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)


def test_validate_field_as_the_user_leaves_it(deal_form):
    record = {**STORED, "stage": "lost", "lost_reason": None}
    check = validate_field
    assert check(deal_form, "lost_reason", "", record, context=CONTEXT) == [REQUIRED]
    assert check(deal_form, "lost_reason", "", STORED, context=CONTEXT) == []
    assert check(deal_form, "lost_reason", "price", record, context=CONTEXT) == []
    assert check(deal_form, "amount", "abc", STORED, context=CONTEXT) == ["'abc' is not a number"]
    assert check(deal_form, "expected_close", "2020-01-01", STORED, context=CONTEXT) == [
        "Expected close cannot be in the past"
    ]
    assert check(deal_form, "weighted_amount", "5", STORED, context=CONTEXT) == []
    assert check(deal_form, "lines-0-quantity", "0", STORED) == ["must be at least 1"]
    assert check(deal_form, "lines-3-product", "", STORED) == [REQUIRED]
    assert check(deal_form, "nonsense", "1", STORED) == []


def test_validate_field_on_a_read_only_field(deal_form):
    assert validate_field(deal_form, "amount", "5", STORED, locked={"amount"}) == [READ_ONLY]
    assert validate_field(deal_form, "amount", "1000", STORED, locked={"amount"}) == []


def test_a_rule_that_cannot_be_evaluated_falls_back_to_the_safe_side(cache, kit_doc):
    broken = {"missing_some": [1]}  # json-logic-js throws here too
    doc = with_form(
        kit_doc,
        {
            "name": "broken",
            "entity": "thing",
            "layout": [
                {
                    "section": "S",
                    "fields": [
                        "title",
                        {"field": "notes", "visible_when": broken, "read_only_when": broken},
                        {"field": "count", "required_when": broken},
                    ],
                }
            ],
            "validations": [{"rule": broken, "message": "cannot check", "fields": ["title"]}],
        },
    )
    spec = cache.spec(model(doc), "thing", "broken")
    result = send(spec, {"title": ["t"], "notes": ["n"], "count": [""]})
    notes, count = result.states["notes"], result.states["count"]
    assert notes.visible and notes.read_only and not count.required
    assert result.errors == {"title": ["cannot check"], "notes": [READ_ONLY]}


def test_a_drawn_signature_and_a_position_are_sent(cache, kit):
    spec = cache.spec(kit, "thing")
    stored = []

    def store_file(name, upload):
        stored.append((name, upload.filename, upload.mimetype, upload.stream.read()))
        return {"id": 77, "name": upload.filename, "mime": upload.mimetype, "size": 8}

    data = {
        "title": ["t"],
        "sign": ["data:image/png;base64,iVBORw0KGgo="],
        "place-lat": ["31.2304"],
        "place-lng": ["121.4737"],
        "place-address": [""],
    }
    result = send(spec, data, store_file=store_file)
    assert result.values["sign"] == [77]
    assert stored == [("sign", "signature.png", "image/png", b"\x89PNG\r\n\x1a\n")]
    assert result.values["place"] == {"lat": 31.2304, "lng": 121.4737, "address": None}
    # Nothing sent for them: both stay as they are.
    kept = send(spec, {"title": ["t"]}, {"id": 1, "sign": [{"id": 5}], "place": {"lat": 1}})
    assert "sign" not in kept.values and "place" not in kept.values


def test_a_form_shown_again_keeps_stored_values_the_request_lacked(deal_form):
    result = send(deal_form, deal(amount="abc", lost_reason=None, probability=None), STORED)
    assert not result.ok
    assert result.form.lost_reason.data == "was lost once"
    assert 'value="40.00"' in str(result.form.probability())
    assert 'value="abc"' in str(result.form.amount())
    assert result.form.lines.entries == []  # rows come from the request alone
