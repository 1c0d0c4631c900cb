"""Serving the app: aiohttp for HTTP mode (POST /slack/events, GET /health) or Socket Mode,
and a clean SIGTERM: stop accepting, let diagnoses finish, report the rest as interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.app import app_deps, build_app
from bot.oauth import add_oauth_routes
from bot.observability import health as ops_health
from bot.observability.logs import configure_logging
from bot.runner import Diagnose
from bot.settings import BotSettings, load_settings
from bot.store import start_maintenance
from bot.store.base import BotStore
from diagnostics import ConfigError, EngineConfig
from diagnostics._engine import prepare
from diagnostics.exit_codes import EXIT_CONFIG, EXIT_INTERNAL, EXIT_OK

log = logging.getLogger("smtpcheck.bot")
EVENTS_PATH = "/slack/events"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024  # Slack payloads are far smaller; refuse floods early
# Slack sends its whole body at once; one trickled a byte at a time holds a connection and a
# handler for as long as the sender likes: it gets this long, then 408 and a closed socket.
BODY_READ_TIMEOUT = 10.0
_TIMESTAMP_DIGITS = 12  # seconds since 1970 have 10 digits until the year 2286
# Connections the kernel completes while the loop is busy, before it accepts them. With
# aiohttp's default of 128, a burst of 200 commands overflowed it: each SYN dropped came back after
# TCP's 1 s retransmission, an ack p99 of ~1.05 s (bench row 5). Linux caps it at somaxconn.
LISTEN_BACKLOG = 1024


@web.middleware
async def _body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body within BODY_READ_TIMEOUT before any handler sees the request."""
    if request.can_read_body:
        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT):
                await request.read()  # kept by aiohttp: the handler reads it again for free
        except TimeoutError:
            log.warning(
                "closed a request to %s: its body did not arrive within %.0f s",
                request.path,
                BODY_READ_TIMEOUT,
            )
            raise web.HTTPRequestTimeout(
                text="request body too slow", headers={"Connection": "close"}
            ) from None
    return await handler(request)


def _malformed_timestamp(request: web.Request) -> bool:
    """Slack's X-Slack-Request-Timestamp is whole seconds in ASCII digits; anything else
    ('abc', '1.5', '') is a forged or broken request (Bolt would fail on it with a 500)."""
    stamp = request.headers.get("X-Slack-Request-Timestamp")
    if stamp is None:
        return False  # Bolt refuses a request without one (401)
    return not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _TIMESTAMP_DIGITS)


def build_web_app(
    bolt_app: AsyncApp,
    *,
    health: ops_health.HealthState,
    events: bool = True,
    ops_routes: bool = False,
) -> web.Application:
    """The aiohttp application: Slack's request URL (HTTP mode), the install pages (OAuth
    mode) and GET /health saying ok or not; /metrics and the detailed /health only with
    `ops_routes` (the operator's listener, see `build_ops_app`)."""
    runner = app_deps(bolt_app).runner
    web_app = web.Application(client_max_size=MAX_BODY, middlewares=[_body_deadline])

    async def slack_events(request: web.Request) -> web.Response:
        if runner.closing:
            # Slack retries; another replica (or this one after restart) will answer.
            return web.Response(status=503, text="shutting down")
        if _malformed_timestamp(request):
            log.warning("refused a Slack request: malformed X-Slack-Request-Timestamp header")
            return web.Response(status=401, text="invalid request")
        bolt_response = await bolt_app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    if events:
        web_app.router.add_post(EVENTS_PATH, slack_events)
    add_oauth_routes(web_app, bolt_app)  # GET /slack/install and the redirect, with OAuth
    if ops_routes:
        ops_health.add_ops_routes(web_app, health)  # GET /health, GET /metrics
    else:
        ops_health.add_public_health_route(web_app, health)  # GET /health: ok or not
    return web_app


def build_ops_app(health: ops_health.HealthState) -> web.Application:
    """The operator's listener (SMTPCHECK_OPS_PORT): GET /health in full, GET /metrics."""
    ops_app = web.Application(client_max_size=1024, middlewares=[_body_deadline])
    ops_health.add_ops_routes(ops_app, health)
    return ops_app


