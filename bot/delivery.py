"""Posting a check's answers as its workspace's bot, and the outbox for when Slack is down.

A rate limit is waited out (bot/slack_pacing.py), never parked: the outbox is for real
outages (5xx or dropped connections after the client's retries, a refused token) and for
answers a shutdown cut short; whichever replica leases a row posts it, in its thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.progress_board import ProgressBoard
from bot.slack_io import NOT_POSTABLE, WEB_API_ERRORS, TeamClients, api_error
from bot.slack_pacing import Priority, slack_patience, slack_priority
from bot.store.base import BotStore

log = logging.getLogger("smtpcheck.bot")

# A parked progress message and its report: {"parent": postMessage args, "reply": ...}.
THREAD_METHOD = "smtpcheck.thread"
# How long an outbox post may wait on Slack's Retry-After (the store leases rows for 120 s).
OUTBOX_PATIENCE = 60.0
# Outbox entries that no retry can deliver.
PERMANENT_ERRORS = NOT_POSTABLE | {"invalid_blocks", "msg_too_long", "invalid_arguments"}


class Delivery:
    """Posts as a team's bot; parks in the store's outbox what Slack did not take, and
    sends it later (Runner is one: it delivers the reports)."""

    clients: TeamClients  # who posts for which workspace
    store: BotStore

    async def deliver_or_park(
        self, team_id: str, payload: dict[str, Any], *, client: AsyncWebClient
    ) -> None:
        """Post the report; parked if Slack fails, or if shutdown cuts the wait for it short
        (the next process delivers it in its thread)."""
        delivery = asyncio.ensure_future(
            self.deliver(team_id=team_id, method="chat.postMessage", payload=payload, client=client)
        )
        try:
            await asyncio.shield(delivery)
        except asyncio.CancelledError:
            delivery.cancel()
            with contextlib.suppress(BaseException):
                await delivery
            await asyncio.shield(
                self.park(team_id=team_id, method="chat.postMessage", payload=payload)
            )
            raise

    async def finish_or_park(
        self, team_id: str, board: ProgressBoard, finished: dict[str, Any]
    ) -> None:
        """The parent's final state; parked if Slack fails or shutdown cuts it short, so
        that the thread's head never stays at "checking"."""
        try:
            if await board.finish(**finished):
                return
        except asyncio.CancelledError:
            await asyncio.shield(self._park_final_state(team_id, board, finished))
            raise
        await self._park_final_state(team_id, board, finished)

    async def _park_final_state(
        self, team_id: str, board: ProgressBoard, finished: dict[str, Any]
    ) -> None:
        if board.ts is None:
            return
        with contextlib.suppress(Exception):  # logged by park(); the report matters more
            await self.park(
                team_id=team_id, method="chat.update", payload=board.update_payload(**finished)
            )

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

    async def park_thread(
        self, *, team_id: str, parent: dict[str, Any], reply: dict[str, Any]
    ) -> None:
        """Park a progress message and its report together: the outbox posts the parent,
        then the report in its thread."""
        await self.park(
            team_id=team_id, method=THREAD_METHOD, payload={"parent": parent, "reply": reply}
        )

    async def flush_outbox(self) -> int:
        """Send what is waiting in the outbox; returns how many were sent.

        Parked messages are final answers: they go ahead of new progress messages under a
        rate limit, and wait for Slack's Retry-After no longer than OUTBOX_PATIENCE (well
        inside the store's lease, so that no other replica takes the same row meanwhile)."""
        with slack_priority(Priority.FINAL), slack_patience(OUTBOX_PATIENCE):
            return await self._flush_outbox()

    async def _flush_outbox(self) -> int:
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
                if row.method == THREAD_METHOD:
                    await self._post_thread(row.team_id, client, row.payload)
                else:
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

    async def _post_thread(
        self, team_id: str, client: AsyncWebClient, payload: dict[str, Any]
    ) -> None:
        """A parked thread: its parent, then its reply in it (parked on its own, now with
        its thread, if that fails: the parent is never posted twice)."""
        response = await client.api_call("chat.postMessage", json=payload["parent"])
        reply = {
            **payload["reply"],
            "channel": str(response["channel"]),
            "thread_ts": str(response["ts"]),
        }
        await self.deliver(team_id=team_id, method="chat.postMessage", payload=reply, client=client)
