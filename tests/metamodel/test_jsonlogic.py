"""The JsonLogic evaluator: hand-written cases, and agreement with json-logic-js 2.0.5.

Every hand-written case (tests/metamodel/jsonlogic_cases.json) and a batch of
generated rules run through the Python evaluator and through the vendored
json-logic-js under Node, which must give the same answer. One Node process
serves the whole session: each request is one line of JSON (a list of
[rule, data] pairs), each reply one line (a list of results). Node is required:
without it these tests fail rather than skip, since the agreement is the point.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamodel.errors import CrmError
from metamodel.jsonlogic import RuleError, evaluate, normalise, rule_data, truthy, variables

ROOT = Path(__file__).resolve().parents[2]
CASES_FILE = Path(__file__).with_name("jsonlogic_cases.json")
LOGIC_JS = ROOT / "app" / "static" / "vendor" / "json-logic-js" / "logic.js"

# Reads one JSON list of [rule, data] per line, answers one JSON list of results per line.
# undefined becomes null and NaN/Infinity become null, as JSON.stringify writes them.
NODE_HARNESS = """
const jsonLogic = require(process.argv[1]);
const lines = require("readline").createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const results = JSON.parse(line).map(([rule, data]) => {
    try {
      const value = jsonLogic.apply(rule, data);
      return { value: value === undefined ? null : value };
    } catch (error) {
      return { error: String(error && error.message) };
    }
  });
  process.stdout.write(JSON.stringify(results) + "\\n");
});
"""

JsonLogicJs = Callable[[list[tuple[Any, Any]]], list[dict[str, Any]]]

_TAGS: dict[str, Callable[[str], Any]] = {
    "$decimal": Decimal,
    "$date": dt.date.fromisoformat,
    "$datetime": dt.datetime.fromisoformat,
    "$number": float,
}


def _decode(obj: dict) -> Any:
    if len(obj) == 1:
        ((key, value),) = obj.items()
        if key in _TAGS:
            return _TAGS[key](value)
    return obj


def _load_cases() -> list[dict]:
    document = json.loads(CASES_FILE.read_text(encoding="utf-8"), object_hook=_decode)
    return [
        {**case, "id": f"{group} #{index}"}
        for group, cases in document["groups"].items()
        for index, case in enumerate(cases)
    ]


CASES = _load_cases()


def _same(actual: Any, expected: Any) -> bool:
    """Equal, and of the same type: 3, 3.0 and Decimal("3") are different results."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _same(actual[k], expected[k]) for k in actual
        )
    if isinstance(expected, float) and expected == 0:
        return math.copysign(1, actual) == math.copysign(1, expected)
    return actual == expected


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _agrees(python: Any, javascript: Any) -> bool:
    """Python's result equals what JSON.stringify gave from JavaScript's.

    NaN and ±Infinity are null in JSON. Numbers compare numerically (JSON has no
    3.0), exactly, except that a Decimal, which JavaScript computed as a double,
    only has to be close.
    """
    if isinstance(python, float) and not math.isfinite(python):
        return javascript is None
    if isinstance(python, bool) or isinstance(javascript, bool):
        return type(python) is type(javascript) and python == javascript
    if isinstance(python, Decimal):
        return _is_number(javascript) and math.isclose(python, javascript, rel_tol=1e-9)
    if _is_number(python):
        return _is_number(javascript) and python == javascript
    if isinstance(python, list):
        return (
            isinstance(javascript, list)
            and len(python) == len(javascript)
            and all(map(_agrees, python, javascript))
        )
    if isinstance(python, dict):
        return (
            isinstance(javascript, dict)
            and python.keys() == javascript.keys()
            and all(_agrees(python[key], javascript[key]) for key in python)
        )
    return python == javascript


def _python_outcome(rule: Any, data: Any, context: dict | None = None) -> dict[str, Any]:
    try:
        return {"value": evaluate(rule, data, context)}
    except RuleError as error:
        return {"error": error.message}


def _outcomes_agree(python: dict[str, Any], javascript: dict[str, Any]) -> bool:
    if "error" in python or "error" in javascript:
        return "error" in python and "error" in javascript
    return _agrees(python["value"], javascript["value"])


