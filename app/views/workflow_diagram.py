"""A workflow drawn as boxes and arrows: the layout, as plain numbers an SVG template draws.

States stand in one row, left to right: the initial state first, then the others in
the order a walk along the transitions reaches them, final states last. An arrow to a
state further right arcs above the row and one back to the left arcs below, so no
arrow crosses a box; each arc is raised until its label clears the labels already
placed on its side, and an arc over a shorter one stays above it.

An approval that waits in a ``pending_state`` is drawn as the record moves: from the
source to the pending state (labelled with the transition), then on to ``to`` when
approved and to ``reject_to`` (or back to the source) when rejected.

Pure functions over the workflow definition: no Flask, no database.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import deque
from dataclasses import dataclass

from metamodel.text import localise
from workflow_engine.definitions import Workflow

FONT = 12  # px, the labels' font size (workflow.css says the same)
BOX_HEIGHT = 50
BOX_MIN_WIDTH = 120  # room for a caption such as "awaiting approval"
BOX_PADDING = 14
GAP = 64
LABEL_CHARS = 24  # longer labels are shortened; the full one is the tooltip
ARC_BASE = 24
ARC_STEP = 20
ARC_INSET = 12  # arcs start and end this far from a box's centre
MARGIN = 10
DEFAULT_COLOR = "#94a3b8"
COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


@dataclass(frozen=True)
class Arrow:
    """A move between two states, before layout."""

    source: str
    target: str
    label: str
    kind: str  # "transition", "approved" or "rejected"


@dataclass(frozen=True)
class StateBox:
    name: str
    label: str
    full_label: str
    x: float
    y: float
    width: float
    height: float
    color: str
    initial: bool
    final: bool
    current: bool
    pending: bool
    target: bool

    @property
    def center(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class DrawnArrow:
    source: str
    target: str
    kind: str
    path: str
    label: str
    full_label: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Diagram:
    name: str
    min_x: float
    min_y: float
    width: float
    height: float
    boxes: tuple[StateBox, ...]
    arrows: tuple[DrawnArrow, ...]

    @property
    def view_box(self) -> str:
        return f"{_n(self.min_x)} {_n(self.min_y)} {_n(self.width)} {_n(self.height)}"


def arrows_of(workflow: Workflow, language: str, approved: str, rejected: str) -> list[Arrow]:
    """Every move the workflow allows, once each; ``approved``/``rejected`` label approvals."""
    found: dict[tuple, Arrow] = {}

    def add(source: str, target: str, label: str, kind: str) -> None:
        if source in workflow.states and target in workflow.states:
            found.setdefault((source, target, label, kind), Arrow(source, target, label, kind))

    for transition in workflow.transitions.values():
        label = localise(transition.label, language)
        waits = transition.pending_state if transition.needs_approval else None
        for source in transition.sources:
            add(source, waits or transition.to, label, "transition")
        if waits:
            add(waits, transition.to, approved, "approved")
            for back in (transition.reject_to,) if transition.reject_to else transition.sources:
                add(waits, back, rejected, "rejected")
    return list(found.values())


def state_order(workflow: Workflow, arrows: list[Arrow]) -> list[str]:
    """Initial first, then breadth first along the arrows, then the rest; final states last."""
    following: dict[str, list[str]] = {}
    for arrow in arrows:
        following.setdefault(arrow.source, []).append(arrow.target)
    order, queue = [workflow.initial], deque([workflow.initial])
    while queue:
        for target in following.get(queue.popleft(), []):
            if target not in order:
                order.append(target)
                queue.append(target)
    order += [name for name in workflow.states if name not in order]
    final = [
        name for name in order if workflow.states[name].get("final") and name != workflow.initial
    ]
    return [name for name in order if name not in final] + final


def text_width(text: str, size: float = FONT) -> float:
    """About how wide ``text`` is drawn: wide (CJK) characters take a full em, others 0.6."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else size * 0.6 for ch in text)


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def state_color(state: dict) -> str:
    color = state.get("color")
    return color if isinstance(color, str) and COLOR.match(color) else DEFAULT_COLOR


def layout(
    workflow: Workflow,
    arrows: list[Arrow],
    *,
    language: str,
    current: str | None,
    pending: str | None = None,
    target: str | None = None,
) -> Diagram:
    """Where each box, arrow and label goes; ``current``/``pending``/``target`` are marked."""
    boxes: list[StateBox] = []
    x = 0.0
    for name in state_order(workflow, arrows):
        state = workflow.states[name]
        full = localise(state.get("label"), language) or name
        label = shorten(full)
        width = max(BOX_MIN_WIDTH, text_width(label) + 2 * BOX_PADDING)
        boxes.append(
            StateBox(
                name=name,
                label=label,
                full_label=full,
                x=x,
                y=0.0,
                width=width,
                height=BOX_HEIGHT,
                color=state_color(state),
                initial=name == workflow.initial,
                final=bool(state.get("final")),
                current=name == current,
                pending=name == pending,
                target=name == target,
            )
        )
        x += width + GAP
    drawn, top, bottom = _route(boxes, arrows)
    extents = [(0.0, boxes[-1].x + boxes[-1].width if boxes else 0.0)]
    extents += [
        (a.label_x - text_width(a.label) / 2, a.label_x + text_width(a.label) / 2) for a in drawn
    ]
    min_x = min(lo for lo, _ in extents) - MARGIN
    max_x = max(hi for _, hi in extents) + MARGIN
    min_y = -top - FONT - 2 * MARGIN
    max_y = BOX_HEIGHT + bottom + FONT + 2 * MARGIN
    return Diagram(
        name=workflow.name,
        min_x=min_x,
        min_y=min_y,
        width=max_x - min_x,
        height=max_y - min_y,
        boxes=tuple(boxes),
        arrows=tuple(drawn),
    )


