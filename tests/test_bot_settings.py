"""Configuration at start: one clear message naming every missing or malformed variable."""

from __future__ import annotations

import pytest

from bot.settings import BotSettings, load_settings
from diagnostics import ConfigError

VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_BASE_URL",
    "SMTPCHECK_ESCALATION_CHANNEL",
    "SMTPCHECK_USER_RATE",
    "SMTPCHECK_MAX_CONCURRENT",
    "SMTPCHECK_BUDGET",
    "SMTPCHECK_AGENTS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_missing_variables_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "SLACK_BOT_TOKEN: missing" in message and "SLACK_SIGNING_SECRET: missing" in message
    assert "\n" not in message and "Traceback" not in message
    with pytest.raises(ConfigError) as caught:
        load_settings(socket_mode=True)
    assert "SLACK_APP_TOKEN: missing" in str(caught.value)
    assert "SLACK_SIGNING_SECRET" not in str(caught.value)


def test_malformed_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-user-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SMTPCHECK_ESCALATION_CHANNEL", "#helpdesk")
    monkeypatch.setenv("SMTPCHECK_USER_RATE", "lots")
    monkeypatch.setenv("SMTPCHECK_MAX_CONCURRENT", "0")
    monkeypatch.setenv("SMTPCHECK_BUDGET", "-1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    for name in (
        "SMTPCHECK_ESCALATION_CHANNEL",
        "SMTPCHECK_USER_RATE",
        "SMTPCHECK_MAX_CONCURRENT",
        "SMTPCHECK_BUDGET",
    ):
        assert name in message
    assert "xoxp-user-token" not in message  # never echo a secret


def test_good_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("SLACK_API_BASE_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("SMTPCHECK_USER_RATE", "3/10s")
    monkeypatch.setenv("SMTPCHECK_AGENTS", "U01,U02")
    settings, engine = load_settings()
    assert settings.slack_api_base_url == "http://127.0.0.1:9/api/"
    assert settings.rate_limit == (3, 10.0)
    assert settings.agents == ("U01", "U02")
    assert settings.credential_test is False and settings.max_concurrent == 20
    assert "xoxb-1-2" not in repr(settings)
    assert engine.budget > 0


def test_defaults() -> None:
    settings = BotSettings(_env_file=None)
    assert settings.rate_limit == (5, 60.0)
    assert settings.slack_api_base_url == "https://slack.com/api/"
