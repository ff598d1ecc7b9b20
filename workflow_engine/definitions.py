"""Workflows as plain data: states, transitions and approval steps read from an app document.

A workflow is never an object with behaviour attached to records; it is the
document's own description, parsed into frozen dataclasses once per published
app version (the entity model of a version never changes, so the parse is kept
with it). The same parser reads the snapshot an approval keeps
(``crm_approvals.definition``), so a running approval follows the version it
started with; a snapshot equal to the current definition reuses its parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from metamodel.errors import NotFound
from metamodel.messages import Label, Message
from metamodel.model import EntityModel
from metamodel.text import humanise, localise

OWNER = "$owner"


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    label: Any
    approvers: dict
    mode: str
    min: int | None
    ratio: float | None
    when: Any
    due_hours: float | None
    escalate_to: dict | None
    editable_fields: tuple[str, ...]
    on_no_approver: str

    @property
    def chain(self) -> bool:
        """A reporting line of several levels: each level decides in turn (逐级审批)."""
        return "manager_of" in self.approvers and self.approvers.get("levels", 1) != 1

    @classmethod
    def from_doc(cls, index: int, doc: dict) -> Step:
        return cls(
            index=index,
            name=doc["name"],
            label=doc.get("label") or humanise(doc["name"]),
            approvers=doc["approvers"],
            mode=doc.get("mode", "any"),
            min=doc.get("min"),
            ratio=doc.get("ratio"),
            when=doc.get("when"),
            due_hours=doc.get("due_hours"),
            escalate_to=doc.get("escalate_to"),
            editable_fields=tuple(doc.get("editable_fields", ())),
            on_no_approver=doc.get("on_no_approver", "admin"),
        )


@dataclass(frozen=True)
class Transition:
    name: str
    label: Any
    sources: tuple[str, ...]
    to: str
    roles: tuple[str, ...]
    when: Any
    set: dict
    steps: tuple[Step, ...]
    cc: dict | None
    pending_state: str | None
    reject_to: str | None
    notify: tuple[Any, ...]

    @property
    def needs_approval(self) -> bool:
        return bool(self.steps)

    @property
    def title(self) -> str:
        return localise(self.label)

    @property
    def named(self) -> Label:
        """The transition in a message: its title, in the user's language at the edge."""
        return Label(self.label, self.title)

    @classmethod
    def from_doc(cls, doc: dict) -> Transition:
        sources = doc["from"]
        approval = doc.get("approval") or {}
        return cls(
            name=doc["name"],
            label=doc.get("label") or humanise(doc["name"]),
            sources=(sources,) if isinstance(sources, str) else tuple(sources),
            to=doc["to"],
            roles=tuple(doc.get("roles", ())),
            when=doc.get("when"),
            set=dict(doc.get("set", {})),
            steps=tuple(Step.from_doc(i, s) for i, s in enumerate(approval.get("steps", ()))),
            cc=approval.get("cc"),
            pending_state=doc.get("pending_state"),
            reject_to=doc.get("reject_to"),
            notify=tuple(doc.get("notify", ())),
        )


@dataclass(frozen=True)
class Workflow:
    name: str
    entity: str
    state_field: str
    states: dict[str, dict]
    initial: str
    transitions: dict[str, Transition]
    doc: dict

    @classmethod
    def from_doc(cls, doc: dict) -> Workflow:
        states = {s["name"]: s for s in doc["states"]}
        initial = next(s["name"] for s in doc["states"] if s.get("initial"))
        return cls(
            name=doc["name"],
            entity=doc["entity"],
            state_field=doc["state_field"],
            states=states,
            initial=initial,
            transitions={t["name"]: Transition.from_doc(t) for t in doc.get("transitions", ())},
            doc=doc,
        )

    def state_of(self, record: dict) -> str:
        """The record's state; a record written before the workflow existed is in the initial."""
        return record.get(self.state_field) or self.initial

    def editable(self, state: str) -> bool:
        return self.states.get(state, {}).get("editable", True) is not False

    def state_label(self, state: str | None) -> str:
        if state is None:
            return ""
        return localise(self.states.get(state, {}).get("label")) or state

    def state_named(self, state: str | None) -> Label:
        """The state in a message: its label, in the user's language at the edge."""
        return Label(self.states.get(state, {}).get("label") or "", self.state_label(state))


# Parsed workflows per entity model, dropped with the model (an older app version).
_parsed: WeakKeyDictionary[EntityModel, tuple[Workflow, ...]] = WeakKeyDictionary()


def workflows_of(entity: EntityModel) -> list[Workflow]:
    """The workflows of ``entity`` in the app version ``entity`` belongs to."""
    found = _parsed.get(entity)
    if found is None:
        found = _parsed[entity] = tuple(
            Workflow.from_doc(doc)
            for doc in entity.app.list_of("workflows")
            if doc.get("entity") == entity.name
        )
    return list(found)


def snapshot(entity: EntityModel, doc: dict) -> Workflow:
    """The workflow an approval keeps (``definition``): the current parse when it is the same."""
    for workflow in workflows_of(entity):
        if workflow.doc == doc:
            return workflow
    return Workflow.from_doc(doc)


def find_transition(entity: EntityModel, name: str) -> tuple[Workflow, Transition]:
    """The transition ``name`` (or ``workflow.name`` where two workflows share a name)."""
    workflow_name, _, transition_name = name.rpartition(".")
    found = [
        (workflow, workflow.transitions[transition_name])
        for workflow in workflows_of(entity)
        if transition_name in workflow.transitions and workflow_name in ("", workflow.name)
    ]
    if not found:
        raise NotFound(
            Message("{entity} has no transition '{name}'", entity=entity.named, name=name)
        )
    if len(found) > 1:
        names = ", ".join(f"{w.name}.{t.name}" for w, t in found)
        raise NotFound(
            Message(
                "'{name}' names several transitions of {entity}: use one of {names}",
                name=name,
                entity=entity.named,
                names=names,
            )
        )
    return found[0]
