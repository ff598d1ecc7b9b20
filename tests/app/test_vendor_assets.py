"""The committed browser assets are exactly the versions package.json pins.

These tests need neither npm nor node_modules: they read package.json, the lock
file and what scripts/vendor_assets.py wrote under app/static/vendor.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "app" / "static" / "vendor"
PINNED = {
    "htmx.org": "2.0.11",
    "sortablejs": "1.15.7",
    "chart.js": "4.6.1",
    "json-logic-js": "2.0.5",
    "air-datepicker": "3.6.0",
}


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    package = _json(ROOT / "package.json")
    return {**package.get("dependencies", {}), **package.get("devDependencies", {})}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return _json(VENDOR / "manifest.json")


def test_package_json_pins_exact_versions(pins):
    assert pins == PINNED
    for name, version in pins.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned exactly: {version}"


def test_lock_file_resolves_the_pins(pins):
    lock = _json(ROOT / "package-lock.json")
    for name, version in pins.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name


def test_manifest_versions_match_package_json(pins, manifest):
    assert {name: entry["version"] for name, entry in manifest["packages"].items()} == pins


@pytest.mark.parametrize(
    "name, build",
    [
        ("htmx.org", "htmx.min.js"),
        ("sortablejs", "Sortable.min.js"),
        ("chart.js", "chart.umd"),
        ("json-logic-js", "logic.js"),
        ("air-datepicker", "air-datepicker.js"),
    ],
)
def test_each_package_ships_its_browser_build(manifest, name, build):
    files = manifest["packages"][name]["files"]
    assert any(Path(path).name.startswith(build) for path in files), files


def test_vendored_files_match_their_hashes(manifest):
    for entry in manifest["packages"].values():
        for relative, digest in entry["files"].items():
            path = VENDOR / relative
            assert path.is_file(), f"{relative} is in the manifest but not vendored"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, relative


def test_nothing_is_vendored_outside_the_manifest(manifest):
    listed = {relative for entry in manifest["packages"].values() for relative in entry["files"]}
    present = {
        path.relative_to(VENDOR).as_posix()
        for path in VENDOR.rglob("*")
        if path.is_file() and path.name != "manifest.json"
    }
    assert present == listed
