"""The three-way merge of a preset's new version into an app its users changed."""

from __future__ import annotations

import copy

import pytest

from presets.merge import app_content, merge_documents, merged_version


def app(**changes) -> dict:
    doc = {
        "format": "crm-app/1",
        "name": "shop",
        "version": "1.0.0",
        "label": {"en": "Shop", "zh": "商店"},
        "roles": [{"name": "sales"}],
        "entities": [
            {
                "name": "customer",
                "title_field": "name",
                "fields": [
                    {"name": "name", "type": "text", "label": "Name", "required": True},
                    {
                        "name": "tier",
                        "type": "select",
                        "label": "Tier",
                        "options": [{"value": "gold"}, {"value": "silver"}],
                    },
                    {"name": "city", "type": "text", "label": "City"},
                    {"name": "phone", "type": "phone"},
                ],
                "permissions": {"sales": ["read", "create"]},
            }
        ],
        "forms": [
            {
                "name": "customer_form",
                "entity": "customer",
                "default": True,
                "layout": [{"section": "Main", "fields": ["name", "tier"]}],
            }
        ],
        "views": [
            {
                "name": "customers",
                "entity": "customer",
                "type": "list",
                "columns": ["name", "tier"],
                "filter": {"==": [{"var": "tier"}, "gold"]},
            }
        ],
    }
    doc.update(changes)
    return doc


def fields(doc: dict) -> dict:
    return {f["name"]: f for f in doc["entities"][0]["fields"]}


def field(doc: dict, name: str) -> dict:
    return fields(doc)[name]


@pytest.fixture
def base():
    return app()


def test_nothing_changed_anywhere_is_nothing_to_merge(base):
    result = merge_documents(base, copy.deepcopy(base), copy.deepcopy(base))
    assert not result.changed and result.conflicts == []
    assert result.document == base


def test_the_preset_changes_are_taken_and_the_users_kept(base):
    ours = copy.deepcopy(base)
    ours["version"] = "1.0.3"
    field(ours, "tier")["label"] = "Level"
    field(ours, "tier")["options"].append({"value": "bronze"})
    fields_ours = ours["entities"][0]["fields"]
    fields_ours.append({"name": "wechat", "type": "text"})
    ours["forms"][0]["layout"][0]["fields"].append("wechat")
    ours["entities"][0]["permissions"]["sales"].append("update")

    theirs = copy.deepcopy(base)
    theirs["version"] = "1.1.0"
    field(theirs, "name")["label"] = {"en": "Name", "zh": "名称"}
    field(theirs, "tier")["options"].insert(0, {"value": "platinum"})
    theirs["entities"][0]["fields"].append({"name": "email", "type": "email"})
    theirs["forms"][0]["layout"][0]["fields"].insert(1, "email")
    theirs["entities"][0]["permissions"]["sales"].remove("create")

    result = merge_documents(base, ours, theirs)

    doc = result.document
    assert result.conflicts == []
    assert doc["version"] == "1.0.3"  # the caller decides the version
    assert field(doc, "name")["label"] == {"en": "Name", "zh": "名称"}
    assert field(doc, "tier")["label"] == "Level"
    assert [o["value"] for o in field(doc, "tier")["options"]] == [
        "platinum",
        "gold",
        "silver",
        "bronze",
    ]
    # What the preset adds goes after the item it follows in the preset.
    assert list(fields(doc)) == ["name", "tier", "city", "phone", "email", "wechat"]
    assert doc["forms"][0]["layout"][0]["fields"] == ["name", "email", "tier", "wechat"]
    assert doc["entities"][0]["permissions"]["sales"] == ["read", "update"]
    taken = {str(change) for change in result.taken}
    assert "/entities/0/fields/4: the preset adds field 'email'" in taken
    assert any(c.path == "/entities/0/fields/0/label" for c in result.taken)
    assert result.changed