@dataclass
class _Placed:
    side: str
    level: int
    rise: float
    span: tuple[float, float]
    label: tuple[float, float]


def _rise(level: int) -> float:
    return ARC_BASE + level * ARC_STEP


def _route(boxes: list[StateBox], arrows: list[Arrow]) -> tuple[list[DrawnArrow], float, float]:
    """The arcs, shortest first so longer ones can rise above them; and how high/low they go."""
    index = {box.name: i for i, box in enumerate(boxes)}
    ordered = sorted(
        arrows,
        key=lambda a: (
            abs(index[a.target] - index[a.source]),
            min(index[a.source], index[a.target]),
        ),
    )
    placed: list[_Placed] = []
    drawn: list[DrawnArrow] = []
    reach = {"above": 0.0, "below": 0.0}
    for arrow in ordered:
        start, end = boxes[index[arrow.source]], boxes[index[arrow.target]]
        below = index[arrow.target] < index[arrow.source]
        side = "below" if below else "above"
        if start is end:
            x1, x2 = start.center - ARC_INSET, start.center + ARC_INSET
        elif below:
            x1, x2 = start.center - ARC_INSET, end.center + ARC_INSET
        else:
            x1, x2 = start.center + ARC_INSET, end.center - ARC_INSET
        label = shorten(arrow.label, LABEL_CHARS + 8)
        middle, half = (x1 + x2) / 2, text_width(label) / 2 + 4
        span, label_span = (min(x1, x2), max(x1, x2)), (middle - half, middle + half)
        level = _level(placed, side, span, label_span)
        rise = _rise(level)
        placed.append(_Placed(side, level, rise, span, label_span))
        reach[side] = max(reach[side], rise)
        # A cubic whose control points stand straight over its ends: it rises steeply
        # and runs flat on top (its apex is ``rise`` away), clearing labels under it.
        if below:
            edge, handle, label_y = (
                BOX_HEIGHT,
                BOX_HEIGHT + rise * 4 / 3,
                BOX_HEIGHT + rise + FONT + 2,
            )
        else:
            edge, handle, label_y = 0.0, -rise * 4 / 3, -rise - 4
        spread = 20 if start is end else 0  # a loop on one state opens out a little
        path = (
            f"M {_n(x1)} {_n(edge)} C {_n(x1 - spread)} {_n(handle)} "
            f"{_n(x2 + spread)} {_n(handle)} {_n(x2)} {_n(edge)}"
        )
        drawn.append(
            DrawnArrow(
                source=arrow.source,
                target=arrow.target,
                kind=arrow.kind,
                path=path,
                label=label,
                full_label=arrow.label,
                label_x=middle,
                label_y=label_y,
            )
        )
    return drawn, reach["above"], reach["below"]


def _level(
    placed: list[_Placed], side: str, span: tuple[float, float], label: tuple[float, float]
) -> int:
    """The lowest level where the label overlaps no other and the arc clears those under it."""
    same_side = [p for p in placed if p.side == side]
    level = 0
    for under in same_side:
        if span[0] <= under.span[0] and under.span[1] <= span[1]:
            # High enough over the whole of the label under it (plus the label's height).
            needed = under.rise + FONT + 8
            width = span[1] - span[0]
            worst = min(
                _height_at(max(0.0, min(1.0, (x - span[0]) / width)) if width else 0.5)
                for x in under.label
            )
            level = max(level, under.level + 1, _level_for(needed / max(worst, 0.25)))
    while any(
        p.level == level and p.label[0] < label[1] and label[0] < p.label[1] for p in same_side
    ):
        level += 1
    return level


def _level_for(rise: float) -> int:
    return max(0, math.ceil((rise - ARC_BASE) / ARC_STEP))


def _height_at(fraction: float) -> float:
    """How high the arc is (as a share of its rise) at ``fraction`` of the way across.

    The arc's x runs as 3t²-2t³ and its height as 4t(1-t) for t in [0, 1]: find t by
    halving, since x grows with t.
    """
    low, high = 0.0, 1.0
    for _ in range(30):
        t = (low + high) / 2
        if 3 * t * t - 2 * t * t * t < fraction:
            low = t
        else:
            high = t
    t = (low + high) / 2
    return 4 * t * (1 - t)


def _n(value: float) -> str:
    """A coordinate as SVG text: at most one decimal, no trailing zeros."""
    return f"{value:.1f}".rstrip("0").rstrip(".")
