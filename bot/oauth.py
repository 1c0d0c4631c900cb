"""Multi-workspace install: Bolt's OAuth flow with installations and states in the store's DB.

Single-workspace token mode (SLACK_BOT_TOKEN, a team's own install) needs none of this:
`oauth_settings()` returns None unless SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Mapping

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_io import WEB_API_ERRORS, api_error
from bot.store.base import BotStore
from diagnostics import ConfigError

_log = logging.getLogger(__name__)

# Exactly what the bot uses (the manifests in deploy/slack declare the same): the slash
# command and the message shortcut; posting and updating its messages, ephemeral notes and
# the user's DM with the app. views.* and chat.getPermalink need no scope.
DEFAULT_SCOPES = ("commands", "chat:write")
REQUIRED_SCOPES = frozenset(DEFAULT_SCOPES)
DEFAULT_API_BASE_URL = "https://slack.com/api/"
DEFAULT_INSTALL_PATH = "/slack/install"
DEFAULT_REDIRECT_URI_PATH = "/slack/oauth_redirect"
DEFAULT_ROTATION_MINUTES = 120
STATE_EXPIRATION_S = 600
# The variables this module reads (SLACK_API_BASE_URL comes from the bot's own settings).
VARIABLES = (
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_SCOPES",
    "SLACK_REDIRECT_URI",
    "SLACK_INSTALL_PATH",
    "SLACK_REDIRECT_URI_PATH",
    "SMTPCHECK_TOKEN_ROTATION_MINUTES",
)
_CLIENT_ID = re.compile(r"^[0-9]+\.[0-9]+$")
_SCOPE = re.compile(r"^[a-z_.]+(:[a-z_.]+)*$")
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_TAKEN_PATHS = {"/slack/events", "/health", "/metrics"}  # served by the bot already
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}


@dataclasses.dataclass(frozen=True, slots=True)
class OAuthOptions:
    """The OAuth variables, checked (the secret is kept out of repr)."""

    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    scopes: tuple[str, ...]
    redirect_uri: str | None
    install_path: str
    redirect_uri_path: str
    rotation_minutes: int


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() if value and value.strip() else None


def oauth_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when SLACK_CLIENT_ID or SLACK_CLIENT_SECRET is set: multi-workspace mode."""
    environ = os.environ if environ is None else environ
    return bool(_env(environ, "SLACK_CLIENT_ID") or _env(environ, "SLACK_CLIENT_SECRET"))


