"""Multi-workspace install: Bolt's OAuth flow with installations and states in the store's DB.

Single-workspace token mode (SLACK_BOT_TOKEN, a team's own install) needs none of this:
`oauth_settings()` returns None unless SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from diagnostics import ConfigError

_log = logging.getLogger(__name__)

# What the bot needs: the slash command, posting and updating its messages (also in channels
# it was not invited to, for /smtpcheck in any channel), App Home, DMs, and mentions.
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "app_mentions:read",
    "im:history",
    "im:write",
    "users:read",
)
DEFAULT_API_BASE_URL = "https://slack.com/api/"
STATE_EXPIRATION_S = 600
_CLIENT_ID = re.compile(r"^\d+\.\d+$")


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() if value and value.strip() else None


def authorize_url_for(api_base_url: str) -> str:
    """The OAuth authorize page next to the Web API (slack.com, GovSlack, a test stand-in)."""
    base = api_base_url.rstrip("/")
    if base.endswith("/api"):
        base = base[: -len("/api")]
    return base + "/oauth/v2/authorize"


def oauth_settings(
    store: Any,
    *,
    api_base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncOAuthSettings | None:
    """Bolt OAuth settings backed by STORE's database, or None for single-workspace mode.

    Reads SLACK_CLIENT_ID, SLACK_CLIENT_SECRET (both, or neither), SLACK_SCOPES (comma list),
    SLACK_REDIRECT_URI, SLACK_INSTALL_PATH (/slack/install), SLACK_REDIRECT_URI_PATH
    (/slack/oauth_redirect), SMTPCHECK_TOKEN_ROTATION_MINUTES (120: refresh rotating tokens
    that expire within this many minutes), SLACK_API_BASE_URL.
    """
    environ = os.environ if environ is None else environ
    client_id = _env(environ, "SLACK_CLIENT_ID")
    client_secret = _env(environ, "SLACK_CLIENT_SECRET")
    if client_id is None and client_secret is None:
        return None
    problems = []
    if client_id is None:
        problems.append("SLACK_CLIENT_ID: missing (Basic Information → App Credentials)")
    elif not _CLIENT_ID.match(client_id):
        problems.append("SLACK_CLIENT_ID: malformed (digits, a dot, digits)")
    if client_secret is None:
        problems.append("SLACK_CLIENT_SECRET: missing (Basic Information → App Credentials)")
    rotation = _env(environ, "SMTPCHECK_TOKEN_ROTATION_MINUTES") or "120"
    if not (rotation.isascii() and rotation.isdigit()) or not 1 <= int(rotation) <= 720:
        problems.append("SMTPCHECK_TOKEN_ROTATION_MINUTES: a whole number from 1 to 720")
    if problems:
        raise ConfigError("Slack OAuth (multi-workspace install): " + "; ".join(problems))
    assert client_id is not None and client_secret is not None

    if _env(environ, "SLACK_BOT_TOKEN"):
        _log.warning("SLACK_CLIENT_ID is set: OAuth mode; SLACK_BOT_TOKEN is ignored")
    base_url = api_base_url or _env(environ, "SLACK_API_BASE_URL") or DEFAULT_API_BASE_URL
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    scopes = _env(environ, "SLACK_SCOPES")
    settings = AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=[s.strip() for s in scopes.split(",") if s.strip()] if scopes else DEFAULT_SCOPES,
        user_scopes=[],
        redirect_uri=_env(environ, "SLACK_REDIRECT_URI"),
        install_path=_env(environ, "SLACK_INSTALL_PATH") or "/slack/install",
        redirect_uri_path=_env(environ, "SLACK_REDIRECT_URI_PATH") or "/slack/oauth_redirect",
        # Straight to Slack's consent page; no intermediate "Add to Slack" page.
        install_page_rendering_enabled=False,
        authorization_url=authorize_url_for(base_url),
        installation_store=AsyncSQLAlchemyInstallationStore(
            client_id=client_id, engine=store.engine, logger=_log
        ),
        # Only the bot token is used: authorize finds it with find_bot, whoever clicks.
        installation_store_bot_only=True,
        token_rotation_expiration_minutes=int(rotation),
        state_store=AsyncSQLAlchemyOAuthStateStore(
            expiration_seconds=STATE_EXPIRATION_S, engine=store.engine, logger=_log
        ),
        state_expiration_seconds=STATE_EXPIRATION_S,
        logger=_log,
    )
    # Bolt's rotator would talk to slack.com whatever SLACK_API_BASE_URL says.
    settings.authorize.token_rotator = AsyncTokenRotator(
        client_id=client_id,
        client_secret=client_secret,
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
        self._rotator: AsyncTokenRotator | None = settings.authorize.token_rotator
        self._minutes = settings.token_rotation_expiration_minutes

    async def bot_token(self, team_id: str, *, enterprise_id: str | None = None) -> str | None:
        """The team's bot token (rotated first if it is about to expire), or None."""
        bot = await self._store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None:
            return None
        expires_at = bot.bot_token_expires_at
        if self._rotator is not None and expires_at is not None:
            if expires_at <= time.time() + self._minutes * 60:
                rotated = await self._rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=self._minutes
                )
                if rotated is not None:
                    await self._store.async_save_bot(rotated)
                    bot = rotated
        return bot.bot_token
