"""Slack's rate limits, honoured: a 429's Retry-After is an instruction to wait, not a failure.

Slack limits each Web API method per workspace (the published tiers), and chat.postMessage per
channel (about one a second, short bursts allowed). When Slack answers HTTP 429 it says, in
Retry-After, how long to wait. `RateLimitGate` keeps one lane per limit (workspace + method,
plus the channel for chat.postMessage). A 429 closes the lane until Retry-After has passed;
calls that meet a closed lane queue up (most urgent first, then in arrival order) and are let
through one at a time when it opens again, each waiting again if Slack says so. While a lane is
open, calls go straight through.

How urgent a call is comes from `slack_priority(...)` around it (a context variable, so it
reaches the Web API client through Slack's and Bolt's layers):

- FINAL: a report, the final state of a progress message, a parked message: waits as long as
  Slack asks (up to `patience`), ahead of everything else.
- NEW: a new progress message, a reply to a user (the default).
- PROGRESS: an intermediate progress update: never queued. Met with a closed or busy lane,
  a lane limited a moment ago, or another update on its way, it raises `RateLimited` at once
  (nothing sent), so that the caller keeps its latest state and sends that later: updates
  coalesce, cost at most one 429 per cool-down, and never hold a final state back.

Only waiting longer than `patience` in all turns a rate limit into a failure (the caller
then treats it as an outage and parks the message).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.observability.metrics import CountingRetryHandler, InstrumentedAsyncWebClient, Metrics
from bot.slack_io import client_options

log = logging.getLogger("smtpcheck.bot")
T = TypeVar("T")

DEFAULT_PATIENCE = 600.0  # seconds a call may wait on Slack's say-so before it counts as failed
RETRY_AFTER_MAX = 300.0  # a longer Retry-After is read as this (a broken header, not a plan)
# After a 429, intermediate progress updates pause this many times Slack's Retry-After longer
# than the lane is closed: a busy lane carries final states, not a storm of updates.
PROGRESS_COOLDOWN = 3.0
PACE_SPREAD = 2.0  # see RateLimitGate._pace


class Priority(enum.IntEnum):
    """Who goes first when a lane reopens (lower first)."""

    FINAL = 0
    NEW = 1
    PROGRESS = 2


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "smtpcheck_slack_priority", default=Priority.NEW
)
# Set while a call runs inside the gate: slack_sdk's own 429 retry then stands aside.
_gated: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "smtpcheck_slack_gated", default=False
)


_patience: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "smtpcheck_slack_patience", default=None
)


@contextlib.contextmanager
def _set_inside(var: contextvars.ContextVar[T], value: T) -> Iterator[None]:
    """VAR is VALUE inside the block (and in tasks started inside), as before after it."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def slack_patience(seconds: float) -> contextlib.AbstractContextManager[None]:
    """Web API calls made inside wait on Slack's Retry-After at most SECONDS in all."""
    return _set_inside(_patience, seconds)


def slack_priority(priority: Priority) -> contextlib.AbstractContextManager[None]:
    """Web API calls made inside (and in tasks started inside) have this priority."""
    return _set_inside(_priority, priority)


def current_priority() -> Priority:
    return _priority.get()


def inside_gate() -> bool:
    return _gated.get()


class RateLimited(SlackClientError):
    """A PROGRESS call met a rate limit and was not sent; try again after `retry_at`
    (time.monotonic())."""

    def __init__(self, lane: str, retry_at: float) -> None:
        super().__init__(f"{lane} is rate-limited; not sent")
        self.retry_at = retry_at


class RateLimitWaitTooLong(SlackClientError):
    """Slack asked for more waiting than the call's patience allows."""


def retry_after(headers: Any) -> float:
    """Seconds from a Retry-After header (whole seconds from Slack; fractions accepted);
    1 s when it is missing or unreadable."""
    value = None
    if headers is not None:
        for key in headers:
            if str(key).lower() == "retry-after":
                value = headers[key]
                break
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return 1.0
    if not math.isfinite(seconds) or seconds < 0:
        return 1.0
    return min(seconds, RETRY_AFTER_MAX)


def is_rate_limited(exc: BaseException) -> bool:
    return (
        isinstance(exc, SlackApiError)
        and exc.response is not None
        and getattr(exc.response, "status_code", None) == 429
    )


def lane_key(token: str | None, method: str, args: dict[str, Any] | None) -> tuple[str, ...]:
    """The limit a call counts against: per workspace (its token) and method, and per channel
    for chat.postMessage."""
    workspace = (token or "")[-12:]  # enough to tell tokens apart; never logged
    if method == "chat.postMessage":
        return (workspace, method, str((args or {}).get("channel", "")))
    return (workspace, method)