@pytest.fixture(scope="session")
def json_logic_js() -> Iterator[JsonLogicJs]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js is required: the evaluator is checked against json-logic-js running under "
            "`node`, which was not found on PATH",
            pytrace=False,
        )
    if not LOGIC_JS.is_file():
        pytest.fail(f"{LOGIC_JS} is missing: run `python scripts/vendor_assets.py`", pytrace=False)
    process = subprocess.Popen(
        [node, "-e", NODE_HARNESS, str(LOGIC_JS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )

    def run(pairs: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
        # Decimals go to JavaScript as the numbers the browser would parse from JSON.
        process.stdin.write(json.dumps(pairs, default=float, allow_nan=False) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"node stopped answering (exit code {process.poll()})", pytrace=False)
        # JavaScript numbers are doubles: 71417442071652420 stands for 71417442071652416.0.
        return json.loads(line, parse_int=float)

    try:
        yield run
    finally:
        process.stdin.close()
        process.wait(timeout=10)
        process.stdout.close()


# Hand-written cases


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case):
    arguments = (case["rule"], case.get("data"), case.get("context"))
    if case.get("error"):
        with pytest.raises(RuleError):
            evaluate(*arguments)
        return
    actual = evaluate(*arguments)
    assert _same(actual, case["expected"]), f"got {actual!r}, expected {case['expected']!r}"


def test_there_are_enough_cases_for_every_operator():
    assert len(CASES) >= 250
    operators = {
        next(iter(case["rule"]))
        for case in CASES
        if isinstance(case["rule"], dict) and case["rule"]
    }
    expected = {"==", "===", "!=", "!==", "<", "<=", ">", ">=", "!", "!!", "and", "or", "if"}
    expected |= {"?:", "+", "-", "*", "/", "%", "min", "max", "var", "missing", "missing_some"}
    expected |= {"in", "cat", "substr", "merge", "map", "filter", "reduce", "all", "none", "some"}
    assert expected <= operators


def test_cases_agree_with_json_logic_js(json_logic_js):
    cases = [case for case in CASES if "differs" not in case]
    javascript = json_logic_js(
        [(case["rule"], rule_data(case.get("data"), case.get("context"))) for case in cases]
    )
    disagreements = [
        f"{case['id']}: {json.dumps(case['rule'], default=str)} "
        f"Python {python!r}, JavaScript {js!r}"
        for case, js in zip(cases, javascript, strict=True)
        for python in [_python_outcome(case["rule"], case.get("data"), case.get("context"))]
        if not _outcomes_agree(python, js)
    ]
    assert not disagreements, "\n".join(disagreements)


def test_documented_differences_do_differ(json_logic_js):
    """Each case marked "differs" really differs, so its note stays true."""
    cases = [case for case in CASES if "differs" in case and "log" not in case["rule"]]
    javascript = json_logic_js(
        [(case["rule"], rule_data(case.get("data"), case.get("context"))) for case in cases]
    )
    for case, js in zip(cases, javascript, strict=True):
        python = _python_outcome(case["rule"], case.get("data"), case.get("context"))
        # A function result (an inherited member) is dropped by JSON.stringify.
        assert "value" not in js or not _outcomes_agree(python, js), case["id"]


# Generated rules

NAMES = [
    "a", "b", "n", "s", "arr", "obj", "obj.x", "obj.y", "arr.0", "arr.1", "arr.length",
    "s.length", "s.0", "nul", "nul.x", "nothing", "nothing.deep", "", "current", "accumulator",
]  # fmt: skip
NUMBERS = [0, 1, -1, 2, 3, 10, 0.5, -1.5, 0.1, 0.2, 1e21, 1.5e-7, -0.0, 9007199254740992]
STRINGS = [
    "", "0", "1", "-1", "10", "9", " 12 ", "1e3", "0x1F", "1.5", "-0", ".5", "5.", "\t7\n",
    "1_000", "0b11", "+3", "1e", "abc", "a", "b", "null", "true", "Infinity", "a,b",
    "2026-01-31", "2026-02-01T09:30:00Z", "😀x", "3px",
]  # fmt: skip
EAGER_OPERATORS = [
    "==", "===", "!=", "!==", "<", "<=", ">", ">=", "!", "!!", "%", "in", "cat", "substr",
    "+", "*", "-", "/", "min", "max", "merge", "if", "?:", "and", "or",
]  # fmt: skip
ARRAY_OPERATORS = ["map", "filter", "all", "none", "some"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(NUMBERS),
    st.sampled_from(STRINGS),
    st.text(max_size=3),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "y", "0"]), children, max_size=2)
    ),
    max_leaves=6,
)
records = st.fixed_dictionaries(
    {
        "a": json_values,
        "b": json_values,
        "n": st.one_of(st.integers(-100, 100), st.floats(-1e6, 1e6), st.sampled_from(NUMBERS)),
        "s": st.sampled_from(STRINGS),
        "arr": st.lists(scalars, max_size=4),
        "obj": st.fixed_dictionaries({"x": scalars}, optional={"y": json_values}),
        "nul": st.none(),
    }
)
names = st.sampled_from(NAMES)
leaves = st.one_of(
    scalars,
    st.builds(lambda name: {"var": name}, names),
    st.builds(lambda name, default: {"var": [name, default]}, names, scalars),
    st.builds(dict),  # a fresh {} each time: two literals are two objects
)


