"""The industry presets shipped in this folder, and loading their sample data.

A preset is an app document (``crm-app/1``) in ``presets/<name>.json``, with
``sample_data``: entity name → list of records, where a reference is given by
value, ``{"$ref": "account", "name": "Acme"}`` (the record of that entity whose
fields have those values). :func:`import_sample_data` creates those records
through the record service, so they pass exactly the checks a user's input
passes, and resolves each reference to the id of the record it names.

Pure Python: no Flask, usable from the ``crm`` command, the API and scripts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select

from metamodel.errors import CrmError, InvalidDocument, NotFound, Problem
from metamodel.system_tables import users
from metamodel.validate import parse_document
from records.query import ListQuery

PRESETS_DIR = Path(__file__).resolve().parent
REF = "$ref"
REFERENCE_TYPES = ("reference", "multi_reference")

Text = str | dict[str, str] | None


class PresetError(CrmError):
    """A preset that cannot be read, or sample data that cannot be imported."""

    code = "invalid_preset"


@dataclass(frozen=True)
class PresetInfo:
    name: str
    industry: str | None
    label: Text
    description: Text
    entities: tuple[str, ...]
    workflows: tuple[str, ...]
    path: Path

    def text(self, key: str = "label", language: str = "en") -> str:
        """The label or description in ``language``, then English, then any."""
        return localised(getattr(self, key), language) or self.name


def localised(value: Text, language: str = "en") -> str:
    if isinstance(value, str) or value is None:
        return value or ""
    return value.get(language) or value.get("en") or next(iter(value.values()), "")


# --- the catalogue ---------------------------------------------------------------------


def preset_paths() -> list[Path]:
    return sorted(PRESETS_DIR.glob("*.json"))


def list_presets() -> list[PresetInfo]:
    """Every preset in the package folder, by name."""
    infos = []
    for path in preset_paths():
        doc = load_preset(path)
        infos.append(
            PresetInfo(
                name=doc.get("name") or path.stem,
                industry=doc.get("industry"),
                label=doc.get("label"),
                description=doc.get("description"),
                entities=tuple(_names(doc, "entities")),
                workflows=tuple(_names(doc, "workflows")),
                path=path,
            )
        )
    return infos


def _names(doc: dict, key: str) -> Iterator[str]:
    for item in doc.get(key) or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            yield item["name"]


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """The document of the preset named ``name_or_path``, or of the file at that path.

    A bare name (``b2b_sales``) is looked up in the package folder; anything with
    a directory part or a ``.json`` suffix is read as a file. The document is
    parsed, not validated: publishing it validates it.
    """
    path = _preset_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PresetError(f"{path.name}: the file is not UTF-8 text") from None
    except OSError as error:
        raise PresetError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        return parse_document(text, source=path.name)
    except InvalidDocument as error:
        problems = error.problems
        raise PresetError(
            f"{path.name}: " + "; ".join(problem.message for problem in problems),
            problems=problems,
        ) from None


def _preset_path(name_or_path: str | Path) -> Path:
    if isinstance(name_or_path, Path):
        is_path = True
    elif isinstance(name_or_path, str) and name_or_path.strip():
        is_path = "/" in name_or_path or "\\" in name_or_path or name_or_path.endswith(".json")
    else:
        raise PresetError("give a preset name or the path of a preset file")
    if is_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise NotFound(f"there is no preset file {path}")
        return path
    path = PRESETS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = ", ".join(p.stem for p in preset_paths()) or "none"
        raise NotFound(f"there is no preset '{name_or_path}'; the presets are: {known}")
    return path


# --- sample data -------------------------------------------------------------------------


def sample_records(doc: dict) -> list[tuple[str, dict]]:
    """The sample records as ``(entity, data)``, each after the records it refers to.

    References are left as they are written (``{"$ref": ...}``). Entities come in
    the document's order, moved after the entities they refer to; a record that
    refers to a record of its own entity must come after it in the list. Where
    entities refer to each other in a circle, the document's order decides.
    """
    return [(entity, data) for entity, _, data in _ordered(doc)]


def _ordered(doc: dict) -> list[tuple[str, int, dict]]:
    data = doc.get("sample_data") or {}
    if not isinstance(data, dict):
        return []
    names = list(data)
    needs = {
        name: {
            target
            for record in data[name] or []
            for target in _targets(record)
            if target != name and target in data
        }
        for name in names
    }
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and needs[n] <= set(order)]
        # A circle: take the first remaining entity; its forward references are deferred.
        order.append(ready[0] if ready else next(n for n in names if n not in order))
    return [
        (name, index, copy.deepcopy(record))
        for name in order
        for index, record in enumerate(data[name] or [])
    ]


def _targets(value: Any) -> Iterator[str]:
    """The entities the ``$ref`` objects inside ``value`` name (child rows included)."""
    if isinstance(value, dict):
        if isinstance(value.get(REF), str):
            yield value[REF]
            return
        for item in value.values():
            yield from _targets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _targets(item)


def import_sample_data(records_service, actor, doc: dict) -> dict[str, int]:
    """Create the sample records of ``doc`` (already published) through the record service.

    Returns the number of records created per entity. A reference names its
    record by value (``{"$ref": "account", "name": "Acme"}``; several fields, or a
    reference of its own, may name it); it is looked up among the records this
    import created, then among the app's existing records. A reference to a
    record created later in the import is filled in once that record exists.
    Child table rows and multi_reference lists resolve the same way; a user field
    may give a username. A sample record may give a workflow's state (the
    workflow's state field declared as a select field); it is set as the
    workflow engine sets states, recorded in the audit as "sample data".

    Each record is created in its own transaction of ``records_service``, so a
    refused record leaves the ones before it in place; :mod:`presets.importing`
    hands in a service whose transactions are savepoints of one transaction, to
    import all or nothing. Errors point into the document:
    ``/sample_data/<entity>/<index>/<field>``.
    """
    return _Importer(records_service, actor, doc).run()


@dataclass
class _Deferred:
    entity: str
    index: int
    record_id: int
    field: str
    value: Any


class _Importer:
    def __init__(self, records_service, actor, doc: dict):
        self.records = records_service
        self.actor = actor
        self.app = doc["name"]
        self.fields = {
            entity["name"]: {f["name"]: f for f in entity.get("fields", [])}
            for entity in doc.get("entities", [])
        }
        # entity -> (the record as written, its values with references resolved, its id)
        self.created: dict[str, list[tuple[dict, dict, int]]] = {}
        self.pending: dict[str, int] = {}
        self.deferred: list[_Deferred] = []
        self.counts: dict[str, int] = {}
        self.states: dict[str, dict[str, set[str]]] = {}
        for workflow in doc.get("workflows", []):
            names = {state["name"] for state in workflow.get("states", [])}
            self.states.setdefault(workflow["entity"], {})[workflow["state_field"]] = names
        self.plan = _ordered(doc)
        self.users: dict[str, int] | None = None

    def run(self) -> dict[str, int]:
        for entity, _, _ in self.plan:
            self.pending[entity] = self.pending.get(entity, 0) + 1
        for entity, index, data in self.plan:
            at = f"/sample_data/{entity}/{index}"
            values, later = self.resolve_record(entity, data, at, allow_defer=True)
            states = self.pop_states(entity, values, at)
            record = self.call(at, self.records.create, self.actor, self.app, entity, values)
            if states:
                self.call(at, self.set_states, entity, record["id"], states)
            self.created.setdefault(entity, []).append((data, values, record["id"]))
            self.pending[entity] -= 1
            self.counts[entity] = self.counts.get(entity, 0) + 1
            self.deferred += [_Deferred(entity, index, record["id"], f, v) for f, v in later]
        for item in self.deferred:
            at = f"/sample_data/{item.entity}/{item.index}"
            value = self.resolve_value(item.entity, item.field, item.value, at, allow_defer=False)
            self.call(
                at,
                self.records.update,
                self.actor,
                self.app,
                item.entity,
                item.record_id,
                {item.field: value},
            )
        return self.counts

    def pop_states(self, entity: str, values: dict, at: str) -> dict[str, str]:
        """The workflow states a sample record is in (taken out of ``values``)."""
        states = {}
        for field, names in self.states.get(entity, {}).items():
            if field not in values:
                continue
            value = values.pop(field)
            if value not in names:
                where = f"{at}/{field}"
                raise PresetError(
                    f"{where}: '{value}' is not a state of the workflow; the states are: "
                    + ", ".join(sorted(names)),
                    path=where,
                )
            states[field] = value
        return states

    def set_states(self, entity: str, record_id: int, states: dict[str, str]) -> None:
        """Put a sample record in its workflow states, as the workflow engine would: audited."""
        with self.records.writing() as conn:
            runtime = self.records.runtime(self.app, entity, conn)
            self.records.system_update(
                conn, self.actor, runtime, record_id, states, comment="sample data"
            )

    def call(self, at: str, operation, *args):
        try:
            return operation(*args)
        except CrmError as error:
            problems = [Problem(at + problem.path, problem.message) for problem in error.problems]
            raise PresetError(
                f"sample record {at} was refused: " + "; ".join(map(str, problems)),
                path=at,
                problems=problems,
            ) from None

    # --- references ----------------------------------------------------------------

    def resolve_record(
        self, entity: str, data: dict, at: str, *, allow_defer: bool
    ) -> tuple[dict, list[tuple[str, Any]]]:
        """``data`` with references as ids, and the ``(field, value)`` pairs to set later."""
        if not isinstance(data, dict):
            raise PresetError(f"{at}: a sample record must be an object", path=at)
        fields = self.fields.get(entity, {})
        values, later = {}, []
        for name, value in data.items():
            field = fields.get(name) or {}
            kind = field.get("type")
            where = f"{at}/{name}"
            if kind in REFERENCE_TYPES or kind == "user" or kind == "child_table":
                resolved = self.resolve_value(entity, name, value, at, allow_defer=allow_defer)
                if resolved is _LATER:
                    later.append((name, value))
                    continue
                values[name] = resolved
            elif isinstance(value, dict) and REF in value:
                raise PresetError(f"{where}: '{name}' is not a reference field", path=where)
            else:
                values[name] = value
        return values, later

    def resolve_value(self, entity: str, name: str, value: Any, at: str, *, allow_defer: bool):
        field = self.fields.get(entity, {}).get(name) or {}
        kind = field.get("type")
        where = f"{at}/{name}"
        if value is None:
            return None
        if kind == "user":
            return self.user_id(value, where)
        if kind == "child_table":
            if not isinstance(value, list):
                return value  # the record service says what is wrong
            target = field.get("target")
            rows = []
            for index, row in enumerate(value):
                resolved, later = self.resolve_record(
                    target, row, f"{where}/{index}", allow_defer=allow_defer
                )
                if later:
                    return _LATER  # the rows are given once every record they name exists
                rows.append(resolved)
            return rows
        if kind == "multi_reference":
            if not isinstance(value, list):
                raise PresetError(f"{where}: give a list of references", path=where)
            ids = []
            for index, item in enumerate(value):
                found = self.find(item, f"{where}/{index}", allow_defer)
                if found is _LATER:
                    return _LATER
                ids.append(found)
            return ids
        return self.find(value, where, allow_defer)

    def find(self, ref: Any, where: str, allow_defer: bool):
        """The id of the record ``ref`` names; _LATER if it is created later in this import."""
        if not isinstance(ref, dict) or not isinstance(ref.get(REF), str):
            raise PresetError(
                f'{where}: give a reference by value, e.g. {{"{REF}": "account", "name": "Acme"}}',
                path=where,
            )
        target = ref[REF]
        criteria = {key: value for key, value in ref.items() if key != REF}
        if not criteria:
            raise PresetError(
                f"{where}: name the '{target}' record by one of its fields", path=where
            )
        app, entity = target.split(".", 1) if "." in target else (self.app, target)
        for key, value in criteria.items():
            # A record may be named by a reference of its own: {"$ref": ..., "student": {...}}.
            if isinstance(value, dict) and REF in value:
                found = self.find(value, f"{where}/{key}", allow_defer)
                if found is _LATER:
                    return _LATER
                criteria[key] = found
        matches = []
        if app == self.app:
            matches = [
                record_id
                for given, values, record_id in self.created.get(entity, [])
                if all(
                    _same(values.get(k), v) or _same(given.get(k), v) for k, v in criteria.items()
                )
            ]
        if not matches:
            if app == self.app and allow_defer and self.pending.get(entity):
                return _LATER
            matches = self.existing(app, entity, criteria, where)
        if len(matches) == 1:
            return matches[0]
        named = ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in criteria.items())
        if not matches:
            raise PresetError(f"{where}: there is no {target} record with {named}", path=where)
        raise PresetError(
            f"{where}: {len(matches)} {target} records have {named}; name one record only",
            path=where,
        )

    def existing(self, app: str, entity: str, criteria: dict, where: str) -> list[int]:
        rule = {"and": [{"==": [{"var": key}, value]} for key, value in criteria.items()]}
        try:
            page = self.records.list(self.actor, app, entity, ListQuery(filter=rule, per_page=2))
        except CrmError as error:
            raise PresetError(f"{where}: {error.message}", path=where) from None
        return [item["id"] for item in page["items"]]

    def user_id(self, value: Any, where: str) -> Any:
        """A user field's value: an id, or a username looked up among the users."""
        if not isinstance(value, str):
            return value
        if self.users is None:
            with self.records.reading() as conn:
                rows = conn.execute(select(users.c.username, users.c.id))
                self.users = {username: user_id for username, user_id in rows}
        if value not in self.users:
            raise PresetError(f"{where}: there is no user '{value}'", path=where)
        return self.users[value]


class _Later:
    def __repr__(self) -> str:
        return "<resolved later>"


_LATER = _Later()


def _same(left: Any, right: Any) -> bool:
    """Equal as written in a document: 100 and "100.00" name the same amount."""
    if left is None or right is None:
        return False
    if left == right and type(left) is type(right):
        return True
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    if isinstance(left, int | float | Decimal | str) and isinstance(right, int | float | Decimal):
        left, right = right, left
    if isinstance(left, int | float | Decimal) and isinstance(right, int | float | Decimal | str):
        try:
            return Decimal(str(left)) == Decimal(str(right))
        except InvalidOperation:
            return False
    return left == right


__all__ = [
    "PRESETS_DIR",
    "PresetError",
    "PresetInfo",
    "import_sample_data",
    "list_presets",
    "load_preset",
    "localised",
    "sample_records",
]
