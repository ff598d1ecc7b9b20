"""Every preset validates, publishes, imports its sample data and meets the preset standard.

The database tests run on the database under test (``--db``); each preset gets a
fresh database, is published, and its sample data goes through the record
service. The records that come out are then held against the document: every
reference resolved to the record it names, workflow states as given, the
forms' validations and conditions satisfied, and every view, widget and row
rule compiled to SQL and run.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from metamodel import field_types
from metamodel.jsonlogic import evaluate, truthy
from metamodel.model import AppModel
from metamodel.publish import apply_document
from metamodel.validate import validate_document
from presets.catalog import REF, import_sample_data, list_presets, load_preset
from records.actor import SYSTEM, Actor
from records.query import ListQuery
from records.service import Records

from .standard import preset_gaps, state_machine_gaps

# The shared example: it validates, publishes and imports, but predates the preset standard.
EXAMPLES = {"sales_pipeline"}
PRESETS = [info.name for info in list_presets()]
INDUSTRY_PRESETS = [name for name in PRESETS if name not in EXAMPLES]
UPLOADS = ("file", "signature")
EXPECTED = {
    "b2b_sales",
    "retail_membership",
    "after_sales_service",
    "real_estate_agency",
    "education_training",
    "marketing_campaigns",
    "partner_channel",
    "distribution_dealers",
}


def test_the_catalogue_holds_the_industry_presets():
    assert set(INDUSTRY_PRESETS) >= EXPECTED
    assert len(INDUSTRY_PRESETS) >= 8


@pytest.mark.parametrize("name", PRESETS)
def test_preset_validates_without_problems(name):
    doc = load_preset(name)
    assert doc["name"] == name  # the app is named after its file
    assert [str(problem) for problem in validate_document(doc)] == []


@pytest.mark.parametrize("name", INDUSTRY_PRESETS)
def test_preset_has_what_a_practitioner_expects(name):
    assert preset_gaps(load_preset(name)) == []


@pytest.mark.parametrize("name", PRESETS)
def test_workflow_transitions_move_between_real_states(name):
    doc = load_preset(name)
    assert doc.get("workflows"), "every preset has a workflow"
    assert [gap for w in doc["workflows"] for gap in state_machine_gaps(w)] == []


@pytest.mark.parametrize("name", PRESETS)
def test_preset_publishes_and_its_sample_data_imports(engine, name):
    doc = load_preset(name)
    apply_document(engine, doc)
    records = Records(engine)

    counts = import_sample_data(records, SYSTEM, doc)

    expected = {entity: len(rows) for entity, rows in doc["sample_data"].items() if rows}
    assert counts == expected
    stored = {entity: all_records(records, name, entity) for entity in expected}
    model = AppModel.from_document(doc)
    checker = SampleChecker(doc, model, stored)
    for entity, rows in doc["sample_data"].items():
        assert len(stored[entity]) == len(rows)
        for index, (given, record) in enumerate(zip(rows, stored[entity], strict=True)):
            checker.check(entity, f"/sample_data/{entity}/{index}", given, record)
    assert checker.problems == []
    assert rules_that_fail_to_run(records, doc) == []


# --- helpers -----------------------------------------------------------------------------


def all_records(records: Records, app: str, entity: str) -> list[dict]:
    """The records of ``entity`` in the order they were created."""
    page = records.list(SYSTEM, app, entity, ListQuery(sort="id", per_page=200))
    return page["items"]


def as_rule_data(model: AppModel, entity: str, record: dict) -> dict:
    """A record as a rule reads it: decimals as numbers, not the API's strings."""
    data = dict(record)
    for field in model.entities[entity].fields.values():
        value = data.get(field.name)
        if isinstance(value, str) and field.storage == field_types.DECIMAL:
            data[field.name] = Decimal(value)
    return data


def blank(value: Any) -> bool:
    return value is None or value == "" or value == []


