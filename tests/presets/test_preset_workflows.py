"""Every workflow of every preset completes end to end through the workflow engine.

Each preset is published once for the module, with its sample data and a staff
for its roles (see :mod:`.workflow_driver`); each of its workflows is then
driven along routes to every final state, through every transition, and
through a rejection of every approval, with every approval step decided by its
real approvers at least once. The checks without a database come first: every
state of a workflow is reachable, and approval steps edit only fields the
entity has.
"""

from __future__ import annotations

import pytest

from presets.catalog import list_presets, load_preset
from workflow_engine.definitions import Workflow

from .conditions import NOT_WRITABLE
from .workflow_driver import Driver, build_world, finals, reachable, workflow_docs

CASES = [
    (info.name, workflow["name"])
    for info in list_presets()
    for workflow in workflow_docs(load_preset(info.name))
]
IDS = [f"{preset}-{workflow}" for preset, workflow in CASES]


def workflow_of(preset: str, name: str) -> tuple[dict, Workflow]:
    doc = load_preset(preset)
    return doc, Workflow.from_doc(next(w for w in workflow_docs(doc) if w["name"] == name))


def test_every_preset_has_workflows_to_drive():
    presets = {info.name for info in list_presets()}
    assert {preset for preset, _ in CASES} == presets


@pytest.mark.parametrize(("preset", "name"), CASES, ids=IDS)
def test_every_state_is_reachable_from_the_initial_one(preset, name):
    _, workflow = workflow_of(preset, name)
    assert finals(workflow), "a workflow ends somewhere"
    assert sorted(set(workflow.states) - reachable(workflow)) == []


@pytest.mark.parametrize(("preset", "name"), CASES, ids=IDS)
def test_approval_steps_edit_only_fields_approvers_can_write(preset, name):
    doc, workflow = workflow_of(preset, name)
    fields = next(e for e in doc["entities"] if e["name"] == workflow.entity)["fields"]
    writable = {
        f["name"] for f in fields if f["type"] not in NOT_WRITABLE and not f.get("read_only")
    }
    unknown = [
        f"{transition.name}/{step.name}: {field}"
        for transition in workflow.transitions.values()
        for step in transition.steps
        for field in step.editable_fields
        if field not in writable
    ]
    assert unknown == []


@pytest.fixture(scope="module")
def worlds(new_database):
    """``worlds(preset)``: the preset published with its sample data and staff, once."""
    built = {}

    def get(preset: str):
        if preset not in built:
            built[preset] = build_world(preset, new_database())
        return built[preset]

    yield get
    for world in built.values():
        world.engine.dispose()


@pytest.mark.parametrize(("preset", "name"), CASES, ids=IDS)
def test_workflow_completes_end_to_end(worlds, preset, name):
    driver = Driver(worlds(preset), name)
    driver.run()
    # Every step of every approval was decided by someone; every transition was fired.
    steps = {(t.name, s.name) for t in driver.workflow.transitions.values() for s in t.steps}
    assert driver.decided == steps
