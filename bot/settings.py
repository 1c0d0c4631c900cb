"""The bot's configuration from the environment (and `.env`), validated once at start."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.oauth import oauth_problems, oauth_requested
from diagnostics import ConfigError, EngineConfig

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+(?:\.\d+)?)\s*s?\s*$")


class SlackCredentials(BaseSettings):
    """The Slack credentials as given (plain strings, which cannot fail to parse): a bot
    token for one workspace, or the app's OAuth variables for a multi-workspace install."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    # Multi-workspace install (OAuth): checked by bot.oauth, named in load_settings' message.
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_CLIENT_SECRET"
    )
    slack_scopes: str | None = Field(default=None, validation_alias="SLACK_SCOPES")
    slack_redirect_uri: str | None = Field(default=None, validation_alias="SLACK_REDIRECT_URI")
    slack_install_path: str | None = Field(default=None, validation_alias="SLACK_INSTALL_PATH")
    slack_redirect_uri_path: str | None = Field(
        default=None, validation_alias="SLACK_REDIRECT_URI_PATH"
    )
    token_rotation_minutes: str | None = Field(
        default=None, validation_alias="SMTPCHECK_TOKEN_ROTATION_MINUTES"
    )

    def oauth_environ(self) -> dict[str, str]:
        """The OAuth variables that are set, by name, as bot.oauth reads them."""
        values = {
            "SLACK_CLIENT_ID": self.slack_client_id,
            "SLACK_CLIENT_SECRET": (
                self.slack_client_secret.get_secret_value() if self.slack_client_secret else None
            ),
            "SLACK_SCOPES": self.slack_scopes,
            "SLACK_REDIRECT_URI": self.slack_redirect_uri,
            "SLACK_INSTALL_PATH": self.slack_install_path,
            "SLACK_REDIRECT_URI_PATH": self.slack_redirect_uri_path,
            "SMTPCHECK_TOKEN_ROTATION_MINUTES": self.token_rotation_minutes,
        }
        return {name: value for name, value in values.items() if value is not None}

    @property
    def oauth(self) -> bool:
        """Multi-workspace mode: SLACK_CLIENT_ID or SLACK_CLIENT_SECRET is set."""
        return oauth_requested(self.oauth_environ())


