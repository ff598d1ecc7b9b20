"""form_rules.js decides what the server decides: the same states on the same would-be record.

The script's evaluation core runs under node with the vendored json-logic-js,
on the manifest the page would embed and the inputs the form would submit; the
server's reading of the same request must give the same states and the same
rule data.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from form_engine import bind, evaluate_form, manifest
from form_engine.rules import base_record
from form_engine.submission import read_submitted
from form_engine.values import browser_value

from .conftest import CONTEXT, model, with_form
from .test_submission import DEAL, STORED, chain_form

STATIC = Path(__file__).parents[2] / "app" / "static"
LOGIC_JS = STATIC / "vendor" / "json-logic-js" / "logic.js"
FORM_RULES_JS = STATIC / "js" / "form_rules.js"
NODE_HARNESS = """
global.jsonLogic = require(process.argv[1]);
const FormRules = require(process.argv[2]);
const lines = require("readline").createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const { manifest, inputs, picked } = JSON.parse(line);
  let out;
  try {
    const outcome = FormRules.evaluate(manifest, inputs, picked);
    out = { states: outcome.states, data: outcome.data, record: outcome.record };
  } catch (error) {
    out = { error: String(error && error.stack) };
  }
  process.stdout.write(JSON.stringify(out) + "\\n");
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required to run form_rules.js; `node` is not on PATH")
    process = subprocess.Popen(
        [node, "-e", NODE_HARNESS, str(LOGIC_JS), str(FORM_RULES_JS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )

    def run(page_manifest: dict, inputs: dict, picked: dict) -> dict:
        request = {"manifest": page_manifest, "inputs": inputs, "picked": picked}
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"node stopped answering (exit code {process.poll()})")
        out = json.loads(line)
        assert "error" not in out, out.get("error")
        return out

    try:
        yield run
    finally:
        process.stdin.close()
        process.wait(timeout=10)
        process.stdout.close()


def close(python: Any, javascript: Any) -> bool:
    if isinstance(python, bool) or isinstance(javascript, bool):
        return python is javascript
    if isinstance(python, int | float) and isinstance(javascript, int | float):
        return math.isclose(python, javascript, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(python, list):
        return (
            isinstance(javascript, list)
            and len(python) == len(javascript)
            and all(map(close, python, javascript))
        )
    if isinstance(python, dict):
        return (
            isinstance(javascript, dict)
            and python.keys() == javascript.keys()
            and all(close(python[k], javascript[k]) for k in python)
        )
    return python == javascript


def agree(
    browser,
    spec,
    inputs: dict,
    current=None,
    *,
    timezone="UTC",
    resolve=None,
    picked=None,
    locked=frozenset(),
):
    """Both sides on one request; returns the server's states for further checks."""
    page = manifest(spec, current, context=CONTEXT, timezone=timezone, resolve=resolve)
    for item in page["items"]:
        item["locked"] = item["field"] in locked
    page["inputs"] = [n for n in page["inputs"] if n not in locked]
    page = json.loads(json.dumps(page))
    javascript = browser(page, inputs, picked or {})
    form = bind(spec, inputs, timezone=timezone)
    base = base_record(spec, current, CONTEXT)
    submitted, _ = read_submitted(spec, form, timezone, base)
    server = evaluate_form(
        spec, base, submitted, context=CONTEXT, resolve=resolve, locked=frozenset(locked)
    )
    states = {name: state.as_dict() for name, state in server.states.items()}
    assert javascript["states"] == states
    data = json.loads(json.dumps(browser_value(server.data)))
    differing = {
        key: (data.get(key, "<absent>"), javascript["data"].get(key, "<absent>"))
        for key in data.keys() | javascript["data"].keys()
        if not close(data.get(key, "<absent>"), javascript["data"].get(key, "<absent>"))
    }
    assert differing == {}
    return server.states


@pytest.fixture
def deal_form(cache, sales):
    return cache.spec(sales, "deal")


def test_a_new_deal_lost_without_a_reason(browser, deal_form):
    states = agree(browser, deal_form, {**DEAL, "stage": ["lost"], "lost_reason": [""]})
    assert states["lost_reason"].required and states["lost_reason"].visible


def test_an_edit_with_rows_and_formulas(browser, deal_form):
    inputs = {
        **DEAL,
        "probability": ["33.5"],
        "lines-0-id": ["31"],
        "lines-0-product": ["Valve"],
        "lines-0-quantity": ["3"],
        "lines-0-unit_price": ["19.99"],
        "lines-1-product": ["Pump"],
        "lines-1-quantity": ["x"],
        "lines-1-unit_price": ["5"],
    }
    agree(browser, deal_form, inputs, STORED)


def test_a_hidden_reason_and_an_absent_input(browser, deal_form):
    inputs = {**DEAL, "lost_reason": ["typed anyway"]}
    del inputs["amount"]
    states = agree(browser, deal_form, inputs, STORED)
    assert not states["lost_reason"].visible


def test_a_chain_of_conditions(browser, cache, kit_doc):
    app = chain_form(
        kit_doc,
        {"field": "notes", "visible_when": {"==": [{"var": "colour"}, "red"]}},
        {"field": "count", "visible_when": {"==": [{"var": "notes"}, "show"]}},
        {"field": "ratio", "required_when": {">": [{"var": "count"}, 3]}},
    )
    spec = cache.spec(app, "thing", "chain")
    for colour in ("red", "blue"):
        inputs = {"title": ["t"], "colour": [colour], "notes": ["show"], "count": ["1e1"]}
        agree(browser, spec, inputs)


def test_conditions_that_keep_flipping(browser, cache, kit_doc):
    app = chain_form(
        kit_doc,
        {"field": "notes", "visible_when": {"==": [{"var": "count"}, 1]}},
        {"field": "count", "visible_when": {"!=": [{"var": "notes"}, "a"]}},
        {"field": "due", "visible_when": {"==": [{"var": "colour"}, "red"]}},
    )
    spec = cache.spec(app, "thing", "chain")
    inputs = {"title": ["t"], "notes": ["a"], "count": ["1"], "colour": ["red"], "due": ["x"]}
    states = agree(browser, spec, inputs)
    assert states["notes"].read_only and states["count"].read_only
    assert states["due"].accepts  # not part of the cycle


def test_read_only_when_and_locks(browser, cache, sales_doc):
    doc = with_form(
        sales_doc,
        {
            "name": "deal_review",
            "entity": "deal",
            "layout": [
                {
                    "section": "Review",
                    "fields": [
                        "title",
                        "stage",
                        {"field": "amount", "read_only_when": {"==": [{"var": "stage"}, "won"]}},
                        {
                            "field": "probability",
                            "visible_when": {"<": [{"var": "amount"}, 500]},
                        },
                    ],
                }
            ],
        },
    )
    spec = cache.spec(model(doc), "deal", "deal_review")
    inputs = {"title": ["t"], "stage": ["won"], "amount": ["100"], "probability": ["5"]}
    states = agree(browser, spec, inputs, STORED)
    # amount is read-only, so the stored 1000 counts, so probability is hidden.
    assert states["amount"].read_only and not states["probability"].visible
    agree(browser, spec, {**inputs, "stage": ["lead"]}, STORED, locked={"stage"})


def test_rules_through_references(browser, cache, sales_doc):
    doc = with_form(
        sales_doc,
        {
            "name": "by_tier",
            "entity": "deal",
            "layout": [
                {
                    "section": "S",
                    "fields": [
                        "title",
                        "account",
                        {
                            "field": "discount_pct",
                            "visible_when": {"==": [{"var": "account.tier"}, "A"]},
                        },
                    ],
                }
            ],
        },
    )
    spec = cache.spec(model(doc), "deal", "by_tier")
    accounts = {1: {"id": 1, "tier": "A", "annual_revenue": "12.50"}, 2: {"id": 2, "tier": "C"}}

    def resolve(entity, record_id):
        return accounts.get(record_id)

    inputs = {"title": ["t"], "account": ["1"], "discount_pct": ["5"]}
    assert agree(browser, spec, inputs, STORED, resolve=resolve)["discount_pct"].visible
    changed = {**inputs, "account": ["2"]}
    picked = {"account": {"id": 2, "tier": "C"}}
    states = agree(browser, spec, changed, STORED, resolve=resolve, picked=picked)
    assert not states["discount_pct"].visible


def test_parsing_numbers_dates_options_and_zones(browser, cache, kit_doc):
    reads_all = {
        "and": [
            {"var": "count"},
            {"var": "ratio"},
            {"var": "due"},
            {"var": "at"},
            {"var": "tags"},
            {"var": "active"},
            {"var": "email"},
        ]
    }
    app = chain_form(
        kit_doc,
        "count",
        "ratio",
        "due",
        "at",
        "tags",
        "active",
        "email",
        "other",
        {"field": "notes", "visible_when": reads_all},
    )
    spec = cache.spec(app, "thing", "chain")
    cases = [
        {"count": ["7"], "ratio": ["0.125"], "due": ["2026-02-28"], "at": ["2026-03-01T08:00"]},
        {"count": [" 1.0 "], "ratio": ["1e2"], "due": ["2026-02-30"], "at": ["2026-03-01"]},
        {"count": ["0x10"], "ratio": ["abc"], "due": [""], "at": ["2026-10-25T02:30:15"]},
        {"tags": ["b", "z", "b"], "active": ["true"], "email": ["  a@b.co "], "other": ["007"]},
        {"colour": ["purple"], "other": ["-1"], "count": ["1e400"]},
        # The hour London's clocks repeat, and the hour they skip.
        {"at": ["2026-10-25T01:30"], "due": ["0999-01-01"]},
        {"at": ["2026-03-29T01:30"]},
    ]
    for case in cases:
        for timezone in ("UTC", "Asia/Shanghai", "Europe/London"):
            agree(browser, spec, {"title": ["t"], **case}, timezone=timezone)
