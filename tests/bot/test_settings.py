"""Configuration at start: one clear message naming every missing or malformed variable."""

from __future__ import annotations

import pytest

from bot import oauth
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
    *oauth.VARIABLES,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


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
    set_env(
        monkeypatch,
        {
            "SLACK_BOT_TOKEN": "xoxp-user-token",
            "SLACK_SIGNING_SECRET": "s",
            "SMTPCHECK_ESCALATION_CHANNEL": "#helpdesk",
            "SMTPCHECK_USER_RATE": "lots",
            "SMTPCHECK_MAX_CONCURRENT": "0",
            "SMTPCHECK_BUDGET": "-1",
        },
    )
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
    set_env(
        monkeypatch,
        {
            "SLACK_BOT_TOKEN": "xoxb-1-2",
            "SLACK_SIGNING_SECRET": "secret",
            "SLACK_API_BASE_URL": "http://127.0.0.1:9/api",
            "SMTPCHECK_USER_RATE": "3/10s",
            "SMTPCHECK_AGENTS": "U01,U02",
        },
    )
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


# --------------------------------------------------------------------------- OAuth mode


def test_oauth_mode_needs_no_bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", "1111.2222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "CANARY-client-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    settings, _ = load_settings()
    assert settings.oauth and settings.slack_bot_token is None
    assert settings.oauth_environ() == {
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": "CANARY-client-secret",
    }
    assert "CANARY" not in repr(settings)
    # HTTP mode still needs the signing secret, OAuth or not.
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET: missing"):
        load_settings()


def test_token_mode_message_names_the_oauth_alternative() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET" in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"SLACK_CLIENT_ID": "1111.2222"}, ["SLACK_CLIENT_SECRET: missing"]),
        ({"SLACK_CLIENT_SECRET": "CANARY-s"}, ["SLACK_CLIENT_ID: missing"]),
        (
            {"SLACK_CLIENT_ID": "１１.２２", "SLACK_CLIENT_SECRET": "CANARY-s"},
            ["SLACK_CLIENT_ID: malformed"],
        ),
        (
            {
                "SLACK_CLIENT_ID": "1.2",
                "SLACK_CLIENT_SECRET": "CANARY-s",
                "SLACK_SCOPES": "commands",
                "SMTPCHECK_TOKEN_ROTATION_MINUTES": "²",
                "SLACK_INSTALL_PATH": "/slack/events",
            },
            [
                "SLACK_SCOPES: must include commands and chat:write",
                "SMTPCHECK_TOKEN_ROTATION_MINUTES",
                "SLACK_INSTALL_PATH: /slack/events is already one of the bot's own paths",
            ],
        ),
        (
            {
                "SLACK_CLIENT_ID": "1.2",
                "SLACK_CLIENT_SECRET": "CANARY-s",
                "SLACK_REDIRECT_URI": "http://smtpcheck.example.com/slack/oauth_redirect",
            },
            ["SLACK_REDIRECT_URI: an https:// URL"],
        ),
        (
            {
                "SLACK_CLIENT_ID": "1.2",
                "SLACK_CLIENT_SECRET": "CANARY-s",
                "SLACK_REDIRECT_URI": "https://smtpcheck.example.com/oauth",
            },
            ["SLACK_REDIRECT_URI: its path must be SLACK_REDIRECT_URI_PATH"],
        ),
    ],
)
def test_bad_oauth_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], names: list[str]
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2")  # ignored once OAuth is asked for
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    for name in names:
        assert name in message
    assert "SLACK_BOT_TOKEN" not in message  # not needed, so not named
    assert "CANARY" not in message and "\n" not in message


def test_oauth_paths_and_redirect_that_fit_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "s",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_SCOPES": "commands, chat:write, chat:write",
        "SLACK_INSTALL_PATH": "/install",
        "SLACK_REDIRECT_URI_PATH": "/oauth/done",
        "SLACK_REDIRECT_URI": "https://smtpcheck.example.com/oauth/done",
    }.items():
        monkeypatch.setenv(name, value)
    settings, _ = load_settings()
    assert settings.oauth_environ()["SLACK_INSTALL_PATH"] == "/install"
