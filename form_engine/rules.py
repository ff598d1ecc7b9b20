"""A form's rules on the would-be record: the server's reading, which the browser mirrors.

The would-be record is the stored record (or, for a new one, its defaults)
overlaid with the submitted values the form accepts, child rows included, with
its computed fields worked out again: child-row formulas, rollups over child
rows, lookups and formulas. References the rules read through
(``account.tier``) hold the referenced record, fetched by a ``resolve`` hook;
without one they read as null.

Which submitted values count depends on the rules (a hidden field's value is
ignored), and the rules read the values, so the states are found by iterating
from "every input accepted" until the set of accepted inputs stops changing.
Without cycles between rules this settles within (number of items + 1) rounds.
Rules that keep flipping (A shows B, B hides A) come back to an accepted set
seen before; the inputs that differ within that cycle are then held read-only
(shown with their stored value, not taken) and the rest is settled again.
``form_rules.js`` runs the same iteration, so both sides agree.

A rule that cannot be evaluated falls back to the safe side: shown, not
required, read-only, validation failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metamodel.errors import CrmError
from metamodel.jsonlogic import RuleError, evaluate, rule_data, truthy
from metamodel.jsonlogic.sql import followed_references
from metamodel.model import EntityModel, FieldModel
from metamodel.sqltypes import UTC
from records.computed import fit, rollup_value

from .definition import FormItem, FormSpec
from .values import same, typed, typed_row

# (entity, id) -> that record's values (JSON or typed), or None when there is none.
Resolver = Callable[[EntityModel, int], dict | None]


@dataclass(frozen=True)
class ItemState:
    visible: bool = True
    required: bool = False
    read_only: bool = False

    @property
    def accepts(self) -> bool:
        return self.visible and not self.read_only

    def as_dict(self) -> dict[str, bool]:
        return {"visible": self.visible, "required": self.required, "read_only": self.read_only}


@dataclass
class Evaluation:
    states: dict[str, ItemState]
    # The would-be record: typed values, child rows, computed fields.
    record: dict[str, Any]
    # What the rules read: the record, references followed, context variables added.
    data: dict[str, Any]
    accepted: frozenset[str]


def holds(rule: Any, data: Any, fallback: bool) -> bool:
    try:
        return truthy(evaluate(rule, data))
    except RuleError:
        return fallback


def item_state(item: FormItem, data: dict, locked: frozenset[str]) -> ItemState:
    rules = item.rules
    visible = holds(rules["visible_when"], data, True) if "visible_when" in rules else True
    if item.display_only:
        return ItemState(visible=visible, read_only=True)
    read_only = item.name in locked or (
        "read_only_when" in rules and holds(rules["read_only_when"], data, True)
    )
    required = item.static_required or (
        "required_when" in rules and holds(rules["required_when"], data, False)
    )
    return ItemState(visible, required, read_only)


def max_rounds(spec: FormSpec) -> int:
    return 2 * len(spec.items) + 4


def evaluate_form(
    spec: FormSpec,
    base: dict[str, Any],
    submitted: dict[str, Any],
    *,
    context: dict | None = None,
    resolve: Resolver | None = None,
    locked: frozenset[str] = frozenset(),
) -> Evaluation:
    """The states of every item, and the would-be record they were decided on.

    ``base`` holds the stored (or default) values, typed; ``submitted`` the
    values the request gave for input items, as rules read them
    (``values.rule_value``). Inputs whose acceptance keeps flipping are held
    read-only (as if locked) and the rest is settled again without them.
    """
    memo: dict = {}
    held = frozenset(locked)
    while True:
        outcome, flipping = settle(spec, base, submitted, context, resolve, held, memo)
        if not flipping:
            return outcome
        held |= flipping


def settle(spec, base, submitted, context, resolve, held, memo):
    """Iterate to the fixpoint; (outcome, frozenset()) or (last outcome, inputs that flip)."""
    inputs = [name for name in spec.inputs if name not in held]

    def round_(accepted: frozenset[str]) -> Evaluation:
        record = dict(base)
        record.update({n: submitted[n] for n in accepted if n in submitted})
        record, data = computed(spec, record, base, context, resolve, memo)
        states = {name: item_state(item, data, held) for name, item in spec.items.items()}
        return Evaluation(states, record, data, accepted)

    accepted = frozenset(inputs)
    history = [accepted]
    cycle = history
    for _ in range(max_rounds(spec)):
        outcome = round_(accepted)
        settled = frozenset(n for n in inputs if outcome.states[n].accepts)
        if settled == accepted:
            return outcome, frozenset()
        if settled in history:
            # Back at an earlier set: what differs within the cycle keeps flipping.
            cycle = history[history.index(settled) :]
            break
        history.append(settled)
        accepted = settled
    return outcome, frozenset().union(*(state ^ cycle[0] for state in cycle))


def failed_validations(spec: FormSpec, data: dict) -> list[dict[str, Any]]:
    return [v for v in spec.validations if not holds(v["rule"], data, False)]


# --- the computed part of the would-be record ------------------------------------------


def computed(
    spec: FormSpec,
    record: dict[str, Any],
    base: dict[str, Any],
    context: dict | None,
    resolve: Resolver | None,
    memo: dict,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``record`` with its computed fields, and the data rules read from it."""
    values = dict(record)
    for name, child in spec.children.items():
        values[name] = [with_formulas(child, row, context) for row in values.get(name) or []]
    for fld in spec.entity.fields.values():
        if fld.type_name == "lookup":
            values[fld.name] = lookup(fld, values, base, resolve, memo)
        elif fld.type_name == "rollup":
            values[fld.name] = rollup(spec, fld, values, base)
    data = follow(spec.entity, values, spec.followed, resolve, memo)
    for fld in spec.formulas:
        values[fld.name] = data[fld.name] = formula(fld, data, context)
    return values, rule_data(data, context)


