"""The browser's copy of a form's rules: JSON that ``app/static/js/form_rules.js`` runs.

The page embeds :func:`manifest_json` in ``<script type="application/json"
id="form-rules">``. The script re-evaluates every rule with json-logic-js on
each change, with the algorithm of ``form_engine.rules`` (the same fixpoint,
the same parsing of inputs, the same computed fields), so what the page shows
is what the server will decide. The server still decides: the manifest only
spares the user a round trip.

It holds, besides the rules and the names each rule reads: how to read each
input (its kind, options, scale), the record the form starts from (``base``:
JSON numbers for decimals, as ``metamodel.jsonlogic`` gives the browser), the
records behind followed references (``referenced``), the context variables,
and the text each input shows for its stored value (``initial``), which the
script puts back when a rule makes a field read-only.
"""

from __future__ import annotations

import json
from typing import Any

from metamodel import field_types
from metamodel.jsonlogic import rule_data
from metamodel.jsonlogic.sql import followed_references
from metamodel.model import FieldModel
from metamodel.text import localise

from .definition import FormSpec, reads
from .rules import Resolver, base_record, evaluate_form, max_rounds
from .values import KINDS, browser_value, input_text, kind, option_values, zone

FORMAT = "form-rules/1"


def field_info(fld: FieldModel) -> dict[str, Any]:
    """How the browser reads one field's input, and formats its computed value."""
    info: dict[str, Any] = {"type": fld.type_name, "kind": kind(fld)}
    spec = fld.value_spec
    if spec.get("options"):
        info["options"] = option_values(fld)
    result = spec["type"]
    if fld.computed:
        info["result"] = KINDS[result]
    if field_types.get(result).storage == field_types.DECIMAL:
        info["scale"] = field_types.decimal_scale(spec)
    return info


def _formulas(spec: FormSpec) -> list[dict[str, Any]]:
    return [
        {"field": f.name, "expression": f.doc["expression"], "reads": reads(f.doc["expression"])}
        for f in spec.formulas
    ]


def _computed_parts(spec: FormSpec) -> dict[str, Any]:
    lookups, rollups = [], []
    for fld in spec.entity.fields.values():
        if fld.type_name == "lookup":
            lookups.append({"field": fld.name, "via": fld.doc["via"], "source": fld.doc["field"]})
        elif fld.type_name == "rollup":
            entry = {
                "field": fld.name,
                "via": fld.doc["via"],
                "aggregate": fld.doc["aggregate"],
                "source": fld.doc.get("field"),
                "filter": fld.doc.get("filter"),
            }
            # Only rollups over this form's own child rows can be worked out in the page.
            via = spec.children.get(fld.doc["via"])
            entry["live"] = via is not None and not (
                entry["filter"] is not None and followed_references(entry["filter"], via.entity)
            )
            rollups.append(entry)
    return {"lookups": lookups, "rollups": rollups}


def _fields(spec: FormSpec) -> dict[str, Any]:
    return {name: field_info(fld) for name, fld in spec.entity.fields.items()}


def manifest(
    spec: FormSpec,
    current: dict | None = None,
    *,
    language: str = "en",
    timezone: str = "UTC",
    context: dict | None = None,
    resolve: Resolver | None = None,
    locked: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    """The JSON-serialisable description of ``spec``'s rules for the page (see the docstring)."""
    locked = frozenset(locked)
    base = base_record(spec, current, context)
    evaluation = evaluate_form(spec, base, {}, context=context, resolve=resolve, locked=locked)
    tz = zone(timezone)
    items = []
    for name, item in spec.items.items():
        entry: dict[str, Any] = {
            "field": name,
            "required": item.static_required,
            "display_only": item.display_only,
            "locked": name in locked,
            "reads": {key: item.reads(key) for key in item.rules},
        }
        entry.update(item.rules)
        items.append(entry)
    children = {
        name: {
            "fields": _fields(child),
            "inputs": child.inputs,
            "required": [n for n, i in child.items.items() if i.static_required],
            "formulas": _formulas(child),
        }
        for name, child in spec.children.items()
    }
    context_data = rule_data({}, context) if context else {}
    return {
        "format": FORMAT,
        "app": spec.app.name,
        "entity": spec.entity.name,
        "form": spec.name,
        "version": spec.version,
        "timezone": timezone,
        "true_words": sorted(field_types.TRUE_WORDS),
        "fields": _fields(spec),
        "items": items,
        "inputs": [n for n in spec.inputs if n not in locked],
        "validations": [
            {
                "rule": v["rule"],
                "message": localise(v["message"], language),
                "fields": v.get("fields", []),
                "reads": reads(v["rule"]),
            }
            for v in spec.validations
        ],
        "formulas": _formulas(spec),
        **_computed_parts(spec),
        "children": children,
        "references": spec.followed,
        "base": browser_value(base),
        "referenced": _referenced(spec, evaluation.data),
        "context": browser_value(context_data),
        "initial": {
            name: _initial_text(item.field, base.get(name), tz)
            for name, item in spec.items.items()
            if name in spec.inputs and name not in spec.children
        },
        "states": {name: state.as_dict() for name, state in evaluation.states.items()},
        "max_rounds": max_rounds(spec),
    }


def _initial_text(fld: FieldModel, value: Any, tz) -> list[str]:
    if isinstance(value, list):
        return [input_text(fld, v, tz) for v in value if not isinstance(v, dict)]
    if value is None or value is False:
        return []
    return [input_text(fld, value, tz)]


def _referenced(spec: FormSpec, data: dict) -> dict[str, dict[str, Any]]:
    """For each followed path, the records it held, by id (what the page cannot fetch)."""
    found: dict[str, dict[str, Any]] = {}
    for path in spec.followed:
        holder: Any = data
        for segment in path.split("."):
            holder = holder.get(segment) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and holder.get("id") is not None:
            found.setdefault(path, {})[str(holder["id"])] = browser_value(holder)
    return found


def manifest_json(spec: FormSpec, current: dict | None = None, **options: Any) -> str:
    """:func:`manifest` as JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(manifest(spec, current, **options), ensure_ascii=False, allow_nan=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text
