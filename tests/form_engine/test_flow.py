"""The whole flow against the record service, on the database under test."""

from __future__ import annotations

import io

import pytest
from werkzeug.datastructures import FileStorage, MultiDict

from form_engine import FORM, form_errors, submit, validate_field
from metamodel import publish
from records.errors import StaleVersion, ValidationFailed
from records.service import Records

from .conftest import CONTEXT, NOW, model, with_form

APP = "sales_pipeline"


@pytest.fixture
def account(records, admin):
    return records.create(admin, APP, "account", {"name": "华东精工", "tier": "A"})


def deal_data(account_id, **changes):
    data = {
        "title": ["Pumps"],
        "account": [str(account_id)],
        "stage": ["qualified"],
        "amount": ["1000"],
        "probability": ["40"],
        "expected_close": ["2026-06-30"],
        "discount_pct": ["0"],
        "lines-0-product": ["Valve"],
        "lines-0-quantity": ["2"],
        "lines-0-unit_price": ["10.5"],
        "lines-1-product": ["Pump"],
        "lines-1-quantity": ["1"],
        "lines-1-unit_price": ["99.99"],
    }
    data.update({k: v if isinstance(v, list) else [v] for k, v in changes.items()})
    return data


def test_create_then_edit_through_the_form(cache, sales, records, admin, account):
    spec = cache.spec(sales, "deal")
    created = submit(spec, deal_data(account["id"]), context=CONTEXT)
    assert created.ok, created.errors
    deal = records.create(admin, APP, "deal", created.values)
    assert deal["weighted_amount"] == "400.00"
    assert [(r["product"], r["line_total"]) for r in deal["lines"]] == [
        ("Valve", "21.00"),
        ("Pump", "99.99"),
    ]
    # The form worked out the same values before saving.
    assert str(created.record["lines"][0]["line_total"]) == "21.00"

    current = records.get(admin, APP, "deal", deal["id"])
    first, second = (row["id"] for row in current["lines"])
    crafted = deal_data(
        account["id"],
        weighted_amount="1",
        lost_reason="nobody sees this",
        **{
            "lines-0-id": str(second),
            "lines-0-product": "Pump",
            "lines-0-unit_price": "99.99",
            "lines-0-quantity": "3",
            "lines-1-id": str(first),
            "lines-1-product": "Valve",
            "lines-1-quantity": "2",
            "lines-1-unit_price": "10.5",
        },
    )
    edited = submit(spec, crafted, current, context=CONTEXT)
    assert edited.ok, edited.errors
    saved = records.update(
        admin, APP, "deal", deal["id"], edited.values, expected_version=current["version"]
    )
    assert saved["weighted_amount"] == "400.00" and saved["lost_reason"] is None
    # Rows reordered: the same rows, updated in place, in the new order.
    assert [(r["id"], r["product"], r["line_total"]) for r in saved["lines"]] == [
        (second, "Pump", "299.97"),
        (first, "Valve", "21.00"),
    ]


def test_the_service_refusals_land_beside_the_fields(cache, sales, records, admin, account):
    spec = cache.spec(sales, "deal")
    result = submit(spec, deal_data(999), context=CONTEXT)
    assert result.ok  # the form cannot know which accounts exist
    with pytest.raises(ValidationFailed) as refused:
        records.create(admin, APP, "deal", result.values)
    assert form_errors(refused.value, spec) == {"account": ["there is no account with id 999"]}

    enquiry = cache.spec(sales, "contact", "web_enquiry")
    data = {"full_name": ["王芳"], "email": ["wang@example.com"]}
    records.create(admin, APP, "contact", submit(enquiry, data).values)
    with pytest.raises(ValidationFailed) as duplicate:
        records.create(admin, APP, "contact", submit(enquiry, data).values)
    errors = form_errors(duplicate.value, enquiry)
    assert list(errors) == ["email"] and "already used" in errors["email"][0]


def test_a_stale_edit_is_a_form_level_error(cache, sales, records, admin, account):
    spec = cache.spec(sales, "deal")
    deal = records.create(
        admin, APP, "deal", submit(spec, deal_data(account["id"]), context=CONTEXT).values
    )
    records.update(admin, APP, "deal", deal["id"], {"title": "Renamed"})
    edited = submit(spec, deal_data(account["id"], title="Mine"), deal, context=CONTEXT)
    with pytest.raises(StaleVersion) as stale:
        records.update(
            admin, APP, "deal", deal["id"], edited.values, expected_version=deal["version"]
        )
    assert list(form_errors(stale.value, spec)) == [FORM]


def test_rules_follow_references_through_the_record_service(
    cache, sales_doc, records, admin, account
):
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
                            "required_when": {"==": [{"var": "account.tier"}, "A"]},
                        },
                    ],
                }
            ],
        },
    )
    spec = cache.spec(model(doc), "deal", "by_tier")
    other = records.create(admin, APP, "account", {"name": "Northwind", "tier": "C"})

    def resolve(entity, record_id):
        return records.get(admin, entity.app.name, entity.name, record_id)

    data = {"title": ["t"], "account": [str(account["id"])], "discount_pct": [""]}
    assert submit(spec, data, resolve=resolve).errors == {"discount_pct": ["is required"]}
    plain = submit(spec, {**data, "account": [str(other["id"])]}, resolve=resolve)
    assert plain.ok and "discount_pct" not in plain.values
    saved = records.create(admin, APP, "deal", plain.values)
    assert saved["discount_pct"] == "0.00"  # hidden on create: the field's default
    messages = validate_field(spec, "discount_pct", "", saved, resolve=resolve)
    assert messages == []
    saved["account"] = account["id"]
    assert validate_field(spec, "discount_pct", "", saved, resolve=resolve) == ["is required"]


def test_uploads_are_stored_through_the_record_service(engine, cache, kit_doc, admin, tmp_path):
    publish.apply_document(engine, kit_doc)
    records = Records(engine, clock=lambda: NOW, files_root=tmp_path / "uploads")
    spec = cache.spec(model(kit_doc), "thing")

    def store_file(name, upload):
        return records.upload(
            admin, "kit", "thing", name, upload.stream, upload.filename, upload.mimetype
        )

    upload = FileStorage(io.BytesIO(b"quote"), filename="quote.txt", content_type="text/plain")
    data = MultiDict([("title", "With a file"), ("docs", upload), ("count", "2")])
    result = submit(spec, data, store_file=store_file, context=CONTEXT)
    assert result.ok, result.errors
    thing = records.create(admin, "kit", "thing", result.values)
    assert [d["name"] for d in thing["docs"]] == ["quote.txt"]
    assert thing["double"] == 4
    kept = submit(
        spec, MultiDict([("title", "Still"), ("docs", str(thing["docs"][0]["id"]))]), thing
    )
    again = records.update(admin, "kit", "thing", thing["id"], kept.values)
    assert [d["id"] for d in again["docs"]] == [thing["docs"][0]["id"]]
