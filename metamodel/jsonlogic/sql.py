"""JsonLogic filters compiled to SQL that selects exactly what the evaluator accepts.

:func:`compile_filter` turns a rule into a SQLAlchemy boolean for a WHERE clause:
a record is selected exactly when ``truthy(evaluate(rule, data, context))`` holds
for its rule data (below), on SQLite and on PostgreSQL. Whatever cannot be made
exact raises :class:`RuleError` naming the operator, field or literal; nothing is
silently approximated.

The record's rule data
----------------------
Every stored field and system column by name, NULL included, as ``normalise``
gives it (dates ``YYYY-MM-DD``, datetimes ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, whole
seconds; Decimals stay Decimals). A reference field holds the referenced
record's id, unless the rule follows it: when some ``var`` reads
``account.tier``, ``account`` holds the referenced record's rule data (an object
with ``id``, the system columns and the fields, recursively for followed paths
such as ``account.parent.tier``), or null when the field is empty (a dangling
reference reads as null too; a record in the recycle bin is still read).
:func:`followed_references` names the paths to expand for a rule. A rule that
both follows a reference and reads it bare (``account`` and ``account.tier``) is
refused, since the two readings need different data; write ``account.id``.

Following a reference is a correlated scalar subquery per read, so the WHERE
clause needs no joins. As in the evaluator, the default of ``{"var": [path, d]}``
applies when the path stops at an empty reference, never to a field that is
NULL (the key is there, its value is null).

Semantics, and where SQL is refused
-----------------------------------
Values are compiled into branches (see ``sql_values``): a nullable column is
"NULL → null" or "not NULL → the column", and each comparison is decided per
branch, the NULL branch by the evaluator itself, so null behaves exactly as in
JavaScript (``null < 1`` and ``null != "a"`` are true, ``null == 0`` is false).
Booleans are decided entirely at compile time the same way. Literal-only parts
of a rule (and context variables ``$user``, ``$now``, ``$today``) are evaluated
in Python by the evaluator and bound as parameters. The coercions of ``==``,
``===``, ``<``... against each kind of column are in ``sql_compare``.

Operators: ``var``, ``== != === !== < <= > >=`` (with the three-argument forms
of ``<`` and ``<=``), ``! !!``, ``and or if ?:`` (as values too), ``in`` (a value
in a literal array or an array of values, a value in a literal string, a string
in a text, date or datetime field), ``missing``, ``missing_some`` (as
conditions), and ``+ - *`` on bounded integer fields. Refused, with a message:

* ``map``, ``filter``, ``reduce``, ``all``, ``none``, ``some``, ``merge``,
  ``cat``, ``substr``, ``min``, ``max``, ``/``, ``%``, ``log``, ``method`` on
  fields (on literals and context variables any operator is fine);
* text (text, select, e-mail...) compared with a number or a boolean, or ordered
  against null: JavaScript converts the text with ``ToNumber``, which SQL cannot
  reproduce (so ``<`` of a nullable text field against another nullable field is
  refused too: ``"a" < null`` is ``NaN < 0``). Ordering text against a literal
  with a character from U+D800 up, or against another text field: JavaScript
  orders UTF-16 code units, SQL (``COLLATE "C"``) code points;
* decimals against integers or decimals of another scale, dates against
  datetimes, text against numbers, field against field; JSON fields
  (multiselect, file, location...), fields without a column, unknown fields, the
  whole record (``{"var": ""}``), computed names and defaults, user and system
  references followed with a dot;
* arithmetic unless every operand and result provably stays within ±2**53,
  where JavaScript (and the evaluator) stop being exact while SQL does not: the
  integer fields involved need a declared ``min`` and ``max`` (or be ratings),
  and literal operands must be whole numbers.

Stored values are assumed valid for their fields (no NaN in PostgreSQL numerics,
integers within their declared bounds). The filter does not hide records in
the recycle bin: add ``deleted_at IS NULL`` (or ``{"==": [{"var":
"deleted_at"}, null]}``) as the caller needs.
"""

from __future__ import annotations

from itertools import product
from math import prod
from typing import Any

from sqlalchemy import Table, case
from sqlalchemy.sql.elements import ColumnElement

from ..model import EntityModel
from .compare import greater_or_equal
from .data import rule_data
from .errors import RuleError
from .evaluator import DATA_OPERATIONS, apply, is_logic
from .operations import OPERATIONS
from .sql_compare import compare_terms
from .sql_fields import Reads, TableFor, followed_references, read_path
from .sql_operators import contains_terms, integer_arithmetic
from .sql_values import (
    STRING,
    Guard,
    Lit,
    Opaque,
    Term,
    check_size,
    checked,
    conj,
    disj,
    literal_term,
    neg,
    predicate_term,
    term_truth,
    to_sql,
    value_truth,
)
from .values import UNDEFINED, to_string

