"""The record service on the sales_pipeline example, on the database under test."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from records.errors import Forbidden, NotFound, RecordConflict, StaleVersion, ValidationFailed

from .conftest import APP


def make_account(records, actor, **values):
    return records.create(actor, APP, "account", {"name": "华东精工机械有限公司", **values})


def paths(error) -> set[str]:
    return {p.path for p in error.value.problems}


def test_create_fills_system_columns_defaults_and_autonumber(records, users):
    admin = users["admin"]
    first = make_account(records, admin)
    second = make_account(records, admin, name="Northwind")
    assert first["code"].endswith("-00001") and second["code"].endswith("-00002")
    assert first["tier"] == "C"  # the field's default
    assert (first["version"], first["owner"], first["created_by"]) == (1, admin.id, admin.id)
    assert first["created_at"].endswith("Z")


def test_autonumbers_are_never_reused(records, users):
    admin = users["admin"]
    first = make_account(records, admin)
    records.delete(admin, APP, "account", first["id"])
    with pytest.raises(ValidationFailed):
        make_account(records, admin, tier="Z")  # refused before it takes a number
    second = make_account(records, admin)
    assert first["code"].endswith("-00001") and second["code"].endswith("-00002")


def test_every_error_names_its_field(records, users):
    with pytest.raises(ValidationFailed) as caught:
        records.create(
            users["admin"],
            APP,
            "deal",
            {
                "title": "",
                "amount": "12.345",
                "probability": 120,
                "stage": "maybe",
                "colour": "red",
            },
        )
    assert paths(caught) == {"/title", "/account", "/amount", "/probability", "/stage", "/colour"}


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("phone", "138 0013 8000", "+8613800138000"),
        ("phone", "+1 650 253 0000", "+16502530000"),
        ("email", "wang.fang@example.com", "wang.fang@example.com"),
        ("preferred_channel", "wechat", "wechat"),
        ("consent_marketing", "true", True),
    ],
)
def test_contact_values_are_normalised(records, users, field, value, stored):
    contact = records.create(users["admin"], APP, "contact", {"full_name": "王芳", field: value})
    assert contact[field] == stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "12"),
        ("email", "wang.fang@"),
        ("preferred_channel", "fax"),
        ("consent_marketing", "perhaps"),
    ],
)
def test_contact_values_that_do_not_fit_are_refused(records, users, field, value):
    with pytest.raises(ValidationFailed) as caught:
        records.create(users["admin"], APP, "contact", {"full_name": "王芳", field: value})
    assert paths(caught) == {f"/{field}"}


def test_url_rating_datetime_and_unique(records, users):
    admin = users["admin"]
    with pytest.raises(ValidationFailed) as caught:
        make_account(records, admin, website="northwind.example")
    assert "http" in caught.value.problems[0].message
    account = make_account(records, admin)
    visit = records.create(
        admin,
        APP,
        "interaction",
        {
            "subject": "拜访",
            "account": account["id"],
            "channel": "visit",
            "satisfaction": 4,
            "occurred_at": "2026-05-01T08:00:00+08:00",
        },
    )
    assert visit["occurred_at"] == "2026-05-01T00:00:00Z"
    with pytest.raises(ValidationFailed) as caught:
        records.update(admin, APP, "interaction", visit["id"], {"satisfaction": 6})
    assert paths(caught) == {"/satisfaction"}
    records.create(admin, APP, "contact", {"full_name": "A", "email": "a@example.com"})
    with pytest.raises(ValidationFailed) as caught:
        records.create(admin, APP, "contact", {"full_name": "B", "email": "a@example.com"})
    assert "already used by contact" in caught.value.problems[0].message


def test_datetime_default_now_and_required(records, users):
    account = make_account(records, users["admin"])
    visit = records.create(
        users["admin"],
        APP,
        "interaction",
        {"subject": "电话", "account": account["id"], "channel": "phone"},
    )
    assert visit["occurred_at"].endswith("Z")


def test_formulas_are_exact_decimals(records, users):
    admin = users["admin"]
    account = make_account(records, admin)
    deal = records.create(
        admin,
        APP,
        "deal",
        {
            "title": "数控机床升级",
            "account": account["id"],
            "amount": "0.10",
            "probability": "33.33",
            "lines": [
                {"product": "CNC-500", "quantity": 3, "unit_price": "0.10"},
                {"product": "Tool", "unit_price": 2},
            ],
        },
    )
    assert deal["weighted_amount"] == "0.03"  # 0.10 * 33.33 / 100 = 0.03333 → 0.03
    assert [line["line_total"] for line in deal["lines"]] == ["0.30", "2.00"]
    assert deal["lines"][1]["quantity"] == 1  # child default


def test_child_rows_are_validated_with_their_parent_and_saved_in_order(records, users):
    admin = users["admin"]
    account = make_account(records, admin)
    with pytest.raises(ValidationFailed) as caught:
        records.create(
            admin,
            APP,
            "deal",
            {"title": "x", "account": account["id"], "lines": [{"product": "A"}, {"quantity": 0}]},
        )
    assert paths(caught) == {"/lines/1/quantity"}
    deal = records.create(
        admin,
        APP,
        "deal",
        {"title": "x", "account": account["id"], "lines": [{"product": "A"}, {"product": "B"}]},
    )
    kept = deal["lines"][1]
    updated = records.update(
        admin,
        APP,
        "deal",
        deal["id"],
        {"lines": [kept, {"product": "C", "quantity": 2, "unit_price": 5}]},
    )
    assert [line["product"] for line in updated["lines"]] == ["B", "C"]
    assert updated["lines"][0]["id"] == kept["id"]


def test_lookups_and_rollups_stay_in_step(records, users):
    admin = users["admin"]
    account = make_account(records, admin, tier="A")
    first = records.create(
        admin,
        APP,
        "deal",
        {"title": "a", "account": account["id"], "amount": "100.50", "stage": "proposal"},
    )
    records.create(
        admin, APP, "deal", {"title": "b", "account": account["id"], "amount": 200, "stage": "won"}
    )
    assert first["account_tier"] == "A"
    assert records.get(admin, APP, "account", account["id"])["open_deal_value"] == "100.50"
    records.update(admin, APP, "deal", first["id"], {"amount": "300"})
    assert records.get(admin, APP, "account", account["id"])["open_deal_value"] == "300.00"
    records.update(admin, APP, "account", account["id"], {"tier": "B"})
    assert records.get(admin, APP, "deal", first["id"])["account_tier"] == "B"
    other = make_account(records, admin, name="Other")
    records.update(admin, APP, "deal", first["id"], {"account": other["id"]})
    assert records.get(admin, APP, "account", account["id"])["open_deal_value"] == "0.00"
    assert records.get(admin, APP, "account", other["id"])["open_deal_value"] == "300.00"
    records.delete(admin, APP, "deal", first["id"])
    assert records.get(admin, APP, "account", other["id"])["open_deal_value"] == "0.00"
    records.restore(admin, APP, "deal", first["id"])
    assert records.get(admin, APP, "account", other["id"])["open_deal_value"] == "300.00"


def test_stale_updates_are_refused_and_overwrite_nothing(records, users):
    admin = users["admin"]
    account = make_account(records, admin)
    records.update(admin, APP, "account", account["id"], {"notes": "first"}, expected_version=1)
    with pytest.raises(StaleVersion) as caught:
        records.update(
            admin, APP, "account", account["id"], {"notes": "second"}, expected_version=1
        )
    assert caught.value.current_version == 2
    assert records.get(admin, APP, "account", account["id"])["notes"] == "first"


def test_concurrent_updates_lose_nothing(records, users):
    """Threads each read a version and update with it: every success is a distinct version."""
    admin = users["admin"]
    account = make_account(records, admin, notes="")
    successes, conflicts = [], []

    def work(n: int) -> None:
        version = records.get(admin, APP, "account", account["id"])["version"]
        try:
            done = records.update(
                admin,
                APP,
                "account",
                account["id"],
                {"notes": f"writer {n}"},
                expected_version=version,
            )
            successes.append((version, done["notes"]))
        except StaleVersion:
            conflicts.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = records.get(admin, APP, "account", account["id"])
    assert len(successes) + len(conflicts) == 8
    assert final["version"] == 1 + len(successes)
    assert len({version for version, _ in successes}) == len(successes)
    history = records.history(admin, APP, "account", account["id"])
    assert len([e for e in history if e["action"] == "update"]) == len(successes)


def test_delete_respects_on_delete(records, users):
    admin = users["admin"]
    account = make_account(records, admin)
    deal = records.create(admin, APP, "deal", {"title": "x", "account": account["id"]})
    contact = records.create(admin, APP, "contact", {"full_name": "王芳", "account": account["id"]})
    with pytest.raises(RecordConflict) as caught:
        records.delete(admin, APP, "account", account["id"])
    assert f"(ids {deal['id']})" in caught.value.message
    assert records.get(admin, APP, "contact", contact["id"])["account"] == account["id"]
    records.delete(admin, APP, "deal", deal["id"])
    records.delete(admin, APP, "account", account["id"])
    assert records.get(admin, APP, "contact", contact["id"])["account"] is None
    with pytest.raises(NotFound, match="recycle bin"):
        records.get(admin, APP, "account", account["id"])
    restored = records.restore(admin, APP, "account", account["id"])
    assert restored["version"] == 3


def test_restore_refuses_a_taken_unique_value(records, users):
    admin = users["admin"]
    first = records.create(admin, APP, "contact", {"full_name": "A", "email": "a@example.com"})
    records.delete(admin, APP, "contact", first["id"])
    records.create(admin, APP, "contact", {"full_name": "B", "email": "a@example.com"})
    with pytest.raises(RecordConflict, match="already used"):
        records.restore(admin, APP, "contact", first["id"])


def test_audit_records_field_level_before_and_after(records, users):
    admin = users["admin"]
    account = make_account(records, admin, tier="A")
    records.update(admin, APP, "account", account["id"], {"tier": "B", "annual_revenue": "1000.5"})
    events = records.history(admin, APP, "account", account["id"])
    assert [e["action"] for e in events] == ["update", "create"]
    assert events[0]["changes"] == {"tier": ["A", "B"], "annual_revenue": [None, "1000.50"]}
    assert events[0]["actor_id"] == admin.id


def test_permissions_per_role_and_own_records(records, users):
    admin, li, zhao, wang, chen = (users[n] for n in ("admin", "li", "zhao", "wang", "chen"))
    account = make_account(records, li)
    mine = records.create(li, APP, "deal", {"title": "li's", "account": account["id"]})
    theirs = records.create(zhao, APP, "deal", {"title": "zhao's", "account": account["id"]})
    assert records.get(li, APP, "deal", mine["id"])["title"] == "li's"
    with pytest.raises(Forbidden):
        records.get(li, APP, "deal", theirs["id"])
    with pytest.raises(Forbidden):
        records.update(li, APP, "deal", theirs["id"], {"title": "mine now"})
    with pytest.raises(Forbidden):
        records.delete(li, APP, "deal", mine["id"])
    with pytest.raises(Forbidden):
        records.create(chen, APP, "deal", {"title": "x", "account": account["id"]})
    assert records.get(chen, APP, "deal", theirs["id"])["title"] == "zhao's"
    records.update(wang, APP, "deal", theirs["id"], {"stage": "qualified"})
    listed = records.list(li, APP, "deal")
    assert [item["id"] for item in listed["items"]] == [mine["id"]] and listed["total"] == 1
    assert records.list(wang, APP, "deal")["total"] == 2
    with pytest.raises(ValidationFailed):
        records.update(li, APP, "deal", mine["id"], {"owner": zhao.id})
    records.update(admin, APP, "deal", mine["id"], {"owner": zhao.id})
    with pytest.raises(Forbidden):
        records.get(li, APP, "deal", mine["id"])


def test_computed_and_workflow_fields_cannot_be_set(records, users):
    admin = users["admin"]
    account = make_account(records, admin)
    with pytest.raises(ValidationFailed) as caught:
        records.create(
            admin,
            APP,
            "deal",
            {
                "title": "x",
                "account": account["id"],
                "weighted_amount": 5,
                "approval_state": "approved",
            },
        )
    assert paths(caught) == {"/weighted_amount", "/approval_state"}
    deal = records.create(admin, APP, "deal", {"title": "x", "account": account["id"]})
    assert deal["approval_state"] == "draft"
    # Sending back what was read is fine: unchanged computed values are ignored.
    records.update(admin, APP, "deal", deal["id"], {**deal, "title": "y"})


def test_batch_create_is_all_or_nothing(records, users):
    admin = users["admin"]
    with pytest.raises(ValidationFailed) as caught:
        records.create_many(
            admin, APP, "account", [{"name": "A"}, {"name": ""}, {"name": "C", "tier": "Q"}]
        )
    assert paths(caught) == {"/items/1/name", "/items/2/tier"}
    assert records.list(admin, APP, "account")["total"] == 0
    ids = records.create_many(admin, APP, "account", [{"name": "A"}, {"name": "B"}])
    assert len(ids) == 2 and records.list(admin, APP, "account")["total"] == 2


def test_list_searches_sorts_and_pages(records, users):
    admin = users["admin"]
    for name, revenue in [("华东精工", 5), ("华南贸易", 3), ("Northwind", 9)]:
        make_account(records, admin, name=name, annual_revenue=revenue)
    found = records.list(admin, APP, "account", _query(q="华"))
    assert {i["name"] for i in found["items"]} == {"华东精工", "华南贸易"}
    ordered = records.list(admin, APP, "account", _query(sort="-annual_revenue", per_page=2))
    assert [i["name"] for i in ordered["items"]] == ["Northwind", "华东精工"] and ordered[
        "total"
    ] == 3
    second = records.list(admin, APP, "account", _query(sort="-annual_revenue", per_page=2, page=2))
    assert [i["name"] for i in second["items"]] == ["华南贸易"]
    with pytest.raises(ValidationFailed) as caught:
        records.list(admin, APP, "account", _query(sort="nonsense"))
    assert paths(caught) == {"/sort"}
    with pytest.raises(ValidationFailed) as caught:
        records.list(admin, APP, "account", _query(per_page=500))
    assert paths(caught) == {"/per_page"}


def _query(**kwargs):
    from records.query import ListQuery

    return ListQuery(**kwargs)


def test_decimals_round_trip_exactly(records, users):
    account = make_account(records, users["admin"], annual_revenue="12345678901234.56")
    assert account["annual_revenue"] == "12345678901234.56"
    assert Decimal(account["annual_revenue"]) == Decimal("12345678901234.56")


def test_timeline_shows_interactions_across_channels_newest_first(records, users):
    admin, li, zhao = users["admin"], users["li"], users["zhao"]
    account = make_account(records, li)
    for subject, channel, when in [
        ("电话沟通", "phone", "2026-03-01T02:00:00Z"),
        ("微信跟进", "wechat", "2026-03-05T02:00:00Z"),
        ("上门拜访", "visit", "2026-03-03T02:00:00Z"),
    ]:
        records.create(
            li,
            APP,
            "interaction",
            {"subject": subject, "account": account["id"], "channel": channel, "occurred_at": when},
        )
    records.create(zhao, APP, "deal", {"title": "zhao's deal", "account": account["id"]})
    records.update(li, APP, "account", account["id"], {"tier": "A"})
    items = records.timeline(li, APP, "account", account["id"])
    kinds = [(i["kind"], i.get("channel") or i.get("action")) for i in items]
    assert [k for k in kinds if k[0] == "record"] == [
        ("record", "wechat"),
        ("record", "visit"),
        ("record", "phone"),
    ]
    assert ("audit", "update") in kinds and ("audit", "create") in kinds
    # li reads only her own deals, so zhao's deal is not on her timeline; the admin sees it.
    assert not any(i.get("entity") == "deal" for i in items)
    assert any(
        i.get("entity") == "deal" for i in records.timeline(admin, APP, "account", account["id"])
    )
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)


def test_list_filters_with_jsonlogic_including_references(records, users):
    admin = users["admin"]
    big = make_account(records, admin, name="Big", tier="A")
    small = make_account(records, admin, name="Small", tier="C")
    for title, account, stage, amount in [
        ("a", big, "won", 500),
        ("b", big, "lead", 100),
        ("c", small, "won", 50),
        ("d", small, "lost", None),
    ]:
        records.create(
            admin,
            APP,
            "deal",
            {"title": title, "account": account["id"], "stage": stage, "amount": amount},
        )

    def titles(rule):
        return sorted(
            i["title"] for i in records.list(admin, APP, "deal", _query(filter=rule))["items"]
        )

    assert titles({"==": [{"var": "stage"}, "won"]}) == ["a", "c"]
    assert titles({"==": [{"var": "account.tier"}, "A"]}) == ["a", "b"]
    assert titles({"<": [{"var": "amount"}, 100]}) == ["c", "d"]  # null < 100, as in the browser
    assert titles({"!": {"in": [{"var": "stage"}, ["won", "lost"]]}}) == ["b"]
    with pytest.raises(ValidationFailed) as caught:
        records.list(
            admin, APP, "deal", _query(filter={"==": [{"cat": [{"var": "title"}, "x"]}, "ax"]})
        )
    assert paths(caught) == {"/filter"}


def test_row_rules_limit_what_a_role_sees(engine, example_doc, users):
    from metamodel import publish
    from records.service import Records

    example_doc["entities"][0]["row_rules"] = [
        {"role": "finance", "rule": {"==": [{"var": "tier"}, "A"]}}
    ]
    publish.apply_document(engine, example_doc)
    service = Records(engine)
    admin, chen = users["admin"], users["chen"]
    shown = make_account(service, admin, name="A-tier", tier="A")
    hidden = make_account(service, admin, name="C-tier", tier="C")
    assert [i["id"] for i in service.list(chen, APP, "account")["items"]] == [shown["id"]]
    assert service.get(chen, APP, "account", shown["id"])["name"] == "A-tier"
    with pytest.raises(Forbidden):
        service.get(chen, APP, "account", hidden["id"])
    assert service.list(admin, APP, "account")["total"] == 2


def test_a_page_costs_the_same_number_of_queries_whatever_its_size(records, users, engine):
    from sqlalchemy import event

    admin = users["admin"]
    account = make_account(records, admin)
    records.create_many(
        admin,
        APP,
        "deal",
        [
            {
                "title": f"d{i}",
                "account": account["id"],
                "lines": [{"product": "p"}, {"product": "q"}],
            }
            for i in range(40)
        ],
    )
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    records.list(admin, APP, "deal", _query(per_page=5))
    small = len(statements)
    statements.clear()
    page = records.list(admin, APP, "deal", _query(per_page=40))
    assert len(page["items"]) == 40 and all(len(item["lines"]) == 2 for item in page["items"])
    assert len(statements) == small


def test_each_call_sees_a_publish_made_elsewhere_unless_told_it_is_fresh(
    engine, records, users, example_doc
):
    """The registry is brought up to date inside each call's transaction (one query);
    ``fresh=True`` skips that for a caller that has just done it itself."""
    from sqlalchemy import event

    from metamodel import publish

    admin = users["admin"]
    account = make_account(records, admin)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    records.get(admin, APP, "account", account["id"])
    assert sum("generation" in s for s in statements) == 1
    statements.clear()
    records.get(admin, APP, "account", account["id"], fresh=True)
    assert not any("generation" in s for s in statements)

    # Another process publishes a new field: the next call knows it ...
    newer = {**example_doc, "version": "1.1.0"}
    newer["entities"] = [
        {**e, "fields": [*e["fields"], {"name": "slogan", "type": "text"}]}
        if e["name"] == "account"
        else e
        for e in example_doc["entities"]
    ]
    publish.apply_document(engine, newer)
    with pytest.raises(ValidationFailed) as stale:  # ... a call told it is fresh does not
        records.update(admin, APP, "account", account["id"], {"slogan": "x"}, fresh=True)
    assert paths(stale) == {"/slogan"}
    updated = records.update(admin, APP, "account", account["id"], {"slogan": "x"})
    assert updated["slogan"] == "x"
