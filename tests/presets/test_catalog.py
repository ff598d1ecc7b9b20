"""The preset catalogue: listing, loading, ordering and importing sample data."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from metamodel.errors import CrmError, NotFound
from metamodel.publish import apply_document
from presets.catalog import (
    PRESETS_DIR,
    REF,
    PresetError,
    import_sample_data,
    list_presets,
    load_preset,
    localised,
    sample_records,
)
from records.actor import SYSTEM
from records.query import ListQuery
from records.service import Records

# --- listing and loading -----------------------------------------------------------------


def test_list_presets_describes_every_file():
    infos = list_presets()
    assert [info.name for info in infos] == sorted(p.stem for p in PRESETS_DIR.glob("*.json"))
    b2b = next(info for info in infos if info.name == "b2b_sales")
    assert b2b.industry == "b2b_sales"
    assert b2b.text("label", "zh") == "B2B销售管理"
    assert b2b.text("label", "fr") == "B2B sales"  # falls back to English
    assert "opportunity" in b2b.entities and "quote_approval" in b2b.workflows
    assert b2b.path == PRESETS_DIR / "b2b_sales.json"


def test_load_preset_by_name_and_by_path(tmp_path):
    by_name = load_preset("partner_channel")
    assert by_name["name"] == "partner_channel"
    assert load_preset(PRESETS_DIR / "partner_channel.json") == by_name
    copied = tmp_path / "mine.json"
    copied.write_text(json.dumps(by_name, ensure_ascii=False), encoding="utf-8")
    assert load_preset(str(copied)) == by_name


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(NotFound) as caught:
        load_preset("crm_for_cats")
    assert isinstance(caught.value, CrmError)
    assert "crm_for_cats" in caught.value.message and "b2b_sales" in caught.value.message


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_a_preset_needs_a_name(bad):
    with pytest.raises(PresetError):
        load_preset(bad)


def test_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        load_preset(tmp_path / "nothing.json")


def test_broken_json_says_where(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "crm-app/1",\n "name": "x",\n}', encoding="utf-8")
    with pytest.raises(PresetError) as caught:
        load_preset(path)
    assert caught.value.message.startswith("broken.json: line 3")
    assert caught.value.problems[0].path == ""


def test_a_document_must_be_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PresetError, match="JSON object"):
        load_preset(path)


def test_localised_texts():
    assert localised({"en": "Deal", "zh": "商机"}, "zh") == "商机"
    assert localised({"zh": "商机"}, "en") == "商机"
    assert localised("Deal", "zh") == "Deal"
    assert localised(None) == ""


# --- sample records in dependency order -----------------------------------------------------


def refs_in(value):
    if isinstance(value, dict):
        if REF in value:
            yield value
            for key, inner in value.items():
                if key != REF:
                    yield from refs_in(inner)
            return
        for inner in value.values():
            yield from refs_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from refs_in(inner)


@pytest.mark.parametrize("name", [info.name for info in list_presets()])
def test_sample_records_come_after_the_records_they_name(name):
    doc = load_preset(name)
    before = copy.deepcopy(doc)
    ordered = sample_records(doc)
    assert doc == before  # nothing is resolved in place
    assert len(ordered) == sum(len(rows) for rows in doc["sample_data"].values())
    seen: set[str] = set()
    for entity, data in ordered:
        for ref in refs_in(data):
            assert ref[REF] in seen or ref[REF] == entity, (entity, ref)
        seen.add(entity)


def test_sample_records_are_copies():
    doc = load_preset("b2b_sales")
    entity, data = sample_records(doc)[0]
    data["name"] = "changed"
    assert doc["sample_data"][entity][0]["name"] != "changed"


# --- importing ---------------------------------------------------------------------------


def tiny_app(sample: dict) -> dict:
    """People who mentor each other, teams with members, and a workflow."""
    return {
        "format": "crm-app/1",
        "name": "tiny",
        "version": "1.0.0",
        "entities": [
            {
                "name": "team",
                "title_field": "team_name",
                "fields": [
                    {"name": "team_name", "type": "text", "required": True},
                    {"name": "lead", "type": "reference", "target": "person"},
                    {"name": "members", "type": "multi_reference", "target": "person"},
                    {"name": "tasks", "type": "child_table", "target": "task"},
                    {"name": "coach", "type": "user"},
                ],
            },
            {
                "name": "task",
                "child": True,
                "fields": [
                    {"name": "title", "type": "text", "required": True},
                    {"name": "assignee", "type": "reference", "target": "person"},
                ],
            },
            {
                "name": "person",
                "title_field": "full_name",
                "fields": [
                    {"name": "full_name", "type": "text", "required": True},
                    {"name": "age", "type": "integer", "min": 0},
                    {"name": "mentor", "type": "reference", "target": "person"},
                    {"name": "team", "type": "reference", "target": "team"},
                    {
                        "name": "stage",
                        "type": "select",
                        "options": [{"value": "new"}, {"value": "done"}],
                    },
                ],
            },
        ],
        "workflows": [
            {
                "name": "onboarding",
                "entity": "person",
                "state_field": "stage",
                "states": [{"name": "new", "initial": True}, {"name": "done", "final": True}],
                "transitions": [{"name": "finish", "from": "new", "to": "done"}],
            }
        ],
        "sample_data": sample,
    }


def by_name(records, entity, key):
    items = records.list(SYSTEM, "tiny", entity, ListQuery(per_page=200))["items"]
    return {item[key]: item for item in items}


def test_references_forward_circular_nested_and_in_child_rows(engine):
    sample = {
        "team": [
            {
                "team_name": "红队",
                "lead": {REF: "person", "full_name": "Ann"},
                "members": [
                    {REF: "person", "full_name": "Ann"},
                    {REF: "person", "full_name": "王强"},
                ],
                "tasks": [{"title": "kick-off", "assignee": {REF: "person", "full_name": "王强"}}],
            }
        ],
        "person": [
            # Ann's mentor comes later in the list; Ann and the team refer to each other.
            {
                "full_name": "Ann",
                "mentor": {REF: "person", "full_name": "王强"},
                "team": {REF: "team", "team_name": "红队"},
                "stage": "done",
            },
            {"full_name": "王强", "age": 41},
        ],
    }
    doc = tiny_app(sample)
    apply_document(engine, doc)
    records = Records(engine)

    assert import_sample_data(records, SYSTEM, doc) == {"team": 1, "person": 2}

    people = by_name(records, "person", "full_name")
    team = by_name(records, "team", "team_name")["红队"]
    ann, wang = people["Ann"], people["王强"]
    assert ann["mentor"] == wang["id"] and ann["team"] == team["id"]
    assert ann["stage"] == "done" and wang["stage"] == "new"
    assert team["lead"] == ann["id"]
    assert team["members"] == [ann["id"], wang["id"]]
    assert team["tasks"][0]["assignee"] == wang["id"]
    history = records.history(SYSTEM, "tiny", "person", ann["id"])
    assert any(event.get("comment") == "sample data" for event in history)


def test_a_record_named_by_a_reference_and_a_number(engine):
    sample = {
        "person": [
            {"full_name": "Ann", "age": 30},
            {"full_name": "Ann", "age": 52},
            {"full_name": "Bo", "mentor": {REF: "person", "full_name": "Ann", "age": 52}},
            {
                "full_name": "Cy",
                "mentor": {REF: "person", "mentor": {REF: "person", "full_name": "Ann"}},
            },
        ]
    }
    doc = tiny_app(sample)
    apply_document(engine, doc)
    records = Records(engine)
    with pytest.raises(PresetError) as caught:
        import_sample_data(records, SYSTEM, doc)
    # "Ann" alone names two people: the error says so, at the reference.
    assert caught.value.path == "/sample_data/person/3/mentor/mentor"
    assert "2 person records" in caught.value.message


def test_existing_records_can_be_named(engine):
    doc = tiny_app({"person": [{"full_name": "Bo", "mentor": {REF: "person", "age": 70}}]})
    apply_document(engine, doc)
    records = Records(engine)
    elder = records.create(SYSTEM, "tiny", "person", {"full_name": "Elder", "age": 70})
    import_sample_data(records, SYSTEM, doc)
    assert by_name(records, "person", "full_name")["Bo"]["mentor"] == elder["id"]


def test_a_reference_to_nothing_points_at_the_field(engine):
    doc = tiny_app({"person": [{"full_name": "Bo", "mentor": {REF: "person", "full_name": "?"}}]})
    apply_document(engine, doc)
    with pytest.raises(PresetError) as caught:
        import_sample_data(Records(engine), SYSTEM, doc)
    assert caught.value.path == "/sample_data/person/0/mentor"
    assert 'full_name = "?"' in caught.value.message


def test_a_refused_record_points_into_the_document(engine):
    doc = tiny_app({"person": [{"full_name": "Bo"}]})
    apply_document(engine, doc)
    doc["sample_data"]["person"].append({"full_name": "Cy", "age": -1})
    with pytest.raises(PresetError) as caught:
        import_sample_data(Records(engine), SYSTEM, doc)
    assert [p.path for p in caught.value.problems] == ["/sample_data/person/1/age"]


def test_a_state_must_be_one_of_the_workflow(engine):
    doc = tiny_app({"person": [{"full_name": "Bo", "stage": "new"}]})
    apply_document(engine, doc)
    doc["sample_data"]["person"][0]["stage"] = "nowhere"
    with pytest.raises(PresetError) as caught:
        import_sample_data(Records(engine), SYSTEM, doc)
    assert caught.value.path == "/sample_data/person/0/stage"


def test_a_user_field_takes_a_username(engine):
    from sqlalchemy import select

    from app.accounts import create_user
    from metamodel import store
    from metamodel.system_tables import users

    store.ensure_system_tables(engine)
    with engine.begin() as conn:
        create_user(conn, "coach_li", ["admin"], password="pw", method="pbkdf2:sha256:1000")
        coach = conn.execute(select(users.c.id).where(users.c.username == "coach_li")).scalar()
    doc = tiny_app({"team": [{"team_name": "蓝队", "coach": "coach_li"}]})
    apply_document(engine, doc)
    records = Records(engine)
    import_sample_data(records, SYSTEM, doc)
    assert by_name(records, "team", "team_name")["蓝队"]["coach"] == coach
    doc["sample_data"]["team"][0] = {"team_name": "绿队", "coach": "nobody"}
    with pytest.raises(PresetError) as caught:
        import_sample_data(records, SYSTEM, doc)
    assert caught.value.path == "/sample_data/team/0/coach"


def test_the_presets_folder_is_the_package_folder():
    assert Path(__file__).parents[2] / "presets" == PRESETS_DIR