def formula(fld: FieldModel, data: dict, context: dict | None) -> Any:
    """A formula's value as the record service computes it on save."""
    try:
        return fit(evaluate(fld.doc["expression"], data, context), fld)
    except CrmError:
        return None


def with_formulas(child: FormSpec, row: dict, context: dict | None) -> dict:
    row = dict(row)
    for fld in child.formulas:
        row[fld.name] = formula(fld, row, context)
    return row


def lookup(fld: FieldModel, values: dict, base: dict, resolve, memo) -> Any:
    via = fld.entity.fields[fld.doc["via"]]
    target_id = values.get(via.name)
    if target_id == base.get(via.name) and fld.name in base:
        return base[fld.name]
    found = fetch(via, target_id, resolve, memo)
    if found is None:
        return None
    return found.get(fld.doc["field"])


def rollup(spec: FormSpec, fld: FieldModel, values: dict, base: dict) -> Any:
    """Rollups over the form's own child rows are worked out; others keep their value."""
    via = fld.doc["via"]
    rule = fld.doc.get("filter")
    if via not in spec.children or (
        rule is not None and followed_references(rule, spec.children[via].entity)
    ):
        return base.get(fld.name)
    try:
        # Over child rows with a filter that follows no reference, the record
        # service's own aggregation needs no database.
        return rollup_value(None, fld, values, None, {via: values.get(via) or []})
    except CrmError:
        return None


def fetch(fld: FieldModel, target_id: Any, resolve: Resolver | None, memo: dict) -> dict | None:
    """The record a reference points at, typed, or None."""
    if isinstance(target_id, dict):
        return target_id
    target = fld.target
    if target_id is None or target is None or resolve is None:
        return None
    key = (target.app.name, target.name, target_id)
    if key not in memo:
        found = resolve(target, target_id)
        memo[key] = None if found is None else {**typed_row(target.fields, found), **_system(found)}
    found = memo[key]
    return None if found is None else dict(found)


def _system(record: dict) -> dict:
    return {k: v for k, v in record.items() if k in ("id", "owner", "created_by", "updated_by")}


def follow(entity: EntityModel, values: dict, paths: list[str], resolve, memo) -> dict:
    """``values`` with each followed reference path holding the record it points at."""
    data = dict(values)
    for path in paths:
        *parents, last = path.split(".")
        holder: Any = data
        owner = entity
        for segment in parents:
            holder = holder.get(segment) if isinstance(holder, dict) else None
            owner = owner.fields[segment].target
        if not isinstance(holder, dict) or owner is None:
            continue
        holder[last] = fetch(owner.fields[last], holder.get(last), resolve, memo)
    return data


# --- the record a form starts from ------------------------------------------------------


def base_record(spec: FormSpec, current: dict | None, context: dict | None) -> dict[str, Any]:
    """Typed values of the stored record, or of a new one's defaults."""
    if current is not None:
        out = dict(current)
        for name, fld in spec.entity.fields.items():
            if name in current:
                out[name] = typed(fld, current[name])
        return out
    return defaults(spec.entity, context)


def defaults(entity: EntityModel, context: dict | None) -> dict[str, Any]:
    context = context or {}
    now, today = context.get("now"), context.get("today")
    out: dict[str, Any] = {}
    for fld in entity.fields.values():
        default = fld.doc.get("default")
        if default is None or fld.computed:
            continue
        kind = fld.value_spec["type"]
        if default == "$user":
            out[fld.name] = (context.get("user") or {}).get("id")
        elif default in ("$now", "$today"):
            if kind == "date":
                out[fld.name] = today
            else:
                out[fld.name] = now if default == "$now" else _midnight(today)
        else:
            out[fld.name] = typed(fld, default)
    return out


def _midnight(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(0), UTC)


def unchanged(fld: FieldModel, submitted: Any, stored: Any) -> bool:
    """Does a submitted value leave the stored one as it is (as far as a rule can tell)?"""
    if fld.type_name == "child_table" and isinstance(submitted, list):
        rows = stored if isinstance(stored, list) else []
        return len(rows) == len(submitted) and all(
            all(same(value, old.get(key)) for key, value in new.items())
            for new, old in zip(submitted, rows, strict=True)
        )
    return same(submitted, stored)