def oauth_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per bad OAuth variable (never its value); empty when fine or not in use."""
    return _read(os.environ if environ is None else environ)[1]


def _read(environ: Mapping[str, str]) -> tuple[OAuthOptions | None, list[str]]:
    if not oauth_requested(environ):
        return None, []
    problems = []
    client_id = _env(environ, "SLACK_CLIENT_ID")
    client_secret = _env(environ, "SLACK_CLIENT_SECRET")
    if client_id is None:
        problems.append("SLACK_CLIENT_ID: missing (Basic Information → App Credentials)")
    elif not _CLIENT_ID.match(client_id):
        problems.append("SLACK_CLIENT_ID: malformed (digits, a dot, digits)")
    if client_secret is None:
        problems.append("SLACK_CLIENT_SECRET: missing (Basic Information → App Credentials)")
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    if (raw_scopes := _env(environ, "SLACK_SCOPES")) is not None:
        scopes = tuple(dict.fromkeys(s.strip() for s in raw_scopes.split(",") if s.strip()))
        if not all(_SCOPE.match(s) for s in scopes):
            problems.append("SLACK_SCOPES: a comma-separated list such as commands,chat:write")
        elif not REQUIRED_SCOPES <= set(scopes):
            problems.append(
                "SLACK_SCOPES: must include commands and chat:write (the slash command and"
                " the reports)"
            )
    paths = {}
    for name, default in (
        ("SLACK_INSTALL_PATH", DEFAULT_INSTALL_PATH),
        ("SLACK_REDIRECT_URI_PATH", DEFAULT_REDIRECT_URI_PATH),
    ):
        path = _env(environ, name) or default
        if not _PATH.match(path):
            problems.append(f"{name}: a URL path such as {default}")
        elif path in _TAKEN_PATHS:
            problems.append(f"{name}: {path} is already one of the bot's own paths")
        paths[name] = path
    if paths["SLACK_INSTALL_PATH"] == paths["SLACK_REDIRECT_URI_PATH"]:
        problems.append("SLACK_REDIRECT_URI_PATH: must differ from SLACK_INSTALL_PATH")
    redirect_uri = _env(environ, "SLACK_REDIRECT_URI")
    if redirect_uri is not None:
        problems += _redirect_problems(redirect_uri, paths["SLACK_REDIRECT_URI_PATH"])
    rotation = _env(environ, "SMTPCHECK_TOKEN_ROTATION_MINUTES") or str(DEFAULT_ROTATION_MINUTES)
    if not (rotation.isascii() and rotation.isdigit()) or not 1 <= int(rotation) <= 720:
        problems.append("SMTPCHECK_TOKEN_ROTATION_MINUTES: a whole number from 1 to 720")
    if problems or client_id is None or client_secret is None:
        return None, problems
    options = OAuthOptions(
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
        redirect_uri=redirect_uri,
        install_path=paths["SLACK_INSTALL_PATH"],
        redirect_uri_path=paths["SLACK_REDIRECT_URI_PATH"],
        rotation_minutes=int(rotation),
    )
    return options, []


def _redirect_problems(uri: str, redirect_path: str) -> list[str]:
    parsed = urllib.parse.urlsplit(uri)
    secure = parsed.scheme == "https" or (
        parsed.scheme == "http" and (parsed.hostname or "") in _LOOPBACK
    )
    if not secure or not parsed.netloc or " " in uri:
        return ["SLACK_REDIRECT_URI: an https:// URL such as https://smtpcheck.example.com"
                + DEFAULT_REDIRECT_URI_PATH]  # fmt: skip
    if (parsed.path or "/") != redirect_path:
        # Slack sends the installer there: it must be the path the bot listens on.
        return [f"SLACK_REDIRECT_URI: its path must be SLACK_REDIRECT_URI_PATH ({redirect_path})"]
    return []


def authorize_url_for(api_base_url: str) -> str:
    """The OAuth authorize page next to the Web API (slack.com, GovSlack, a test stand-in)."""
    base = api_base_url.rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")]
    return base + "/oauth/v2/authorize"


def oauth_settings(
    store: BotStore,
    *,
    api_base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncOAuthSettings | None:
    """Bolt OAuth settings backed by STORE's database, or None for single-workspace mode.

    Reads SLACK_CLIENT_ID, SLACK_CLIENT_SECRET (both, or neither), SLACK_SCOPES (comma list,
    default commands,chat:write), SLACK_REDIRECT_URI, SLACK_INSTALL_PATH (/slack/install),
    SLACK_REDIRECT_URI_PATH (/slack/oauth_redirect), SMTPCHECK_TOKEN_ROTATION_MINUTES (120:
    refresh rotating tokens that expire within this many minutes), SLACK_API_BASE_URL; from
    ENVIRON (default os.environ). Raises ConfigError naming every bad variable.
    """
    environ = os.environ if environ is None else environ
    options, problems = _read(environ)
    if problems:
        raise ConfigError("Slack OAuth (multi-workspace install): " + "; ".join(problems))
    if options is None:
        return None
    if _env(environ, "SLACK_BOT_TOKEN"):
        _log.warning("SLACK_CLIENT_ID is set: OAuth mode; SLACK_BOT_TOKEN is ignored")
    base_url = api_base_url or _env(environ, "SLACK_API_BASE_URL") or DEFAULT_API_BASE_URL
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    settings = AsyncOAuthSettings(
        client_id=options.client_id,
        client_secret=options.client_secret,
        scopes=list(options.scopes),
        user_scopes=[],
        redirect_uri=options.redirect_uri,
        install_path=options.install_path,
        redirect_uri_path=options.redirect_uri_path,
        # Straight to Slack's consent page; no intermediate "Add to Slack" page.
        install_page_rendering_enabled=False,
        authorization_url=authorize_url_for(base_url),
        installation_store=AsyncSQLAlchemyInstallationStore(
            client_id=options.client_id, engine=store.engine, logger=_log
        ),
        # Only the bot token is used: authorize finds it with find_bot, whoever clicks.
        installation_store_bot_only=True,
        token_rotation_expiration_minutes=options.rotation_minutes,
        state_store=AsyncSQLAlchemyOAuthStateStore(
            expiration_seconds=STATE_EXPIRATION_S, engine=store.engine, logger=_log
        ),
        state_expiration_seconds=STATE_EXPIRATION_S,
        logger=_log,
    )
    # Bolt's rotator would talk to slack.com whatever SLACK_API_BASE_URL says.
    settings.authorize.token_rotator = AsyncTokenRotator(  # type: ignore[attr-defined]
        client_id=options.client_id,
        client_secret=options.client_secret,
        client=AsyncWebClient(base_url=base_url),
    )
    return settings


def add_oauth_routes(web_app: web.Application, bolt_app: AsyncApp) -> bool:
    """Mount GET install and redirect paths when BOLT_APP has an OAuth flow; True if mounted."""
    flow = bolt_app.oauth_flow
    if flow is None:
        return False

    async def install(request: web.Request) -> web.Response:
        return await to_aiohttp_response(
            await flow.handle_installation(await to_bolt_request(request))
        )

    async def callback(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    web_app.router.add_get(flow.install_path, install)
    web_app.router.add_get(flow.redirect_uri_path, callback)
    return True


class TeamTokens:
    """Bot tokens per workspace for work outside a Slack request (outbox, late replies).

    Inside a listener Bolt's authorize already gives `context.client` the team's (rotated)
    token; a background task that posts later asks here, and gets a refreshed token when
    the stored one expires within ROTATION_MINUTES.
    """

    def __init__(self, settings: AsyncOAuthSettings) -> None:
        self._store: AsyncInstallationStore = settings.installation_store
        # Bolt's AsyncInstallationStoreAuthorize has it; the base class does not declare it.
        self._rotator: AsyncTokenRotator | None = settings.authorize.token_rotator  # type: ignore[attr-defined]
        self._minutes = settings.token_rotation_expiration_minutes

    async def bot_token(self, team_id: str, *, enterprise_id: str | None = None) -> str | None:
        """The team's bot token (rotated first if it is about to expire), or None."""
        bot = await self._store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None:
            return None
        expires_at = bot.bot_token_expires_at
        if self._rotator is None or expires_at is None:
            return bot.bot_token
        if expires_at > time.time() + self._minutes * 60:
            return bot.bot_token
        try:
            rotated = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=self._minutes
            )
        except WEB_API_ERRORS as exc:
            # Another replica may have used the refresh token first (it works once), or
            # Slack is down: its saved token, or ours while it lasts, is still good.
            latest = await self._store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
            bot = latest if latest is not None else bot
            if (bot.bot_token_expires_at or 0) <= time.time():
                raise
            _log.warning("token rotation for %s failed (%s); using the current token", team_id,
                         api_error(exc))  # fmt: skip
            return bot.bot_token
        if rotated is not None:
            await self._store.async_save_bot(rotated)
            bot = rotated
        return bot.bot_token
