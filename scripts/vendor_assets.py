"""Copy the pinned browser builds from node_modules into app/static/vendor.

The app never loads anything from the internet and ``pip install .`` must not
need npm, so the builds are committed under ``app/static/vendor/<package>/``.
``package.json`` pins each version exactly; this script refuses to vendor a
node_modules that does not match the pins (run ``npm ci`` first), copies the
build and the licence of each package, and writes ``manifest.json`` with each
package's version and the sha256 of every copied file, which the test suite
checks.

Usage: ``python scripts/vendor_assets.py`` from anywhere in the repository.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "app" / "static" / "vendor"

# Per package, the files to vendor; a tuple lists alternatives, the first present wins.
ASSETS: dict[str, list[str | tuple[str, ...]]] = {
    "htmx.org": ["dist/htmx.min.js", "LICENSE"],
    "sortablejs": ["Sortable.min.js", "LICENSE"],
    "chart.js": [("dist/chart.umd.min.js", "dist/chart.umd.js"), "LICENSE.md"],
    "json-logic-js": ["logic.js", "LICENSE"],
    # Ships no licence file; its README states the MIT licence. Its locale files are
    # CommonJS modules, so app/static/js/dates.js carries the two locales it needs.
    "air-datepicker": ["air-datepicker.js", "air-datepicker.css", "README.md"],
}


class VendorError(Exception):
    pass


def pinned_versions(package_json: Path = ROOT / "package.json") -> dict[str, str]:
    """The exact versions package.json pins, from dependencies and devDependencies."""
    document = json.loads(package_json.read_text(encoding="utf-8"))
    return {**document.get("dependencies", {}), **document.get("devDependencies", {})}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _installed_version(package: str) -> str:
    package_json = NODE_MODULES / package / "package.json"
    if not package_json.is_file():
        raise VendorError(f"{package} is not installed: run `npm ci` first")
    return json.loads(package_json.read_text(encoding="utf-8"))["version"]


def _source(package: str, choice: str | tuple[str, ...]) -> Path:
    candidates = (choice,) if isinstance(choice, str) else choice
    for candidate in candidates:
        path = NODE_MODULES / package / candidate
        if path.is_file():
            return path
    raise VendorError(f"{package} has none of {', '.join(candidates)}")


def vendor_package(package: str, pin: str) -> dict:
    version = _installed_version(package)
    if version != pin:
        raise VendorError(f"{package} {version} is installed but {pin} is pinned: run `npm ci`")
    target = VENDOR / package
    # The directory belongs to this script: clearing it drops files of older versions.
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    files = {}
    for choice in ASSETS[package]:
        source = _source(package, choice)
        shutil.copyfile(source, target / source.name)
        files[f"{package}/{source.name}"] = sha256(target / source.name)
    return {"version": version, "files": files}


def vendor_all() -> dict:
    pins = pinned_versions()
    unknown = sorted(set(pins) - set(ASSETS))
    missing = sorted(set(ASSETS) - set(pins))
    if unknown or missing:
        raise VendorError(
            f"package.json and ASSETS disagree: not vendored {unknown}, not pinned {missing}"
        )
    manifest = {
        "comment": "written by scripts/vendor_assets.py; paths are relative to this folder",
        "packages": {package: vendor_package(package, pins[package]) for package in sorted(pins)},
    }
    (VENDOR / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def main() -> int:
    try:
        manifest = vendor_all()
    except VendorError as error:
        print(f"vendor_assets: {error}", file=sys.stderr)
        return 1
    for package, entry in manifest["packages"].items():
        print(f"{package} {entry['version']}: {', '.join(entry['files'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
