"""What listeners share: who is asking (from Bolt's context, never parsed from bodies),
load-the-diagnosis-or-tell-the-user, open-a-view-or-tell-the-user, what a pasted error
means (the engine's explain, as `/smtpcheck explain` and the message shortcut answer it),
and the app's error handler for whatever a listener lets fall through.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

import diagnostics
from bot.deps import deps_of
from bot.slack_io import WEB_API_ERRORS, api_error, tell_user
from bot.store import DiagnosisRow
from bot.views.explain import explain_blocks, explain_fallback_text
from diagnostics import OutlookClient

log = logging.getLogger("smtpcheck.bot")

GONE = "That check is no longer stored; please run `/smtpcheck` again."
EXPLAIN_FAILED = (
    "Sorry, I could not read that error just now. Run `/smtpcheck` with the outgoing server"
    " to check the settings instead."
)
MAX_ID = 64  # diagnosis ids are 32 hex characters; a button value is hostile text


@dataclasses.dataclass(frozen=True, slots=True)
class Asker:
    """Who pressed, typed or submitted, and where: as Bolt resolved it for the request."""

    team_id: str
    user_id: str
    channel_id: str | None

    @classmethod
    def of(cls, context: AsyncBoltContext) -> Asker:
        return cls(
            team_id=str(context.team_id or ""),
            user_id=str(context.user_id or ""),
            channel_id=context.channel_id,
        )

    async def tell(self, client: AsyncWebClient, text: str) -> None:
        """An ephemeral note where they are (their DM with the app if that is impossible)."""
        await tell_user(client, channel=self.channel_id, user_id=self.user_id, text=text)


def button_value(args: AsyncArgs) -> str:
    """The pressed button's value, bounded (it names a stored diagnosis or escalation)."""
    return str((args.action or {}).get("value") or "")[:MAX_ID]


async def diagnosis_or_tell(
    context: AsyncBoltContext,
    client: AsyncWebClient,
    diagnosis_id: str,
    *,
    asker: Asker | None = None,
    gone: str = GONE,
) -> DiagnosisRow | None:
    """The stored diagnosis; None once the user has been told it is gone."""
    deps = deps_of(context)
    await deps.runner.saved(diagnosis_id[:MAX_ID])  # a report may be out before its row
    row = await deps.store.get_diagnosis(diagnosis_id[:MAX_ID])
    if row is None:
        await (asker or Asker.of(context)).tell(client, gone)
    return row


async def open_view_or_tell(
    client: AsyncWebClient,
    *,
    body: dict[str, Any],
    view: View | dict[str, Any],
    asker: Asker,
    retry: str,
    push: bool = False,
) -> bool:
    """views.open (views.push on top of the modal the button is in, with PUSH); an expired
    trigger or a failing Slack gets RETRY, a plain note, instead of silence."""
    trigger_id = str(body.get("trigger_id") or "")
    if isinstance(view, View):
        # A form is ~1 ms of slack_sdk's validation and conversion: in a thread, so that a
        # burst of `/smtpcheck` (each opening one after its ack) holds no ack behind it.
        view = await asyncio.to_thread(view.to_dict)
    try:
        if push:
            await client.views_push(trigger_id=trigger_id, view=view)
        else:
            await client.views_open(trigger_id=trigger_id, view=view)
    except WEB_API_ERRORS as exc:
        log.warning("views.%s failed: %s", "push" if push else "open", api_error(exc))
        await asker.tell(client, retry)
        return False
    return True


async def tell_explanation(
    client: AsyncWebClient, asker: Asker, error_text: str, *, outlook: OutlookClient
) -> None:
    """What the pasted error means and its fix for OUTLOOK, ephemerally to the asker; the
    text is read off the event loop (bounded, but CPU work)."""
    try:
        result = await asyncio.to_thread(diagnostics.explain, error_text, client=outlook)
    except Exception:  # our bug, not the user's text: logged, and the user is told
        log.exception("explaining a pasted error failed")
        await asker.tell(client, EXPLAIN_FAILED)
        return
    await tell_user(
        client,
        channel=asker.channel_id,
        user_id=asker.user_id,
        text=explain_fallback_text(result),
        blocks=explain_blocks(result),
    )


def in_a_modal(body: dict[str, Any]) -> bool:
    """Whether the button was pressed inside a modal (a new view is pushed on top of it)."""
    return (body.get("container") or {}).get("type") == "view" or bool(body.get("view"))


async def on_listener_error(error: Exception, body: dict[str, Any]) -> None:
    """`@app.error`: what a listener did not handle, said once in the log (redacted there).

    A Web API failure (Slack refused, timed out or is unreachable, retries spent) is one
    warning with Slack's error code; anything else is our bug, logged with its traceback.
    """
    kind = str(body.get("type") or ("slash_command" if "command" in body else "request"))
    if isinstance(error, WEB_API_ERRORS):
        log.warning("Slack call failed while handling %s: %s", kind, api_error(error))
        return
    log.error("unhandled error while handling %s", kind, exc_info=error)
