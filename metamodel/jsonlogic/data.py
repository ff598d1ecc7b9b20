"""The data a rule reads: plain JSON values, the same in Python and in the browser.

Records hold dates, datetimes and Decimals. A rule sees dates as ``YYYY-MM-DD``
and datetimes as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds, always this fixed
width), so comparing two of them compares ISO strings, exactly as the browser
does with the JSON it received. Decimals stay Decimals (the evaluator keeps
money exact); the browser gets them as JSON numbers.

Context variables are data too: ``{"user": ..., "now": ..., "today": ...}``
becomes the keys ``$user``, ``$now`` and ``$today`` next to the record's fields,
so ``{"var": "$user.roles"}`` is an ordinary ``var`` and the browser only has to
put the same keys into its data object.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .errors import RuleError
from .values import to_string

_SCALARS = (str, int, float, type(None))


def normalise(value: Any) -> Any:
    """``value`` as the JSON-ish value a rule reads (see the module docstring)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Decimal):
        return value if value.is_finite() else float(value)
    if isinstance(value, dt.datetime):
        # A naive datetime is taken as UTC, as the database columns take it.
        utc = value if value.tzinfo is None else value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        # JavaScript object keys are strings.
        return {
            key if isinstance(key, str) else to_string(normalise(key)): normalise(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    raise RuleError(f"a rule cannot read a value of type {type(value).__name__}")


def rule_data(data: Any, context: dict[str, Any] | None = None) -> Any:
    """The normalised data a rule runs on, with ``$name`` for each context variable.

    This is also what the browser should be given: json-logic-js applied to it
    gives the same answers as :func:`evaluate`.
    """
    data = normalise(data)
    if not context:
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RuleError("context variables need the data to be an object")
    return {**data, **{f"${name}": normalise(value) for name, value in context.items()}}
