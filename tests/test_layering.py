"""The core packages are usable from a script: they never import Flask."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
CORE = ("metamodel", "form_engine", "workflow_engine")
FORBIDDEN = ("flask", "flask_wtf", "flask_login", "flask_babel", "flask_htmx", "app")


def imported_modules(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_core_packages_import_no_flask():
    offenders = [
        (str(path.relative_to(ROOT)), module)
        for package in CORE
        for path in (ROOT / package).rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []
