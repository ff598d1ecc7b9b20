"""Computed fields that read through references and aggregate dates."""

from __future__ import annotations

import pytest

from metamodel import publish
from records.importing import import_file
from records.query import ListQuery
from records.service import Records

from ..metamodel.builders import document, entity, field


@pytest.fixture
def service(engine):
    doc = document(
        entity(
            "account",
            field("name", required=True),
            field("tier", "select", options=[{"value": "A"}, {"value": "B"}]),
            field(
                "last_contact", "rollup", via="visit.account", aggregate="max", field="visited_on"
            ),
            field(
                "first_contact", "rollup", via="visit.account", aggregate="min", field="visited_on"
            ),
            title_field="name",
        ),
        entity(
            "visit",
            field("account", "reference", target="account"),
            field("visited_on", "date"),
            field(
                "badge",
                "formula",
                result_type="text",
                expression={"cat": ["T-", {"var": "account.tier"}]},
            ),
        ),
    )
    publish.apply_document(engine, doc)
    return Records(engine)


def test_min_and_max_rollups_of_dates(service, users):
    admin = users["admin"]
    account = service.create(admin, "shop", "account", {"name": "Acme"})
    for day in ("2026-03-01", "2026-05-20", "2026-04-02"):
        service.create(admin, "shop", "visit", {"account": account["id"], "visited_on": day})
    again = service.get(admin, "shop", "account", account["id"])
    assert (again["first_contact"], again["last_contact"]) == ("2026-03-01", "2026-05-20")


def test_a_formula_reading_through_a_reference_follows_its_changes(service, users):
    admin = users["admin"]
    account = service.create(admin, "shop", "account", {"name": "Acme", "tier": "A"})
    visit = service.create(admin, "shop", "visit", {"account": account["id"]})
    assert visit["badge"] == "T-A"
    service.update(admin, "shop", "account", account["id"], {"tier": "B"})
    assert service.get(admin, "shop", "visit", visit["id"])["badge"] == "T-B"


def test_a_lookup_of_a_reference_builds_and_copies_the_id(engine, users):
    doc = document(
        entity("region", field("title")),
        entity("account", field("title"), field("region", "reference", target="region")),
        entity(
            "visit",
            field("account", "reference", target="account"),
            field("region", "lookup", via="account", field="region"),
        ),
    )
    publish.apply_document(engine, doc)
    service = Records(engine)
    admin = users["admin"]
    region = service.create(admin, "shop", "region", {"title": "华东"})
    account = service.create(admin, "shop", "account", {"title": "A", "region": region["id"]})
    visit = service.create(admin, "shop", "visit", {"account": account["id"]})
    assert visit["region"] == region["id"]


def test_an_import_computes_formulas_and_rollups_through_references_as_a_save_does(
    service, users, tmp_path
):
    admin = users["admin"]
    acme = service.create(admin, "shop", "account", {"name": "Acme", "tier": "A"})
    beta = service.create(admin, "shop", "account", {"name": "Beta", "tier": "B"})
    saved = service.create(
        admin, "shop", "visit", {"account": acme["id"], "visited_on": "2026-01-02"}
    )
    path = tmp_path / "visits.csv"
    path.write_text(
        "account,visited_on\nAcme,2026-03-04\nBeta,2026-02-01\nBeta,\n,2026-05-05\n",
        encoding="utf-8",
    )
    assert import_file(service, admin, "shop", "visit", path).imported == 4
    visits = service.list(admin, "shop", "visit", ListQuery(sort="id"))["items"]
    assert [v["badge"] for v in visits] == [saved["badge"], "T-A", "T-B", "T-B", "T-"]
    assert saved["badge"] == "T-A"
    for account, first, last in (
        (acme, "2026-01-02", "2026-03-04"),
        (beta, "2026-02-01", "2026-02-01"),
    ):
        got = service.get(admin, "shop", "account", account["id"])
        assert (got["first_contact"], got["last_contact"]) == (first, last)