def _operations(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.builds(
            lambda op, args: {op: args},
            st.sampled_from(EAGER_OPERATORS),
            st.lists(children, max_size=4),
        ),
        st.builds(lambda op, arg: {op: arg}, st.sampled_from(EAGER_OPERATORS), children),
        st.builds(
            lambda op, items, logic: {op: [items, logic]},
            st.sampled_from(ARRAY_OPERATORS),
            children,
            children,
        ),
        st.builds(lambda items, logic, start: {"reduce": [items, logic, start]}, *[children] * 3),
        st.builds(lambda keys: {"missing": keys}, st.lists(names, max_size=3)),
        st.builds(
            lambda count, keys: {"missing_some": [count, keys]},
            st.integers(0, 3),
            st.lists(names, max_size=3),
        ),
        st.lists(children, max_size=3),
    )


rules = st.recursive(leaves, _operations, max_leaves=12)


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rule=rules, data=st.one_of(records, records, json_values))
def test_generated_rules_agree_with_json_logic_js(json_logic_js, rule, data):
    (javascript,) = json_logic_js([(rule, data)])
    python = _python_outcome(rule, data)
    assert _outcomes_agree(python, javascript), f"Python {python!r}, JavaScript {javascript!r}"


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(number=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**25), 10**25))
def test_numbers_print_as_javascript_prints_them(json_logic_js, number):
    if isinstance(number, int) and abs(number) > 2**53:
        number = float(number)  # JavaScript only has doubles
    (javascript,) = json_logic_js([({"cat": [number]}, None)])
    assert evaluate({"cat": [number]}) == javascript["value"]


# The public API around evaluate


def test_rule_error_is_a_crm_error_with_a_clear_message():
    with pytest.raises(RuleError, match="unknown operator 'bogus'") as raised:
        evaluate({"bogus": [1]})
    assert isinstance(raised.value, CrmError)
    assert raised.value.code == "invalid_rule"
    with pytest.raises(RuleError, match="'log' is not supported"):
        evaluate({"log": ["x"]})
    with pytest.raises(RuleError, match="'method' is not supported"):
        evaluate({"method": ["abc", "length"]})


def test_truthy_follows_jsonlogic():
    assert [truthy(v) for v in ([], [0], 0, "0", "", None, {}, Decimal("0"), math.nan)] == [
        False, True, False, True, False, False, True, False, False,
    ]  # fmt: skip


def test_formula_with_decimals_stays_exact():
    rule = {"/": [{"*": [{"var": "amount"}, {"var": "probability"}]}, 100]}
    result = evaluate(rule, {"amount": Decimal("1234.56"), "probability": 35})
    assert result == Decimal("432.096") and isinstance(result, Decimal)
    assert evaluate({"+": [Decimal("0.1"), Decimal("0.2")]}) == Decimal("0.3")


