"""Exporting an app as a preset with its records, and importing that elsewhere."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from app.accounts import create_user
from metamodel import store
from metamodel.model import AppModel
from metamodel.publish import apply_document
from metamodel.system_tables import users
from metamodel.validate import validate_document
from presets.catalog import REF, load_preset
from presets.exporting import ExportRefused, export_app
from presets.importing import run_import
from records.actor import SYSTEM
from records.query import ListQuery
from records.service import Records

from .shop import shop


def all_items(records: Records, app: str, entity: str) -> list[dict]:
    items, page = [], 1
    while True:
        batch = records.list(SYSTEM, app, entity, ListQuery(sort="id", page=page, per_page=200))
        items += batch["items"]
        if len(batch["items"]) < 200:
            return items
        page += 1


def snapshot(engine, app: str) -> dict[str, list[dict]]:
    """Every record by value: references as the position of their record, no ids, no files."""
    with engine.connect() as conn:
        model = AppModel.from_document(store.current(conn, app).document)
    records = Records(engine)
    rows = {
        name: all_items(records, app, name)
        for name, entity in model.entities.items()
        if not entity.is_child
    }
    rank = {name: {item["id"]: i for i, item in enumerate(items)} for name, items in rows.items()}
    with engine.connect() as conn:
        usernames = dict(conn.execute(select(users.c.id, users.c.username)).all())

    def plain(entity, item):
        out = {}
        for fld in entity.fields.values():
            value = item.get(fld.name)
            kind = fld.type_name
            if kind in ("file", "signature"):
                continue
            if kind == "reference" and value is not None:
                value = rank[fld.target.name][value]
            elif kind == "multi_reference":
                value = [rank[fld.target.name][v] for v in value]
            elif kind == "child_table":
                value = [plain(fld.target, row) for row in value]
            elif kind == "user" and value is not None:
                value = usernames[value]
            out[fld.name] = value
        return out

    return {
        name: [plain(model.entities[name], item) for item in items] for name, items in rows.items()
    }


@pytest.mark.parametrize("preset", ["b2b_sales", "retail_membership"])
def test_a_preset_app_exported_with_its_records_imports_elsewhere_alike(
    engine, other_engine, preset
):
    run_import(engine, preset, with_sample_data=True)

    exported = export_app(Records(engine), SYSTEM, preset, with_records=True)

    assert validate_document(exported.document) == []
    shipped = load_preset(preset)["sample_data"]
    assert exported.counts == {entity: len(rows) for entity, rows in shipped.items() if rows}
    plan = run_import(other_engine, exported.document, with_sample_data=True)
    assert plan.sample_counts == exported.counts
    assert snapshot(other_engine, preset) == snapshot(engine, preset)


def people_app() -> dict:
    return {
        "format": "crm-app/1",
        "name": "people",
        "version": "1.0.0",
        "roles": [{"name": "staff"}],
        "entities": [
            {
                "name": "person",
                "title_field": "full_name",
                "fields": [
                    {"name": "full_name", "type": "text", "required": True},
                    {"name": "email", "type": "email", "unique": True},
                    {"name": "mentor", "type": "reference", "target": "person"},
                    {"name": "coach", "type": "user"},
                    {"name": "photo", "type": "file"},
                    {"name": "badge", "type": "autonumber", "pattern": "P-{seq:3}"},
                ],
            },
            {
                "name": "team",
                "title_field": "team_name",
                "fields": [
                    {"name": "team_name", "type": "text", "required": True},
                    {"name": "members", "type": "multi_reference", "target": "person"},
                    {"name": "tasks", "type": "child_table", "target": "task"},
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
        ],
    }


def add_coach(engine) -> None:
    store.ensure_system_tables(engine)
    with engine.begin() as conn:
        create_user(conn, "coach_li", ["staff"], password="pw", method="pbkdf2:sha256:1000")


def test_references_name_their_record_unambiguously_and_files_are_left_out(
    engine, other_engine, tmp_path
):
    apply_document(engine, people_app())
    add_coach(engine)
    records = Records(engine, files_root=tmp_path / "uploads")
    with engine.connect() as conn:
        coach = conn.execute(select(users.c.id).where(users.c.username == "coach_li")).scalar()
    photo = records.upload(
        SYSTEM, "people", "person", "photo", io.BytesIO(b"\x89PNG"), "ann.png", "image/png"
    )
    create = records.create
    ann = create(SYSTEM, "people", "person", {"full_name": "Ann", "email": "ann@a.example"})
    ann2 = create(
        SYSTEM,
        "people",
        "person",
        {"full_name": "Ann", "email": "ann@b.example", "coach": coach, "photo": [photo]},
    )
    bo = create(SYSTEM, "people", "person", {"full_name": "Bo", "mentor": ann2["id"]})
    records.update(SYSTEM, "people", "person", ann["id"], {"mentor": bo["id"]})
    create(
        SYSTEM,
        "people",
        "team",
        {
            "team_name": "红队",
            "members": [bo["id"], ann["id"]],
            "tasks": [{"title": "kick-off", "assignee": ann2["id"]}],
        },
    )

    exported = export_app(records, SYSTEM, "people", with_records=True)

    sample = exported.document["sample_data"]
    assert sample["person"][1] == {
        "full_name": "Ann",
        "email": "ann@b.example",
        "coach": "coach_li",
    }
    assert sample["person"][0]["mentor"] == {REF: "person", "full_name": "Bo"}
    # "Ann" names two people: the unique e-mail names the one meant
    assert sample["person"][2]["mentor"] == {REF: "person", "email": "ann@b.example"}
    assert sample["team"][0]["members"] == [
        {REF: "person", "full_name": "Bo"},
        {REF: "person", "email": "ann@a.example"},
    ]
    assert sample["team"][0]["tasks"] == [
        {"title": "kick-off", "assignee": {REF: "person", "email": "ann@b.example"}}
    ]
    assert "person.photo: files are not exported (1 values left out)" in exported.notes
    assert validate_document(exported.document) == []

    add_coach(other_engine)
    run_import(other_engine, exported.document, with_sample_data=True)
    assert snapshot(other_engine, "people") == snapshot(engine, "people")


def test_records_no_field_tells_apart_are_refused_with_pointers(engine):
    apply_document(engine, people_app())
    records = Records(engine)
    twin = records.create(SYSTEM, "people", "person", {"full_name": "Ann"})
    records.create(SYSTEM, "people", "person", {"full_name": "Ann"})
    records.create(SYSTEM, "people", "person", {"full_name": "Bo", "mentor": twin["id"]})

    with pytest.raises(ExportRefused) as caught:
        export_app(records, SYSTEM, "people", with_records=True)

    assert [p.path for p in caught.value.problems] == ["/sample_data/person/2/mentor"]


def test_without_records_the_document_is_exported_as_it_is(engine):
    run_import(engine, shop(), with_sample_data=True)
    exported = export_app(Records(engine), SYSTEM, "shop")
    assert "sample_data" not in exported.document
    assert exported.document == {k: v for k, v in shop().items() if k != "sample_data"}
