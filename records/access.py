"""Who may do what to which records.

Entity permissions grant verbs to roles; ``read:own``/``update:own``/
``delete:own`` limit a verb to records the user owns; ``row_rules`` limit what
a role sees to records where a rule holds; ``read_roles``/``write_roles`` hide
or protect single fields. ``admin`` may do everything. A user with several
roles gets the union of what they grant.
"""

from __future__ import annotations

from typing import Any

from metamodel.jsonlogic import RuleError, evaluate, truthy
from metamodel.messages import Message
from metamodel.model import EntityModel, FieldModel

from .actor import Actor
from .errors import Forbidden

VERBS = ("read", "create", "update", "delete", "export", "import")
# A refusal names its verb in words the edge translates.
VERB_WORDS = {
    "read": Message("read"),
    "create": Message("create"),
    "update": Message("update"),
    "delete": Message("delete"),
    "export": Message("export"),
    "import": Message("import"),
}


def permissions_of(entity: EntityModel) -> dict[str, list[str]]:
    parent = entity.parent
    if entity.is_child and parent is not None:
        return parent[0].doc.get("permissions", {})
    return entity.doc.get("permissions", {})


def grant(actor: Actor, entity: EntityModel, verb: str) -> str | None:
    """'all', 'own' or None: how far ``actor`` may ``verb`` records of ``entity``."""
    if actor.is_admin:
        return "all"
    granted = None
    for role, verbs in permissions_of(entity).items():
        if role not in actor.roles:
            continue
        if verb in verbs:
            return "all"
        if f"{verb}:own" in verbs:
            granted = "own"
    return granted


def row_rules_for(actor: Actor, entity: EntityModel) -> list[Any] | None:
    """The rules limiting what ``actor`` reads; None when some role reads without limit."""
    if actor.is_admin:
        return None
    rules_by_role: dict[str, list] = {}
    for entry in entity.doc.get("row_rules", []):
        rules_by_role.setdefault(entry["role"], []).append(entry["rule"])
    readers = [
        role
        for role, verbs in permissions_of(entity).items()
        if role in actor.roles and ("read" in verbs or "read:own" in verbs)
    ]
    if any(role not in rules_by_role for role in readers):
        return None
    return [rule for role in readers for rule in rules_by_role[role]]


def may(
    actor: Actor,
    entity: EntityModel,
    verb: str,
    record: dict | None = None,
    context: dict | None = None,
    data_for=None,
) -> bool:
    """May ``actor`` ``verb`` (this record of) ``entity``?

    ``data_for(rule)`` gives the record as that rule reads it (references it
    follows nested), so row rules agree with the SQL filter of a list.
    """
    extent = grant(actor, entity, verb)
    if extent is None:
        return False
    if record is None:
        return True
    if extent == "own" and record.get("owner") != actor.id:
        return False
    rules = row_rules_for(actor, entity)
    if rules is None:
        return True
    shaped = data_for or (lambda _rule: record)
    return any(_holds(rule, shaped(rule), context) for rule in rules)


def require(
    actor: Actor,
    entity: EntityModel,
    verb: str,
    record: dict | None = None,
    context: dict | None = None,
    data_for=None,
) -> None:
    if not may(actor, entity, verb, record, context, data_for):
        raise refused(entity, verb, None if record is None else record.get("id"))


def refused(entity: EntityModel, verb: str, record_id: Any = None) -> Forbidden:
    """The refusal of ``verb`` on the entity's records (or on one), in words the edge translates."""
    word = VERB_WORDS.get(verb, verb)
    if record_id is None:
        return Forbidden(Message("you may not {verb} {entity}", verb=word, entity=entity.named))
    return Forbidden(
        Message("you may not {verb} {entity} {id}", verb=word, entity=entity.named, id=record_id)
    )


def _holds(rule, record: dict, context: dict | None) -> bool:
    try:
        return truthy(evaluate(rule, record, context))
    except RuleError:
        return False


def readable(actor: Actor, fld: FieldModel) -> bool:
    roles = fld.doc.get("read_roles")
    return actor.is_admin or not roles or bool(actor.roles & set(roles))


def writable(actor: Actor, fld: FieldModel) -> bool:
    roles = fld.doc.get("write_roles")
    return actor.is_admin or not roles or bool(actor.roles & set(roles))
