"""Message shortcut "Diagnose mail error": the form, with the message as the error text, to
check the server against it; and at once, ephemerally, what the error means (the answer of
`/smtpcheck explain`), for whoever only needs the meaning or does not know the server."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.listeners._common import Asker, open_view_or_tell, tell_explanation
from bot.listeners.commands.smtpcheck import FORM_EXPIRED
from bot.parsing import unwrap_slack_text
from bot.views.modal import check_modal
from diagnostics import OutlookClient


async def diagnose_message_shortcut(
    ack: AsyncAck, shortcut: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    deps = deps_of(context)
    asker = Asker.of(context)
    error_text = unwrap_slack_text((shortcut.get("message") or {}).get("text") or "")
    view = check_modal(
        channel_id=asker.channel_id,
        error_text=error_text,
        credential_test=deps.settings.credential_test,
    )
    # The form first: its trigger expires in 3 s. Its Outlook choice comes later, so the
    # meaning is given with classic Outlook's steps, as `/smtpcheck explain` without one.
    await open_view_or_tell(client, body=shortcut, view=view, asker=asker, retry=FORM_EXPIRED)
    if error_text.strip():
        await tell_explanation(client, asker, error_text, outlook=OutlookClient.CLASSIC)
