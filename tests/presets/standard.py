"""What an industry preset must contain: the standard future edits must keep.

``preset_gaps(doc)`` lists, in words, everything a preset lacks; an empty list
means the preset is complete. The checks are about content a practitioner
expects (approvals, conditional forms, boards, calendars, 80/20 analysis,
bilingual labels, realistic sample data), not about validity, which the
validator decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

CJK = re.compile(r"[\u3400-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Presets ship at 1.0.0 or later; a changed preset gets a higher version, so that
# apps imported from it can tell which version they came from and upgrade.
FIRST_VERSION = (1, 0, 0)
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
MIN_ROLES = 3
MIN_RECORDS, MAX_RECORDS = 5, 20
# Reference tables a business keeps short (tiers, service levels): fewer records are natural.
CATALOGUE_MIN_RECORDS = 3
CATALOGUES = {("retail_membership", "membership_tier"), ("after_sales_service", "service_level")}
APPROVER_KINDS = ("role", "field", "manager_of")


def preset_gaps(doc: dict) -> list[str]:
    return [
        *top_level_gaps(doc),
        *label_gaps(doc),
        *entity_gaps(doc),
        *form_gaps(doc),
        *workflow_gaps(doc),
        *view_gaps(doc),
        *dashboard_gaps(doc),
        *sample_gaps(doc),
    ]


# --- labels ------------------------------------------------------------------------------


def bilingual(text: Any) -> bool:
    """``{"en": ..., "zh": ...}`` with English text and Chinese characters in ``zh``."""
    return (
        isinstance(text, dict)
        and isinstance(text.get("en"), str)
        and text["en"].strip() != ""
        and isinstance(text.get("zh"), str)
        and CJK.search(text["zh"]) is not None
    )


def labelled(doc: dict) -> Iterator[tuple[str, Any, bool]]:
    """``(where, text, required)`` for every text a user reads in the preset."""
    yield "/label", doc.get("label"), True
    yield "/description", doc.get("description"), True
    for i, role in enumerate(doc.get("roles", [])):
        yield f"/roles/{i}/label", role.get("label"), True
    for e, entity in enumerate(doc.get("entities", [])):
        at = f"/entities/{e}"
        yield f"{at}/label", entity.get("label"), True
        yield f"{at}/plural_label", entity.get("plural_label"), not entity.get("child")
        for f, field in enumerate(entity.get("fields", [])):
            yield f"{at}/fields/{f}/label", field.get("label"), True
            yield f"{at}/fields/{f}/help", field.get("help"), False
            for o, option in enumerate(field.get("options", [])):
                yield f"{at}/fields/{f}/options/{o}/label", option.get("label"), True
    for i, form in enumerate(doc.get("forms", [])):
        at = f"/forms/{i}"
        yield f"{at}/label", form.get("label"), True
        for s, section in enumerate(form.get("layout", [])):
            yield f"{at}/layout/{s}/section", section.get("section"), True
            yield f"{at}/layout/{s}/tab", section.get("tab"), False
        for v, validation in enumerate(form.get("validations", [])):
            yield f"{at}/validations/{v}/message", validation.get("message"), True
    for w, workflow in enumerate(doc.get("workflows", [])):
        at = f"/workflows/{w}"
        yield f"{at}/label", workflow.get("label"), True
        for s, state in enumerate(workflow.get("states", [])):
            yield f"{at}/states/{s}/label", state.get("label"), True
        for t, transition in enumerate(workflow.get("transitions", [])):
            yield f"{at}/transitions/{t}/label", transition.get("label"), True
            for s, step in enumerate((transition.get("approval") or {}).get("steps", [])):
                yield f"{at}/transitions/{t}/approval/steps/{s}/label", step.get("label"), True
    for i, view in enumerate(doc.get("views", [])):
        yield f"/views/{i}/label", view.get("label"), True
    for d, dashboard in enumerate(doc.get("dashboards", [])):
        yield f"/dashboards/{d}/label", dashboard.get("label"), True
        for w, widget in enumerate(dashboard.get("widgets", [])):
            yield f"/dashboards/{d}/widgets/{w}/label", widget.get("label"), True


def label_gaps(doc: dict) -> Iterator[str]:
    for where, text, required in labelled(doc):
        if text is None and not required:
            continue
        if not bilingual(text):
            yield f"{where}: needs an English and a Chinese text, got {text!r}"


# --- content -------------------------------------------------------------------------------


def top_level_gaps(doc: dict) -> Iterator[str]:
    if doc.get("format") != "crm-app/1":
        yield "the format is not crm-app/1"
    version = SEMVER.match(str(doc.get("version")))
    if version is None or tuple(int(part) for part in version.groups()) < FIRST_VERSION:
        yield f"the version is {doc.get('version')!r}, not 1.0.0 or later"
    if not isinstance(doc.get("industry"), str) or not doc["industry"]:
        yield "no industry"
    if len(doc.get("roles", [])) < MIN_ROLES:
        yield f"fewer than {MIN_ROLES} roles"


def main_entities(doc: dict) -> list[dict]:
    return [e for e in doc.get("entities", []) if not e.get("child")]


def all_fields(doc: dict) -> Iterator[tuple[dict, dict]]:
    for entity in doc.get("entities", []):
        for field in entity.get("fields", []):
            yield entity, field


def entity_gaps(doc: dict) -> Iterator[str]:
    own = False
    for entity in main_entities(doc):
        name = entity["name"]
        permissions = entity.get("permissions") or {}
        if not permissions:
            yield f"entity {name}: no permissions per role"
        own |= any(v.endswith(":own") for verbs in permissions.values() for v in verbs)
        if not entity.get("title_field"):
            yield f"entity {name}: no title field"
    if not own:
        yield "no role is limited to its own records (read:own / update:own)"
    kinds = {field.get("type") for _, field in all_fields(doc)}
    for kind in ("autonumber", "formula", "lookup", "rollup"):
        if kind not in kinds:
            yield f"no {kind} field"
    if not any((e.get("timeline") or {}).get("sources") for e in doc.get("entities", [])):
        yield "no timeline (customer 360 view)"


def layout_items(form: dict) -> Iterator[tuple[dict, Any]]:
    for section in form.get("layout", []):
        for item in section.get("fields", []):
            yield section, item


def form_gaps(doc: dict) -> Iterator[str]:
    forms = doc.get("forms", [])
    for entity in main_entities(doc):
        defaults = [f for f in forms if f.get("entity") == entity["name"] and f.get("default")]
        if len(defaults) != 1:
            yield f"entity {entity['name']}: needs one default form, has {len(defaults)}"
    conditional = [
        item
        for form in forms
        for _, item in layout_items(form)
        if isinstance(item, dict) and ("visible_when" in item or "required_when" in item)
    ]
    if not conditional:
        yield "no form has a conditional field (visible_when / required_when)"
    if not any(section.get("tab") for form in forms for section in form.get("layout", [])):
        yield "no form groups its sections in tabs"
    if not any(form.get("validations") for form in forms):
        yield "no cross-field validation"


def approvals(doc: dict) -> list[dict]:
    return [
        transition["approval"]
        for workflow in doc.get("workflows", [])
        for transition in workflow.get("transitions", [])
        if (transition.get("approval") or {}).get("steps")
    ]


def workflow_gaps(doc: dict) -> Iterator[str]:
    found = approvals(doc)
    if not found:
        yield "no workflow with an approval"
        return
    steps = [step for approval in found for step in approval["steps"]]
    transitions = [
        t
        for workflow in doc.get("workflows", [])
        for t in workflow.get("transitions", [])
        if t.get("approval")
    ]
    if not any("due_hours" in s and "escalate_to" in s for s in steps):
        yield "no approval step escalates after due_hours"
    modes = {s.get("mode", "any") for s in steps}
    for mode in ("any", "all"):
        if mode not in modes:
            yield f"no approval step with mode {mode}"
    if not any(t.get("pending_state") for t in transitions):
        yield "no approval with a pending_state"
    if not any(t.get("reject_to") for t in transitions):
        yield "no approval with reject_to"
    if not any(approval.get("cc") for approval in found):
        yield "no approval copies anyone (cc)"
    approvers = [s.get("approvers") or {} for s in steps] + [a.get("cc") or {} for a in found]
    for kind in APPROVER_KINDS:
        if not any(kind in a for a in approvers):
            yield f"no approvers given by {kind}"


def view_gaps(doc: dict) -> Iterator[str]:
    types = {view.get("type") for view in doc.get("views", [])}
    for kind in ("list", "kanban", "calendar"):
        if kind not in types:
            yield f"no {kind} view"


def dashboard_gaps(doc: dict) -> Iterator[str]:
    dashboards = doc.get("dashboards", [])
    complete = [
        d
        for d in dashboards
        if {"number", "chart", "pareto"} <= {w.get("type") for w in d.get("widgets", [])}
    ]
    if not complete:
        yield "no dashboard with number, chart and pareto widgets"
    widgets = [w for d in dashboards for w in d.get("widgets", [])]
    if not any(w.get("type") == "chart" and w.get("period") for w in widgets):
        yield "no chart over time (period on a date field)"


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def sample_gaps(doc: dict) -> Iterator[str]:
    data = doc.get("sample_data") or {}
    for entity in main_entities(doc):
        name = entity["name"]
        count = len(data.get(name) or [])
        low = CATALOGUE_MIN_RECORDS if (doc.get("name"), name) in CATALOGUES else MIN_RECORDS
        if not low <= count <= MAX_RECORDS:
            yield f"entity {name}: {count} sample records, expected {low} to {MAX_RECORDS}"
    texts = list(strings(data))
    if not any(CJK.search(t) for t in texts):
        yield "no Chinese names in the sample data"
    if not any(LATIN_WORD.search(t) and not CJK.search(t) and " " in t for t in texts):
        yield "no English names in the sample data"


# --- workflows as state machines ---------------------------------------------------------


def state_machine_gaps(workflow: dict) -> Iterator[str]:
    """Transitions that name states that do not exist, and states nothing reaches."""
    name = workflow.get("name")
    states = [s["name"] for s in workflow.get("states", [])]
    initial = [s["name"] for s in workflow.get("states", []) if s.get("initial")]
    if len(initial) != 1:
        yield f"workflow {name}: {len(initial)} initial states"
    edges: dict[str, set[str]] = {}
    for transition in workflow.get("transitions", []):
        sources = transition.get("from")
        sources = [sources] if isinstance(sources, str) else list(sources or [])
        targets = [transition.get(k) for k in ("to", "pending_state", "reject_to")]
        for state in [*sources, *[t for t in targets if t]]:
            if state not in states:
                yield f"workflow {name}, transition {transition.get('name')}: no state {state}"
        for source in sources:
            edges.setdefault(source, set()).update(t for t in targets if t)
    reached, frontier = set(initial), list(initial)
    while frontier:
        for target in edges.get(frontier.pop(), ()):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    for state in states:
        if state not in reached:
            yield f"workflow {name}: state {state} cannot be reached"
