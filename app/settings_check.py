"""The settings, checked as they are loaded: every wrong one named, with what it should be.

A typo in config.yaml (``secure_cookie``) or a value of the wrong kind
(``max_request_mb: ten``) stops the app and the ``crm`` command from starting,
with a message naming the setting, rather than being ignored or surfacing
later as an unrelated failure. ``proxy`` and ``mail`` values are checked by
their own modules (app/proxy.py, app/mail.py) and ``dashboards`` with its pages;
their names are checked here, as all others are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from numbers import Real
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from metamodel.errors import CrmError, Problem
from metamodel.wording import did_you_mean

# Languages the pages are translated into (English is the source).
TRANSLATIONS = Path(__file__).parent / "translations"
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_REQUEST_MB = 1024
# Sections whose module names its unknown keys itself, with its own advice.
OWN_NAMES = {"proxy"}


def check(settings: dict[str, Any], known: dict[str, Any], loose: set[tuple[str, ...]]) -> None:
    """Raise a CrmError naming every wrong setting. ``known`` holds every setting
    (the defaults); keys in ``loose`` came from the environment, where other
    programs' ``CRM_*`` variables may be, so they are not refused as unknown."""
    problems = list(_unknown(settings, known, loose, ()))
    for one in CHECKS:
        try:
            one(settings)
        except CrmError as error:
            problems += error.problems
    if problems:
        count = f"{len(problems)} settings are wrong: " if len(problems) > 1 else ""
        raise CrmError(count + "; ".join(p.message for p in problems), problems=problems)


def offered_languages() -> set[str]:
    return {"en"} | {p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES").is_dir()}


def _unknown(settings: dict, known: dict, loose: set, path: tuple[str, ...]):
    for name, value in settings.items():
        where = (*path, name)
        if name not in known:
            if where not in loose:
                yield Problem(
                    "/" + "/".join(where),
                    f"{'.'.join(where)} is not a setting{did_you_mean(name, list(known))}",
                )
        elif isinstance(known[name], dict) and isinstance(value, dict) and name not in OWN_NAMES:
            yield from _unknown(value, known[name], loose, where)


def _database_url(settings: dict) -> None:
    if settings.get("database_url") is None:  # SQLite in the instance folder
        return
    _text(settings, "database_url")
    try:
        make_url(settings["database_url"])
    except ArgumentError:
        _fail(
            "database_url",
            f"{settings['database_url']!r} is not a database URL "
            "(e.g. sqlite:///instance/crm.db or postgresql+psycopg://host/db)",
        )


def _paths_and_keys(settings: dict) -> None:
    _text(settings, "instance_path")
    if settings.get("secret_key") is not None:
        _text(settings, "secret_key")


def _currency(settings: dict) -> None:
    currency = settings["default_currency"]
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        _fail("default_currency", f"{currency!r} is not a currency code (e.g. CNY)")


def _phone_region(settings: dict) -> None:
    region = settings["default_phone_region"]
    if not isinstance(region, str) or region not in phonenumbers.SUPPORTED_REGIONS:
        _fail("default_phone_region", f"{region!r} is not a region code (e.g. CN)")


def _languages(settings: dict) -> None:
    offered = offered_languages()
    languages = settings["languages"]
    if (
        not isinstance(languages, list)
        or not languages
        or not all(isinstance(code, str) and code in offered for code in languages)
    ):
        _fail("languages", f"{languages!r} must be a list of some of {', '.join(sorted(offered))}")
    if settings["default_language"] not in languages:
        _fail(
            "default_language",
            f"{settings['default_language']!r} is not one of the languages "
            f"({', '.join(map(str, languages))})",
        )


def _switches(settings: dict) -> None:
    for name in ("debug", "secure_cookies"):
        if not isinstance(settings[name], bool):
            _fail(name, f"must be true or false, not {settings[name]!r}")


def _request_size(settings: dict) -> None:
    _number(settings, "max_request_mb", above=0, at_most=MAX_REQUEST_MB)


def _public_forms(settings: dict) -> None:
    forms = settings["public_forms"]
    if not isinstance(forms, dict):
        _fail("public_forms", "must hold settings, e.g. max_submissions: 10")
    _number(forms, "max_submissions", above=0, whole=True, section="public_forms")
    _number(forms, "window_minutes", above=0, section="public_forms")
    if forms.get("owner") is not None and not isinstance(forms["owner"], str):
        _fail("public_forms.owner", f"must be a username, not {forms['owner']!r}")


CHECKS: list[Callable[[dict], None]] = [
    _database_url,
    _paths_and_keys,
    _currency,
    _phone_region,
    _languages,
    _switches,
    _request_size,
    _public_forms,
]


def _fail(where: str, message: str):
    raise CrmError(f"{where}: {message}", "/" + where.replace(".", "/"))


def _text(settings: dict, name: str) -> None:
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip():
        _fail(name, f"must be text, not {value!r}")


def _number(settings, name, *, above, at_most=None, whole=False, section=None) -> None:
    value = settings[name]
    kind = "a whole number" if whole else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or (whole and not float(value).is_integer())
        or not value > above
        or (at_most is not None and value > at_most)
    ):
        limit = f" and at most {at_most}" if at_most is not None else ""
        where = f"{section}.{name}" if section else name
        _fail(where, f"must be {kind} above {above}{limit}, not {value!r}")
