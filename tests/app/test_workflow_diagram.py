"""The workflow diagram's layout: state order, arrows, and labels that never overlap."""

from __future__ import annotations

import itertools
import json

from app.views.workflow_diagram import (
    DEFAULT_COLOR,
    arrows_of,
    layout,
    shorten,
    state_order,
    text_width,
)
from workflow_engine.definitions import Workflow

from .test_api import EXAMPLE


def discount_workflow() -> Workflow:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return Workflow.from_doc(doc["workflows"][0])


def workflow(states: list[dict], transitions: list[dict]) -> Workflow:
    return Workflow.from_doc(
        {
            "name": "w",
            "entity": "e",
            "state_field": "s",
            "states": states,
            "transitions": transitions,
        }
    )


def test_an_approval_waits_in_its_pending_state_then_goes_on_or_back():
    found = {
        (a.source, a.target, a.kind)
        for a in arrows_of(discount_workflow(), "zh", "approved", "rejected")
    }
    assert found == {
        ("draft", "pending", "transition"),
        ("rejected", "pending", "transition"),
        ("pending", "approved", "approved"),
        ("pending", "rejected", "rejected"),
        ("approved", "draft", "transition"),
    }
    labels = {a.label for a in arrows_of(discount_workflow(), "zh", "通过", "驳回")}
    assert "申请折扣审批" in labels and "通过" in labels


def test_states_run_from_the_initial_along_the_transitions_with_final_ones_last():
    flow = workflow(
        [
            {"name": "won", "final": True},
            {"name": "orphan"},
            {"name": "new", "initial": True},
            {"name": "lost", "final": True},
            {"name": "talking"},
        ],
        [
            {"name": "win", "from": "talking", "to": "won"},
            {"name": "talk", "from": "new", "to": "talking"},
            {"name": "lose", "from": ["new", "talking"], "to": "lost"},
        ],
    )
    order = state_order(flow, arrows_of(flow, "en", "a", "r"))
    assert order == ["new", "talking", "orphan", "lost", "won"]
    assert state_order(discount_workflow(), arrows_of(discount_workflow(), "en", "a", "r")) == [
        "draft",
        "pending",
        "rejected",
        "approved",
    ]


def test_labels_on_one_side_never_overlap_and_outer_arcs_rise_above_inner_ones():
    # Every state can go to every other: many arcs over the same spans.
    names = ["a", "b", "c", "d", "e"]
    flow = workflow(
        [{"name": n, "initial": n == "a"} for n in names],
        [
            {"name": f"{x}_to_{y}", "label": f"move {x} to {y}", "from": x, "to": y}
            for x, y in itertools.permutations(names, 2)
        ],
    )
    drawn = layout(flow, arrows_of(flow, "en", "a", "r"), language="en", current="c")
    assert len(drawn.arrows) == 20
    boxes = {box.name: box for box in drawn.boxes}
    assert [name for name, box in boxes.items() if box.current] == ["c"]

    def extent(arrow):
        half = text_width(arrow.label) / 2
        return arrow.label_x - half, arrow.label_x + half, arrow.label_y

    for one, other in itertools.combinations(drawn.arrows, 2):
        lo1, hi1, y1 = extent(one)
        lo2, hi2, y2 = extent(other)
        if abs(y1 - y2) < 12:  # the same line of text
            assert hi1 <= lo2 or hi2 <= lo1, (one.label, other.label)
    forward = [a for a in drawn.arrows if a.label_y < 0]
    backward = [a for a in drawn.arrows if a.label_y > 0]
    assert len(forward) == len(backward) == 10
    # The arc from a to e is the highest; every label sits inside the drawing.
    top = min(forward, key=lambda a: a.label_y)
    assert (top.source, top.target) == ("a", "e")
    for arrow in drawn.arrows:
        lo, hi, y = extent(arrow)
        assert drawn.min_x <= lo and hi <= drawn.min_x + drawn.width
        assert drawn.min_y <= y - 12 and y <= drawn.min_y + drawn.height


def test_marks_colours_and_long_labels():
    flow = workflow(
        [
            {"name": "draft", "initial": True, "label": {"en": "Draft", "zh": "草稿"}},
            {"name": "wait", "color": "#f39c12", "label": "x" * 60},
            {"name": "done", "final": True, "color": "#27ae60"},
        ],
        [
            {
                "name": "ask",
                "from": "draft",
                "to": "done",
                "pending_state": "wait",
                "approval": {"steps": [{"name": "boss", "approvers": {"role": "boss"}}]},
            }
        ],
    )
    drawn = layout(
        flow,
        arrows_of(flow, "zh", "a", "r"),
        language="zh",
        current="wait",
        pending="wait",
        target="done",
    )
    draft, wait, done = drawn.boxes
    assert draft.label == "草稿" and draft.color == DEFAULT_COLOR
    assert wait.current and wait.pending and wait.color == "#f39c12"
    assert wait.label == shorten("x" * 60) and wait.label.endswith("…")
    assert wait.full_label == "x" * 60 and wait.width > draft.width
    assert done.target and done.final and not done.current
    assert text_width("草稿") == 24 and text_width("ab") == 2 * 12 * 0.6
