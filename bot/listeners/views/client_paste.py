"""The pasted client-check output: validate it, compare with the stored report, answer in the
user's thread."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.forms import state_element, state_values
from bot.listeners._common import Asker, diagnosis_or_tell
from bot.slack_io import message_payload, tell_user
from bot.views.client_check import OUTPUT_BLOCK, VALUE, comparison_message, paste_error
from diagnostics import Report
from diagnostics.client_check import attach_fixes, compare, parse_client_output

log = logging.getLogger("smtpcheck.bot")


async def client_paste_submission(
    ack: AsyncAck, view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    deps = deps_of(context)
    diagnosis_id = str(view.get("private_metadata") or "")[:64]
    text = state_element(state_values(view), OUTPUT_BLOCK, VALUE).get("value")
    text = text if isinstance(text, str) else None
    observation = parse_client_output(text) if text and text.strip() else None
    problem = paste_error(text, observation)
    if problem is not None or observation is None:
        await ack(response_action="errors", errors={OUTPUT_BLOCK: problem or "Paste the output"})
        return
    await ack(response_action="clear")  # closes the paste form and the script under it
    asker = Asker.of(context)
    user_id, team_id = asker.user_id, asker.team_id
    row = await diagnosis_or_tell(
        context,
        client,
        diagnosis_id,
        asker=asker,
        gone="That check is no longer stored, so I cannot compare your result with it."
        " Please run `/smtpcheck` again.",
    )
    if row is None:
        return
    try:
        report = Report.model_validate(row.report)
    except ValidationError:
        log.warning("stored report %s does not validate", diagnosis_id)
        await tell_user(
            client,
            channel=row.channel_id,
            user_id=user_id,
            text="I cannot read that check any more; please run `/smtpcheck` again.",
        )
        return
    result = attach_fixes(compare(report, observation), report)
    fallback, blocks = comparison_message(
        result,
        report=report,
        observation=observation,
        diagnosis_id=diagnosis_id,
        user_id=user_id,
    )
    try:
        await deps.store.audit(
            team_id=team_id,
            user_id=user_id,
            action="client_compare",
            host=row.host,
            port=row.port,
            address=None,
            detail={
                "diagnosis_id": diagnosis_id,
                "platform": observation.platform,
                "findings": [f.id for f in result.findings],
            },
        )
    except Exception:  # the audit row must not cost the user the verdict
        log.warning("audit of client_compare failed", exc_info=True)
    payload = message_payload(row.channel_id, fallback, blocks, thread_ts=row.thread_ts)
    await deps.runner.deliver(
        team_id=team_id, method="chat.postMessage", payload=payload, client=client
    )