def test_normalise_dates_datetimes_and_containers():
    paris = dt.timezone(dt.timedelta(hours=1))
    value = {
        "day": dt.date(2026, 1, 31),
        "at": dt.datetime(2026, 1, 31, 10, 30, 0, 999999, tzinfo=paris),
        "naive": dt.datetime(2026, 1, 31, 9, 30),
        "money": Decimal("12.30"),
        "rows": ({"n": 1}, [dt.date(2026, 2, 1)]),
        7: "seven",
    }
    assert normalise(value) == {
        "day": "2026-01-31",
        "at": "2026-01-31T09:30:00Z",
        "naive": "2026-01-31T09:30:00Z",
        "money": Decimal("12.30"),
        "rows": [{"n": 1}, ["2026-02-01"]],
        "7": "seven",
    }
    assert math.isinf(normalise(Decimal("Infinity")))
    with pytest.raises(RuleError, match="type set"):
        normalise({1, 2})


@settings(max_examples=100, derandomize=True, database=None)
@given(
    st.datetimes(timezones=st.just(dt.UTC)),
    st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))])),
)
def test_normalised_datetimes_sort_as_strings(first, second):
    if first.replace(microsecond=0) <= second.replace(microsecond=0):
        assert normalise(first) <= normalise(second)


def test_rule_data_adds_context_variables():
    now = dt.datetime(2026, 1, 31, 9, 30, tzinfo=dt.UTC)
    context = {"user": {"id": 3, "roles": ["sales"]}, "now": now, "today": now.date()}
    assert rule_data({"amount": Decimal("5")}, context) == {
        "amount": Decimal("5"),
        "$user": {"id": 3, "roles": ["sales"]},
        "$now": "2026-01-31T09:30:00Z",
        "$today": "2026-01-31",
    }
    assert rule_data(None, {"today": now.date()}) == {"$today": "2026-01-31"}
    assert rule_data([1], None) == [1]
    with pytest.raises(RuleError, match="object"):
        rule_data([1], context)


# variables


@pytest.mark.parametrize(
    "rule, expected",
    [
        (
            {"and": [{"==": [{"var": "account.tier"}, "gold"]}]},
            [("account.tier", "/and/0/==/0/var")],
        ),
        ({"var": ["a", {"var": "b"}]}, [("a", "/var/0"), ("b", "/var/1/var")]),
        ({"/": [{"var": "amount"}, 100]}, [("amount", "/~1/0/var")]),
        ({"map": [{"var": "items"}, {"var": "price"}]}, [("items", "/map/0/var")]),
        (
            {"reduce": [{"var": "lines"}, {"var": "current.qty"}, {"var": "start"}]},
            [("lines", "/reduce/0/var"), ("start", "/reduce/2/var")],
        ),
        ({"some": [{"var": "xs"}, {"var": "x"}]}, [("xs", "/some/0/var")]),
        ({"var": {"cat": ["a", {"var": "k"}]}}, [("k", "/var/cat/1/var")]),
        ({"var": ""}, [("", "/var")]),
        ({"var": 1}, [("1", "/var")]),
        ({"var": "$user.roles"}, [("$user.roles", "/var")]),
        ({"missing": ["a", "b"]}, [("a", "/missing/0"), ("b", "/missing/1")]),
        ({"missing": [["a"]]}, [("a", "/missing/0/0")]),
        (
            {"missing_some": [1, ["a", "b"]]},
            [("a", "/missing_some/1/0"), ("b", "/missing_some/1/1")],
        ),
        ({"==": [{"a": {"var": "x"}, "b": 1}, 1]}, []),
        (
            [{"var": "a"}, {"if": [{"var": "b"}, {"var": "c"}, 0]}],
            [
                ("a", "/0/var"),
                ("b", "/1/if/0/var"),
                ("c", "/1/if/1/var"),
            ],
        ),
        ("plain", []),
    ],
)
def test_variables(rule, expected):
    assert variables(rule) == expected
