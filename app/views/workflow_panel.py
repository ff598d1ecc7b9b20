"""What a record's workflow panel shows a user: the moves they may make now, the open approval.

The engine decides everything (who may fire what, whose task is open, whether the
submitter may still withdraw); this module only gathers its answers, in the
request's language, for ``workflow/_record_actions.html``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from metamodel.text import localise
from records.actor import Actor
from records.errors import Forbidden
from workflow_engine import Workflows
from workflow_engine.definitions import Workflow, workflows_of

from ..api.service import records_service
from .workflow_diagram import state_color


@dataclass
class Panel:
    app: str
    entity: str
    record_id: int
    version: int | None = None
    states: list[dict] = field(default_factory=list)
    transitions: list[dict] = field(default_factory=list)
    approval: dict | None = None
    my_task: int | None = None
    may_go_back: bool = False
    has_workflow: bool = False
    message: str | None = None
    error: str | None = None
    # After an action the user may no longer see the record (an approver without read
    # access whose task is done): the panel then says what happened and nothing more.
    hidden: bool = False

    @property
    def dom_id(self) -> str:
        return f"wf-actions-{self.app}-{self.entity}-{self.record_id}"


def panel(
    flow: Workflows,
    actor: Actor,
    app: str,
    entity: str,
    record_id: int,
    language: str,
    *,
    message: str | None = None,
    error: str | None = None,
    tolerate_forbidden: bool = False,
) -> Panel:
    """The panel of one record; Forbidden unless the user may read it or has a task on it."""
    found = Panel(app, entity, record_id, message=message, error=error)
    runtime = records_service().runtime(app, entity)
    try:
        record = records_service().get(actor, app, entity, record_id)
    except Forbidden:
        record = None
    try:
        approval = flow.approval(actor, app, entity, record_id)
    except Forbidden:
        if not tolerate_forbidden:
            raise
        found.hidden = True
        return found
    found.approval = approval
    workflows = workflows_of(runtime.entity)
    found.has_workflow = bool(workflows)
    if record is not None:
        found.version = record.get("version")
        found.transitions = _transitions(
            flow.available(actor, app, entity, record_id), workflows, language
        )
    for workflow in workflows:
        if record is not None:
            state = workflow.state_of(record)
        elif approval is not None and approval["workflow"] == workflow.name:
            state = approval["pending_state"] or approval["from"]
        else:
            continue
        found.states.append(
            {
                "workflow": workflow.name,
                "name": state,
                "label": state_label(workflow, state, language),
                "color": state_color(workflow.states.get(state, {})),
            }
        )
    if approval is not None:
        found.my_task = approval["my_tasks"][0] if approval["my_tasks"] else None
        current = next((s for s in approval["steps"] if s["status"] == "current"), None)
        found.may_go_back = current is not None and any(
            step["status"] == "passed" and step["index"] < current["index"]
            for step in approval["steps"]
        )
    return found


def state_label(workflow: Workflow | None, state: str, language: str) -> str:
    found = workflow.states.get(state, {}) if workflow else {}
    return localise(found.get("label"), language) or state


def _transitions(available: list[dict], workflows, language: str) -> list[dict]:
    by_name = {workflow.name: workflow for workflow in workflows}
    shared = Counter(item["name"] for item in available)
    found = []
    for item in available:
        workflow = by_name.get(item["workflow"])
        found.append(
            {
                # The engine accepts "workflow.transition" where two workflows share a name.
                "name": item["name"]
                if shared[item["name"]] == 1
                else f"{item['workflow']}.{item['name']}",
                "label": localise(item["label"], language),
                "to_label": state_label(workflow, item["to"], language),
                "approval": item["approval"],
            }
        )
    return found
