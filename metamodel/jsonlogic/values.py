"""JavaScript's value model, as far as json-logic-js 2.0.5 can observe it.

Values are Python's JSON values plus ``Decimal`` (a number) and ``UNDEFINED``
(JavaScript's ``undefined``: a missing argument, or ``{"and": []}``). Each
function here is one abstract operation of the ECMAScript specification
(ToNumber, ToString, ToPrimitive, ...) or one built-in json-logic-js calls
(``parseFloat``, ``String.prototype.substr``); the names say which.

Strings are measured and sliced in UTF-16 code units, as JavaScript does, so a
character outside the Basic Multilingual Plane (an emoji) counts as two.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from .arithmetic import SAFE_INTEGER, int_to_float, is_nan


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()

# StrWhiteSpaceChar: WhiteSpace and LineTerminator (ECMA-262 §7.2, §7.3).
_SPACE = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_SPACE += "\u2028\u2029\u202f\u205f\u3000\ufeff"
_DECIMAL = r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
_DECIMAL_LITERAL = re.compile(_DECIMAL)
_NON_DECIMAL_LITERAL = re.compile(r"0([xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_BASES = {"x": 16, "o": 8, "b": 2}
_INTEGER_LITERAL = re.compile(r"[+-]?[0-9]+")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


def js_type(value: Any) -> str:
    """``typeof``, except that null is "null" and arrays and objects are both "object"."""
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def to_boolean(value: Any) -> bool:
    """JavaScript's ToBoolean: every object, even ``[]``, is true."""
    if value is None or value is UNDEFINED:
        return False
    if isinstance(value, float):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, bool | int | Decimal | str):
        return bool(value)
    return True


def truthy(value: Any) -> bool:
    """JsonLogic truthiness: JavaScript's, except that an empty array is false."""
    if isinstance(value, list):
        return bool(value)
    return to_boolean(value)


def to_primitive(value: Any) -> Any:
    """ToPrimitive: arrays become their ``join(",")``, objects "[object Object]"."""
    if isinstance(value, list):
        return join(value, ",")
    if isinstance(value, dict):
        return "[object Object]"
    return value


def join(items: list, separator: str) -> str:
    """``Array.prototype.join``: null and undefined items become empty strings."""
    return separator.join(
        "" if item is None or item is UNDEFINED else to_string(item) for item in items
    )


def to_string(value: Any) -> str:
    """``String(value)``."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_to_string(value)
    return to_primitive(value)


def number_to_string(number: int | float | Decimal) -> str:
    """Number::toString: the shortest digits that round-trip, laid out as JavaScript does.

    Python's ``repr`` finds the same shortest digits as V8; only the layout differs
    (``1e+16`` versus ``10000000000000000``). A Decimal is written like the number
    JSON would give the browser, without trailing zeros (``1.50`` → ``1.5``).
    """
    if isinstance(number, int):
        if abs(number) < 10**21:
            return str(number)
        number = int_to_float(number)
    if isinstance(number, float):
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        number = Decimal(repr(number))
    if number.is_zero():
        return "0"
    sign, digit_tuple, exponent = number.as_tuple()
    raw = "".join(map(str, digit_tuple))
    digits = raw.rstrip("0")
    k = len(digits)
    n = exponent + len(raw)  # the decimal point sits after n digits
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n >= 1 else '-'}{abs(n - 1)}"
    return "-" + text if sign else text


def _literal_value(literal: str) -> int | float:
    """The number a StrDecimalLiteral denotes: an int when it is one JavaScript holds exactly."""
    if literal.lstrip("+-") == "Infinity":
        return -math.inf if literal.startswith("-") else math.inf
    value = float(literal)  # correctly rounded, like JavaScript
    negative_zero = value == 0 and math.copysign(1, value) < 0
    if _INTEGER_LITERAL.fullmatch(literal) and abs(value) <= SAFE_INTEGER and not negative_zero:
        return int(value)
    return value


def string_to_number(text: str) -> int | float:
    """StringToNumber: the whole string, trimmed, must be a numeric literal ("" is 0)."""
    text = text.strip(_SPACE)
    if not text:
        return 0
    if _DECIMAL_LITERAL.fullmatch(text):
        return _literal_value(text)
    match = _NON_DECIMAL_LITERAL.fullmatch(text)
    if match:
        number = int(match.group(1)[1:], _BASES[match.group(1)[0].lower()])
        return number if number <= SAFE_INTEGER else int_to_float(number)
    return math.nan


def to_number(value: Any) -> int | float | Decimal:
    """ToNumber: null is 0, undefined NaN, booleans 0 and 1, arrays via their string."""
    if is_number(value):
        return value
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return 0
    if value is UNDEFINED:
        return math.nan
    if isinstance(value, str):
        return string_to_number(value)
    return to_number(to_primitive(value))


def parse_float(value: Any) -> int | float | Decimal:
    """``parseFloat``: the longest numeric prefix of ``String(value)``, else NaN."""
    if is_number(value):
        # parseFloat(String(x)) gives x back, except that String(-0) is "0".
        return value if value or is_nan(value) else abs(value)
    match = _DECIMAL_LITERAL.match(to_string(value).lstrip(_SPACE))
    return _literal_value(match.group()) if match else math.nan


def to_integer(value: Any) -> int | float:
    """ToIntegerOrInfinity: NaN is 0, infinities stay, the rest is truncated toward zero."""
    number = to_number(value)
    if is_nan(number):
        return 0
    if isinstance(number, float) and math.isinf(number):
        return number
    return int(number)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def _is_bmp(text: str) -> bool:
    return text.isascii() or all(ord(char) <= 0xFFFF for char in text)


def string_length(text: str) -> int:
    return len(text) if _is_bmp(text) else len(_utf16(text)) // 2


def string_slice(text: str, start: int, end: int) -> str:
    """The code units ``start`` to ``end``; a cut through a surrogate pair keeps the half."""
    if _is_bmp(text):
        return text[start:end]
    return _utf16(text)[2 * start : 2 * end].decode("utf-16-le", "surrogatepass")


def string_less(left: str, right: str) -> bool:
    """JavaScript orders strings by UTF-16 code unit, not by code point."""
    if left.isascii() and right.isascii():
        return left < right
    return left.encode("utf-16-be", "surrogatepass") < right.encode("utf-16-be", "surrogatepass")


def substr(text: str, start: Any, length: Any = UNDEFINED) -> str:
    """``String.prototype.substr``: a negative start counts from the end."""
    size = string_length(text)
    first = to_integer(start)
    first = max(size + first, 0) if first < 0 else min(first, size)
    count = size if length is UNDEFINED else min(max(to_integer(length), 0), size)
    return string_slice(text, first, int(min(first + count, size)))


def get_property(value: Any, key: str) -> Any:
    """``value[key]`` for own properties: object keys, array and string indices and length.

    Members inherited from prototypes (``toString``, ``constructor``, ...) are not
    modelled: a rule reading them gets undefined here and a function in JavaScript.
    """
    if isinstance(value, dict):
        return value.get(key, UNDEFINED)
    if isinstance(value, list | str):
        if key == "length":
            return len(value) if isinstance(value, list) else string_length(value)
        if _ARRAY_INDEX.fullmatch(key):
            index = int(key)
            size = len(value) if isinstance(value, list) else string_length(value)
            if index < size:
                return (
                    value[index]
                    if isinstance(value, list)
                    else string_slice(value, index, index + 1)
                )
    return UNDEFINED
