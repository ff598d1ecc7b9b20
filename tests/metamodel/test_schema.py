"""The JSON Schema of crm-app/1: generated from the registry, shipped as a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from metamodel import field_types
from metamodel.field_types import FieldType
from metamodel.schema import SCHEMA_PATH, build_schema, schema_text, write_schema
from metamodel.schema.messages import schema_problems

EXAMPLES = Path(__file__).parents[3] / "shared" / "examples"


def test_the_shipped_schema_is_what_the_registry_generates():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "the shipped schema is stale: run `python -m metamodel.schema`"
    )


def test_write_schema_writes_the_generated_text(tmp_path):
    path = write_schema(tmp_path / "schema" / "crm-app-1.schema.json")
    assert json.loads(path.read_text(encoding="utf-8")) == build_schema()


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(build_schema())


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_the_shared_examples_pass_the_shipped_schema(example):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    document = json.loads(example.read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(document)) == []


def test_every_registered_type_has_its_own_closed_definition():
    definitions = build_schema()["$defs"]
    assert definitions["field"]["properties"]["type"]["enum"] == list(field_types.REGISTRY)
    for name, field_type in field_types.REGISTRY.items():
        definition = definitions[f"field_{name}"]
        assert definition["additionalProperties"] is False
        assert set(field_type.keys) <= set(definition["properties"])
        assert set(field_types.COMMON_KEYS) <= set(definition["properties"])


def test_adding_a_type_is_one_registry_entry(monkeypatch):
    stars = FieldType("stars", field_types.INTEGER, {"of": {"type": "integer"}}, ("of",))
    monkeypatch.setitem(field_types.REGISTRY, "stars", stars)
    validator = Draft202012Validator(build_schema())
    document = {
        "format": "crm-app/1",
        "name": "reviews",
        "version": "1.0.0",
        "entities": [
            {
                "name": "review",
                "fields": [
                    {"name": "good", "type": "stars", "of": 5},
                    {"name": "bad", "type": "stars", "options": []},
                ],
            }
        ],
    }
    errors = {(tuple(e.absolute_path), e.validator) for e in validator.iter_errors(document)}
    assert errors == {
        (("entities", 0, "fields", 1), "required"),
        (("entities", 0, "fields", 1), "additionalProperties"),
    }


def field_document(field: dict) -> dict:
    return {
        "format": "crm-app/1",
        "name": "shop",
        "version": "1.0.0",
        "entities": [{"name": "item", "fields": [field]}],
    }


def test_an_unknown_type_gives_one_error_listing_the_types():
    problems = schema_problems(field_document({"name": "x", "type": "colour", "shade": 3}))
    assert len(problems) == 1
    assert problems[0].path == "/entities/0/fields/0/type"
    assert "'colour' is not a field type" in problems[0].message
    assert ", ".join(field_types.REGISTRY) in problems[0].message


def test_each_unknown_key_is_reported_at_its_own_pointer():
    problems = schema_problems(field_document({"name": "x", "type": "text", "lenght": 3, "b": 1}))
    assert [p.path for p in problems] == ["/entities/0/fields/0/lenght", "/entities/0/fields/0/b"]
    assert "did you mean 'length'" not in problems[0].message
    assert "is not a key of a text field" in problems[0].message


def test_a_key_that_belongs_to_another_type_names_the_type():
    problems = schema_problems(field_document({"name": "x", "type": "integer", "options": []}))
    assert [p.path for p in problems] == ["/entities/0/fields/0/options"]
    assert "It may have min, max" in problems[0].message


def test_pointers_escape_slashes_and_tildes():
    document = field_document({"name": "x", "type": "text"})
    document["entities"][0]["permissions"] = {"a/b~c": ["fly"]}
    problems = schema_problems(document)
    assert [p.path for p in problems] == ["/entities/0/permissions/a~1b~0c/0"]
