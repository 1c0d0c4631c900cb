"""What GET /health reports: ready for traffic (readiness) and alive (liveness).

Two listeners show it. The operator's port (SMTPCHECK_OPS_PORT) serves the whole state and
/metrics; the port Slack (and anyone else) reaches serves only {"status": ...} with the same
status code. Neither shows why a check fails: the reason (a store's error names hosts,
paths, users) goes to the log, once each time a check starts failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from bot.observability.metrics import metrics_handler
from bot.observability.redaction import redact

log = logging.getLogger("smtpcheck.bot.health")
FAILING = "failing"


class HealthState:
    """What /health reports: ready for traffic (readiness) and alive (liveness).

    HTTP mode is ready once `ready` is set and not draining. Socket Mode also needs the
    WebSocket: connected (`socket_client.is_connected()` or `set_socket_connected`); a
    connection down longer than SOCKET_GRACE_S fails liveness too, so the pod is restarted.
    """

    def __init__(
        self, *, mode: Literal["http", "socket"] = "http", socket_grace_s: float = 120.0
    ) -> None:
        self.mode = mode
        self.ready = False
        self.draining = False
        self.socket_grace_s = socket_grace_s
        self.socket_client: Any = None  # slack_sdk SocketModeClient (has async is_connected)
        self.started = time.monotonic()
        self._socket_connected: bool | None = None
        self._down_since: float | None = time.monotonic()
        self._checks: dict[str, Callable[[], Awaitable[object]]] = {}
        self._failing: set[str] = set()  # checks whose failure is already logged

    def set_socket_connected(self, connected: bool) -> None:
        """Record the WebSocket's state (for callers without a client to ask)."""
        self._socket_connected = connected
        if connected:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.monotonic()

    def add_check(self, name: str, check: Callable[[], Awaitable[object]]) -> None:
        """A readiness dependency, e.g. the store's ping; it fails by raising or timing out."""
        self._checks[name] = check

    async def _socket_state(self) -> bool:
        if self.socket_client is not None:
            try:
                connected = bool(await self.socket_client.is_connected())
            except Exception:
                connected = False
            self.set_socket_connected(connected)
        return bool(self._socket_connected)

    async def snapshot(self, *, check_timeout: float = 2.0) -> dict[str, Any]:
        """The state as /health shows it; "ready" and "live" decide the status code."""
        body: dict[str, Any] = {
            "mode": self.mode,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "draining": self.draining,
        }
        ready = self.ready and not self.draining
        live = True
        if self.mode == "socket":
            connected = await self._socket_state()
            body["socket_connected"] = connected
            ready = ready and connected
            if not connected and self._down_since is not None:
                down_for = time.monotonic() - self._down_since
                body["socket_down_s"] = round(down_for, 1)
                live = down_for < self.socket_grace_s
        checks: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                await asyncio.wait_for(check(), check_timeout)
                checks[name] = "ok"
                self._failing.discard(name)
            except Exception as exc:
                checks[name] = FAILING
                ready = False
                if name not in self._failing:
                    self._failing.add(name)
                    reason = redact(f"{type(exc).__name__}: {exc}")[:500]
                    log.warning("health check %s is failing: %s", name, reason)
        if checks:
            body["checks"] = checks
        body["ready"] = ready
        body["live"] = live
        body["status"] = "ok" if ready else "unavailable"
        return body


def make_health_handler(
    state: HealthState, *, detail: bool = True
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """aiohttp handler for GET /health (readiness); GET /health?live=1 is liveness.

    Without `detail` the body is only {"status": "ok" | "unavailable"} (the public port).
    """

    async def health(request: web.Request) -> web.Response:
        body = await state.snapshot()
        if request.query.get("live") not in (None, "", "0"):
            ok = body["live"]
        else:
            ok = body["ready"]
        if not detail:
            body = {"status": "ok" if ok else "unavailable"}
        return web.json_response(body, status=200 if ok else 503)

    return health


def add_ops_routes(app: web.Application, state: HealthState) -> None:
    """Mount GET /health (the whole state) and GET /metrics: the operator's port."""
    app.router.add_get("/health", make_health_handler(state))
    app.router.add_get("/metrics", metrics_handler)


def add_public_health_route(app: web.Application, state: HealthState) -> None:
    """Mount GET /health saying only ok or not (the contract's path on the public port)."""
    app.router.add_get("/health", make_health_handler(state, detail=False))
