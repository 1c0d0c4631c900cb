"""The progress message: the parent of a check's thread, a checklist updated as the engine
reports each step (throttled), then its final state. The report goes in its thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_io import REFUSED, WEB_API_ERRORS, api_error, post_message
from bot.views.progress import Step, progress_message
from diagnostics._models import Progress

log = logging.getLogger("smtpcheck.bot")

INTERRUPT_POST_TIMEOUT = 5.0
# Once the result is ready, how long it may still wait for the progress message's post
# (Slack slow or retrying a 5xx); after that the report goes to the outbox instead.
OPEN_GRACE = 1.0


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
        self._thread_ts: str | None = None
        self._opening: asyncio.Future[None] | None = None
        self.steps: dict[str, Step] = {}
        self.phase = "queued"
        self.updates = 0
        self._last = 0.0
        self._dirty = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._finished = False

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
        """Where the parent message stands once the result is ready: posted, failed, or
        abandoned (its post was still retrying OPEN_GRACE seconds later, and is cancelled)."""
        if self._opening is not None and not self._opening.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._opening), OPEN_GRACE)
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
            return "abandoned"
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
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()
            await self._update()

    async def _update(self, **kwargs: Any) -> None:
        if self.channel is None or self.ts is None:  # nothing posted to update
            return
        text, blocks = self._render(**kwargs)
        self._last = time.monotonic()
        self.updates += 1
        try:
            await self.client.chat_update(
                channel=self.channel, ts=self.ts, text=text, blocks=blocks
            )
        except WEB_API_ERRORS as exc:
            log.info("progress update failed: %s", api_error(exc))

    async def _stop_flusher(self) -> None:
        self._finished = True
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    async def finish(self, **kwargs: Any) -> None:
        """The final state of the parent message (always sent, not throttled); posted afresh
        when the first post failed."""
        await self._stop_flusher()
        if self.ts is not None:
            await self._update(**kwargs)
            return
        if self.channel is None:
            return
        try:
            await self._post(**kwargs)
        except WEB_API_ERRORS as exc:
            log.warning("could not post the finished progress message: %s", api_error(exc))

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
