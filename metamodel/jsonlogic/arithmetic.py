"""Numbers: JavaScript's doubles, kept as int or Decimal where that is exact.

JavaScript has one number type, the IEEE double. Here:

* ints stay ints for ``+ - *`` and for ``/`` when the quotient is whole, as long as
  the result is a safe integer (|n| <= 2**53); beyond that they become floats,
  which is exactly what the double arithmetic of JavaScript gives;
* floats are IEEE doubles, so a float operation gives JavaScript's answer bit for
  bit (Python's exceptions for division by zero are turned back into
  Infinity/NaN here);
* when any operand is a Decimal (money), the operation runs in Decimal: ints
  convert exactly, floats through their shortest repr (0.1 → Decimal("0.1"), which
  is the number the browser parsed from the same JSON). Results are exact up to 50
  significant digits (division rounds half-even there); a Decimal result that is
  not finite becomes the float inf/-inf/nan.

JavaScript's -0 exists: ``{"-": [0]}`` and ``0 / -5`` give it, and ``1 / -0`` is
-Infinity. Ints have no sign of zero, so an int result that JavaScript would
make -0 is returned as ``-0.0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Context, Decimal

SAFE_INTEGER = 2**53
PRECISION = 50
_CONTEXT = Context(prec=PRECISION, traps=[])

Number = int | float | Decimal


def is_nan(number: object) -> bool:
    return isinstance(number, float) and math.isnan(number)


def is_negative_zero(number: Number) -> bool:
    if isinstance(number, Decimal):
        return number.is_zero() and number.is_signed()
    return isinstance(number, float) and number == 0 and math.copysign(1, number) < 0


def int_to_float(number: int) -> float:
    """The double nearest to an int, infinite past the largest double (as in JavaScript)."""
    try:
        return float(number)
    except OverflowError:
        return math.copysign(math.inf, number)


def _safe(number: int) -> int | float:
    return number if -SAFE_INTEGER <= number <= SAFE_INTEGER else int_to_float(number)


def _to_float(number: Number) -> float:
    return int_to_float(number) if isinstance(number, int) else float(number)


def _to_decimal(number: Number) -> Decimal:
    if isinstance(number, Decimal):
        return number
    return Decimal(number) if isinstance(number, int) else Decimal(repr(number))


def _from_decimal(number: Decimal) -> Decimal | float:
    return number if number.is_finite() else float(number)


def _binary(
    left: Number,
    right: Number,
    on_int: Callable[[int, int], Number],
    on_float: Callable[[float, float], float],
    on_decimal: Callable[[Decimal, Decimal], Decimal],
) -> Number:
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return _from_decimal(on_decimal(_to_decimal(left), _to_decimal(right)))
    if isinstance(left, float) or isinstance(right, float):
        return on_float(_to_float(left), _to_float(right))
    return on_int(left, right)


def add(left: Number, right: Number) -> Number:
    return _binary(left, right, lambda a, b: _safe(a + b), float.__add__, _CONTEXT.add)


def subtract(left: Number, right: Number) -> Number:
    return _binary(left, right, lambda a, b: _safe(a - b), float.__sub__, _CONTEXT.subtract)


def _int_multiply(left: int, right: int) -> Number:
    product = left * right
    return -0.0 if product == 0 and (left < 0 or right < 0) else _safe(product)


def multiply(left: Number, right: Number) -> Number:
    return _binary(left, right, _int_multiply, float.__mul__, _CONTEXT.multiply)


def _int_divide(left: int, right: int) -> Number:
    if right == 0:
        return _float_divide(int_to_float(left), 0.0)
    quotient, remainder = divmod(left, right)
    if remainder:
        try:
            return left / right  # correctly rounded, as the double division of safe ints
        except OverflowError:
            return math.copysign(math.inf, left) * math.copysign(1, right)
    return -0.0 if left == 0 and right < 0 else _safe(quotient)


def _float_divide(left: float, right: float) -> float:
    if right == 0:
        if left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1, right)
    return left / right


def divide(left: Number, right: Number) -> Number:
    return _binary(left, right, _int_divide, _float_divide, _CONTEXT.divide)


def _int_remainder(left: int, right: int) -> Number:
    if right == 0:
        return math.nan
    # JavaScript's % keeps the sign of the dividend (Python's % takes the divisor's).
    remainder = abs(left) % abs(right)
    if left < 0:
        return -remainder if remainder else -0.0
    return remainder


def _float_remainder(left: float, right: float) -> float:
    if math.isnan(left) or math.isnan(right) or math.isinf(left) or right == 0:
        return math.nan
    return left if math.isinf(right) else math.fmod(left, right)


def _decimal_remainder(left: Decimal, right: Decimal) -> Decimal:
    context = _CONTEXT
    if left.is_finite() and right.is_finite() and not left.is_zero() and not right.is_zero():
        # The remainder is exact, but the integer quotient must fit in the precision.
        context = _CONTEXT.copy()
        context.prec = max(PRECISION, left.adjusted() - right.adjusted() + 2)
    return context.remainder(left, right)


def remainder(left: Number, right: Number) -> Number:
    return _binary(left, right, _int_remainder, _float_remainder, _decimal_remainder)


def negate(number: Number) -> Number:
    if isinstance(number, Decimal):
        return number.copy_negate()  # Decimal's unary minus would turn -0 into 0
    if isinstance(number, int) and number == 0:
        return -0.0
    return -number


def equal(left: Number, right: Number) -> bool:
    """Numeric equality: NaN equals nothing; a Decimal compares with a float's shortest repr."""
    if is_nan(left) or is_nan(right):
        return False
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return _to_decimal(left) == _to_decimal(right)
    return left == right


def less(left: Number, right: Number) -> bool:
    if is_nan(left) or is_nan(right):
        return False
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        return _to_decimal(left) < _to_decimal(right)
    return left < right


def minimum(numbers: list[Number]) -> Number:
    """``Math.min``: NaN wins, -0 is below 0, and no numbers give Infinity."""
    result: Number = math.inf
    for number in numbers:
        if is_nan(number):
            return math.nan
        if less(number, result) or (equal(number, result) and is_negative_zero(number)):
            result = number
    return result


def maximum(numbers: list[Number]) -> Number:
    """``Math.max``: NaN wins, 0 is above -0, and no numbers give -Infinity."""
    result: Number = -math.inf
    for number in numbers:
        if is_nan(number):
            return math.nan
        if less(result, number) or (equal(number, result) and is_negative_zero(result)):
            result = number
    return result
