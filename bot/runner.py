"""Background diagnoses: strong task references, a global cap, per-user rate limits,
progress in the parent message, the report in its thread, and a clean shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery import Delivery
from bot.forms import request_fields
from bot.observability import metrics
from bot.observability.logs import bind_log_context, current_log_context
from bot.progress_board import INTERRUPT_POST_TIMEOUT, ProgressBoard
from bot.settings import BotSettings
from bot.slack_io import (
    TeamClients,
    message_payload,
    tell_user,
)
from bot.slack_pacing import Priority, slack_priority
from bot.store.base import BotStore
from bot.views.progress import target_label
from bot.views.report import changes_between, report_message
from diagnostics import CheckRequest, EngineConfig, InputError, Report

log = logging.getLogger("smtpcheck.bot")


def current_diagnosis_id() -> str:
    """The id `Runner` gave the check this task runs (a fresh one outside a check)."""
    return current_log_context().get("diagnosis_id") or uuid.uuid4().hex


Diagnose = Callable[..., Awaitable[Report]]
__all__ = ["Diagnose", "Job", "ProgressBoard", "Runner"]
# How long the report waits for the store to save its diagnosis (its buttons look the row up)
# before it is posted anyway: a store that slow is not a reason to hold an answer back.
KEEP_HEAD_START = 0.25
SAVED_WAIT = 10.0  # how long a button waits for its check's save (Runner.saved)


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


class Runner(Delivery):
    """Runs diagnoses in the background and delivers their reports."""

    def __init__(
        self,
        *,
        clients: TeamClients,
        store: BotStore,
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
        self._saving: dict[str, asyncio.Future[None]] = {}  # diagnosis id -> its save

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
        # Every line this check logs, here and in the engine, carries its diagnosis id (the
        # task was created inside the Slack request, so it has the request id already).
        bind_log_context(diagnosis_id=uuid.uuid4().hex, team_id=job.team_id, user_id=job.user_id)
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
            await self._audit(job, "rate_limited")
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
            if not board.answered:  # a report already delivered or parked was not cut short
                await board.interrupted()
            raise

    async def _capped(self, job: Job, board: ProgressBoard, fields: dict[str, Any]) -> None:
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

    async def _diagnose_and_report(
        self, job: Job, board: ProgressBoard, fields: dict[str, Any]
    ) -> None:
        report = await self._diagnose_or_say_why(job, board)
        if report is None:
            return
        metrics.record_report(report)
        # One total everywhere: the report's own, as its footer and the terminal give it.
        total_ms = report.timings_ms.get("total")
        finished = {"phase": "finished", "verdict": report.verdict, "total_ms": total_ms}
        # The report belongs in the progress message's thread: it waits for that post,
        # however long Slack's Retry-After says (a real failure ends the wait).
        parent = await board.settle()
        if parent == "failed":
            # The progress message did not get through: post it now, finished, so that the
            # report has its thread.
            await board.finish(**finished)
        diagnosis_id = current_diagnosis_id()
        # Saved before the report's post (its buttons look the row up), but a slow store
        # holds an answer that is ready back KEEP_HEAD_START at most; it goes on beside it.
        saving = asyncio.ensure_future(self._save(job, board, report, fields))
        self._saving[diagnosis_id] = saving  # its buttons wait for it: see saved()
        saving.add_done_callback(lambda _: self._saving.pop(diagnosis_id, None))
        await asyncio.wait({saving}, timeout=KEEP_HEAD_START)
        try:
            payload = await self._report_payload(job, board, report, diagnosis_id)
            await self._answer(job, board, payload, parent=parent, finished=finished)
        finally:
            await asyncio.shield(saving)
        await self._audit_diagnosis(job, report)

    async def _answer(
        self,
        job: Job,
        board: ProgressBoard,
        payload: dict[str, Any],
        *,
        parent: str,
        finished: dict[str, Any],
    ) -> None:
        """The report in its thread and the parent's final state, side by side; both parked
        together when Slack is down and there is no thread yet."""
        board.answered = True  # from here on it is delivered, or parked for the next process
        if job.thread_ts is None and board.ts is None:
            # Slack is down (not merely busy): the outbox posts both, in order, once it is
            # back: the progress message in its final state, then the report in its thread.
            parent_payload = board.post_payload(**finished)
            await self.park_thread(team_id=job.team_id, parent=parent_payload, reply=payload)
            return
        with slack_priority(Priority.FINAL):
            delivery = self.deliver_or_park(job.team_id, payload, client=board.client)
            if parent == "failed":  # its final state was posted above
                await delivery
                return
            # Side by side: a slow chat.update of the parent never holds the report back.
            await asyncio.gather(self.finish_or_park(job.team_id, board, finished), delivery)

    async def _diagnose_or_say_why(self, job: Job, board: ProgressBoard) -> Report | None:
        """The engine's report; or None once the progress message says why there is none."""
        try:
            return await self._diagnose(
                job.request, self.engine_config, on_progress=board.on_progress
            )
        except InputError as exc:  # includes TargetRefused: a plain one-line message
            await self._audit(job, "refused", detail={"reason": str(exc)[:300]})
            phase, message = "refused", str(exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("diagnosis failed unexpectedly")
            phase, message = "error", "Something went wrong on our side. Please try again."
        await board.settle()
        await board.finish(phase=phase, message=message)
        return None

    async def saved(self, diagnosis_id: str) -> None:
        """Wait (briefly) for this process' save of DIAGNOSIS_ID if it is still on its way:
        a busy store may let the report, and a press of its buttons, come first."""
        saving = self._saving.get(diagnosis_id)
        if saving is not None:
            await asyncio.wait({saving}, timeout=SAVED_WAIT)

    async def _save(
        self, job: Job, board: ProgressBoard, report: Report, fields: dict[str, Any]
    ) -> None:
        """Save the diagnosis under its id (the one the log lines carry)."""
        await self._record(
            self.store.save_diagnosis(
                team_id=job.team_id,
                user_id=job.user_id,
                channel_id=board.channel or job.channel_id,
                thread_ts=job.thread_ts or board.ts,
                request=fields,
                report=report.to_json_dict(),
                diagnosis_id=current_diagnosis_id(),
            )
        )

    async def _audit_diagnosis(self, job: Job, report: Report) -> None:
        diagnosis_id = current_diagnosis_id()
        entered = next((p for p in report.probes if p.role == "entered"), None)
        await self._audit(
            job,
            "diagnose",
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

    async def _report_payload(
        self, job: Job, board: ProgressBoard, report: Report, diagnosis_id: str
    ) -> dict[str, Any]:
        """chat.postMessage arguments for the report, in the progress message's thread."""
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
        channel = board.channel or job.channel_id
        return message_payload(channel, text, blocks, thread_ts=job.thread_ts or board.ts)

    async def _audit(self, job: Job, action: str, **fields: Any) -> None:
        """An audit row for JOB (target from its request unless given)."""
        fields.setdefault("host", job.request.host)
        fields.setdefault("port", job.request.port)
        fields.setdefault("address", None)
        await self._record(
            self.store.audit(team_id=job.team_id, user_id=job.user_id, action=action, **fields)
        )

    async def _record(self, operation: Awaitable[Any]) -> Any:
        """A store call on the report path: a database hiccup never costs the user a report."""
        try:
            return await operation
        except Exception:
            log.warning("store operation failed", exc_info=True)
            return None
