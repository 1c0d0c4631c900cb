"""`/smtpcheck [text]`: parse, ack within Slack's 3 s, hand off."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import parsing
from bot.deps import deps_of
from bot.forms import FieldErrors, check_policy
from bot.listeners._common import Asker, open_view_or_tell, tell_explanation
from bot.runner import Job
from bot.slack_io import tell_user
from bot.views.escalation import mention
from bot.views.help import error_blocks, help_blocks, notice_blocks, unclear_blocks
from bot.views.modal import check_modal
from bot.views.text import clip_escaped, code

log = logging.getLogger("smtpcheck.bot")

FORM_EXPIRED = (
    ":warning: Slack did not let me open the form in time. Please run `/smtpcheck` again,"
    " or give the settings inline, e.g. `/smtpcheck smtp.office365.com:587 starttls`."
)


async def smtpcheck_command(
    ack: AsyncAck,
    command: dict[str, Any],
    body: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    deps = deps_of(context)
    asker = Asker.of(context)
    user_id, channel_id, team_id = asker.user_id, asker.channel_id or "", asker.team_id
    try:
        parsed = parsing.parse_command(command.get("text", ""))
        if isinstance(parsed, parsing.RunCheck):
            check_policy(parsed.request, deps.engine_config)
    except (parsing.ParseError, FieldErrors) as exc:
        message = "; ".join(exc.errors.values()) if isinstance(exc, FieldErrors) else str(exc)
        text, blocks = error_blocks(message)
        await ack(text=text, blocks=blocks)
        return
    if isinstance(parsed, parsing.OpenModal):
        if parsed.problems:  # said at once; the form opens pre-filled with the rest
            text, blocks = unclear_blocks(parsed.problems)
            await ack(text=text, blocks=blocks)
        else:
            await ack()
        view = check_modal(
            channel_id=channel_id,
            credential_test=deps.settings.credential_test,
            initial=parsed.initial,
            problems=parsed.problems,
        )
        await open_view_or_tell(client, body=body, view=view, asker=asker, retry=FORM_EXPIRED)
    elif isinstance(parsed, parsing.Explain):  # nothing to probe: the meaning, and how to check
        await ack()
        await tell_explanation(client, asker, parsed.error_text, outlook=parsed.client)
    elif isinstance(parsed, parsing.ShowHelp):
        text, blocks = help_blocks()
        await ack(text=text, blocks=blocks)
    elif isinstance(parsed, parsing.ShowHistory):
        if not _is_agent(deps.settings, user_id=user_id, channel_id=channel_id):
            await ack(text="`history` is for help-desk agents: run it in the escalation channel.")
            return
        await ack()
        await _history(
            deps, client, team_id=team_id, user_id=user_id, channel_id=channel_id, host=parsed.host
        )
    else:
        await ack()
        await deps.runner.submit(
            Job(team_id=team_id, user_id=user_id, channel_id=channel_id, request=parsed.request),
            client=client,
        )


def _is_agent(settings: Any, *, user_id: str, channel_id: str) -> bool:
    in_desk_channel = settings.escalation_channel and channel_id == settings.escalation_channel
    return bool(in_desk_channel or user_id in settings.agents)


async def _history(
    deps: Any, client: AsyncWebClient, *, team_id: str, user_id: str, channel_id: str, host: str
) -> None:
    rows = await deps.store.history(team_id=team_id, host_or_domain=host, limit=20)
    await deps.store.audit(
        team_id=team_id, user_id=user_id, action="history", host=host, port=None, address=None
    )
    lines = [f"*Recent checks of* {code(host)}"]
    for row in rows:
        report = row.report or {}
        data = report.get("input", {})
        when = row.created_at.strftime("%Y-%m-%d %H:%M") if row.created_at else ""
        where = f"{data.get('host') or data.get('target')}:{data.get('port') or ''}"
        ids = ", ".join(
            f.get("id", "") for f in report.get("findings", []) if f.get("severity") == "error"
        )[:300]
        lines.append(
            f"• {when} {mention(row.user_id)} {code(where)}"
            f" *{clip_escaped(str(report.get('verdict', '?')).upper(), 8)}*"
            f" {clip_escaped(ids, 300)}"
        )
    if not rows:
        lines.append("No checks stored for it.")
    text, blocks = notice_blocks("\n".join(lines[:40]))
    await tell_user(client, channel=channel_id, user_id=user_id, text=text, blocks=blocks)
