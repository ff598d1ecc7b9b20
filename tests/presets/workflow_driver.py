"""Driving a preset's workflows end to end through the engine, as the preset's users would.

:func:`build_world` publishes a preset with its sample data and gives it a staff:
for every role two users (``<role>`` and ``<role>_2``, so that a countersign of
all holders has two seats), reporting to ``boss``, who reports to ``ceo``; a
``colleague`` without roles; and every user an approver names. There is no
admin, so an approval step nobody resolves fails loudly instead of falling
back to an admin.

A :class:`Driver` walks one workflow: it finds routes through the state machine
(breadth first from the initial state, rejections included), takes a record in
the initial state (a sample record, or a copy of one), and makes each move of a
route: it meets the transition's condition by editing the record
(:mod:`.conditions`), fires the transition as a user who holds one of its roles
(the owner for ``$owner``), and approves (or rejects) every task of the approval
as its assignee. It then holds the record's state, its ``set`` fields and its
history against what it did. Approval steps are made to apply where the solver
can, and every step must have been decided by someone at least once.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from typing import NamedTuple

import pytest
from sqlalchemy import Engine, select

from app.accounts import create_user
from metamodel import field_types
from metamodel.db import make_engine
from metamodel.errors import CrmError, NotFound
from metamodel.jsonlogic import variables
from metamodel.model import AppModel
from metamodel.publish import apply_document
from metamodel.system_tables import users
from presets.catalog import import_sample_data, load_preset
from records.actor import SYSTEM, Actor
from records.errors import Forbidden
from records.query import ListQuery
from records.service import Records
from workflow_engine import Workflows
from workflow_engine.approvers import SUBMITTER
from workflow_engine.definitions import OWNER, Transition, Workflow

from .conditions import Solver, json_value

FAST_HASH = "pbkdf2:sha256:1000"
APPROVE, REJECT = "approve", "reject"
MAX_ACTIONS = 40
PAGE = 200


# --- the state machine -----------------------------------------------------------


class Move(NamedTuple):
    transition: str
    outcome: str = APPROVE
    # The approval step whose condition the record is made to meet first.
    focus: str | None = None


def routes(workflow: Workflow) -> dict[str, tuple[Move, ...]]:
    """The shortest route from the initial state to every state a route reaches.

    A transition leads to its ``to``; one with an approval also leads, rejected, to
    its ``reject_to`` (or back where it came from). Pending states are not route
    ends: the record only waits there.
    """
    found: dict[str, tuple[Move, ...]] = {workflow.initial: ()}
    queue = deque([workflow.initial])
    while queue:
        state = queue.popleft()
        for transition in workflow.transitions.values():
            if state not in transition.sources:
                continue
            ends = [(transition.to, Move(transition.name))]
            if transition.needs_approval:
                ends.append((transition.reject_to or state, Move(transition.name, REJECT)))
            for end, move in ends:
                if end not in found:
                    found[end] = (*found[state], move)
                    queue.append(end)
    return found


def reachable(workflow: Workflow) -> set[str]:
    found = set(routes(workflow))
    for transition in workflow.transitions.values():
        if transition.pending_state and found & set(transition.sources):
            found.add(transition.pending_state)
    return found


def finals(workflow: Workflow) -> list[str]:
    return [name for name, state in workflow.states.items() if state.get("final")]


def route_to(workflow: Workflow, transition: Transition) -> tuple[Move, ...]:
    """The shortest route to a state ``transition`` starts from."""
    found = routes(workflow)
    sources = [s for s in transition.sources if s in found]
    if not sources:
        pytest.fail(
            f"{workflow.name}: transition '{transition.name}' starts from "
            f"{list(transition.sources)}, and no route reaches any of them"
        )
    return found[min(sources, key=lambda s: len(found[s]))]


def planned_routes(workflow: Workflow) -> list[tuple[Move, ...]]:
    """Routes that end in every final state, fire every transition, reject every approval.

    A rejected approval is submitted again (and approved) when its transition starts
    from the state the rejection leaves the record in.
    """
    found = routes(workflow)
    planned = [found[state] for state in finals(workflow) if state in found]
    for transition in workflow.transitions.values():
        if not any(Move(transition.name) in route for route in planned):
            planned.append((*route_to(workflow, transition), Move(transition.name)))
    for transition in workflow.transitions.values():
        if transition.needs_approval:
            route = route_to(workflow, transition)
            start = routes_end(workflow, route)
            rejected = (*route, Move(transition.name, REJECT))
            if (transition.reject_to or start) in transition.sources:
                rejected = (*rejected, Move(transition.name))
            planned.append(rejected)
    return planned


def routes_end(workflow: Workflow, route: tuple[Move, ...]) -> str:
    state = workflow.initial
    for move in route:
        transition = workflow.transitions[move.transition]
        state = transition.to if move.outcome == APPROVE else transition.reject_to or state
    return state


def workflow_docs(doc: dict) -> list[dict]:
    return list(doc.get("workflows", []))


# --- the published preset and its people ----------------------------------------


@dataclass
class World:
    name: str
    doc: dict
    engine: Engine
    records: Records
    flow: Workflows
    model: AppModel
    people: dict[str, Actor]
    roles: list[str]
    used: set[tuple[str, int]] = field(default_factory=set)
    copies: count = field(default_factory=lambda: count(1))

    @property
    def by_id(self) -> dict[int, Actor]:
        return {actor.id: actor for actor in self.people.values()}


def role_names(doc: dict) -> list[str]:
    """The roles the preset declares and every role its workflows name (admin aside)."""
    names = [r if isinstance(r, str) else r["name"] for r in doc.get("roles", [])]
    for workflow in workflow_docs(doc):
        for transition in workflow.get("transitions", []):
            names += [r for r in transition.get("roles", []) if r != OWNER]
            approval = transition.get("approval") or {}
            specs = [approval.get("cc")]
            for step in approval.get("steps", []):
                specs += [step.get("approvers"), step.get("escalate_to")]
            names += [s["role"] for s in specs if isinstance(s, dict) and "role" in s]
    return [n for n in dict.fromkeys(names) if n != "admin"]


def named_users(doc: dict) -> list[str]:
    """Users that approvers name with ``{users: [...]}``."""
    names: list[str] = []
    for workflow in workflow_docs(doc):
        for transition in workflow.get("transitions", []):
            approval = transition.get("approval") or {}
            specs = [approval.get("cc")] + [
                spec
                for step in approval.get("steps", [])
                for spec in (step.get("approvers"), step.get("escalate_to"))
            ]
            names += [n for s in specs if isinstance(s, dict) for n in s.get("users", [])]
    return list(dict.fromkeys(names))


def staff(doc: dict) -> list[tuple[str, list[str], str | None]]:
    """(username, roles, manager) for everyone the preset's workflows need."""
    people: dict[str, tuple[list[str], str | None]] = {
        "ceo": ([], None),
        "boss": ([], "ceo"),
        "colleague": ([], "boss"),
    }
    for role in role_names(doc):
        for username in (role, f"{role}_2"):
            people.setdefault(username, ([role], "boss"))
    for username in named_users(doc):
        people.setdefault(username, ([], "boss"))
    return [(name, roles, manager) for name, (roles, manager) in people.items()]


