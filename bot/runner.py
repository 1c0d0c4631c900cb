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

from bot.forms import request_fields
from bot.observability import metrics
from bot.observability.logs import bind_log_context, current_log_context
from bot.progress_board import INTERRUPT_POST_TIMEOUT, OPEN_GRACE, ProgressBoard
from bot.settings import BotSettings
from bot.slack_io import (
    NOT_POSTABLE,
    WEB_API_ERRORS,
    TeamClients,
    api_error,
    dict_blocks,
    tell_user,
)
from bot.store.base import BotStore
from bot.views.progress import target_label
from bot.views.report import changes_between, report_message
from diagnostics import CheckRequest, EngineConfig, InputError, Report

log = logging.getLogger("smtpcheck.bot")


def current_diagnosis_id() -> str:
    """The id `Runner` gave the check this task runs (a fresh one outside a check)."""
    return current_log_context().get("diagnosis_id") or uuid.uuid4().hex


Diagnose = Callable[..., Awaitable[Report]]
__all__ = ["OPEN_GRACE", "Diagnose", "Job", "ProgressBoard", "Runner"]
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
        parent = await board.settle()
        if parent == "failed":
            # The progress message did not get through: post it now, finished, so that the
            # report has its thread (if Slack still refuses, the report goes on its own).
            await board.finish(**finished)
        diagnosis_id = await self._keep(job, board, report, fields)
        payload = await self._report_payload(job, board, report, diagnosis_id)
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

    async def _keep(
        self, job: Job, board: ProgressBoard, report: Report, fields: dict[str, Any]
    ) -> str:
        """Save the diagnosis and audit it; its id (the one the log lines carry)."""
        diagnosis_id = current_diagnosis_id()
        await self._record(
            self.store.save_diagnosis(
                team_id=job.team_id,
                user_id=job.user_id,
                channel_id=board.channel or job.channel_id,
                thread_ts=job.thread_ts or board.ts,
                request=fields,
                report=report.to_json_dict(),
                diagnosis_id=diagnosis_id,
            )
        )
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
        return diagnosis_id

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
        payload: dict[str, Any] = {
            "channel": board.channel or job.channel_id,
            "text": text,
            "blocks": dict_blocks(blocks),
            "unfurl_links": False,
        }
        thread_ts = job.thread_ts or board.ts
        if thread_ts:
            payload["thread_ts"] = thread_ts
        return payload

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
