"""Small Web API helpers shared by the runner and listeners (posting with sane fallbacks)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError, SlackTokenRotationError
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("smtpcheck.bot")

# Errors that mean "the bot cannot post in that conversation": fall back to the user's DM.
NOT_POSTABLE = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "cannot_dm_bot"}
)
# Errors that mean Slack will not take the bot's calls at all until someone acts.
TOKEN_REFUSED = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
REFUSED = NOT_POSTABLE | TOKEN_REFUSED

# What a Web API call can raise once the client's retries are spent: Slack's answer
# (SlackApiError), or the transport's (a timeout, a reset, a refused or dropped connection).
WEB_API_ERRORS: tuple[type[Exception], ...] = (
    SlackClientError,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
)


def api_error(exc: Exception) -> str:
    """The Slack error code, else the HTTP status, else the exception's class; never a token."""
    if isinstance(exc, SlackTokenRotationError):  # oauth.v2.access refused the refresh
        exc = exc.api_error
    if isinstance(exc, SlackApiError) and exc.response is not None:
        # A 429/5xx from Slack's edge or a proxy may have no JSON body: data is then a str.
        data = exc.response.data
        error = data.get("error") if isinstance(data, dict) else None
        return str(error or exc.response.status_code)
    return type(exc).__name__


def dict_blocks(blocks: list[Block]) -> list[dict[str, Any]]:
    """Blocks as dicts (validated by to_dict), e.g. for the outbox."""
    return [block.to_dict() for block in blocks]


def message_payload(
    channel: str | None, text: str, blocks: list[Block], *, thread_ts: str | None = None
) -> dict[str, Any]:
    """chat.postMessage arguments (links not unfurled; in the thread THREAD_TS if given), e.g.
    for the outbox."""
    payload: dict[str, Any] = {
        "channel": channel,
        "text": text,
        "blocks": dict_blocks(blocks),
        "unfurl_links": False,
    }
    if thread_ts:
        payload["thread_ts"] = thread_ts
    return payload


async def post_message(
    client: AsyncWebClient,
    *,
    channel: str,
    user_id: str,
    text: str,
    blocks: list[Block],
    thread_ts: str | None = None,
) -> tuple[str, str]:
    """Post in `channel`, or in the user's DM with the app when the bot may not post there.

    Returns (channel, ts) of the message actually posted.
    """
    try:
        response = await client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False
        )
    except SlackApiError as exc:
        if api_error(exc) not in NOT_POSTABLE or channel == user_id:
            raise
        log.info("cannot post in %s (%s); using the user's DM", channel, api_error(exc))
        response = await client.chat_postMessage(
            channel=user_id, text=text, blocks=blocks, unfurl_links=False
        )
    return str(response["channel"]), str(response["ts"])


async def tell_user(
    client: AsyncWebClient,
    *,
    channel: str | None,
    user_id: str,
    text: str,
    blocks: list[Block] | None = None,
) -> None:
    """An ephemeral note to one user (their DM with the app when ephemeral is impossible)."""
    try:
        if channel:
            await client.chat_postEphemeral(channel=channel, user=user_id, text=text, blocks=blocks)
            return
    except SlackApiError as exc:
        if api_error(exc) not in NOT_POSTABLE:
            log.warning("ephemeral message failed: %s", api_error(exc))
            return
    except WEB_API_ERRORS as exc:  # Slack unreachable: the DM would fail the same way
        log.warning("ephemeral message failed: %s", api_error(exc))
        return
    try:
        await client.chat_postMessage(channel=user_id, text=text, blocks=blocks)
    except WEB_API_ERRORS as exc:
        log.warning("could not reach user %s: %s", user_id, api_error(exc))


class TeamClients:
    """The Web API client that speaks for a workspace, for work outside a Slack request.

    One workspace (SLACK_BOT_TOKEN): the app's client. Several (OAuth): a client like the
    app's (base URL, timeout, retries) with the team's bot token from BOT_TOKEN(team_id),
    which looks the installation up (and rotates an expiring token).
    """

    def __init__(
        self,
        base: AsyncWebClient,
        *,
        bot_token: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.base = base
        self._bot_token = bot_token

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        """The client for TEAM_ID; None when that workspace has no installation."""
        if self._bot_token is None:
            return self.base
        token = await self._bot_token(team_id) if team_id else None
        if token is None:
            return None
        base = self.base
        like = getattr(base, "like", None)
        if like is not None:  # a PacedWebClient: the same gate for every workspace's client
            return like(token=token, team_id=team_id)  # type: ignore[no-any-return]
        return type(base)(token=token, **client_options(base))


def client_options(base: AsyncWebClient) -> dict[str, Any]:
    """What a client for another token keeps of BASE: its base URL, timeout, TLS, proxy,
    session, headers, logger and retry handlers."""
    return {
        "base_url": base.base_url,
        "timeout": base.timeout,
        "ssl": base.ssl,
        "proxy": base.proxy,
        "session": base.session,
        "trust_env_in_session": base.trust_env_in_session,
        "headers": dict(base.headers),
        "logger": base.logger,
        "retry_handlers": list(base.retry_handlers),
    }