def build_world(name: str, url: str) -> World:
    doc = load_preset(name)
    engine = make_engine(url)
    apply_document(engine, doc)
    with engine.begin() as conn:
        for username, roles, manager in staff(doc):
            create_user(conn, username, roles, password="pw", manager=manager, method=FAST_HASH)
        rows = conn.execute(select(users.c.id, users.c.username, users.c.roles)).all()
    people = {row.username: Actor(row.id, row.username, frozenset(row.roles)) for row in rows}
    records = Records(engine)
    import_sample_data(records, SYSTEM, doc)
    return World(
        name=name,
        doc=doc,
        engine=engine,
        records=records,
        flow=Workflows(records),
        model=AppModel.from_document(doc),
        people=people,
        roles=role_names(doc),
    )


# --- driving one workflow -------------------------------------------------------


class Event(NamedTuple):
    """A workflow event of a record's history, as the test compares it."""

    action: str
    transition: str | None
    before: str | None
    after: str | None
    actor_id: int | None
    task_id: int | None


class Driver:
    def __init__(self, world: World, workflow_name: str):
        doc = next(w for w in workflow_docs(world.doc) if w["name"] == workflow_name)
        self.world = world
        self.workflow = Workflow.from_doc(doc)
        self.entity = self.workflow.entity
        self.app = world.name
        self.where = f"{world.name} / {workflow_name}"
        self.solver = Solver(world.doc, self.entity)
        self.fields = self.solver.fields
        self.entity_doc = next(e for e in world.doc["entities"] if e["name"] == self.entity)
        self.others = [
            Workflow.from_doc(w)
            for w in workflow_docs(world.doc)
            if w["entity"] == self.entity and w["name"] != workflow_name
        ]
        self.owner = world.people[self._owner_role()]
        # (transition, step) pairs some approver has approved.
        self.decided: set[tuple[str, str]] = set()

    def fail(self, message: str):
        pytest.fail(f"{self.where}: {message}", pytrace=False)

    # --- the whole workflow --------------------------------------------------------

    def run(self) -> None:
        """Every planned route, then a route for each approval step nobody decided yet."""
        for route in planned_routes(self.workflow):
            self.drive(route)
        for transition in self.workflow.transitions.values():
            for step in transition.steps:
                if (transition.name, step.name) not in self.decided:
                    route = route_to(self.workflow, transition)
                    self.drive((*route, Move(transition.name, APPROVE, step.name)))
                if (transition.name, step.name) not in self.decided:
                    self.fail(
                        f"step '{step.name}' of '{transition.name}' was never decided: its "
                        f"condition {json.dumps(step.when)} could not be met or nobody "
                        f"resolves from its approvers {json.dumps(step.approvers)}"
                    )

    def drive(self, route: tuple[Move, ...]) -> int:
        record_id = self.take_record()
        events: list[Event] = []
        for move in route:
            self.make(move, record_id, events)
        self.check_history(record_id, events)
        return record_id

    def make(self, move: Move, record_id: int, events: list[Event]) -> None:
        transition = self.workflow.transitions[move.transition]
        state = self.state(record_id)
        assert state in transition.sources, (self.where, move, state)
        self.satisfy(record_id, transition, move.focus)
        actor = self.firer(record_id, transition, state)
        flow = self.world.flow
        result = flow.fire(
            actor,
            self.app,
            self.entity,
            record_id,
            f"{self.workflow.name}.{transition.name}",
            comment=f"test: {transition.name}",
        )
        if result["approval"] is None:
            if move.outcome == REJECT:
                self.fail(f"'{transition.name}' opened no approval, so nobody can reject it")
            events.append(
                Event("transition", transition.name, state, result["state"], actor.id, None)
            )
            finisher = actor
        else:
            pending = transition.pending_state or state
            if result["state"] != pending:
                self.fail(f"'{transition.name}' left the record {result['state']}, not {pending}")
            events.append(Event("submit", transition.name, state, pending, actor.id, None))
            finisher = self.decide(record_id, transition, move.outcome, pending, events)
        expected = transition.to if move.outcome == APPROVE else transition.reject_to or state
        record = self.read(self.entity, record_id)
        reached = self.workflow.state_of(record)
        if reached != expected:
            self.fail(
                f"after '{transition.name}' ({move.outcome}) {self.entity} {record_id} is "
                f"{reached}, not {expected}"
            )
        if move.outcome == APPROVE:
            self.check_set(transition, record, finisher)

    def decide(
        self, record_id: int, transition: Transition, outcome: str, state: str, events: list
    ) -> Actor:
        """Act on every open task of the approval as its assignee until it closes."""
        flow = self.world.flow
        last = None
        for _ in range(MAX_ACTIONS):
            view = flow.approval(SYSTEM, self.app, self.entity, record_id)
            if view is None:
                if last is None:
                    self.fail(f"the approval of '{transition.name}' closed before anyone acted")
                return last
            tasks = [
                task
                for step in view["steps"]
                for task in step["tasks"]
                if task["kind"] == "approve" and task["status"] == "open"
            ]
            if not tasks:
                self.fail(
                    f"the approval of '{transition.name}' waits at step {view['step']}, "
                    "but nobody has an open task"
                )
            task = tasks[0]
            approver = self.world.by_id.get(task["assignee_id"])
            if approver is None:
                self.fail(f"step {task['step']} was assigned to user {task['assignee_id']}")
            waiting = [item["id"] for item in flow.inbox(approver, "waiting")]
            assert task["id"] in waiting, (self.where, approver.username, task, waiting)
            result = flow.act(approver, task["id"], outcome, {"comment": f"test: {outcome}"})
            events.append(
                Event(outcome, transition.name, state, result["state"], approver.id, task["id"])
            )
            state = result["state"]
            last = approver
            for step in result["approval"]["steps"]:
                if any(t["status"] == "approved" for t in step["tasks"]):
                    self.decided.add((transition.name, step["name"]))
        self.fail(f"the approval of '{transition.name}' is still open after {MAX_ACTIONS} actions")

    # --- records -------------------------------------------------------------------

    def read(self, entity: str, record_id: int) -> dict:
        return self.world.records.get(SYSTEM, self.app, entity, record_id)

    def state(self, record_id: int) -> str:
        return self.workflow.state_of(self.read(self.entity, record_id))

    def update(self, entity: str, record_id: int, values: dict) -> None:
        try:
            self.world.records.update(SYSTEM, self.app, entity, record_id, values)
        except CrmError as error:
            problems = "; ".join(str(p) for p in error.problems)
            self.fail(f"could not set {values} on {entity} {record_id}: {problems}")

    def first_id(self, entity: str) -> int:
        page = self.world.records.list(SYSTEM, self.app, entity, ListQuery(sort="id", per_page=1))
        if not page["items"]:
            self.fail(f"there is no {entity} to refer to")
        return page["items"][0]["id"]

    def take_record(self) -> int:
        """A record nobody drove yet, in the initial state (and editable in other workflows)."""
        world = self.world
        page = world.records.list(
            SYSTEM, self.app, self.entity, ListQuery(sort="id", per_page=PAGE)
        )
        record_id = next(
            (
                item["id"]
                for item in page["items"]
                if (self.entity, item["id"]) not in world.used
                and self.workflow.state_of(item) == self.workflow.initial
                and all(other.editable(other.state_of(item)) for other in self.others)
            ),
            None,
        )
        if record_id is None:
            record_id = self.copy_sample()
        world.used.add((self.entity, record_id))
        self.prepare(record_id)
        return record_id

    def copy_sample(self) -> int:
        """A new record made from the entity's first sample record, in the initial states."""
        samples = self.world.doc.get("sample_data", {}).get(self.entity) or []
        if not samples:
            self.fail(f"no {self.entity} record in the initial state and no sample to copy")
        data = json.loads(json.dumps(samples[0]))
        for workflow in (self.workflow, *self.others):
            data.pop(workflow.state_field, None)
        number = next(self.world.copies)
        title = self.entity_doc.get("title_field")
        for name, definition in self.fields[self.entity].items():
            if name not in data or not (definition.get("unique") or name == title):
                continue
            if definition["type"] in ("text", "long_text") and isinstance(data[name], str):
                data[name] = f"{data[name]} #{number}"
            elif not definition.get("required"):
                del data[name]
        copy_doc = {
            "name": self.app,
            "entities": self.world.doc["entities"],
            "workflows": workflow_docs(self.world.doc),
            "sample_data": {self.entity: [data]},
        }
        import_sample_data(self.world.records, SYSTEM, copy_doc)
        page = self.world.records.list(
            SYSTEM, self.app, self.entity, ListQuery(sort="-id", per_page=1)
        )
        return page["items"][0]["id"]

    def prepare(self, record_id: int) -> None:
        """Give the record its owner, and its user fields people who fit their names.

        A row rule that shows a role the records where a user field is the user
        (``assigned_engineer`` is ``$user.id``) gets that role's user in the field.
        """
        record = self.read(self.entity, record_id)
        values: dict = {"owner": self.owner.id}
        later: list[tuple[str, int]] = []
        for rule in self.entity_doc.get("row_rules", []):
            path = _user_path(rule.get("rule"))
            if path and rule.get("role") in self.world.people:
                person = self.world.people[rule["role"]].id
                if "." in path:
                    later.append((path, person))
                elif record.get(path) is None:
                    values[path] = person
        for name, definition in self.fields[self.entity].items():
            empty = name not in values and record.get(name) is None
            if definition["type"] == "user" and not definition.get("read_only") and empty:
                values[name] = self.person_for(name).id
        self.update(self.entity, record_id, values)
        for path, person in later:
            self.set_path(self.entity, record_id, path, person, only_if_empty=True)

    def person_for(self, field_name: str) -> Actor:
        """The user a user field names: of the role its name mentions, else a colleague."""
        for role in sorted(self.world.roles, key=len, reverse=True):
            if role in field_name or field_name in role:
                return self.world.people[role]
        return self.world.people["colleague"]

    def set_path(
        self, entity: str, record_id: int, path: str, value, *, only_if_empty: bool = False
    ) -> None:
        """Write ``value`` at a dotted path, filling an empty reference on the way."""
        head, _, rest = path.partition(".")
        record = self.read(entity, record_id)
        if not rest:
            if not (only_if_empty and record.get(head) is not None):
                self.update(entity, record_id, {head: value})
            return
        target = self.fields[entity][head]["target"]
        target_id = record.get(head)
        if target_id is None:
            target_id = self.first_id(target)
            self.update(entity, record_id, {head: target_id})
        self.set_path(target, target_id, rest, value, only_if_empty=only_if_empty)

    # --- meeting conditions ---------------------------------------------------------

    def rule_data(self, entity: str, record_id: int, names: set[str]) -> dict:
        """The record as a rule reads it: numbers as numbers, dotted names nested."""
        record = self.read(entity, record_id)
        model = self.world.model.entities[entity]
        data = dict(record)
        for fld in model.fields.values():
            value = data.get(fld.name)
            if isinstance(value, str) and fld.storage == field_types.DECIMAL:
                data[fld.name] = Decimal(value)
        nested: dict[str, set[str]] = {}
        for name in names:
            head, _, rest = name.partition(".")
            if rest:
                nested.setdefault(head, set()).add(rest)
        for head, rests in nested.items():
            definition = self.fields[entity].get(head, {})
            if definition.get("type") == "reference" and isinstance(data.get(head), int):
                data[head] = self.rule_data(definition["target"], data[head], rests)
        return data

    def satisfy(self, record_id: int, transition: Transition, focus: str | None) -> None:
        """Edit the record so the guard holds and as many approval steps as can apply do.

        The focused step is made to apply first; a step that can't apply together with
        the guard and the steps before it is left out (the next route may focus it).
        """
        rules = [transition.when] if transition.when is not None else []
        step_rules = [s for s in transition.steps if s.when is not None]
        step_rules.sort(key=lambda s: s.name != focus)
        names = {
            name for rule in [*rules, *(s.when for s in step_rules)] for name, _ in _variables(rule)
        }
        data = self.rule_data(self.entity, record_id, names)
        plan = self.solver.extend({}, rules, data)
        if plan is None:
            self.fail(
                f"the condition of '{transition.name}' can't be met automatically: "
                f"{json.dumps(transition.when)}"
            )
        for step in step_rules:
            grown = self.solver.extend(plan, [*rules, step.when], data)
            if grown is not None:
                plan, rules = grown, [*rules, step.when]
            elif step.name == focus:
                self.fail(
                    f"step '{step.name}' of '{transition.name}' can't be made to apply "
                    f"automatically: {json.dumps(step.when)}"
                )
        self.write(record_id, plan)
        if transition.steps:
            self.prepare_approvers(record_id, transition)

    def write(self, record_id: int, plan: dict) -> None:
        direct = {}
        for name, value in plan.items():
            written = self.solver.writable_path(name)
            if written is None:
                continue  # a formula: the record service computes it from what is written
            path = written[0]
            if "." in path:
                self.set_path(self.entity, record_id, path, json_value(value))
            else:
                direct[path] = json_value(value)
        if direct:
            self.update(self.entity, record_id, direct)

    def prepare_approvers(self, record_id: int, transition: Transition) -> None:
        """Put people in the user fields the approvers and copies read (when empty)."""
        specs = [step.approvers for step in transition.steps] + [transition.cc]
        for spec in specs:
            if not isinstance(spec, dict):
                continue
            path = spec.get("field")
            if spec.get("manager_of") not in (None, OWNER, SUBMITTER):
                path = spec["manager_of"]
            if not path:
                continue
            written = self.solver.writable_path(path)
            if written is None or written[1]["type"] != "user":
                self.fail(f"approvers {json.dumps(spec)} of '{transition.name}' read no user field")
            person = self.person_for(written[0].rsplit(".", 1)[-1])
            self.set_path(self.entity, record_id, written[0], person.id, only_if_empty=True)

    # --- who fires ------------------------------------------------------------------

    def _owner_role(self) -> str:
        """Records belong to a role that fires the workflow's transitions and creates them."""
        permissions = self.entity_doc.get("permissions", {})
        firing = [r for t in self.workflow.transitions.values() for r in t.roles if r != OWNER]
        creating = [r for r in self.world.roles if "create" in permissions.get(r, [])]
        for role in self.world.roles:
            if role in creating and role in firing:
                return role
        return (creating or self.world.roles)[0]

    def firer(self, record_id: int, transition: Transition, state: str) -> Actor:
        """The first user holding one of the transition's roles who may fire it now.

        Every role the transition names must be able to fire it too (a role named but
        refused by the entity's permissions is a mistake of the preset); the owner
        counts for the roles the owner holds.
        """
        people = self.world.people
        record = self.read(self.entity, record_id)
        candidates = []
        if OWNER in transition.roles and record.get("owner") in self.world.by_id:
            candidates.append(self.world.by_id[record["owner"]])
        roles = [r for r in transition.roles if r != OWNER]
        for role in roles or self.world.roles:
            candidates += [people[role], people[f"{role}_2"]]
        candidates = list(dict.fromkeys(candidates))
        offered = {actor: self.offered(actor, record_id, transition) for actor in candidates}
        chosen = next((actor for actor in candidates if offered[actor]), None)
        if chosen is None:
            self.fail(
                f"nobody holding the roles of '{transition.name}' ({', '.join(transition.roles)}) "
                f"may fire it on {self.entity} {record_id} ({state}): "
                + self.refusal(candidates[0], record_id, transition)
            )
        for role in roles:
            holders = [actor for actor in candidates if role in actor.roles]
            if not any(offered[actor] for actor in holders):
                self.fail(
                    f"'{transition.name}' names role {role}, but no {role} user may fire it on "
                    f"{self.entity} {record_id} ({state}), owned by "
                    f"{self.world.by_id[record['owner']].username}: "
                    + self.refusal(holders[0], record_id, transition)
                )
        return chosen

    def offered(self, actor: Actor, record_id: int, transition: Transition) -> bool:
        try:
            found = self.world.flow.available(actor, self.app, self.entity, record_id)
        except (Forbidden, NotFound):
            return False
        return (self.workflow.name, transition.name) in {(t["workflow"], t["name"]) for t in found}

    def refusal(self, actor: Actor, record_id: int, transition: Transition) -> str:
        """Why ``actor`` may not fire ``transition``, in the engine's words."""
        try:
            self.world.flow.fire(
                actor, self.app, self.entity, record_id, f"{self.workflow.name}.{transition.name}"
            )
        except CrmError as error:
            return "; ".join(str(p) for p in error.problems) or error.message
        return f"'available' did not offer it to {actor.username}, yet it fired"

    # --- what the record shows ------------------------------------------------------

    def check_set(self, transition: Transition, record: dict, finisher: Actor) -> None:
        for name, value in transition.set.items():
            got = record.get(name)
            if value == "$user":
                ok = got == finisher.id
            elif value in ("$now", "$today"):
                ok = got is not None
            else:
                ok = not isinstance(value, str | bool) or got == value
            if not ok:
                self.fail(f"'{transition.name}' should set {name} to {value!r}; it is {got!r}")

    def check_history(self, record_id: int, events: list[Event]) -> None:
        history = self.world.records.history(SYSTEM, self.app, self.entity, record_id)
        seen = []
        for event in reversed(history):
            changes = event["changes"] or {}
            details = changes.get("details") or {}
            if details.get("workflow") != self.workflow.name:
                continue
            before, after = changes.get("state") or (None, None)
            seen.append(
                Event(
                    event["action"],
                    details.get("transition"),
                    before,
                    after,
                    event["actor_id"],
                    details.get("task_id"),
                )
            )
        assert seen == events, f"{self.where}: the history of {self.entity} {record_id}"


def _user_path(rule) -> str | None:
    """``P`` of a row rule ``{"==": [{"var": P}, {"var": "$user.id"}]}`` (either order)."""
    if not isinstance(rule, dict) or list(rule) not in (["=="], ["==="]):
        return None
    args = next(iter(rule.values()))
    if not isinstance(args, list) or len(args) != 2:
        return None
    names = [a.get("var") if isinstance(a, dict) else None for a in args]
    if "$user.id" in names:
        other = names[1 - names.index("$user.id")]
        return other if isinstance(other, str) else None
    return None


def _variables(rule):
    return [(n, p) for n, p in variables(rule) if n and not n.startswith("$")]
