"""Buttons on a report: Re-run, Technical details (and its pages), Escalate."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.escalation import escalate as post_escalation
from bot.forms import request_from_fields
from bot.runner import Job
from bot.slack_io import WEB_API_ERRORS, api_error, tell_user
from bot.views.details import details_view

log = logging.getLogger("smtpcheck.bot")


def _ids(body: dict[str, Any], action: dict[str, Any]) -> tuple[str, str, str | None, str]:
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel = (body.get("channel") or {}).get("id")
    return (
        str(team.get("id") or user.get("team_id") or ""),
        str(user.get("id") or ""),
        channel,
        str(action.get("value") or "")[:64],
    )


async def rerun(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await ack()
    deps = deps_of(context)
    team_id, user_id, channel_id, diagnosis_id = _ids(body, action)
    row = await deps.store.get_diagnosis(diagnosis_id)
    if row is None:
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text="That check is no longer stored; please run `/smtpcheck` again.",
        )
        return
    try:
        request = request_from_fields(row.request)
    except (ValidationError, KeyError, TypeError):
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text="I cannot re-run that check; please run `/smtpcheck` again.",
        )
        return
    await deps.runner.submit(
        Job(
            team_id=team_id,
            user_id=user_id,
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
    context: Any,
) -> None:
    await ack()
    deps = deps_of(context)
    _, user_id, channel_id, diagnosis_id = _ids(body, action)
    row = await deps.store.get_diagnosis(diagnosis_id)
    if row is None:
        await tell_user(
            client, channel=channel_id, user_id=user_id, text="That check is no longer stored."
        )
        return
    try:
        await client.views_open(
            trigger_id=body.get("trigger_id", ""),
            view=details_view(row.report, diagnosis_id=diagnosis_id),
        )
    except WEB_API_ERRORS as exc:
        log.warning("details: views.open failed: %s", api_error(exc))
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text="Slack did not let me open the details in time; press the button again.",
        )


async def details_page(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await ack()
    deps = deps_of(context)
    diagnosis_id, _, page = str(action.get("value") or "").partition(":")
    row = await deps.store.get_diagnosis(diagnosis_id[:64])
    view = body.get("view") or {}
    if row is None or not (page.isascii() and page.isdigit()):
        return
    try:
        await client.views_update(
            view_id=view.get("id"),
            hash=view.get("hash"),
            view=details_view(row.report, diagnosis_id=diagnosis_id, page=int(page)),
        )
    except WEB_API_ERRORS as exc:
        log.info("details page: views.update failed: %s", api_error(exc))


async def escalate(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await ack()
    deps = deps_of(context)
    team_id, user_id, channel_id, diagnosis_id = _ids(body, action)
    await post_escalation(
        client=client,
        store=deps.store,
        settings=deps.settings,
        diagnosis_id=diagnosis_id,
        team_id=team_id,
        user_id=user_id,
        channel_id=channel_id,
    )
