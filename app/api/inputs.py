"""Reading what a request sends: the JSON body, query parameters, ``If-Match``.

Anything that cannot be read is a 400 naming the part at fault; whether a
well-formed value is acceptable is the core's to say (422).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request

from .errors import BadRequest

WHOLE_NUMBER = re.compile(r"^\+?[0-9]{1,18}$")
# The largest record id a database column holds (BIGINT).
MAX_ID = 2**63 - 1
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


def _no_constants(name: str):
    raise BadRequest(f"the request body is not valid JSON: {name} is not a JSON number")


def json_body() -> Any:
    """The request body parsed as JSON (UTF-8); a body too large raises 413 as it is read."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON document")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise BadRequest(
            f"the request body is not UTF-8 (byte {error.start} cannot be decoded)"
        ) from None
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"the request body is not valid JSON: line {error.lineno}, column {error.colno}: "
            f"{error.msg}"
        ) from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    try:
        # JSON may escape lone UTF-16 surrogates ("\ud800"), which are no text at all.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the request body holds an invalid character (a lone surrogate)") from None
    return value


def query_int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not WHOLE_NUMBER.match(raw.strip()):
        raise BadRequest(f"'{raw}' is not a whole number", f"/{name}")
    return int(raw)


def query_json(name: str) -> Any:
    raw = request.args.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"is not valid JSON (column {error.colno}: {error.msg}); "
            "send a JsonLogic rule, URL-encoded",
            f"/{name}",
        ) from None
    except RecursionError:
        raise BadRequest("is nested too deeply", f"/{name}") from None


def query_flag(name: str) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise BadRequest(f"'{raw}' is not a flag: use 1 or 0", f"/{name}")


def if_match() -> int | None:
    """The version ``If-Match`` names: ``3``, ``"3"`` or ``W/"3"``; None without one (or ``*``)."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.strip().removeprefix("W/").strip('"').strip()
    if not WHOLE_NUMBER.match(tag) or not 1 <= int(tag) <= MAX_ID:
        raise BadRequest(
            f"If-Match must be the version of the record you read, e.g. If-Match: 3 (got '{raw}')"
        )
    return int(tag)


def etag(version: int) -> str:
    return f'"{version}"'
