"""Escalations: post to the help desk's channel, claim, resolve, tell the user's thread."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import BotSettings
from bot.slack_io import WEB_API_ERRORS, api_error, tell_user
from bot.store.base import BotStore
from bot.views.escalation import EscalationInfo, escalation_message, mention, thread_notice
from bot.views.labels import VERDICT_WORD
from bot.views.text import one_line
from diagnostics import Severity, Verdict
from diagnostics.labels import security_label

log = logging.getLogger("smtpcheck.bot")
INCIDENT_WINDOW = dt.timedelta(hours=1)
INCIDENT_MIN_OTHERS = 2  # the requester and two more users: a server problem, not a user error


def summarize(report: dict[str, Any]) -> tuple[str, str | None]:
    """(plain summary, the first error finding's ID) of a stored report."""
    data = report.get("input", {})
    host = data.get("host") or data.get("target") or "?"
    port = data.get("port")
    where = f"{host}:{port}" if port else str(host)
    verdict = VERDICT_WORD.get(Verdict(report.get("verdict", "fail")), "?")
    parts = [verdict, where]
    if data.get("security"):  # none when no server was found for an address
        parts.append(security_label(data["security"]))
    if data.get("email") and data["email"] != where:
        parts.append(data["email"])
    lines = [" · ".join(parts)]
    first_error = None
    for finding in report.get("findings", []):
        if finding.get("severity") == Severity.ERROR.value:
            first_error = first_error or finding.get("id")
            lines.append(f"• {one_line(finding.get('title', ''))}")
        if len(lines) >= 6:
            break
    return "\n".join(lines), first_error


def _info(
    row: Any, *, permalink: str | None, incident_users: int, host: str | None
) -> EscalationInfo:
    return EscalationInfo(
        escalation_id=str(row.id),
        requester_id=row.requester_id,
        summary=row.summary,
        permalink=permalink,
        status=row.state,
        claimed_by=row.claimed_by,
        resolved_by=row.resolved_by,
        incident_users=incident_users,
        host=host,
    )


async def escalate(
    *,
    client: AsyncWebClient,
    store: BotStore,
    settings: BotSettings,
    diagnosis_id: str,
    team_id: str,
    user_id: str,
    channel_id: str | None,
) -> None:
    """Post the escalation for `diagnosis_id` and tell the requester in their thread."""
    if settings.escalation_channel is None:
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text="Escalation is not set up here (no SMTPCHECK_ESCALATION_CHANNEL). Please"
            " contact your help desk directly.",
        )
        return
    row = await store.get_diagnosis(diagnosis_id)
    if row is None:
        await tell_user(
            client, channel=channel_id, user_id=user_id, text="That check is no longer stored."
        )
        return
    summary, first_error = summarize(row.report)
    host = row.report.get("input", {}).get("host")
    incident_users = 0
    if first_error and host:
        incident_users = await store.same_failure_count(
            team_id=team_id,
            host=host,
            finding_id=first_error,
            since=dt.datetime.now(dt.UTC) - INCIDENT_WINDOW,
            exclude_user=row.user_id,
        )
    permalink = await _permalink(client, row.channel_id, row.thread_ts)
    escalation = await store.create_escalation(
        diagnosis_id=diagnosis_id,
        team_id=team_id,
        requester_id=row.user_id,
        channel_id=row.channel_id,
        thread_ts=row.thread_ts,
        summary=summary,
    )
    if incident_users < INCIDENT_MIN_OTHERS:
        incident_users = 0
    text, blocks = escalation_message(
        _info(escalation, permalink=permalink, incident_users=incident_users, host=host)
    )
    try:
        response = await client.chat_postMessage(
            channel=settings.escalation_channel, text=text, blocks=blocks, unfurl_links=False
        )
    except WEB_API_ERRORS as exc:
        # e.g. the bot is not in the help desk's channel, or (several workspaces) that
        # channel is in another workspace: the user must not think the desk was told.
        log.warning("could not post escalation %s: %s", escalation.id, api_error(exc))
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text=":warning: I could not reach the help desk's channel. Please try again in a"
            " moment, or contact your help desk directly.",
        )
        return
    await store.set_escalation_message(
        escalation.id, channel_id=str(response["channel"]), ts=str(response["ts"])
    )
    await store.audit(
        team_id=team_id,
        user_id=user_id,
        action="escalate",
        host=host,
        port=row.report.get("input", {}).get("port"),
        address=None,
        detail={"diagnosis_id": diagnosis_id, "escalation_id": escalation.id},
    )
    await _thread_notice(client, row.channel_id, row.thread_ts, thread_notice("escalated", None))


async def act(
    *,
    client: AsyncWebClient,
    store: BotStore,
    escalation_id: int,
    agent_id: str,
    team_id: str,
    action: str,
    channel_id: str | None,
) -> None:
    """Claim or resolve: update the escalation post and tell the requester's thread."""
    from bot.store import AlreadyClaimed

    try:
        if action == "claim":
            row = await store.claim_escalation(escalation_id, agent_id=agent_id)
        else:
            row = await store.resolve_escalation(escalation_id, agent_id=agent_id, note=None)
    except AlreadyClaimed as exc:
        who = exc.escalation.claimed_by or exc.escalation.resolved_by
        await tell_user(
            client,
            channel=channel_id,
            user_id=agent_id,
            text=f"This escalation is already {exc.escalation.state} by {mention(who)}.",
        )
        return
    except LookupError:
        await tell_user(client, channel=channel_id, user_id=agent_id, text="Escalation not found.")
        return
    diagnosis = await store.get_diagnosis(row.diagnosis_id)
    host = diagnosis.report.get("input", {}).get("host") if diagnosis else None
    permalink = await _permalink(client, row.channel_id, row.thread_ts)
    text, blocks = escalation_message(_info(row, permalink=permalink, incident_users=0, host=host))
    if row.message_channel_id and row.message_ts:
        try:
            await client.chat_update(
                channel=row.message_channel_id, ts=row.message_ts, text=text, blocks=blocks
            )
        except WEB_API_ERRORS as exc:
            log.warning("could not update the escalation post: %s", api_error(exc))
    await store.audit(
        team_id=team_id,
        user_id=agent_id,
        action=f"escalation_{action}",
        host=host,
        port=None,
        address=None,
        detail={"escalation_id": escalation_id},
    )
    kind = "claimed" if action == "claim" else "resolved"
    await _thread_notice(client, row.channel_id, row.thread_ts, thread_notice(kind, agent_id))


async def _permalink(client: AsyncWebClient, channel: str, ts: str | None) -> str | None:
    if not ts:
        return None
    try:
        response = await client.chat_getPermalink(channel=channel, message_ts=ts)
        return str(response.get("permalink") or "") or None
    except WEB_API_ERRORS as exc:
        log.info("no permalink for %s: %s", channel, api_error(exc))
        return None


async def _thread_notice(client: AsyncWebClient, channel: str, ts: str | None, text: str) -> None:
    try:
        await client.chat_postMessage(channel=channel, thread_ts=ts, text=text)
    except WEB_API_ERRORS as exc:
        log.warning("could not tell the user's thread: %s", api_error(exc))
