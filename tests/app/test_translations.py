"""The Chinese catalogue covers every interface string, and the compiled file is current."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "app" / "translations" / "zh" / "LC_MESSAGES"
# Flask-Babel's %(name)s, and the {name} of the core's messages (metamodel.messages).
PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")
# As scripts/translations extracts them: Babel's keywords, the app's, the core's.
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "_l": None,
    "lazy_gettext": None,
    "Message": None,
    "ValueProblem": None,
}


def _po():
    with (CATALOG / "messages.po").open("rb") as handle:
        return read_po(handle, locale="zh")


def _key(message_id) -> str:
    return message_id[0] if isinstance(message_id, (tuple, list)) else message_id


def _strings(message) -> tuple:
    string = message.string
    return tuple(string) if isinstance(string, (tuple, list)) else (string,)


def _placeholders(text: str) -> set[str]:
    return {percent or brace for percent, brace in PLACEHOLDER.findall(text)}


def test_every_string_in_the_code_is_in_the_catalogue():
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    for core in ("metamodel", "form_engine", "records", "workflow_engine"):
        assert (f"{core}/**.py", "python") in method_map  # the core's messages are extracted
    found = {
        _key(message[2])
        for message in extract_from_dir(str(ROOT), method_map, options_map, keywords=KEYWORDS)
        if message[2]
    }
    known = {_key(message.id) for message in _po() if message.id}
    assert sorted(found - known) == [], "run scripts/translations update, then translate"


def test_every_message_is_translated_with_the_same_placeholders():
    for message in _po():
        if not message.id:
            continue
        strings = _strings(message)
        wanted = _placeholders(_key(message.id))
        for string in strings:
            assert string, f"untranslated: {message.id!r}"
            assert _placeholders(string) == wanted, (message.id, string)


def test_the_compiled_catalogue_matches_the_source():
    with (CATALOG / "messages.mo").open("rb") as handle:
        compiled = {_key(m.id): _strings(m) for m in read_mo(handle) if m.id}
    source = {_key(m.id): _strings(m) for m in _po() if m.id}
    assert compiled == source, "run scripts/translations compile"