class SampleChecker:
    def __init__(self, doc: dict, model: AppModel, stored: dict[str, list[dict]]):
        self.doc = doc
        self.model = model
        self.by_id = {e: {r["id"]: r for r in rows} for e, rows in stored.items()}
        self.fields = {e["name"]: {f["name"]: f for f in e["fields"]} for e in doc["entities"]}
        self.forms = {f["entity"]: f for f in doc.get("forms", []) if f.get("default")}
        self.problems: list[str] = []

    def check(self, entity: str, at: str, given: dict, record: dict) -> None:
        self.check_values(entity, at, given, record)
        form = self.forms.get(entity)
        if form is not None:
            self.check_form(entity, form, at, given, record)

    def check_values(self, entity: str, at: str, given: dict, record: dict) -> None:
        for name, value in given.items():
            field = self.fields[entity].get(name, {})
            kind = field.get("type")
            stored = record.get(name)
            if kind == "reference":
                self.check_ref(value, stored, f"{at}/{name}")
            elif kind == "multi_reference":
                if not isinstance(stored, list) or len(stored) != len(value):
                    self.problems.append(f"{at}/{name}: stored {stored!r}")
                    continue
                for i, (ref, target_id) in enumerate(zip(value, stored, strict=True)):
                    self.check_ref(ref, target_id, f"{at}/{name}/{i}")
            elif kind == "child_table":
                if len(stored or []) != len(value):
                    self.problems.append(f"{at}/{name}: {len(stored or [])} rows stored")
                    continue
                for i, (row, stored_row) in enumerate(zip(value, stored, strict=True)):
                    self.check_values(field["target"], f"{at}/{name}/{i}", row, stored_row)
            elif self.is_state(entity, name) and stored != value:
                self.problems.append(f"{at}/{name}: in state {stored!r}, not {value!r}")

    def is_state(self, entity: str, name: str) -> bool:
        return any(
            w["entity"] == entity and w["state_field"] == name
            for w in self.doc.get("workflows", [])
        )

    def check_ref(self, ref: dict, target_id: Any, at: str) -> None:
        target = self.by_id.get(ref[REF], {}).get(target_id)
        if target is None:
            self.problems.append(f"{at}: not resolved (stored {target_id!r})")
            return
        for key, wanted in ref.items():
            if key == REF:
                continue
            if isinstance(wanted, dict) and REF in wanted:
                self.check_ref(wanted, target.get(key), f"{at}/{key}")
            elif not same(target.get(key), wanted):
                self.problems.append(f"{at}: names {key}={wanted!r}, got {target.get(key)!r}")

    def check_form(self, entity: str, form: dict, at: str, given: dict, record: dict) -> None:
        data = as_rule_data(self.model, entity, record)
        context = {"user": {"id": None, "roles": ["admin"]}}
        for i, validation in enumerate(form.get("validations", [])):
            if not truthy(evaluate(validation["rule"], data, context)):
                self.problems.append(f"{at}: breaks validation {i} of {form['name']}")
        for section in form["layout"]:
            for item in section["fields"]:
                if not isinstance(item, dict):
                    continue
                name = item["field"]
                shown = truthy(evaluate(item.get("visible_when", True), data, context))
                needed = truthy(evaluate(item.get("required_when", False), data, context))
                kind = self.fields[entity][name].get("type")
                # Files and signatures are uploaded by people; sample data cannot carry them.
                if shown and needed and blank(record.get(name)) and kind not in UPLOADS:
                    self.problems.append(f"{at}: {name} is required by {form['name']}")
                if not shown and name in given:
                    self.problems.append(f"{at}: {name} is given but {form['name']} hides it")


def same(stored: Any, wanted: Any) -> bool:
    if stored == wanted:
        return True
    try:
        return Decimal(str(stored)) == Decimal(str(wanted))
    except ArithmeticError:
        return False


def sort_text(view: dict) -> str | None:
    parts = [("-" if s.get("dir") == "desc" else "") + s["field"] for s in view.get("sort", [])]
    return ",".join(parts) or None


def rules_that_fail_to_run(records: Records, doc: dict) -> list[str]:
    """Views, widgets and each role's read permissions, run as queries on the database."""
    app = doc["name"]
    failures = []

    def attempt(what: str, actor: Actor, entity: str, query: ListQuery) -> None:
        try:
            records.list(actor, app, entity, query)
        except Exception as error:  # every failure is reported, by name
            failures.append(f"{what}: {type(error).__name__}: {error}")

    for view in doc.get("views", []):
        query = ListQuery(filter=view.get("filter"), sort=sort_text(view))
        attempt(f"view {view['name']}", SYSTEM, view["entity"], query)
    for dashboard in doc.get("dashboards", []):
        for i, widget in enumerate(dashboard["widgets"]):
            query = ListQuery(filter=widget.get("filter"))
            attempt(f"widget {dashboard['name']}/{i}", SYSTEM, widget["entity"], query)
    # Roles whose reading is limited (to their own records, or by row rules) read each entity.
    for entity in doc["entities"]:
        limited = {rule["role"] for rule in entity.get("row_rules", [])}
        for role, verbs in (entity.get("permissions") or {}).items():
            if "read:own" in verbs or (role in limited and "read" in verbs):
                actor = Actor(id=10**6, username="probe", roles=frozenset({role}))
                attempt(f"{role} reads {entity['name']}", actor, entity["name"], ListQuery())
    return failures
