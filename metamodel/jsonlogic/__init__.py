"""JsonLogic rules, evaluated exactly as json-logic-js 2.0.5 evaluates them in the browser.

One rule language serves form conditions, validations, workflow guards, view
filters, row-level permissions and formulas, and the same rule must give the
same answer in Python and in the browser. This package mirrors json-logic-js
2.0.5 (``app/static/vendor/json-logic-js/logic.js``) operator by operator,
JavaScript coercions included; the test suite runs every case through both and
compares.

Where Python and JavaScript cannot be identical:

* NaN and ±Infinity are the floats nan and ±inf; JSON.stringify writes them
  (and undefined) as null.
* ``undefined`` (``{"and": []}``, a missing argument) is ``None`` in results.
* Decimals (money) are computed exactly where JavaScript rounds to doubles:
  ``0.1 + 0.2`` of Decimals is ``Decimal("0.3")``, the browser gets
  0.30000000000000004 (see ``arithmetic``).
* Ints beyond ±2**53 in the data are exact here; JavaScript rounds them when it
  parses the JSON. Results of arithmetic past 2**53 become floats, as in JavaScript.
* Properties inherited from JavaScript prototypes (``{"var": "toString"}``) are
  not modelled; ``length`` and indices of arrays and strings are.

Public API: :func:`evaluate`, :func:`truthy`, :func:`normalise`, :func:`rule_data`,
:func:`variables` and :class:`RuleError`.
"""

from __future__ import annotations

from typing import Any

from .data import normalise, rule_data
from .errors import RuleError
from .evaluator import apply
from .values import UNDEFINED, truthy
from .variables import variables

__all__ = ["RuleError", "evaluate", "normalise", "rule_data", "truthy", "variables"]


def evaluate(rule: Any, data: Any = None, context: dict[str, Any] | None = None) -> Any:
    """The value of ``rule`` on ``data``; ``context`` fills ``$user``, ``$now``, ``$today``.

    ``context`` is e.g. ``{"user": {"id": 3, "roles": ["sales"]}, "now": datetime,
    "today": date}``; see :func:`rule_data`. Raises :class:`RuleError` for unknown
    operators, wherever json-logic-js would throw, and for rules nested past
    Python's recursion limit (hundreds of levels).
    """
    try:
        result = apply(rule, rule_data(data, context))
    except RecursionError:
        raise RuleError("the rule is nested too deeply to evaluate") from None
    return _without_undefined(result)


def _without_undefined(value: Any) -> Any:
    if value is UNDEFINED:
        return None
    if isinstance(value, list):
        return [_without_undefined(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_undefined(item) for key, item in value.items()}
    return value
