"""The one error a rule raises."""

from __future__ import annotations

from ..errors import CrmError


class RuleError(CrmError):
    """A rule that cannot be evaluated: unknown operator, or a case where json-logic-js throws."""

    code = "invalid_rule"