__all__ = ["compile_filter", "followed_references"]


_COMPARISONS = {"==", "===", "!=", "!==", "<", "<=", ">", ">="}
_SCOPED = {"map", "filter", "reduce", "all", "none", "some"}


def compile_filter(
    rule: Any,
    entity: EntityModel,
    table: Table,
    *,
    context: dict[str, Any] | None = None,
    table_for: TableFor,
) -> ColumnElement:
    """A WHERE clause selecting the records of ``entity`` (rows of ``table``) ``rule`` accepts.

    ``context`` is the evaluator's (``{"user": {"id": 3, "roles": [...]}, "now": ...,
    "today": ...}``); ``table_for(entity)`` gives the table of a referenced entity.
    Raises :class:`RuleError` for a rule SQL cannot evaluate exactly.
    """
    compiler = _Compiler(entity, table, table_for, rule_data({}, context))
    guard = compiler.truth(rule)
    mixed = sorted(compiler.reads.followed & compiler.reads.bare)
    if mixed:
        raise RuleError(
            f"the rule reads the reference '{mixed[0]}' both as an id and through a dot;"
            f" write '{mixed[0]}.id' for the id"
        )
    return to_sql(guard)


def _reads_record(node: Any) -> bool:
    """Whether ``node`` reads the record (else it is evaluated once, in Python)."""
    if isinstance(node, list):
        return any(map(_reads_record, node))
    if not is_logic(node):
        return False
    ((operator, values),) = node.items()
    values = values if isinstance(values, list) else [values]
    if operator == "var":
        name = values[0] if values else None
        return not (isinstance(name, str) and name.startswith("$")) or _reads_record(values[1:])
    if operator in ("missing", "missing_some"):
        return True
    if operator in _SCOPED:
        values = values[:1] + values[2:]  # the per-item logic reads items, not the record
    return any(map(_reads_record, values))


def _arguments(values: list, count: int) -> list:
    return values[:count] + [UNDEFINED] * (count - len(values))


