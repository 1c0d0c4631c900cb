"""Background diagnoses: strong task references, a global cap, per-user rate limits,
progress in the parent message, the report in its thread, and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.forms import request_fields
from bot.observability import metrics
from bot.settings import BotSettings
from bot.slack_io import (
    NOT_POSTABLE,
    REFUSED,
    WEB_API_ERRORS,
    TeamClients,
    api_error,
    dict_blocks,
    post_message,
    tell_user,
)
from bot.views.progress import Step, progress_message, target_label
from bot.views.report import changes_between, report_message
from diagnostics import CheckRequest, EngineConfig, InputError, Report
from diagnostics._models import Progress

log = logging.getLogger("smtpcheck.bot")

Diagnose = Callable[..., Awaitable[Report]]
INTERRUPT_POST_TIMEOUT = 5.0
# Once the result is ready, how long it may still wait for the progress message's post
# (Slack slow or retrying a 5xx); after that the report goes to the outbox instead.
OPEN_GRACE = 1.0
# Outbox entries that no retry can deliver.
PERMANENT_ERRORS = NOT_POSTABLE | {"invalid_blocks", "msg_too_long", "invalid_arguments"}


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One diagnosis to run for one user, and where to answer."""

    team_id: str
    user_id: str
    channel_id: str
    request: CheckRequest = dataclasses.field(repr=False)  # may hold a password
    source: str = "command"  # command | modal | shortcut | rerun
    thread_ts: str | None = None  # answer inside this thread (re-run)
    previous_id: str | None = None  # compare with this diagnosis (re-run)


