"""The client-check buttons: show the read-only script for Windows or Mac, open the paste form."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.slack_io import WEB_API_ERRORS, api_error, tell_user
from bot.views.client_check import ScriptTooLong, paste_view, script_view
from bot.views.report import CLIENT_SCRIPT_WINDOWS_ACTION
from diagnostics import InputError, Report

log = logging.getLogger("smtpcheck.bot")


def _who(body: dict[str, Any], action: dict[str, Any]) -> tuple[str, str, str | None, str]:
    user = body.get("user") or {}
    team = body.get("team") or {}
    return (
        str(team.get("id") or user.get("team_id") or ""),
        str(user.get("id") or ""),
        (body.get("channel") or {}).get("id"),
        str(action.get("value") or "")[:64],
    )


async def _show(client: AsyncWebClient, body: dict[str, Any], view: Any) -> None:
    """Open the modal, or stack it on the modal the button was pressed in."""
    trigger_id = body.get("trigger_id", "")
    if (body.get("container") or {}).get("type") == "view" or body.get("view"):
        await client.views_push(trigger_id=trigger_id, view=view)
    else:
        await client.views_open(trigger_id=trigger_id, view=view)


async def show_client_script(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await ack()
    deps = deps_of(context)
    team_id, user_id, channel_id, diagnosis_id = _who(body, action)
    platform = "windows" if action.get("action_id") == CLIENT_SCRIPT_WINDOWS_ACTION else "mac"
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
        view = script_view(Report.model_validate(row.report), platform, diagnosis_id=diagnosis_id)
    except (InputError, ValidationError, ScriptTooLong) as exc:
        log.warning("no client check for %s: %s", diagnosis_id, exc)
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text="I cannot write a check from your computer for this server. Please escalate"
            " to the help desk.",
        )
        return
    try:
        await deps.store.audit(
            team_id=team_id,
            user_id=user_id,
            action="client_script",
            host=row.host,
            port=row.port,
            address=None,
            detail={"diagnosis_id": diagnosis_id, "platform": platform},
        )
    except Exception:  # the audit row must not cost the user the script
        log.warning("audit of client_script failed", exc_info=True)
    try:
        await _show(client, body, view)
    except WEB_API_ERRORS as exc:
        log.warning("client script: views.open failed: %s", api_error(exc))
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text="Slack did not let me open the check in time; press the button again.",
        )


async def open_client_paste(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await ack()
    _, user_id, channel_id, diagnosis_id = _who(body, action)
    try:
        await _show(client, body, paste_view(diagnosis_id=diagnosis_id))
    except WEB_API_ERRORS as exc:
        log.warning("client paste: views.open failed: %s", api_error(exc))
        await tell_user(
            client,
            channel=channel_id,
            user_id=user_id,
            text="Slack did not let me open the form in time; press *Paste the result* again.",
        )
