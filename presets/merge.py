"""Three-way merge of app documents: a preset's new version over an app its users changed.

``base`` is the preset as it was imported, ``ours`` the app as it is now (with the
users' changes), ``theirs`` the preset's new version. Whatever only one side
changed is taken from that side; what both changed alike is taken once; what
both changed differently is a conflict: the users' value is kept and the
conflict reported, with a JSON Pointer into the merged document. Nothing the
users added is dropped: the preset may only remove what the users left as it
was, and the planner then archives rather than deletes.

Items in lists are matched by identity, not position: entities, fields, forms,
workflows, states, transitions, views, dashboards and roles by ``name``
(following ``renamed_from``), options by ``value``, form items by ``field``,
form sections by their heading, plain values (permission verbs, columns) by
themselves. A list whose items have no identity, and every rule, is merged as a
whole. Pure functions over data: no database, no Flask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from metamodel.errors import Problem
from metamodel.pointer import join
from metamodel.text import localise
from metamodel.versions import is_newer, next_patch


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

# Keys the merge does not decide: the caller sets the version; sample data is not the app.
OUTSIDE_THE_MERGE = ("version", "sample_data")
# Rules are merged whole: half of one user's rule and half of the preset's is nobody's rule.
WHOLE_VALUES = {
    "rule",
    "when",
    "filter",
    "expression",
    "visible_when",
    "required_when",
    "read_only_when",
    "set",
    "default",
}
# What the items of a list are called, for messages: /entities/0/fields → field.
ITEM_WORDS = {
    "entities": "entity",
    "fields": "field",
    "options": "option",
    "forms": "form",
    "workflows": "workflow",
    "states": "state",
    "transitions": "transition",
    "steps": "approval step",
    "views": "view",
    "dashboards": "dashboard",
    "widgets": "widget",
    "roles": "role",
    "layout": "section",
}


@dataclass(frozen=True)
class Change:
    """A change taken from the preset, located by a JSON Pointer into the merged document."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


@dataclass
class MergeResult:
    document: dict[str, Any]
    taken: list[Change] = field(default_factory=list)
    conflicts: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Does the merged document differ from the users' (the version aside)?

        It does exactly when something was taken from the preset: everything else
        in the merged document is the users' own.
        """
        return bool(self.taken)


def app_content(document: dict) -> dict:
    """The document without the keys the merge leaves aside."""
    return {k: v for k, v in document.items() if k not in OUTSIDE_THE_MERGE}


def merge_documents(base: dict | None, ours: dict, theirs: dict) -> MergeResult:
    """Merge ``theirs`` into ``ours`` since ``base`` (None: no common ancestor is known).

    Without a base every difference counts as changed on both sides: additions
    of either side are kept, nothing is removed, and values that differ are
    conflicts. The result carries ``ours``'s version; see :func:`merged_version`.
    """
    merger = _Merger()
    before = MISSING if base is None else app_content(base)
    merged = merger.value(before, app_content(ours), app_content(theirs), "", None)
    document = {**merged, "version": ours["version"]}
    return MergeResult(document, merger.taken, merger.conflicts)


def merged_version(current: str, preset: str) -> str:
    """The version of a merged document: the preset's if it is newer, else the next patch."""
    return preset if is_newer(preset, current) else next_patch(current)


