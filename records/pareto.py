"""Pareto (80/20) and ABC classes: which few groups make most of the value.

Groups are ranked by value, largest first; equal values keep the order they
came in (the caller passes them by key), so a ranking never changes between
two calls on the same data. Each group gets its share of the total and the
cumulative share up to and including it.

``classes`` maps a class letter to the cumulative share it covers, e.g. the
default ``{"A": 0.8, "B": 0.95}``. A group belongs to the first class (by
share) whose limit the cumulative share *before* it has not reached: the
groups needed to make up 80% of the value are A, even when the first one alone
holds 90%; then B up to 95%; the rest get the letter after the last class (C).
So with values 50, 30, 15, 5 the classes are A, A (80% reached exactly), B, C.
Arithmetic is exact (Decimal); the limits are read as the decimals written.
When the total is not positive no share can be computed: shares and classes are
null.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

DEFAULT_CLASSES = {"A": 0.8, "B": 0.95}
SHARE_PLACES = Decimal("0.000001")


def class_limits(classes: dict[str, float] | None) -> tuple[list[tuple[str, Decimal]], str]:
    """The classes by limit, and the letter of the rest."""
    classes = classes or DEFAULT_CLASSES
    limits = sorted(
        ((letter, Decimal(str(limit))) for letter, limit in classes.items()),
        key=lambda item: (item[1], item[0]),
    )
    last = max(classes)
    rest = chr(ord(last) + 1) if last < "Z" else last
    return limits, rest


def classify(groups: list[dict[str, Any]], classes: dict[str, float] | None = None) -> dict:
    """``groups`` (``{key, label, value, ...}``) ranked, with share, cumulative and class.

    Returns ``{"groups": [...], "total": total, "classes": [{class, limit, groups, value,
    share}]}``; the last class summary is the rest, with limit 1.
    """
    limits, rest = class_limits(classes)
    ranked = sorted(groups, key=lambda group: -_number(group["value"]))
    total = sum((_number(group["value"]) for group in ranked), Decimal(0))
    summary = {letter: [limit, 0, Decimal(0)] for letter, limit in limits}
    summary.setdefault(rest, [Decimal(1), 0, Decimal(0)])
    before = Decimal(0)
    out = []
    for rank, group in enumerate(ranked, start=1):
        value = _number(group["value"])
        item = {**group, "rank": rank, "share": None, "cumulative": None, "class": None}
        if total > 0:
            letter = next((name for name, limit in limits if before < limit * total), rest)
            before += value
            item.update(
                share=_ratio(value, total), cumulative=_ratio(before, total), **{"class": letter}
            )
            summary[letter][1] += 1
            summary[letter][2] += value
        out.append(item)
    return {
        "groups": out,
        "total": total,
        "classes": [
            {
                "class": letter,
                "limit": float(limit),
                "groups": count,
                "value": value,
                "share": _ratio(value, total) if total > 0 else None,
            }
            for letter, (limit, count, value) in summary.items()
        ],
    }


def _number(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def _ratio(part: Decimal, total: Decimal) -> float:
    return float((part / total).quantize(SHARE_PLACES))
