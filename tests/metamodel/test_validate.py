"""Validation of app documents: parse errors, the invalid-document suite, one pass."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from metamodel.checks.scope import SYSTEM_COLUMN_TYPES
from metamodel.errors import InvalidDocument, Problem
from metamodel.identifiers import SYSTEM_COLUMNS
from metamodel.validate import load_and_validate, parse_document, validate_document

HERE = Path(__file__).parent
EXAMPLES = HERE.parents[2] / "shared" / "examples"
INVALID = sorted((HERE / "invalid").glob("*.json"))
VALID = sorted((HERE / "valid").glob("*.json")) + sorted(EXAMPLES.glob("*.json"))


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_documents_have_no_problems(path):
    assert validate_document(read(path)) == []


def test_the_shared_example_loads():
    text = (EXAMPLES / "sales_pipeline.json").read_text(encoding="utf-8")
    assert load_and_validate(text)["name"] == "sales_pipeline"


def test_there_are_enough_invalid_documents():
    assert len(INVALID) >= 40


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_document(path):
    """Each expected problem is reported at its exact pointer, and nothing else is.

    A file is ``{"expect": [{"path", "message_contains"}], "document": {...}}``.
    """
    case = read(path)
    problems = validate_document(case["document"])
    for expected in case["expect"]:
        at_path = [p.message for p in problems if p.path == expected["path"]]
        assert any(expected["message_contains"] in message for message in at_path), (
            f"no problem at {expected['path']!r} saying {expected['message_contains']!r}; "
            f"got: {[str(p) for p in problems]}"
        )
    expected_paths = {expected["path"] for expected in case["expect"]}
    unexpected = [str(p) for p in problems if p.path not in expected_paths]
    assert not unexpected, f"unexpected problems: {unexpected}"


# --- parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "says"),
    [
        ('{\n  "name": "shop",\n}', 3, 1, "trailing comma"),
        ('{\n  "name": "shop"\n  "version": "1.0.0"\n}', 3, 3, "expected ','"),
        ("{\n  'name': 'shop'\n}", 2, 3, "key in double quotes"),
        ('{"name": "sh', 1, 10, "not closed"),
        ('{"name": "shop"} {}', 1, 18, "more text after the end"),
        ("", 1, 1, "a value is missing"),
    ],
)
def test_malformed_json_names_line_and_column(text, line, column, says):
    with pytest.raises(InvalidDocument) as raised:
        parse_document(text)
    [problem] = raised.value.problems
    assert problem.path == ""
    assert problem.message.startswith(f"line {line}, column {column}: ")
    assert says in problem.message


@pytest.mark.parametrize(
    ("text", "kind"), [("[]", "a list"), ('"app"', "a text"), ("3", "a single value")]
)
def test_the_top_level_must_be_an_object(text, kind):
    with pytest.raises(InvalidDocument) as raised:
        parse_document(text, source="shop.json")
    [problem] = raised.value.problems
    assert problem.message.startswith(f"shop.json holds {kind}")


def test_a_document_nested_too_deeply_is_refused():
    with pytest.raises(InvalidDocument) as raised:
        parse_document("[" * 100_000 + "]" * 100_000)
    assert "too deeply" in raised.value.problems[0].message


def test_a_byte_order_mark_is_ignored():
    assert parse_document('\ufeff{"name": "shop"}') == {"name": "shop"}


def test_load_and_validate_raises_with_every_problem():
    document = read(HERE / "invalid" / "three_independent_errors.json")["document"]
    with pytest.raises(InvalidDocument) as raised:
        load_and_validate(json.dumps(document))
    assert len(raised.value.problems) == 3
    assert raised.value.message == "the document has 3 errors"


def test_load_and_validate_reports_malformed_json():
    with pytest.raises(InvalidDocument) as raised:
        load_and_validate('{"format": "crm-app/1",,}')
    assert raised.value.problems[0].message.startswith("line 1, column 24:")


# --- one pass ------------------------------------------------------------------------


def minimal() -> dict:
    return {
        "format": "crm-app/1",
        "name": "shop",
        "version": "1.0.0",
        "entities": [
            {
                "name": "customer",
                "fields": [
                    {"name": "name", "type": "text"},
                    {"name": "tier", "type": "select", "options": [{"value": "A"}]},
                ],
            },
            {
                "name": "purchase",
                "fields": [
                    {"name": "customer", "type": "reference", "target": "customer"},
                    {"name": "total", "type": "integer"},
                ],
            },
        ],
    }


def test_three_independent_errors_give_three_problems_schema_first():
    document = minimal()
    document["entities"][0]["fields"][0]["type"] = "txt"  # schema
    document["entities"][1]["fields"][0]["target"] = "client"  # semantic
    document["entities"][1]["fields"][1]["default"] = "many"  # semantic
    assert [p.path for p in validate_document(document)] == [
        "/entities/0/fields/0/type",
        "/entities/1/fields/0/target",
        "/entities/1/fields/1/default",
    ]


@pytest.mark.parametrize("document", [None, [], "app", 3, {}, {"entities": "x"}])
def test_anything_gives_problems_not_a_traceback(document):
    problems = validate_document(document)
    assert problems and all(isinstance(p, Problem) for p in problems)


def test_problems_carry_pointers_and_messages():
    document = minimal()
    document["entities"][1]["fields"][0]["target"] = "client"
    [problem] = validate_document(document)
    assert problem.as_dict() == {
        "path": "/entities/1/fields/0/target",
        "message": "there is no entity 'client' in this app",
    }


# --- other installed apps ------------------------------------------------------------


def with_cross_app_reference(target: str) -> dict:
    document = minimal()
    document["entities"][1]["fields"].append(
        {"name": "lead", "type": "reference", "target": target}
    )
    document["forms"] = [
        {
            "name": "purchase_form",
            "entity": "purchase",
            "layout": [
                {
                    "fields": [
                        {"field": "total", "visible_when": {"==": [{"var": "lead.source"}, "web"]}}
                    ]
                }
            ],
        }
    ]
    return document


MARKETING = {
    "format": "crm-app/1",
    "name": "marketing",
    "version": "1.0.0",
    "entities": [{"name": "lead", "fields": [{"name": "source", "type": "text"}]}],
}


def test_a_reference_to_an_installed_app_resolves_and_can_be_followed():
    document = with_cross_app_reference("marketing.lead")
    installed = {"marketing": MARKETING}
    assert validate_document(document, external=installed.get) == []


def test_a_reference_to_an_app_that_is_not_installed():
    document = with_cross_app_reference("marketing.lead")
    for external in (None, {}.get):
        problems = validate_document(document, external=external)
        assert [(p.path, p.message) for p in problems] == [
            ("/entities/1/fields/2/target", "app 'marketing' is not installed")
        ]


def test_a_reference_to_a_missing_entity_of_an_installed_app():
    document = with_cross_app_reference("marketing.leads")
    problems = validate_document(document, external={"marketing": MARKETING}.get)
    assert [(p.path, p.message) for p in problems] == [
        (
            "/entities/1/fields/2/target",
            "there is no entity 'leads' in app 'marketing' (did you mean 'lead'?)",
        )
    ]


def test_a_path_through_another_app_names_its_fields():
    document = with_cross_app_reference("marketing.lead")
    layout_field = document["forms"][0]["layout"][0]["fields"][0]
    layout_field["visible_when"] = {"==": [{"var": "lead.medium"}, "web"]}
    problems = validate_document(document, external={"marketing": MARKETING}.get)
    assert [(p.path, p.message) for p in problems] == [
        (
            "/forms/0/layout/0/fields/0/visible_when/==/0/var",
            "'medium' is not a field of 'marketing.lead' (reached through 'lead')",
        )
    ]


def test_a_reference_naming_this_app_is_local():
    document = minimal()
    document["entities"][1]["fields"][0]["target"] = "shop.customer"
    assert validate_document(document) == []


# --- rules ---------------------------------------------------------------------------


def with_filter(rule) -> dict:
    document = minimal()
    document["views"] = [{"name": "some_view", "entity": "purchase", "filter": rule}]
    return document


@pytest.mark.parametrize(
    "rule",
    [
        {"==": [{"var": "customer.tier"}, "A"]},
        {"==": [{"var": "owner"}, {"var": "$user.id"}]},
        {"<": [{"var": "created_at"}, {"var": "$now"}]},
        {"in": ["admin", {"var": "$user.roles"}]},
        {"filter": [[1, 2], {">": [{"var": ""}, {"var": "anything.else"}]}]},
        {"reduce": [[1], {"+": [{"var": "current"}, {"var": "accumulator"}]}, {"var": "total"}]},
        {"var": ["total", {"var": "customer.name"}]},
        {"missing_some": [1, ["total", "customer"]]},
        {"if": [{"var": "total"}, {"cat": ["a", {"substr": ["abc", 1]}]}, {"merge": [[1], 2]}]},
        True,
        [1, "two"],
        None,
    ],
)
def test_rules_that_read_real_fields_pass(rule):
    assert validate_document(with_filter(rule)) == []


def test_a_var_in_the_first_argument_of_map_is_checked():
    problems = validate_document(with_filter({"map": [{"var": "items"}, {"var": "price"}]}))
    assert [p.path for p in problems] == ["/views/0/filter/map/0/var"]


def test_an_unknown_operator_inside_an_item_scope_is_still_reported():
    problems = validate_document(with_filter({"all": [[1], {"log": {"var": "x"}}]}))
    assert [p.path for p in problems] == ["/views/0/filter/all/1/log"]


def test_a_workflow_state_field_can_be_read_even_when_undeclared():
    document = with_filter({"==": [{"var": "status"}, "open"]})
    document["workflows"] = [
        {
            "name": "flow",
            "entity": "purchase",
            "state_field": "status",
            "states": [{"name": "open", "initial": True}],
        }
    ]
    assert validate_document(document) == []


def test_the_system_columns_are_the_ones_identifiers_reserves():
    assert set(SYSTEM_COLUMN_TYPES) == set(SYSTEM_COLUMNS)


def test_an_invalid_document_is_left_unchanged():
    document = read(HERE / "invalid" / "approval_steps.json")["document"]
    before = copy.deepcopy(document)
    validate_document(document)
    assert document == before