def test_the_same_thing_changed_differently_is_a_conflict_and_the_user_wins(base):
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    field(ours, "city")["label"] = "Town"
    field(theirs, "city")["label"] = "City of business"
    ours["views"][0]["filter"] = {"==": [{"var": "tier"}, "silver"]}
    theirs["views"][0]["filter"] = {"!=": [{"var": "tier"}, "gold"]}

    result = merge_documents(base, ours, theirs)

    assert field(result.document, "city")["label"] == "Town"
    # A rule is merged whole: the user's rule stays as it is.
    assert result.document["views"][0]["filter"] == {"==": [{"var": "tier"}, "silver"]}
    paths = [problem.path for problem in result.conflicts]
    assert paths == ["/entities/0/fields/2/label", "/views/0/filter"]
    message = result.conflicts[0].message
    assert '"Town"' in message and '"City of business"' in message and "kept" in message
    assert not result.changed


def test_the_preset_may_remove_only_what_the_user_left_alone(base):
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    field(ours, "city")["label"] = "Town"
    theirs["entities"][0]["fields"] = [
        f for f in theirs["entities"][0]["fields"] if f["name"] not in ("city", "phone")
    ]

    result = merge_documents(base, ours, theirs)

    assert list(fields(result.document)) == ["name", "tier", "city"]
    assert [str(c) for c in result.taken] == [
        "/entities/0/fields: the preset removes field 'phone'"
    ]
    [conflict] = result.conflicts
    assert conflict.path == "/entities/0/fields"
    assert "removes field 'city', which you changed" in conflict.message


def test_what_the_user_removed_stays_removed(base):
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["views"] = []
    ours["entities"][0]["fields"].pop()  # phone
    theirs["views"][0]["label"] = "Customers"  # the preset changes what the user removed
    result = merge_documents(base, ours, theirs)
    assert result.document["views"] == []
    assert "phone" not in fields(result.document)
    [conflict] = result.conflicts
    assert conflict.path == "/views" and "you removed view 'customers'" in conflict.message


def test_a_field_the_preset_renames_is_the_field_the_user_changed(base):
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    field(ours, "city")["label"] = "Town"
    renamed = field(theirs, "city")
    renamed.update(name="town", renamed_from="city", max_length=80)
    result = merge_documents(base, ours, theirs)
    merged = field(result.document, "town")
    assert merged == {
        "name": "town",
        "type": "text",
        "label": "Town",
        "renamed_from": "city",
        "max_length": 80,
    }
    assert result.conflicts == []


def test_without_a_base_nothing_is_removed_and_differences_conflict(base):
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["entities"][0]["fields"].append({"name": "wechat", "type": "text"})
    field(ours, "city")["label"] = "Town"
    theirs["entities"][0]["fields"].append({"name": "email", "type": "email"})
    theirs["entities"][0]["fields"] = [
        f for f in theirs["entities"][0]["fields"] if f["name"] != "phone"
    ]
    result = merge_documents(None, ours, theirs)
    assert list(fields(result.document)) == ["name", "tier", "city", "email", "phone", "wechat"]
    assert field(result.document, "city")["label"] == "Town"
    assert [c.path for c in result.conflicts] == ["/entities/0/fields/2/label"]


def test_items_without_identity_merge_whole(base):
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    ours["entities"][0]["indexes"] = [{"fields": ["city"]}]
    theirs["entities"][0]["indexes"] = [{"fields": ["tier"]}]
    result = merge_documents(base, ours, theirs)
    assert result.document["entities"][0]["indexes"] == [{"fields": ["city"]}]
    assert [c.path for c in result.conflicts] == ["/entities/0/indexes"]


def test_sample_data_and_version_stay_out_of_the_merge(base):
    theirs = copy.deepcopy(base)
    theirs["sample_data"] = {"customer": [{"name": "Acme"}]}
    theirs["version"] = "2.0.0"
    result = merge_documents(base, copy.deepcopy(base), theirs)
    assert "sample_data" not in result.document and not result.changed
    assert app_content(theirs) == app_content(base)


def test_the_merged_version_is_newer_than_both():
    assert merged_version("1.0.3", "1.1.0") == "1.1.0"
    assert merged_version("1.2.0", "1.1.0") == "1.2.1"
    assert merged_version("1.1.0", "1.1.0") == "1.1.1"
