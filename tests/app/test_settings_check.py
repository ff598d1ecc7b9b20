"""Settings are checked as they are loaded: every wrong one named, none ignored."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.cli import main
from app.config import load_settings
from metamodel.errors import CrmError


def problems(environ: dict, tmp_path, config: str | None = None) -> dict[str, str]:
    """The problems loading these settings gives, by JSON Pointer."""
    if config is not None:
        (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
        environ = {"CRM_CONFIG": str(tmp_path / "config.yaml"), **environ}
    with pytest.raises(CrmError) as refused:
        load_settings(environ)
    return {problem.path: problem.message for problem in refused.value.problems}


def test_the_shipped_settings_and_the_defaults_pass(tmp_path):
    assert load_settings({})["max_request_mb"] == 10
    shipped = load_settings({"CRM_CONFIG": "config.yaml"})
    assert shipped["public_forms"] == {"max_submissions": 10, "window_minutes": 10, "owner": None}


@pytest.mark.parametrize(
    ("variable", "raw", "pointer", "says"),
    [
        ("CRM_MAX_REQUEST_MB", "ten", "/max_request_mb", "must be a number above 0"),
        ("CRM_MAX_REQUEST_MB", "0", "/max_request_mb", "not 0"),
        ("CRM_MAX_REQUEST_MB", "true", "/max_request_mb", "not True"),
        ("CRM_SECURE_COOKIES", "maybe", "/secure_cookies", "must be true or false"),
        ("CRM_DEBUG", "1", "/debug", "must be true or false"),
        ("CRM_LANGUAGES", "[en, fr]", "/languages", "some of en, zh"),
        ("CRM_DEFAULT_LANGUAGE", "fr", "/default_language", "not one of the languages (en, zh)"),
        ("CRM_DEFAULT_CURRENCY", "yuan", "/default_currency", "'yuan' is not a currency code"),
        ("CRM_DEFAULT_PHONE_REGION", "XX", "/default_phone_region", "not a region code"),
        ("CRM_DATABASE_URL", "nonsense", "/database_url", "is not a database URL"),
        ("CRM_INSTANCE_PATH", "[]", "/instance_path", "must be text"),
        ("CRM_SECRET_KEY", "12", "/secret_key", "must be text, not 12"),
        ("CRM_PUBLIC_FORMS__MAX_SUBMISSIONS", "2.5", "/public_forms/max_submissions", "whole"),
        ("CRM_PUBLIC_FORMS__WINDOW_MINUTES", "-1", "/public_forms/window_minutes", "above 0"),
        ("CRM_PUBLIC_FORMS__OWNER", "[wang]", "/public_forms/owner", "must be a username"),
    ],
)
def test_a_wrong_value_is_named_with_what_it_should_be(variable, raw, pointer, says, tmp_path):
    found = problems({variable: raw}, tmp_path)
    assert list(found) == [pointer]
    assert found[pointer].startswith(pointer[1:].replace("/", ".") + ": ")
    assert says in found[pointer]


def test_unknown_names_in_the_file_are_refused_with_a_suggestion(tmp_path):
    found = problems(
        {},
        tmp_path,
        "secure_cookie: false\nmail:\n  smtp_hots: mail.example.com\nmax_request_mb: big\n",
    )
    assert found == {
        "/secure_cookie": "secure_cookie is not a setting (did you mean 'secure_cookies'?)",
        "/mail/smtp_hots": "mail.smtp_hots is not a setting (did you mean 'smtp_host'?)",
        "/max_request_mb": "max_request_mb: must be a number above 0 and at most 1024, not 'big'",
    }


def test_other_programs_crm_variables_are_left_alone(tmp_path):
    # CRM_* variables are a shared namespace (the tests' own CRM_TEST_POSTGRES_URL).
    settings = load_settings({"CRM_TEST_POSTGRES_URL": "x", "CRM_MAIL__SMTP_PORT": "2525"})
    assert settings["test_postgres_url"] == "x" and settings["mail"]["smtp_port"] == 2525


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_MAX_REQUEST_MB", "ten")
    monkeypatch.setenv("CRM_MAIL__ENABLED", "true")
    monkeypatch.setenv("CRM_MAIL__SMTP_PORT", "99999")
    result = CliRunner().invoke(main, ["init", "--admin-password", "x"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.splitlines() == [
        "crm: cannot start; check config.yaml and the CRM_* variables:",
        "  max_request_mb: must be a number above 0 and at most 1024, not 'ten'",
    ]
    monkeypatch.delenv("CRM_MAX_REQUEST_MB")
    result = CliRunner().invoke(main, ["init", "--admin-password", "x"])
    assert result.exit_code == 1
    assert result.output.splitlines()[1:] == [
        "  mail.smtp_port: 99999 is not a port number (1 to 65535)"
    ]