class BotSettings(SlackCredentials):
    """Slack credentials and the bot's own options (the engine reads its own EngineConfig)."""

    slack_api_base_url: str = Field(
        default="https://slack.com/api/", validation_alias="SLACK_API_BASE_URL"
    )
    escalation_channel: str | None = Field(
        default=None, validation_alias="SMTPCHECK_ESCALATION_CHANNEL"
    )
    database_url: str | None = Field(default=None, validation_alias="SMTPCHECK_DATABASE_URL")
    credential_test: bool = Field(default=False, validation_alias="SMTPCHECK_CREDENTIAL_TEST")
    max_concurrent: int = Field(
        default=20, ge=1, le=1000, validation_alias="SMTPCHECK_MAX_CONCURRENT"
    )
    # "N/Ss": at most N diagnoses per user in any S seconds (shared across replicas).
    user_rate: str = Field(default="5/60", validation_alias="SMTPCHECK_USER_RATE")
    # Users allowed to run `/smtpcheck history` outside the escalation channel.
    agents: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="SMTPCHECK_AGENTS"
    )
    shutdown_grace: float = Field(
        default=25.0, ge=0, le=600, validation_alias="SMTPCHECK_SHUTDOWN_GRACE"
    )
    # Minimum seconds between two chat.update calls on one progress message.
    progress_interval: float = Field(
        default=1.0, ge=0, le=30, validation_alias="SMTPCHECK_PROGRESS_INTERVAL"
    )
    outbox_interval: float = Field(
        default=30.0, gt=0, le=3600, validation_alias="SMTPCHECK_OUTBOX_INTERVAL"
    )
    # The operator's listener: /metrics and the detailed /health, never on the port Slack
    # reaches. Unset: not served (the public port's /health still says ok or not).
    ops_port: int | None = Field(
        default=None, ge=0, le=65535, validation_alias="SMTPCHECK_OPS_PORT"
    )
    ops_host: str = Field(default="127.0.0.1", validation_alias="SMTPCHECK_OPS_HOST")

    @field_validator("slack_api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        # slack_sdk joins method names onto the base URL, so it must end with '/'.
        return value if value.endswith("/") else value + "/"

    @field_validator("escalation_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not _CHANNEL_ID.match(value):
            raise ValueError("must be a channel ID such as C0123456789 (not a #name)")
        return value

    @field_validator("user_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        match = _RATE.match(value)
        if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
            raise ValueError("must look like 5/60 (5 diagnoses per 60 seconds)")
        return value

    @field_validator("agents", mode="before")
    @classmethod
    def _agents(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        items = tuple(value) if isinstance(value, list | tuple | set) else (value,) if value else ()
        for item in items:
            if not _USER_ID.match(str(item)):
                raise ValueError(f"'{item}' is not a Slack user ID such as U0123456789")
        return items

    @property
    def rate_limit(self) -> tuple[int, float]:
        """(diagnoses, window in seconds) per user."""
        match = _RATE.match(self.user_rate)
        assert match is not None  # validated above
        return int(match.group(1)), float(match.group(2))


# Field name -> the variable an operator sets, for messages.
_VARIABLES = {
    name: str(field.validation_alias or name.upper())
    for name, field in BotSettings.model_fields.items()
}


def _problems(exc: ValidationError, names: dict[str, str]) -> list[str]:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = names.get(field, field.upper())
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{variable}: {message}")
    return problems


def load_settings(*, socket_mode: bool = False) -> tuple[BotSettings, EngineConfig]:
    """Read and check the configuration; raise ConfigError naming every bad variable."""
    problems: list[str] = []
    settings: BotSettings | None = None
    engine: EngineConfig | None = None
    try:
        settings = BotSettings()
    except ValidationError as exc:
        problems += _problems(exc, _VARIABLES)
    try:
        engine = EngineConfig()
    except ValidationError as exc:
        problems += _problems(
            exc, {name: f"SMTPCHECK_{name.upper()}" for name in EngineConfig.model_fields}
        )
    # Named even when another variable is malformed, so one run shows every problem.
    problems += _missing(SlackCredentials(), socket_mode=socket_mode)
    if problems or settings is None or engine is None:
        mode = "Socket Mode" if socket_mode else "HTTP mode"
        if settings is not None and settings.oauth:
            mode += ", multi-workspace"
        raise ConfigError(f"smtpcheck serve ({mode}): " + "; ".join(problems))
    return settings, engine


def _missing(settings: SlackCredentials, *, socket_mode: bool) -> list[str]:
    problems = []
    token = settings.slack_bot_token
    if settings.oauth:
        # Each workspace's token comes from its install; SLACK_BOT_TOKEN is not used.
        problems += oauth_problems(settings.oauth_environ())
    elif token is None or not token.get_secret_value().strip():
        problems.append(
            "SLACK_BOT_TOKEN: missing (the xoxb-… token from OAuth & Permissions; or, to"
            " install in several workspaces, SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)"
        )
    elif not token.get_secret_value().startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN: malformed (a bot token starts with xoxb-)")
    if socket_mode:
        app_token = settings.slack_app_token
        if app_token is None or not app_token.get_secret_value().strip():
            problems.append(
                "SLACK_APP_TOKEN: missing (an xapp-… app-level token with connections:write)"
            )
        elif not app_token.get_secret_value().startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN: malformed (an app-level token starts with xapp-)")
    else:
        secret = settings.slack_signing_secret
        if secret is None or not secret.get_secret_value().strip():
            problems.append("SLACK_SIGNING_SECRET: missing (Basic Information → Signing Secret)")
    return problems