class _Merger:
    def __init__(self) -> None:
        self.taken: list[Change] = []
        self.conflicts: list[Problem] = []

    def value(self, base: Any, ours: Any, theirs: Any, path: str, key: str | None) -> Any:
        """The merged value at ``path``; MISSING where it is left out."""
        if _same(ours, theirs) or _same(base, theirs):
            return ours
        # Only the preset changed this; inside objects and lists, say what in particular.
        preset_only = _same(base, ours)
        if not preset_only and ours is MISSING:
            self.conflict(path, f"you removed this; the preset changes it to {_show(theirs)}")
            return ours
        if not preset_only and theirs is MISSING:
            self.conflict(path, f"the preset removes this; you changed it to {_show(ours)}")
            return ours
        if key not in WHOLE_VALUES:
            earlier = {} if base is MISSING else base
            if isinstance(ours, dict) and isinstance(theirs, dict) and isinstance(earlier, dict):
                return self.mapping(earlier, ours, theirs, path)
            earlier = [] if base is MISSING else base
            if isinstance(ours, list) and isinstance(theirs, list) and isinstance(earlier, list):
                merged = self.items(earlier, ours, theirs, path, key)
                if merged is not MISSING:
                    return merged
        if preset_only:
            self.take(path, base, theirs)
            return theirs
        if base is MISSING:
            self.conflict(path, f"you set {_show(ours)}; the preset sets {_show(theirs)}")
        else:
            self.conflict(
                path,
                f"you changed {_show(base)} to {_show(ours)}; "
                f"the preset changes it to {_show(theirs)}",
            )
        return ours

    def mapping(self, base: dict, ours: dict, theirs: dict, path: str) -> dict:
        merged = {}
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            value = self.value(
                base.get(key, MISSING),
                ours.get(key, MISSING),
                theirs.get(key, MISSING),
                join(path, key),
                key,
            )
            if value is not MISSING:
                merged[key] = value
        return merged

    def items(self, base: list, ours: list, theirs: list, path: str, key: str | None) -> Any:
        """A list merged item by item; MISSING when its items have no identity."""
        base_keys = _identities(base, None)
        ours_keys = _identities(ours, base_keys)
        theirs_keys = _identities(theirs, base_keys)
        if base_keys is None or ours_keys is None or theirs_keys is None:
            return MISSING
        was = dict(zip(base_keys, base, strict=True))
        mine = dict(zip(ours_keys, ours, strict=True))
        new = dict(zip(theirs_keys, theirs, strict=True))
        word = ITEM_WORDS.get(key or "", "item")
        kept = []
        for identity in ours_keys:
            if identity in new or identity not in was:
                kept.append(identity)
            elif _same(mine[identity], was[identity]):
                self.take(path, mine[identity], MISSING, f"{word} {_name(identity)}")
            else:
                self.conflict(
                    path,
                    f"the preset removes {word} {_name(identity)}, which you changed; kept it",
                )
                kept.append(identity)
        for position, identity in enumerate(theirs_keys):
            if identity in mine:
                continue
            if identity in was:
                if not _same(new[identity], was[identity]):
                    self.conflict(
                        path,
                        f"you removed {word} {_name(identity)}, which the preset changes; "
                        "left it removed",
                    )
                continue
            kept.insert(_after(theirs_keys[:position], kept), identity)
        merged = []
        for index, identity in enumerate(kept):
            at = join(path, index)
            if identity not in mine:
                self.take(at, MISSING, new[identity], f"{word} {_name(identity)}")
                merged.append(new[identity])
            elif identity not in new:
                merged.append(mine[identity])
            else:
                base_item = was.get(identity, MISSING)
                merged.append(self.value(base_item, mine[identity], new[identity], at, None))
        return merged

    def take(self, path: str, before: Any, after: Any, what: str | None = None) -> None:
        if after is MISSING:
            message = f"the preset removes {what}" if what else "the preset removes this"
        elif before is MISSING:
            message = f"the preset adds {what or _show(after)}"
        else:
            message = f"the preset changes {_show(before)} to {_show(after)}"
        self.taken.append(Change(path, message))

    def conflict(self, path: str, message: str) -> None:
        self.conflicts.append(Problem(path, f"{message}; your version is kept"))


def _identities(items: list, base_keys: list | None) -> list | None:
    """The identity of each item, or None when some item has none or two share one."""
    known = set(base_keys or ())
    keys = []
    for item in items:
        identity = _identity(item)
        if identity is None:
            return None
        # A renamed item is the item it was renamed from.
        renamed = item.get("renamed_from") if isinstance(item, dict) else None
        if identity not in known and isinstance(renamed, str) and ("name", renamed) in known:
            identity = ("name", renamed)
        keys.append(identity)
    if len(set(keys)) != len(keys):
        return None
    return keys


def _identity(item: Any) -> tuple | None:
    if isinstance(item, str | int | float | bool):
        return ("item", json.dumps(item))
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("name"), str):
        return ("name", item["name"])
    if isinstance(item.get("value"), str | int | float | bool):
        return ("value", json.dumps(item["value"]))
    if isinstance(item.get("field"), str):
        # A form item given as a bare name is the same item as {"field": name}.
        return ("item", json.dumps(item["field"]))
    if "section" in item:
        heading = {"section": item["section"], "tab": item.get("tab")}
        return ("section", json.dumps(heading, sort_keys=True, ensure_ascii=False))
    return None


def _after(earlier: list, kept: list) -> int:
    """Where an item the preset adds goes: after the nearest item before it that is kept."""
    for identity in reversed(earlier):
        if identity in kept:
            return kept.index(identity) + 1
    return 0


def _name(identity: tuple) -> str:
    kind, value = identity
    if kind == "name":
        return f"'{value}'"
    named = json.loads(value)
    return f"'{localise(named['section']) if kind == 'section' else named}'"


def _same(left: Any, right: Any) -> bool:
    if left is MISSING or right is MISSING:
        return left is right
    return type(left) is type(right) and left == right


def _show(value: Any, limit: int = 60) -> str:
    if value is MISSING:
        return "nothing"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"