class Runner:
    """Runs diagnoses in the background and delivers their reports."""

    def __init__(
        self,
        *,
        clients: TeamClients,
        store: Any,
        engine_config: EngineConfig,
        settings: BotSettings,
        diagnose: Diagnose | None = None,
    ) -> None:
        if diagnose is None:
            from diagnostics import diagnose as engine_diagnose

            diagnose = engine_diagnose
        self.clients = clients  # who posts for which workspace, outside a Slack request
        self.store = store
        self.engine_config = engine_config
        self.settings = settings
        self._diagnose = diagnose
        self._semaphore = asyncio.Semaphore(settings.max_concurrent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._running = 0
        self._waiting = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def active(self) -> int:
        return len(self._tasks)

    @property
    def closing(self) -> bool:
        return self._closing

    def spawn(self, coro: Awaitable[None], *, name: str) -> asyncio.Task[None]:
        """Run `coro` in the background, keeping a strong reference until it ends."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def shutdown(self, *, grace: float | None = None) -> int:
        """Stop accepting work, let running diagnoses finish within `grace` seconds,
        report the rest as interrupted; returns how many were interrupted."""
        self._closing = True
        grace = self.settings.shutdown_grace if grace is None else grace
        pending = set(self._tasks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=INTERRUPT_POST_TIMEOUT + 2)
        return len(pending)

    # ------------------------------------------------------------------ diagnoses

    async def submit(self, job: Job, *, client: AsyncWebClient) -> None:
        """Accept a job (after ack); its work happens in the background.

        CLIENT is the listener's (its workspace's token) for an immediate answer; the
        background work gets the team's client from `clients`.
        """
        if self._closing:
            await tell_user(
                client,
                channel=job.channel_id,
                user_id=job.user_id,
                text=":arrows_counterclockwise: smtpcheck is restarting. Please try again in"
                " a minute.",
            )
            return
        self.spawn(self._run(job), name=f"diagnose:{job.user_id}")

    async def _run(self, job: Job) -> None:
        try:
            client = await self.clients.for_team(job.team_id)
        except Exception:  # the installation store or the token rotation failed
            log.exception("no Slack token for workspace %s; check dropped", job.team_id)
            return
        if client is None:
            log.warning("workspace %s has no installation (any more); check dropped", job.team_id)
            return
        limit, window = self.settings.rate_limit
        try:
            allowed = await self.store.rate_limit_hit(
                f"diagnose:{job.team_id}:{job.user_id}", limit=limit, window_s=window
            )
        except Exception:  # the store being down must not stop help-desk work
            log.warning("rate limit check failed; allowing", exc_info=True)
            allowed = True
        if not allowed:
            await self._record(
                self.store.audit(
                    team_id=job.team_id,
                    user_id=job.user_id,
                    action="rate_limited",
                    host=job.request.host,
                    port=job.request.port,
                    address=None,
                )
            )
            await tell_user(
                client,
                channel=job.channel_id,
                user_id=job.user_id,
                text=f":hourglass: You have run {limit} checks in the last {window:g} seconds."
                " Please wait a moment before the next one: the servers you test thank you.",
            )
            return
        fields = request_fields(job.request)
        board = ProgressBoard(
            client=client,
            user_id=job.user_id,
            target=target_label(fields),
            interval=self.settings.progress_interval,
        )
        # The progress message is posted while the check runs: a slow or failing Slack never
        # holds the diagnosis back, and its result is delivered or parked in the outbox.
        opening = board.start(
            channel=job.channel_id, thread_ts=job.thread_ts, queued=self._semaphore.locked()
        )
        work = asyncio.ensure_future(self._capped(job, board, fields))
        try:
            await asyncio.wait({work, opening}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and board.refused is not None:
                # Slack refused the bot outright (token, or nowhere to post): nobody would
                # ever see this check.
                log.warning("Slack refused the progress message (%s); check dropped", board.refused)
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                return
            await work
        except asyncio.CancelledError:  # shutdown
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await board.interrupted()
            raise

    async def _capped(self, job: Job, board: ProgressBoard, fields: dict) -> None:
        """The diagnosis and its report, under the global concurrency cap."""
        acquired = False
        self._waiting += 1
        self._publish_depth()
        try:
            async with self._semaphore:
                acquired = True
                self._waiting -= 1
                self._running += 1
                self._publish_depth()
                await board.set_phase("running")
                await self._diagnose_and_report(job, board, fields)
        finally:
            if acquired:
                self._running -= 1
            else:
                self._waiting -= 1
            self._publish_depth()

    def _publish_depth(self) -> None:
        metrics.set_queue_depth(in_flight=self._running, waiting=self._waiting)

    async def _diagnose_and_report(self, job: Job, board: ProgressBoard, fields: dict) -> None:
        try:
            report = await self._diagnose(
                job.request, self.engine_config, on_progress=board.on_progress
            )
        except InputError as exc:  # includes TargetRefused: a plain one-line message
            await self._record(
                self.store.audit(
                    team_id=job.team_id,
                    user_id=job.user_id,
                    action="refused",
                    host=job.request.host,
                    port=job.request.port,
                    address=None,
                    detail={"reason": str(exc)[:300]},
                )
            )
            await board.settle()
            await board.finish(phase="refused", message=str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("diagnosis failed unexpectedly")
            await board.settle()
            await board.finish(
                phase="error", message="Something went wrong on our side. Please try again."
            )
            return
        metrics.record_report(report)
        # One total everywhere: the report's own, as its footer and the terminal give it.
        total_ms = report.timings_ms.get("total")
        finished = {"phase": "finished", "verdict": report.verdict, "total_ms": total_ms}
        parent = await board.settle()
        if parent == "failed":
            # The progress message did not get through: post it now, finished, so that the
            # report has its thread (if Slack still refuses, the report goes on its own).
            await board.finish(**finished)
        diagnosis_id = uuid.uuid4().hex
        thread_ts = job.thread_ts or board.ts
        report_json = report.to_json_dict()
        await self._record(
            self.store.save_diagnosis(
                team_id=job.team_id,
                user_id=job.user_id,
                channel_id=board.channel or job.channel_id,
                thread_ts=thread_ts,
                request=fields,
                report=report_json,
                diagnosis_id=diagnosis_id,
            )
        )
        entered = next((p for p in report.probes if p.role == "entered"), None)
        await self._record(
            self.store.audit(
                team_id=job.team_id,
                user_id=job.user_id,
                action="diagnose",
                host=report.input.host,
                port=report.input.port,
                address=entered.address if entered else None,
                detail={
                    "diagnosis_id": diagnosis_id,
                    "verdict": report.verdict.value,
                    "source": job.source,
                    "login_tested": job.request.password is not None,
                },
            )
        )
        changes = None
        if job.previous_id:
            previous = await self._record(self.store.get_diagnosis(job.previous_id))
            if previous is not None:
                changes = changes_between(previous.report, report)
        text, blocks = report_message(
            report,
            diagnosis_id=diagnosis_id,
            changes=changes,
            escalation=self.settings.escalation_channel is not None,
        )
        payload: dict[str, Any] = {
            "channel": board.channel or job.channel_id,
            "text": text,
            "blocks": dict_blocks(blocks),
            "unfurl_links": False,
        }
        if thread_ts:
            payload["thread_ts"] = thread_ts
        if parent == "abandoned":
            # Slack is failing right now (still retrying the progress message): straight to
            # the outbox, which posts the report once Slack answers again.
            await self.park(team_id=job.team_id, method="chat.postMessage", payload=payload)
            return
        delivery = self.deliver(
            team_id=job.team_id, method="chat.postMessage", payload=payload, client=board.client
        )
        if parent == "failed":  # its final state was posted above
            await delivery
            return
        # Side by side: a slow chat.update of the parent never holds the report back.
        await asyncio.gather(board.finish(**finished), delivery)

    async def _record(self, operation: Awaitable[Any]) -> Any:
        """A store call on the report path: a database hiccup never costs the user a report."""
        try:
            return await operation
        except Exception:
            log.warning("store operation failed", exc_info=True)
            return None

    # ------------------------------------------------------------------ delivery

    async def deliver(
        self,
        *,
        team_id: str,
        method: str,
        payload: dict[str, Any],
        client: AsyncWebClient | None = None,
    ) -> bool:
        """Call the Web API as TEAM_ID's bot (CLIENT if given; the client retries 429/5xx);
        park the call in the outbox if that fails."""
        try:
            client = client or await self.clients.for_team(team_id)
            if client is None:
                log.warning("workspace %s has no installation; %s dropped", team_id, method)
                return False
            await client.api_call(method, json=payload)
            return True
        except WEB_API_ERRORS as exc:
            log.warning("%s failed (%s); queued for retry", method, api_error(exc))
        await self.park(team_id=team_id, method=method, payload=payload)
        return False

    async def park(self, *, team_id: str, method: str, payload: dict[str, Any]) -> None:
        """Keep the call in the store's outbox; the maintenance loop retries it."""
        try:
            await self.store.enqueue_outbox(team_id=team_id, method=method, payload=payload)
        except Exception:
            log.error("%s could not be queued for retry either; the message is lost", method)
            raise

    async def flush_outbox(self) -> int:
        """Send what is waiting in the outbox; returns how many were sent."""
        sent = 0
        clients: dict[str, AsyncWebClient | None] = {}  # one token look-up per team and round
        for row in await self.store.pending_outbox(limit=50):
            try:
                if row.team_id not in clients:
                    clients[row.team_id] = await self.clients.for_team(row.team_id)
                client = clients[row.team_id]
            except Exception as exc:  # the installation store or the token rotation failed
                log.warning("no token for workspace %s: %s", row.team_id, api_error(exc))
                await self.store.mark_outbox_failed(row.id, error=f"token: {api_error(exc)}")
                continue
            if client is None:  # uninstalled since: nobody can post it
                await self.store.mark_outbox_failed(row.id, error="not_installed", permanent=True)
                continue
            try:
                await client.api_call(row.method, json=row.payload)
            except WEB_API_ERRORS as exc:
                error = api_error(exc)
                await self.store.mark_outbox_failed(
                    row.id, error=error, permanent=error in PERMANENT_ERRORS
                )
                continue
            await self.store.mark_outbox_sent(row.id)
            sent += 1
        return sent


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

    def _render(self, **kwargs: Any) -> tuple[str, list]:
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
        if self.ts is None:
            return
        await self._update(phase="interrupted")
        with contextlib.suppress(*WEB_API_ERRORS):
            await self.client.chat_postMessage(
                channel=self.channel,
                thread_ts=self.ts,
                text=":warning: This check was interrupted because smtpcheck restarted."
                " Please run it again.",
            )
