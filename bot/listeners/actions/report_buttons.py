"""Buttons on a report: Re-run, Technical details (and its pages), Escalate."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.escalation import escalate as post_escalation
from bot.forms import request_from_fields
from bot.listeners._common import Asker, diagnosis_or_tell, open_view_or_tell, value_of
from bot.runner import Job
from bot.views.details import details_view


async def rerun(
    ack: AsyncAck,
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    asker = Asker.of(context)
    diagnosis_id = value_of(action)
    row = await diagnosis_or_tell(context, client, diagnosis_id, asker=asker)
    if row is None:
        return
    try:
        request = request_from_fields(row.request)
    except (ValidationError, KeyError, TypeError):
        await asker.tell(client, "I cannot re-run that check; please run `/smtpcheck` again.")
        return
    await deps_of(context).runner.submit(
        Job(
            team_id=asker.team_id,
            user_id=asker.user_id,
            channel_id=row.channel_id,
            request=request,
            source="rerun",
            thread_ts=row.thread_ts,
            previous_id=diagnosis_id,
        ),
        client=client,
    )


async def details(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    diagnosis_id = value_of(action)
    row = await diagnosis_or_tell(
        context, client, diagnosis_id, gone="That check is no longer stored."
    )
    if row is None:
        return
    await open_view_or_tell(
        client,
        body=body,
        view=details_view(row.report, diagnosis_id=diagnosis_id),
        asker=Asker.of(context),
        retry="Slack did not let me open the details in time; press the button again.",
    )


async def details_page(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """Older or newer page of Technical details, in the modal that is open (no answer when
    the check is gone: the modal still shows the page it had)."""
    await ack()
    diagnosis_id, _, page = str(action.get("value") or "").partition(":")
    row = await deps_of(context).store.get_diagnosis(diagnosis_id[:64])
    view = body.get("view") or {}
    if row is None or not (page.isascii() and page.isdigit()):
        return
    await client.views_update(  # a failure is logged by the app's error handler
        view_id=view.get("id"),
        hash=view.get("hash"),
        view=details_view(row.report, diagnosis_id=diagnosis_id, page=int(page)),
    )


async def escalate(
    ack: AsyncAck,
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    deps = deps_of(context)
    asker = Asker.of(context)
    await post_escalation(
        client=client,
        store=deps.store,
        settings=deps.settings,
        diagnosis_id=value_of(action),
        team_id=asker.team_id,
        user_id=asker.user_id,
        channel_id=asker.channel_id,
    )
