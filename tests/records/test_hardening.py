"""Bad input gets a clear error, never a 500; hidden fields stay hidden."""

from __future__ import annotations

import pytest

from metamodel import publish
from records.errors import Forbidden, NotFound, ValidationFailed
from records.query import ListQuery
from records.service import Records

from .conftest import APP


def problem_paths(caught) -> set[str]:
    return {p.path for p in caught.value.problems}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"full_name": "a\x00b"}, "/full_name"),
        ({"full_name": "x", "owner": "abc"}, "/owner"),
        ({"full_name": "x", "owner": True}, "/owner"),
        ({"full_name": "x", "owner": 2**70}, "/owner"),
        ({"full_name": "x", "owner": 424242}, "/owner"),
    ],
)
def test_values_the_database_cannot_hold_are_refused(records, users, data, path):
    with pytest.raises(ValidationFailed) as caught:
        records.create(users["admin"], APP, "contact", data)
    assert problem_paths(caught) == {path}


def test_datetimes_outside_the_calendar_are_refused(records, users):
    account = records.create(users["admin"], APP, "account", {"name": "A"})
    with pytest.raises(ValidationFailed) as caught:
        records.create(
            users["admin"],
            APP,
            "interaction",
            {
                "subject": "x",
                "account": account["id"],
                "channel": "phone",
                "occurred_at": "0001-01-01T00:00:00+05:00",
            },
        )
    assert problem_paths(caught) == {"/occurred_at"}


def test_a_computed_value_too_large_to_store_refuses_the_save(records, users):
    admin = users["admin"]
    account = records.create(admin, APP, "account", {"name": "A"})
    with pytest.raises(ValidationFailed) as caught:
        records.create(
            admin,
            APP,
            "deal",
            {
                "title": "x",
                "account": account["id"],
                "lines": [{"product": "p", "quantity": 10**10, "unit_price": "10000000000"}],
            },
        )
    assert "too large" in caught.value.problems[0].message


def test_out_of_range_ids_and_pages_are_not_found_or_invalid(records, users):
    admin = users["admin"]
    with pytest.raises(NotFound):
        records.get(admin, APP, "account", 2**70)
    with pytest.raises(ValidationFailed) as caught:
        records.list(admin, APP, "account", ListQuery(page=10**18))
    assert problem_paths(caught) == {"/page"}
    assert records.list(admin, APP, "account", ListQuery(q="\x00"))["total"] == 0


def test_child_rows_are_not_listed_on_their_own(records, users):
    with pytest.raises(NotFound, match="with their parent"):
        records.list(users["admin"], APP, "deal_line")


def test_an_empty_batch_still_needs_permission(records, users):
    with pytest.raises(Forbidden):
        records.create_many(users["chen"], APP, "deal", [])


def test_fields_hidden_by_read_roles_do_not_leak(engine, example_doc, users):
    account = example_doc["entities"][0]
    account["fields"].append(
        {"name": "credit_limit", "type": "currency", "read_roles": ["finance"]}
    )
    publish.apply_document(engine, example_doc)
    service = Records(engine)
    admin, wang = users["admin"], users["wang"]
    created = service.create(admin, APP, "account", {"name": "A", "credit_limit": "99999"})
    assert "credit_limit" not in service.get(wang, APP, "account", created["id"])
    history = service.history(wang, APP, "account", created["id"])
    assert all("credit_limit" not in event["changes"] for event in history)
    for query, path in [
        (ListQuery(filter={">": [{"var": "credit_limit"}, 50000]}), "/filter"),
        (ListQuery(sort="-credit_limit"), "/sort"),
    ]:
        with pytest.raises(ValidationFailed) as caught:
            service.list(wang, APP, "account", query)
        assert problem_paths(caught) == {path}
    assert service.get(users["chen"], APP, "account", created["id"])["credit_limit"] == "99999.00"


def test_plan_predicts_the_version_rule(engine, example_doc):
    publish.apply_document(engine, example_doc)
    example_doc["entities"][0]["fields"].append({"name": "wechat_id", "type": "text"})
    outcome = publish.plan_document(engine, example_doc)
    assert outcome.plan.problems[0].path == "/version"
