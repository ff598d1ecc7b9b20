"""Workflows: states, transitions and approvals that fit together and name real things."""

from __future__ import annotations

from collections.abc import Iterator

from .. import pointer
from ..errors import Problem
from ..wording import did_you_mean
from .computed import COMPUTED_TYPES
from .entities import entity_problem
from .fields import fit_problem
from .scope import OWNER, AppScope, EntityScope, items, strings, text

STATE_FIELD_TYPES = ("select", "text")
APPROVER_KINDS = ("role", "users", "field", "manager_of")
# Whose manager approves: the record's owner, the user firing the transition, or a user field.
MANAGER_TOKENS = (OWNER, "$user")


def check_workflows(app: AppScope) -> Iterator[Problem]:
    owners: dict[tuple[str, str], str] = {}
    for index, workflow in items(app.doc, "workflows"):
        at = pointer.join("/workflows", index)
        yield from entity_problem(app, workflow, at)
        entity = app.entity(workflow.get("entity"))
        states = [name for _, state in items(workflow, "states") if (name := text(state, "name"))]
        yield from initial_state_problems(workflow, at)
        if entity is not None:
            yield from state_field_problems(entity, workflow, states, at, owners)
        for t_index, transition in items(workflow, "transitions"):
            t_at = pointer.join(at, "transitions", t_index)
            yield from transition_problems(app, entity, states, transition, t_at)


def initial_state_problems(workflow: dict, at: str) -> Iterator[Problem]:
    listed = items(workflow, "states")
    initial = [(index, state) for index, state in listed if state.get("initial") is True]
    if listed and not initial:
        yield Problem(
            pointer.join(at, "states"),
            'no state is marked initial: mark exactly one with "initial": true',
        )
    for index, state in initial[1:]:
        yield Problem(
            pointer.join(at, "states", index, "initial"),
            f"'{text(state, 'name')}' is marked initial, but '{text(initial[0][1], 'name')}' "
            "already is: exactly one state may be initial",
        )


def state_field_problems(
    entity: EntityScope, workflow: dict, states: list[str], at: str, owners: dict
) -> Iterator[Problem]:
    name = text(workflow, "state_field")
    if name is None:
        return
    at = pointer.join(at, "state_field")
    owner = owners.setdefault((entity.name, name), at)
    if owner != at:
        yield Problem(
            at,
            f"the workflow at {owner.removesuffix('/state_field')} already keeps its state in "
            f"'{name}' of '{entity.name}'; give this workflow a state field of its own",
        )
    declared = entity.declared(name)
    if declared is None:
        return
    kind = declared.get("type")
    if kind not in STATE_FIELD_TYPES:
        yield Problem(
            at,
            f"'{name}' is a {kind} field; a workflow's state field must be a select or text "
            "field, or a name no field has (the workflow then creates it)",
        )
    elif kind == "select":
        options = {text(option, "value") for _, option in items(declared, "options")}
        missing = [state for state in states if state not in options]
        if missing:
            yield Problem(
                at,
                f"the select field '{name}' has no option for the states {', '.join(missing)}; "
                "add them to its options",
            )


def transition_problems(
    app: AppScope, entity: EntityScope | None, states: list[str], transition: dict, at: str
) -> Iterator[Problem]:
    moves = transition.get("from")
    if isinstance(moves, str):
        yield from state_problems(states, moves, pointer.join(at, "from"))
    for index, state in strings(transition, "from"):
        yield from state_problems(states, state, pointer.join(at, "from", index))
    for key in ("to", "pending_state", "reject_to"):
        if (state := text(transition, key)) is not None:
            yield from state_problems(states, state, pointer.join(at, key))
    for index, role in strings(transition, "roles"):
        if problem := app.role_problem(role, owner=True):
            yield Problem(pointer.join(at, "roles", index), problem)
    if entity is None:
        return
    yield from set_problems(app, entity, transition, at)
    approval = transition.get("approval")
    for index, step in items(approval, "steps"):
        yield from step_problems(app, entity, step, pointer.join(at, "approval", "steps", index))
    if isinstance(approval, dict) and isinstance(approval.get("cc"), dict):
        yield from approver_problems(
            app, entity, approval["cc"], pointer.join(at, "approval", "cc")
        )
    notify = transition.get("notify")
    for index, notified in enumerate(notify if isinstance(notify, list) else []):
        where = pointer.join(at, "notify", index)
        if isinstance(notified, dict):
            yield from approver_problems(app, entity, notified, where)
        elif problem := app.role_problem(notified, owner=True):
            yield Problem(where, problem)


