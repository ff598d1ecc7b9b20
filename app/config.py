"""Settings: built-in defaults, then config.yaml, then CRM_* environment variables.

``CRM_<KEY>`` overrides a key; nested keys are joined by ``__``
(``CRM_MAIL__SMTP_HOST``). Values from the environment are parsed as YAML
scalars, so ``CRM_DEBUG=true`` is a boolean and ``CRM_MAIL__PORT=25`` a number.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from metamodel.errors import CrmError

from . import settings_check

DEFAULTS: dict[str, Any] = {
    "database_url": None,  # default: SQLite in the instance folder
    "instance_path": "instance",
    "secret_key": None,
    "default_currency": "CNY",
    "default_phone_region": "CN",
    "default_language": "en",
    "languages": ["en", "zh"],
    "max_request_mb": 10,
    "debug": False,
    # Session cookies only over HTTPS; config.yaml turns this off for local development.
    "secure_cookies": True,
    # Proxies in front of the app that set each X-Forwarded-* header (see app/proxy.py).
    "proxy": {"x_for": 0, "x_proto": 0, "x_host": 0, "x_port": 0, "x_prefix": 0},
    "mail": {
        "enabled": False,
        "smtp_host": "localhost",
        "smtp_port": 25,
        "sender": "crm@localhost",
        "username": None,  # log in when set
        "password": None,
        "starttls": False,
        "timeout": 10,  # seconds to wait for the SMTP server
        "site_url": None,  # where staff open the CRM (https://crm.example.com): mails link there
    },
    "dashboards": {
        # Dashboard pages show snapshots; one older than this is refreshed when shown.
        "snapshot_max_age_seconds": 300,
    },
    "public_forms": {
        # Submissions one address may make to public forms within the window.
        "max_submissions": 10,
        "window_minutes": 10,
        # The username public submissions belong to (none: they have no owner).
        "owner": None,
    },
}


def _merge(base: dict, overlay: dict) -> dict:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _config_file(environ) -> Path | None:
    explicit = environ.get("CRM_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise CrmError(f"CRM_CONFIG points at {path}, which is not a file")
        return path
    local = Path("config.yaml")
    return local if local.is_file() else None


def load_settings(environ=None, overrides: dict | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    settings = copy.deepcopy(DEFAULTS)
    path = _config_file(environ)
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise CrmError(f"{path} is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise CrmError(f"{path} must hold a mapping of settings")
        _merge(settings, loaded)
    from_environment: set[tuple[str, ...]] = set()
    for name, raw in environ.items():
        if not name.startswith("CRM_") or name == "CRM_CONFIG":
            continue
        keys = name[4:].lower().split("__")
        target = settings
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise CrmError(f"{name}: {key} is a setting of its own, not a section")
        try:
            target[keys[-1]] = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            target[keys[-1]] = raw  # not a YAML scalar: the text as it is
        from_environment.add(tuple(keys))
    _merge(settings, overrides or {})
    settings_check.check(settings, DEFAULTS, from_environment)
    instance = Path(settings["instance_path"]).resolve()
    settings["instance_path"] = str(instance)
    if not settings["database_url"]:
        settings["database_url"] = f"sqlite:///{instance / 'crm.db'}"
    return settings
