"""What GET /health reports: ready for traffic (readiness) and alive (liveness)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from bot.observability.metrics import metrics_handler
from bot.observability.redaction import redact


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
            except Exception as exc:
                checks[name] = redact(f"{type(exc).__name__}: {exc}")[:200]
                ready = False
        if checks:
            body["checks"] = checks
        body["ready"] = ready
        body["live"] = live
        body["status"] = "ok" if ready else "unavailable"
        return body


def make_health_handler(
    state: HealthState,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """aiohttp handler for GET /health (readiness); GET /health?live=1 is liveness."""

    async def health(request: web.Request) -> web.Response:
        body = await state.snapshot()
        if request.query.get("live") not in (None, "", "0"):
            ok = body["live"]
        else:
            ok = body["ready"]
        return web.json_response(body, status=200 if ok else 503)

    return health


def add_ops_routes(app: web.Application, state: HealthState) -> None:
    """Mount GET /health and GET /metrics on an aiohttp application."""
    app.router.add_get("/health", make_health_handler(state))
    app.router.add_get("/metrics", metrics_handler)
