"""Message shortcut "Diagnose mail error": the form, with the message as the error text."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.listeners.commands.smtpcheck import open_modal
from bot.parsing import unwrap_slack_text
from bot.views.modal import check_modal


async def diagnose_message_shortcut(
    ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient, context: Any
) -> None:
    await ack()
    deps = deps_of(context)
    channel_id = (shortcut.get("channel") or {}).get("id")
    user_id = (shortcut.get("user") or {}).get("id", "")
    error_text = unwrap_slack_text((shortcut.get("message") or {}).get("text") or "")
    view = check_modal(
        channel_id=channel_id,
        error_text=error_text,
        credential_test=deps.settings.credential_test,
    )
    await open_modal(
        client,
        trigger_id=shortcut.get("trigger_id", ""),
        view=view,
        channel_id=channel_id,
        user_id=user_id,
    )
