"""The progress message: the parent of a check's thread, a checklist updated as the engine
reports each step (throttled), then its final state. The report goes in its thread.

Under Slack's rate limits (bot/slack_pacing.py) the first post waits its turn like any
message; intermediate updates are skipped while chat.update is limited and the latest state
goes once it reopens (they coalesce); the final state waits its turn ahead of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_io import (
    REFUSED,
    WEB_API_ERRORS,
    api_error,
    dict_blocks,
    message_payload,
    post_message,
)
from bot.slack_pacing import Priority, RateLimited, slack_priority
from bot.views.progress import Step, progress_message
from diagnostics._models import Progress

log = logging.getLogger("smtpcheck.bot")

INTERRUPT_POST_TIMEOUT = 5.0


class ProgressBoard:
    """The parent message's checklist, updated at most once per `interval` seconds."""

    def __init__(
        self, *, client: AsyncWebClient, user_id: str, target: str, interval: float
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.target = target
        self.interval = interval
        self.channel: str | None = None
        self.ts: str | None = None
        self.refused: str | None = None  # Slack's error when it refused the first post outright
        self.answered = False  # the report was delivered or parked: never "interrupted"
        self._thread_ts: str | None = None
        self._opening: asyncio.Future[None] | None = None
        self.steps: dict[str, Step] = {}
        self.phase = "queued"
        self.updates = 0
        self._last = 0.0
        self._dirty = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._finished = False
        self._sending = False  # an intermediate update is on its way to Slack
        self._reopens = 0.0  # chat.update is rate-limited until then (time.monotonic())

    def start(self, *, channel: str, thread_ts: str | None, queued: bool) -> asyncio.Future[None]:
        """Post the parent message (in THREAD_TS for a re-run) in the background."""
        self.phase = "queued" if queued else "running"
        self.channel, self._thread_ts = channel, thread_ts
        self._opening = asyncio.ensure_future(self._open())
        return self._opening

    async def _open(self) -> None:
        posted_phase = self.phase
        try:
            await self._post()
        except WEB_API_ERRORS as exc:
            error = api_error(exc)
            if error in REFUSED:
                self.refused = error
            log.warning("could not post the progress message: %s", error)
            return
        if self.steps or self.phase != posted_phase:
            self._mark()  # what happened while the post was on its way

    async def settle(self) -> str:
        """Where the parent message stands once the result is ready: posted, or failed.

        Its post may still be waiting for Slack (a Retry-After, a slow answer): the report
        waits too, since it belongs in that thread. Only a real failure (5xx or a dropped
        connection after the client's retries, a timeout, a refusal) ends it early."""
        if self._opening is not None and not self._opening.done():
            await asyncio.shield(self._opening)
        return "posted" if self.ts is not None else "failed"

    async def _post(self, **kwargs: Any) -> None:
        assert self.channel is not None
        text, blocks = self._render(**kwargs)
        self.channel, self.ts = await post_message(
            self.client,
            channel=self.channel,
            user_id=self.user_id,
            text=text,
            blocks=blocks,
            thread_ts=self._thread_ts,
        )
        self._last = time.monotonic()

    def _render(self, **kwargs: Any) -> tuple[str, list[Block]]:
        return progress_message(
            user_id=self.user_id,
            target=self.target,
            steps=list(self.steps.values()),
            phase=kwargs.pop("phase", self.phase),
            **kwargs,
        )

    async def set_phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self._mark()

    def on_progress(self, event: Progress) -> None:
        """The engine's callback: record the step, schedule a throttled update."""
        self.steps[event.step] = Step.from_event(event)
        self._mark()

    def _mark(self) -> None:
        if self._finished or self.ts is None:
            return
        self._dirty.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._dirty.is_set() and not self._finished:
            wait = max(self._last + self.interval, self._reopens) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._finished:
                return
            self._dirty.clear()
            self._sending = True
            try:
                await self._update(priority=Priority.PROGRESS)
            except RateLimited as exc:  # not sent: the latest state goes once it reopens
                self._reopens = exc.retry_at
                self._dirty.set()
            finally:
                self._sending = False

    async def _update(self, *, priority: Priority = Priority.FINAL, **kwargs: Any) -> bool:
        """chat.update of the parent; False if Slack did not take it. A PROGRESS update met
        with a rate limit raises RateLimited (nothing was sent)."""
        if self.channel is None or self.ts is None:  # nothing posted to update
            return False
        text, blocks = self._render(**kwargs)
        self._last = time.monotonic()
        self.updates += 1
        try:
            with slack_priority(priority):
                await self.client.chat_update(
                    channel=self.channel, ts=self.ts, text=text, blocks=blocks
                )
        except RateLimited:
            raise
        except WEB_API_ERRORS as exc:
            log.info("progress update failed: %s", api_error(exc))
            return False
        return True

    def update_payload(self, **kwargs: Any) -> dict[str, Any]:
        """chat.update arguments for a state of the parent (to park it in the outbox)."""
        text, blocks = self._render(**kwargs)
        return {"channel": self.channel, "ts": self.ts, "text": text, "blocks": dict_blocks(blocks)}

    def post_payload(self, **kwargs: Any) -> dict[str, Any]:
        """chat.postMessage arguments for the parent in a state (to park it in the outbox)."""
        text, blocks = self._render(**kwargs)
        return message_payload(self.channel, text, blocks, thread_ts=self._thread_ts)

    async def _stop_flusher(self) -> None:
        """No more intermediate updates; one already on its way to Slack arrives first (so it
        can never land after the final state), one still waiting is dropped."""
        self._finished = True
        flusher = self._flusher
        if flusher is None or flusher.done():
            return
        if self._sending:
            with contextlib.suppress(Exception):
                await asyncio.shield(flusher)
            return
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher

    async def finish(self, **kwargs: Any) -> bool:
        """The final state of the parent message (not throttled; waits its turn under a rate
        limit, ahead of intermediate updates); posted afresh when the first post failed.
        False if Slack did not take it."""
        await self._stop_flusher()
        if self.ts is not None:
            return await self._update(**kwargs)
        if self.channel is None:
            return False
        try:
            with slack_priority(Priority.FINAL):
                await self._post(**kwargs)
        except WEB_API_ERRORS as exc:
            log.warning("could not post the finished progress message: %s", api_error(exc))
            return False
        return True

    async def interrupted(self) -> None:
        """Tell the thread the run was cut short (shutdown); bounded in time."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._interrupted(), INTERRUPT_POST_TIMEOUT)

    async def _interrupted(self) -> None:
        await self._stop_flusher()
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if self.channel is None or self.ts is None:
            return
        await self._update(phase="interrupted")
        with contextlib.suppress(*WEB_API_ERRORS):
            await self.client.chat_postMessage(
                channel=self.channel,
                thread_ts=self.ts,
                text=":warning: This check was interrupted because smtpcheck restarted."
                " Please run it again.",
            )