def state_problems(states: list[str], state: str, at: str) -> Iterator[Problem]:
    if state not in states:
        yield Problem(
            at,
            f"there is no state '{state}' in this workflow{did_you_mean(state, states)}; "
            f"the states are: {', '.join(states)}",
        )


def set_problems(app: AppScope, entity: EntityScope, transition: dict, at: str):
    assignments = transition.get("set")
    if not isinstance(assignments, dict):
        return
    for name, value in assignments.items():
        where = pointer.join(at, "set", name)
        field = entity.declared(name)
        if name in entity.state_fields:
            yield Problem(
                where, f"'{name}' holds the workflow's state; a transition changes it through 'to'"
            )
        elif field is None:
            yield Problem(where, entity.not_a_field(name))
        elif field.get("type") in COMPUTED_TYPES:
            yield Problem(where, f"'{name}' is computed, so a transition can't set it")
        elif problem := fit_problem(app, entity.fields[name][0], field, value):
            yield Problem(where, f"the value {problem}")


def step_problems(app: AppScope, entity: EntityScope, step: dict, at: str) -> Iterator[Problem]:
    if isinstance(step.get("approvers"), dict):
        yield from approver_problems(app, entity, step["approvers"], pointer.join(at, "approvers"))
    if isinstance(step.get("escalate_to"), dict):
        where = pointer.join(at, "escalate_to")
        yield from approver_problems(app, entity, step["escalate_to"], where)
    yield from quorum_problems(step, at)
    for index, name in strings(step, "editable_fields"):
        where = pointer.join(at, "editable_fields", index)
        field = entity.declared(name)
        if field is None:
            yield Problem(where, entity.not_a_field(name))
        elif field.get("type") in COMPUTED_TYPES:
            yield Problem(where, f"'{name}' is computed, so approvers can't edit it")


def quorum_problems(step: dict, at: str) -> Iterator[Problem]:
    given = [key for key in ("min", "ratio") if key in step]
    if step.get("mode") == "quorum":
        if not given:
            yield Problem(
                at,
                "a quorum step needs 'min' (how many must approve) or 'ratio' (the share of "
                "approvers that must approve, from 0 to 1)",
            )
        elif len(given) == 2:
            yield Problem(pointer.join(at, "ratio"), "give 'min' or 'ratio', not both")
    else:
        for key in given:
            yield Problem(
                pointer.join(at, key), f'\'{key}\' only applies to a step with "mode": "quorum"'
            )


def approver_problems(
    app: AppScope, entity: EntityScope, approvers: dict, at: str
) -> Iterator[Problem]:
    kinds = [kind for kind in APPROVER_KINDS if kind in approvers]
    if len(kinds) > 1:
        yield Problem(
            at,
            f"approvers are given by one of {', '.join(APPROVER_KINDS)}; this names "
            f"{' and '.join(kinds)}: use separate steps for them",
        )
    role = approvers.get("role")
    if role == OWNER:
        yield Problem(
            pointer.join(at, "role"),
            f'{OWNER} is not a role; to have the owner decide, use {{"field": "owner"}}',
        )
    elif problem := app.role_problem(role):
        yield Problem(pointer.join(at, "role"), problem)
    if isinstance(approvers.get("field"), str):
        yield from user_field_problems(entity, approvers["field"], pointer.join(at, "field"))
    manager_of = approvers.get("manager_of")
    if isinstance(manager_of, str) and manager_of not in MANAGER_TOKENS:
        yield from user_field_problems(entity, manager_of, pointer.join(at, "manager_of"))


def user_field_problems(entity: EntityScope, path: str, at: str) -> Iterator[Problem]:
    resolved = entity.path(path)
    if resolved.problem:
        yield Problem(at, resolved.problem)
        return
    kind = resolved.entity.value_type(resolved.field) if resolved.field else "user"
    if kind != "user":
        yield Problem(
            at,
            f"'{path}' is a {kind} field; approvers come from a user field "
            "(dotted paths may follow references, e.g. account.account_manager)",
        )
