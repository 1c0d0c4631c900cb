"""The progress of a running diagnosis, told to a front end's callback (Slack, the CLI).

One reporter per diagnosis: the engine's steps and its probes (`_probing`) call it with a
step's state; it stamps the time since the diagnosis started and hands a `Progress` event to
the callback. A failing callback is logged, never raised: a front end's progress display
must not break a diagnosis.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from diagnostics._models import Progress, ms

log = logging.getLogger("smtpcheck.engine")

ProgressCallback = Callable[[Progress], Awaitable[None] | None]


class ProgressReporter:
    """Turns a step's state into a `Progress` event for the diagnosis's callback, if any."""

    def __init__(
        self,
        on_progress: ProgressCallback | None,
        loop: asyncio.AbstractEventLoop,
        t0: float,  # loop time at the start of the diagnosis
    ) -> None:
        self.on_progress = on_progress
        self.loop = loop
        self.t0 = t0

    async def __call__(
        self,
        step: str,
        label: str,
        state: str,
        note: str = "",
        *,
        role: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        if self.on_progress is None:
            return
        event = Progress(
            step=step,
            label=label,
            state=state,  # type: ignore[arg-type]
            elapsed_ms=ms(self.loop.time() - self.t0),
            note=note,
            role=role,
            duration_ms=duration_ms,
        )
        try:
            result = self.on_progress(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a front end's progress display must never break a diagnosis
            log.warning("progress callback failed", exc_info=True)
