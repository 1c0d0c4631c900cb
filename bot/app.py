"""`build_app()`: the Bolt AsyncApp with its Web API client, listeners and dependencies.

One workspace: the client holds SLACK_BOT_TOKEN. Several (SLACK_CLIENT_ID and
SLACK_CLIENT_SECRET): Bolt's OAuth flow installs the app and authorizes each request with
its workspace's token (the listener's `client`); background work asks `TeamTokens`.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.deps import Deps
from bot.listeners import register_listeners
from bot.listeners._common import on_listener_error
from bot.oauth import TeamTokens, oauth_settings
from bot.observability.logs import bind_log_context, log_context, new_request_id
from bot.runner import Diagnose, Runner
from bot.settings import BotSettings
from bot.slack_io import TeamClients
from bot.slack_pacing import PacedWebClient, RateLimitGate, paced_retry_handlers
from bot.store.base import BotStore
from diagnostics import EngineConfig

log = logging.getLogger("smtpcheck.bot")
WEB_API_TIMEOUT = 15  # seconds per call; retries come on top
_DEPS: weakref.WeakKeyDictionary[AsyncApp, Deps] = weakref.WeakKeyDictionary()


def build_client(settings: BotSettings) -> PacedWebClient:
    """The Web API client: SLACK_API_BASE_URL, Retry-After honoured, 5xx and resets retried.

    It holds SLACK_BOT_TOKEN in single-workspace mode and no token in OAuth mode.
    """
    token = None
    if settings.slack_bot_token is not None and not settings.oauth:
        token = settings.slack_bot_token.get_secret_value()
    # Every call goes through one RateLimitGate: a 429 closes its lane for Retry-After and
    # the calls behind it wait their turn (bot/slack_pacing.py); 5xx and resets are retried.
    return PacedWebClient(
        token=token,
        base_url=settings.slack_api_base_url,
        timeout=WEB_API_TIMEOUT,
        retry_handlers=paced_retry_handlers(),
        gate=RateLimitGate(),
    )


def build_app(
    settings: BotSettings,
    *,
    store: BotStore,
    engine_config: EngineConfig,
    diagnose: Diagnose | None = None,
) -> AsyncApp:
    """The Slack app. `diagnose` replaces the engine only where a test needs a fake one.

    Raises ConfigError for bad OAuth variables (load_settings names them earlier).
    """
    oauth = None
    if settings.oauth:
        oauth = oauth_settings(
            store, api_base_url=settings.slack_api_base_url, environ=settings.oauth_environ()
        )
        if settings.slack_bot_token is not None:
            log.warning("SLACK_CLIENT_ID is set: OAuth mode; SLACK_BOT_TOKEN is ignored")
    client = build_client(settings)
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    app = _App(
        client=client,
        signing_secret=secret,
        request_verification_enabled=True,
        process_before_response=False,  # ack first; the work continues after the response
        logger=logging.getLogger("smtpcheck.bolt"),
        oauth_settings=oauth,  # None: the client's own token (and no install pages)
    )
    tokens = TeamTokens(oauth) if oauth is not None else None
    runner = Runner(
        clients=TeamClients(client, bot_token=tokens.bot_token if tokens else None),
        store=store,
        engine_config=engine_config,
        settings=settings,
        diagnose=diagnose,
    )
    deps = Deps(settings=settings, engine_config=engine_config, store=store, runner=runner)
    _DEPS[app] = deps

    @app.middleware
    async def inject_deps(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context["deps"] = deps
        bind_log_context(team_id=context.team_id, user_id=context.user_id)
        # Bolt makes a plain client per request; the listener's gets the shared gate too.
        listener_client = context.get("client")
        if listener_client is not None and not isinstance(listener_client, PacedWebClient):
            context["client"] = client.like(token=listener_client.token, team_id=context.team_id)
        await next()

    register_listeners(app)
    app.error(on_listener_error)
    return app


class _App(AsyncApp):
    """Bolt's app, each request dispatched with its own request id in the log context.

    Listeners run in tasks created during the dispatch (after the ack), and a diagnosis in
    a task its listener creates: all inherit the id, so every line of one Slack request
    (and of the check it starts, which adds its diagnosis id) can be found together.
    """

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        with log_context(request_id=new_request_id()):
            return await super().async_dispatch(req)


def app_deps(app: AsyncApp) -> Deps:
    """The dependencies `build_app` wired into `app` (runner, store, settings)."""
    return _DEPS[app]
