"""Claim and Resolve on an escalation post (help-desk agents)."""

from __future__ import annotations

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.deps import deps_of
from bot.escalation import act
from bot.listeners._common import Asker, button_value


async def _act(kind: str, args: AsyncArgs) -> None:
    await args.ack()
    asker = Asker.of(args.context)
    value = button_value(args)
    if not (value.isascii() and value.isdigit()):  # int() refuses "²", isdigit() does not
        await asker.tell(args.client, "Unknown escalation.")
        return
    await act(
        client=args.client,
        store=deps_of(args.context).store,
        escalation_id=int(value),
        agent_id=asker.user_id,
        team_id=asker.team_id,
        action=kind,
        channel_id=asker.channel_id,
    )


async def claim_escalation(args: AsyncArgs) -> None:
    await _act("claim", args)


async def resolve_escalation(args: AsyncArgs) -> None:
    await _act("resolve", args)
