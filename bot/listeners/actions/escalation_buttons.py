"""Claim and Resolve on an escalation post (help-desk agents)."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.escalation import act
from bot.listeners._common import Asker


async def _act(
    kind: str,
    ack: AsyncAck,
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    asker = Asker.of(context)
    value = str(action.get("value") or "")
    if not (value.isascii() and value.isdigit()):  # int() refuses "²", isdigit() does not
        await asker.tell(client, "Unknown escalation.")
        return
    await act(
        client=client,
        store=deps_of(context).store,
        escalation_id=int(value),
        agent_id=asker.user_id,
        team_id=asker.team_id,
        action=kind,
        channel_id=asker.channel_id,
    )


async def claim_escalation(
    ack: AsyncAck, action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await _act("claim", ack, action, client, context)


async def resolve_escalation(
    ack: AsyncAck, action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await _act("resolve", ack, action, client, context)