class _Lane:
    """One limit: closed until `closed_until`; callers waiting for it in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed_until = 0.0
        self.queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self.turn_taken = False  # a queued caller was let through and has not finished yet
        self.timer: asyncio.TimerHandle | None = None
        self.last_wait = 0.0  # the last Retry-After Slack gave on this lane
        self.pace = 0.0  # the longest wait Slack gave since the queue was last empty
        self.progress_resumes = 0.0  # intermediate updates wait for this (a cool-down)
        self.progress_in_flight = False  # one intermediate update on its way at a time

    def busy(self, now: float) -> bool:
        return now < self.closed_until or bool(self.queue) or self.turn_taken


class RateLimitGate:
    """Holds calls back while Slack says to wait; see the module's docstring."""

    def __init__(
        self, *, patience: float = DEFAULT_PATIENCE, on_wait: Callable[[], None] | None = None
    ) -> None:
        self.patience = patience
        self._lanes: dict[tuple[str, ...], _Lane] = {}
        self._order = itertools.count()
        self._on_wait = on_wait  # counts each 429 honoured (metrics)
        self.limited = 0  # 429s seen
        self.skipped = 0  # PROGRESS calls not sent because of a limit

    def _lane(self, key: tuple[str, ...]) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane("/".join(key[1:]))
        return lane

    def closed_until(self, key: tuple[str, ...]) -> float:
        lane = self._lanes.get(key)
        return lane.closed_until if lane is not None else 0.0

    async def call(
        self,
        key: tuple[str, ...],
        send: Callable[[], Awaitable[T]],
        *,
        priority: Priority | None = None,
    ) -> T:
        """SEND through the lane KEY: queued while it is closed, resent after each 429."""
        priority = current_priority() if priority is None else priority
        lane = self._lane(key)
        order = next(self._order)  # keeps its place in the queue across 429s
        patience = _patience.get()
        patience = self.patience if patience is None else patience
        deadline = time.monotonic() + patience
        if priority is Priority.PROGRESS:
            return await self._progress(lane, send)
        queued = lane.busy(time.monotonic())
        while True:
            my_turn = False
            if queued:
                await self._wait_turn(lane, priority, order, deadline)
                my_turn = True
            try:
                result = await self._send(send)
            except SlackApiError as exc:
                if not is_rate_limited(exc):
                    raise
                self._close(lane, retry_after(exc.response.headers))
                if lane.closed_until > deadline:
                    raise RateLimitWaitTooLong(
                        f"{lane.name}: Slack asks for more waiting than {patience:g} s"
                    ) from exc
                queued = True
            else:
                if my_turn:
                    self._pace(lane)
                return result
            finally:
                if my_turn:  # done with the lane (or back in its queue): next one
                    lane.turn_taken = False
                    self._wake(lane)

    async def _progress(self, lane: _Lane, send: Callable[[], Awaitable[T]]) -> T:
        """An intermediate update: sent only into a lane that is open, with nobody waiting,
        no 429 in the last while (PROGRESS_COOLDOWN x Slack's last wait) and no other update
        on its way; else RateLimited at once. Many progress messages thus cost at most one
        429 per cool-down, and never delay a final state."""
        now = time.monotonic()
        if lane.busy(now) or now < lane.progress_resumes or lane.progress_in_flight:
            self.skipped += 1
            resume = max(lane.closed_until, lane.progress_resumes)
            # Spread the callers out, so that they do not all come back at the same moment.
            raise RateLimited(lane.name, max(resume, now) + random.uniform(0, lane.last_wait))
        lane.progress_in_flight = True
        try:
            return await self._send(send)
        except SlackApiError as exc:
            if not is_rate_limited(exc):
                raise
            self._close(lane, retry_after(exc.response.headers))
            self.skipped += 1
            raise RateLimited(lane.name, lane.progress_resumes) from None
        finally:
            lane.progress_in_flight = False

    def _pace(self, lane: _Lane) -> None:
        """While calls queue after a 429, the allowance is spent again by each call let
        through: the next one waits as long as one call's allowance takes to come back,
        instead of provoking a 429 to learn it (which would cost the same time). That is the
        longest wait Slack gave while calls queued (a shorter one came when part of it was
        back already), but no more than PACE_SPREAD times its last (an odd long one)."""
        if lane.pace and lane.queue:  # still in the rush that began with a 429
            pace = min(lane.pace, PACE_SPREAD * lane.last_wait)
            lane.closed_until = max(lane.closed_until, time.monotonic() + pace)

    async def _send(self, send: Callable[[], Awaitable[T]]) -> T:
        with _set_inside(_gated, True):
            return await send()

    def _close(self, lane: _Lane, seconds: float) -> None:
        self.limited += 1
        if self._on_wait is not None:
            self._on_wait()
        lane.closed_until = max(lane.closed_until, time.monotonic() + seconds)
        lane.last_wait = seconds
        lane.pace = max(lane.pace, seconds)
        lane.progress_resumes = lane.closed_until + PROGRESS_COOLDOWN * seconds
        log.debug("Slack rate limit on %s: waiting %.2f s", lane.name, seconds)

    async def _wait_turn(
        self, lane: _Lane, priority: Priority, order: int, deadline: float
    ) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(lane.queue, (int(priority), order, future))
        self._wake(lane)
        try:
            await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - time.monotonic()))
        except (TimeoutError, asyncio.CancelledError) as exc:
            if future.done() and not future.cancelled():
                lane.turn_taken = False  # it was our turn: pass it on
            else:
                future.cancel()
            self._wake(lane)
            if isinstance(exc, TimeoutError):
                raise RateLimitWaitTooLong(f"{lane.name}: still rate-limited") from None
            raise

    def _wake(self, lane: _Lane) -> None:
        """Let the next queued caller through if the lane is open and nobody else is."""
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        while lane.queue and lane.queue[0][2].done():  # gave up waiting
            heapq.heappop(lane.queue)
        if not lane.queue and not lane.turn_taken:
            lane.pace = 0.0  # the rush is over: learn afresh next time
        if lane.turn_taken or not lane.queue:
            return
        wait = lane.closed_until - time.monotonic()
        if wait > 0:
            lane.timer = asyncio.get_running_loop().call_later(wait, self._wake, lane)
            return
        _, _, future = heapq.heappop(lane.queue)
        lane.turn_taken = True
        future.set_result(None)


class OutsideGateRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 retry (it sleeps for Retry-After), for a call made outside the gate
    (a client that is not a PacedWebClient); inside it the gate does the waiting."""

    async def _can_retry_async(self, **kwargs: Any) -> bool:
        return not inside_gate() and await super()._can_retry_async(**kwargs)

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        # slack_sdk's own reads only whole seconds and adds up to a second of jitter.
        state.next_attempt_requested = True
        await asyncio.sleep(retry_after(response.headers if response is not None else None))
        state.increment_current_attempt()


MAX_LIKES = 256  # clients kept by PacedWebClient.like: workspaces active at once, and more


def paced_retry_handlers(*, metrics: Metrics | None = None) -> list[AsyncRetryHandler]:
    """Retries for 5xx and dropped connections; 429 outside the gate (the gate waits inside)."""
    handlers: list[AsyncRetryHandler] = [
        OutsideGateRateLimitRetryHandler(max_retry_count=3),
        AsyncServerErrorRetryHandler(max_retry_count=2),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
    ]
    return [CountingRetryHandler(h, metrics=metrics) for h in handlers]


class PacedWebClient(InstrumentedAsyncWebClient):
    """The Web API client whose every call goes through a shared RateLimitGate."""

    def __init__(self, *args: Any, gate: RateLimitGate | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retry_handlers", paced_retry_handlers(metrics=kwargs.get("metrics")))
        super().__init__(*args, **kwargs)
        self.gate = gate if gate is not None else RateLimitGate()
        self._likes: dict[tuple[str | None, str | None], PacedWebClient] = {}

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        args = kwargs.get("json") or kwargs.get("data") or kwargs.get("params")
        key = lane_key(self.token, api_method, args if isinstance(args, dict) else None)

        async def send() -> Any:
            return await InstrumentedAsyncWebClient.api_call(self, api_method, **kwargs)

        return await self.gate.call(key, send)

    def like(self, *, token: str | None, team_id: str | None = None) -> PacedWebClient:
        """A client like this one (base URL, timeout, retries, gate) with another token.

        One per token and workspace, kept (the MAX_LIKES last): every Slack request asks for
        its workspace's, and building one was a tenth of an ack's CPU (bench row 5).
        """
        key = (token, team_id)
        client = self._likes.pop(key, None)  # re-inserted: the dict's order is recency
        if client is None:
            client = PacedWebClient(
                token=token,
                team_id=team_id,
                metrics=self._metrics,
                gate=self.gate,
                **client_options(self),
            )
            if len(self._likes) >= MAX_LIKES:
                self._likes.pop(next(iter(self._likes)))
        self._likes[key] = client
        return client
