"""The Chinese catalogue covers every interface string, and the compiled file is current."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "app" / "translations" / "zh" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _po():
    with (CATALOG / "messages.po").open("rb") as handle:
        return read_po(handle, locale="zh")


def _key(message_id) -> str:
    return message_id[0] if isinstance(message_id, (tuple, list)) else message_id


def _strings(message) -> tuple:
    string = message.string
    return tuple(string) if isinstance(string, (tuple, list)) else (string,)


def test_every_string_in_the_code_is_in_the_catalogue():
    method_map = [("app/**.py", "python"), ("app/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    found = {
        _key(message[2])
        for message in extract_from_dir(str(ROOT), method_map, keywords=keywords)
        if message[2]
    }
    known = {_key(message.id) for message in _po() if message.id}
    assert sorted(found - known) == [], "run scripts/translations update, then translate"


def test_every_message_is_translated_with_the_same_placeholders():
    for message in _po():
        if not message.id:
            continue
        strings = _strings(message)
        wanted = set(PLACEHOLDER.findall(_key(message.id)))
        for string in strings:
            assert string, f"untranslated: {message.id!r}"
            assert set(PLACEHOLDER.findall(string)) == wanted, (message.id, string)


def test_the_compiled_catalogue_matches_the_source():
    with (CATALOG / "messages.mo").open("rb") as handle:
        compiled = {_key(m.id): _strings(m) for m in read_mo(handle) if m.id}
    source = {_key(m.id): _strings(m) for m in _po() if m.id}
    assert compiled == source, "run scripts/translations compile"