class _Compiler:
    def __init__(self, entity: EntityModel, table: Table, table_for: TableFor, context: Any):
        self.entity = entity
        self.table = table
        self.table_for = table_for
        self.context = context
        self.reads = Reads()

    # --- dispatch -------------------------------------------------------------------

    def _fold(self, node: Any) -> Any:
        return apply(node, self.context)

    def value(self, node: Any) -> Term:
        if node is UNDEFINED or not _reads_record(node):
            return literal_term(UNDEFINED if node is UNDEFINED else self._fold(node))
        if isinstance(node, list):
            raise RuleError("an array of values read from a record can only be searched with 'in'")
        ((operator, values),) = node.items()
        values = values if isinstance(values, list) else [values]
        if operator == "var":
            return self._var(values)
        if operator in ("and", "or"):
            return self._and_or(operator, values)
        if operator in ("if", "?:"):
            return self._if(values)
        if operator in ("missing", "missing_some"):
            guard = self.truth(node)
            return checked(
                [(guard, Opaque(True, f"the list '{operator}' returns")), (neg(guard), Lit([]))]
            )
        if operator in ("+", "-", "*"):
            return self._arithmetic(operator, values)
        return predicate_term(self.truth(node))

    def truth(self, node: Any) -> Guard:
        if not _reads_record(node):
            return term_truth(self.value(node))
        if isinstance(node, list):
            for item in node:
                self.value(item)  # refused where the evaluator would fail
            return True  # an array is truthy when not empty, and this one is not
        ((operator, values),) = node.items()
        values = values if isinstance(values, list) else [values]
        if operator in _COMPARISONS:
            return self._comparison(operator, values)
        if operator == "!":
            return neg(self.truth(_arguments(values, 1)[0]))
        if operator == "!!":
            return self.truth(_arguments(values, 1)[0])
        if operator == "and":
            return conj(*map(self.truth, values))
        if operator == "or":
            return disj(*map(self.truth, values))
        if operator == "in":
            return self._in(*_arguments(values, 2))
        if operator == "missing":
            return self._missing(values)
        if operator == "missing_some":
            return self._missing_some(values)
        if operator in ("var", "if", "?:", "+", "-", "*"):
            return term_truth(self.value(node))
        raise RuleError(f"'{operator}' cannot be used in a filter")

    # --- operators ----------------------------------------------------------------

    def _comparison(self, operator: str, values: list) -> Guard:
        between = operator in ("<", "<=") and len(values) > 2
        terms = [self.value(value) for value in _arguments(values, 3 if between else 2)]
        guard = compare_terms(operator, terms[0], terms[1])
        if between:
            guard = conj(guard, compare_terms(operator, terms[1], terms[2]))
        return guard

    def _in(self, needle: Any, haystack: Any) -> Guard:
        if isinstance(haystack, list) and _reads_record(haystack):
            # An array built from values: a strict equality with any item.
            term = self.value(needle)
            return disj(*(compare_terms("===", term, self.value(item)) for item in haystack))
        return contains_terms(self.value(needle), self.value(haystack))

    def _and_or(self, operator: str, values: list) -> Term:
        # The value of the first operand that decides (falsy for and, truthy for or), or the last.
        branches: Term = []
        rest: Guard = True
        for index, node in enumerate(values):
            term = self.value(node)
            last = index == len(values) - 1
            for guard, value in term:
                decides = value_truth(value) if operator == "or" else neg(value_truth(value))
                branches.append((conj(rest, guard, True if last else decides), value))
            truth = term_truth(term)
            rest = conj(rest, neg(truth) if operator == "or" else truth)
        return checked(branches)

    def _if(self, values: list) -> Term:
        branches: Term = []
        rest: Guard = True
        for index in range(0, len(values) - 1, 2):
            condition = self.truth(values[index])
            for guard, value in self.value(values[index + 1]):
                branches.append((conj(rest, condition, guard), value))
            rest = conj(rest, neg(condition))
        otherwise = self.value(values[-1]) if len(values) % 2 else literal_term(None)
        branches.extend((conj(rest, guard), value) for guard, value in otherwise)
        return checked(branches)

    def _keys(self, values: list, operator: str) -> list:
        if _reads_record(values):
            raise RuleError(f"the names '{operator}' looks up must be literals in a filter")
        keys = [self._fold(value) for value in values]
        return keys[0] if keys and isinstance(keys[0], list) else keys

    def _is_missing(self, key: Any) -> Guard:
        if key is None or key == "":
            return False  # the whole record: an object, never missing
        parts = []
        for guard, value in self._var([key]):
            if isinstance(value, Lit):
                parts.append(conj(guard, value.value is None or value.value == ""))
            elif value.kind == STRING:
                parts.append(conj(guard, value.expr == ""))
        return disj(*parts)

    def _missing(self, values: list) -> Guard:
        return disj(*map(self._is_missing, self._keys(values, "missing")))

    def _missing_some(self, values: list) -> Guard:
        if _reads_record(values[:2]):
            raise RuleError("the arguments of 'missing_some' must be literals in a filter")
        need, options = _arguments([self._fold(value) for value in values[:2]], 2)
        if not isinstance(options, list):
            raise RuleError("'missing_some' needs a list of keys as its second argument")
        missing = [self._is_missing(key) for key in options]
        # The result is the missing keys, or [] when enough are present: it is truthy
        # for those counts of missing keys that are not enough and not zero.
        counts = [
            count
            for count in range(1, len(options) + 1)
            if not greater_or_equal(len(options) - count, need)
        ]
        if counts == list(range(1, len(options) + 1)):
            return disj(*missing)
        known = sum(1 for guard in missing if guard is True)
        unknown = [guard for guard in missing if not isinstance(guard, bool)]
        if not unknown:
            return known in counts
        total = sum(case((guard, 1), else_=0) for guard in unknown)
        wanted = [count - known for count in counts if 0 <= count - known <= len(unknown)]
        return total.in_(wanted) if wanted else False

    # --- fields -------------------------------------------------------------------

    def _var(self, values: list) -> Term:
        name, default = _arguments(values, 2)
        if _reads_record([name, default]):
            raise RuleError("the name and default of 'var' must be literals in a filter")
        name, default = self._fold(name), self._fold(default)
        if name is UNDEFINED or name is None or name == "":
            raise RuleError("a filter cannot read the whole record ({'var': ''})")
        path = to_string(name)
        if path.startswith("$"):
            return literal_term(DATA_OPERATIONS["var"](self.context, path, default))
        default = None if default is UNDEFINED else default
        return read_path(self.entity, self.table, self.table_for, path, default, self.reads)

    # --- arithmetic -----------------------------------------------------------------

    def _arithmetic(self, operator: str, values: list) -> Term:
        if operator == "*" and len(values) == 1:
            return self.value(values[0])  # reduce() of one item returns it untouched
        if operator == "-":
            values = values[:2]
        terms = [self.value(value) for value in values]
        check_size(prod(map(len, terms)))
        branches: Term = []
        for combination in product(*terms):
            guard = conj(*(guard for guard, _ in combination))
            if guard is False:
                continue
            operands = [value for _, value in combination]
            if all(isinstance(value, Lit) for value in operands):
                result = OPERATIONS[operator](*(value.value for value in operands))
                branches.append((guard, Lit(result)))
            else:
                branches.append((guard, integer_arithmetic(operator, operands)))
        return checked(branches)