class BotServer:
    """The running bot: web server (and Socket Mode connection), runner, graceful stop."""

    def __init__(
        self,
        *,
        settings: BotSettings,
        engine_config: EngineConfig,
        store: BotStore,
        socket_mode: bool = False,
        diagnose: Diagnose | None = None,
    ) -> None:
        self.settings = settings
        self.engine_config = engine_config
        self.store = store
        self.socket_mode = socket_mode
        self.app = build_app(settings, store=store, engine_config=engine_config, diagnose=diagnose)
        self.deps = app_deps(self.app)
        self._web_runner: web.AppRunner | None = None
        self._ops_runner: web.AppRunner | None = None
        self.ops_port: int | None = None
        self._socket_handler: Any = None
        self.port: int | None = None
        self.health = ops_health.HealthState(mode="socket" if socket_mode else "http")
        self._maintenance: asyncio.Task[None] | None = None

    async def start(
        self, *, host: str = "0.0.0.0", port: int = 3000, reuse_port: bool = False
    ) -> int:
        """Listen (HTTP events unless Socket Mode; health always); returns the bound port.

        With `reuse_port`, other processes may listen on the same port (SO_REUSEPORT) and
        the kernel spreads the connections among them (replicas sharing one store)."""
        web_app = build_web_app(self.app, health=self.health, events=not self.socket_mode)
        self._web_runner = web.AppRunner(
            web_app, access_log=None, handle_signals=False, shutdown_timeout=5
        )
        await self._web_runner.setup()
        site = web.TCPSite(
            self._web_runner, host, port, backlog=LISTEN_BACKLOG, reuse_port=reuse_port or None
        )
        await site.start()
        self.port = int(self._web_runner.addresses[0][1])
        if self.settings.ops_port is not None:
            self._ops_runner = web.AppRunner(
                build_ops_app(self.health), access_log=None, handle_signals=False
            )
            await self._ops_runner.setup()
            ops_site = web.TCPSite(self._ops_runner, self.settings.ops_host, self.settings.ops_port)
            await ops_site.start()
            self.ops_port = int(self._ops_runner.addresses[0][1])
            log.info("operator endpoints (/health, /metrics) on port %d", self.ops_port)
        if self.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            assert self.settings.slack_app_token is not None
            self._socket_handler = AsyncSocketModeHandler(
                self.app,
                self.settings.slack_app_token.get_secret_value(),
                web_client=self.app.client,
            )
            self.health.socket_client = self._socket_handler.client
            await self._socket_handler.connect_async()
        # One loop for the store's chores: retry what Slack did not take, purge old rows.
        runner = self.deps.runner
        self._maintenance = start_maintenance(
            self.store, self.settings.outbox_interval, outbox=lambda _store: runner.flush_outbox()
        )
        self.health.add_check("store", self.store.ping)
        # The engine's modules, knowledge base and trust store load in worker threads now,
        # not in the first user's check (and never on the event loop).
        await prepare(self.engine_config)
        self.health.ready = True
        mode = "Socket Mode" if self.socket_mode else f"HTTP on {host}:{self.port}{EVENTS_PATH}"
        log.info("smtpcheck bot listening (%s)", mode)
        return self.port

    async def stop(self, *, grace: float | None = None) -> int:
        """Stop accepting, finish or interrupt running diagnoses; returns the interrupted count."""
        runner = self.deps.runner
        self.health.draining = True
        interrupted_task = asyncio.ensure_future(runner.shutdown(grace=grace))
        await asyncio.sleep(0)  # runner.closing is now set: new requests get 503
        if self._socket_handler is not None:
            with contextlib.suppress(Exception):
                await self._socket_handler.close_async()
        interrupted = await interrupted_task
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        if self._web_runner is not None:
            await self._web_runner.cleanup()
        if self._ops_runner is not None:
            await self._ops_runner.cleanup()
        log.info("smtpcheck bot stopped (%d diagnoses interrupted)", interrupted)
        return interrupted


def settle_heap() -> int:
    """Collect once, then move everything alive (the libraries, the engine's knowledge base and
    trust store, the app) into the collector's permanent generation; returns how many objects.

    A full collection walks every tracked object: with the start-up heap in it, that was a
    100-170 ms pause of the event loop (and of every ack) once per few hundred checks (bench
    row 5); frozen, it walks only what requests created since. Once per process, after start.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def _serve(port: int, socket_mode: bool, *, host: str = "0.0.0.0") -> int:
    try:
        settings, engine_config = load_settings(socket_mode=socket_mode)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    from bot.store import Store

    store = await Store.open(settings.database_url)
    try:
        server = BotServer(
            settings=settings, engine_config=engine_config, store=store, socket_mode=socket_mode
        )
    except ConfigError as exc:  # from the OAuth settings build_app makes
        await store.close()
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await server.start(host=host, port=port)
        log.info("start-up heap frozen out of the garbage collector (%d objects)", settle_heap())
        await stop.wait()
        log.info("signal received: stopping")
        await server.stop()
    finally:
        await store.close()
    return EXIT_OK


def serve(port: int, socket_mode: bool) -> int:
    """`smtpcheck serve`: run until SIGTERM/SIGINT; returns the process exit code."""
    # JSON lines in production, readable on a terminal; secrets redacted either way.
    configure_logging()
    try:
        return asyncio.run(_serve(port, socket_mode))
    except OSError as exc:  # e.g. the port is taken
        print(f"smtpcheck serve: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
