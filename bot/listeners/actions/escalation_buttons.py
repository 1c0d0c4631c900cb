"""Claim and Resolve on an escalation post (help-desk agents)."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import deps_of
from bot.escalation import act
from bot.slack_io import tell_user


async def _act(
    kind: str,
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await ack()
    deps = deps_of(context)
    user = body.get("user") or {}
    channel_id = (body.get("channel") or {}).get("id")
    team_id = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
    value = str(action.get("value") or "")
    if not (value.isascii() and value.isdigit()):  # int() refuses "²", isdigit() does not
        await tell_user(
            client, channel=channel_id, user_id=str(user.get("id", "")), text="Unknown escalation."
        )
        return
    await act(
        client=client,
        store=deps.store,
        escalation_id=int(value),
        agent_id=str(user.get("id", "")),
        team_id=team_id,
        action=kind,
        channel_id=channel_id,
    )


async def claim_escalation(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await _act("claim", ack, body, action, client, context)


async def resolve_escalation(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: Any,
) -> None:
    await _act("resolve", ack, body, action, client, context)
