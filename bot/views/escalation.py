"""The escalation post in the help desk's channel, and its updates (claimed, resolved)."""

from __future__ import annotations

import dataclasses
import re

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, SectionBlock

from bot.views.text import CONTEXT_TEXT_MAX, SECTION_TEXT_MAX, clip, clip_escaped, md, plain

CLAIM_ACTION = "escalation_claim"
RESOLVE_ACTION = "escalation_resolve"
_PERMALINK = re.compile(r"^https://[A-Za-z0-9.-]+/[A-Za-z0-9._~/?=&%-]*$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,40}$")


@dataclasses.dataclass(frozen=True, slots=True)
class EscalationInfo:
    escalation_id: str
    requester_id: str
    summary: str  # plain text; escaped here
    permalink: str | None
    status: str = "open"  # open | claimed | resolved
    claimed_by: str | None = None
    resolved_by: str | None = None
    incident_users: int = 0  # other users with the same failure for the same server, last hour
    host: str | None = None


def mention(user_id: str | None) -> str:
    """<@U…> only for a well-formed ID (anything else could forge a mention)."""
    return f"<@{user_id}>" if user_id and _SLACK_ID.match(user_id) else "someone"


def escalation_message(info: EscalationInfo) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the escalation post."""
    lines = [f":rotating_light: *Escalation* from {mention(info.requester_id)}"]
    if info.incident_users > 0:
        lines.append(
            f":fire: *Possible incident:* {info.incident_users} other"
            f" user{'s' if info.incident_users != 1 else ''} had the same failure with"
            f" `{clip_escaped(info.host or 'this server', 200)}` in the last hour."
            " This looks like a server problem, not a user error."
        )
    lines.append(clip_escaped(info.summary, 2000))
    if info.permalink and _PERMALINK.match(info.permalink):
        lines.append(f"<{info.permalink}|Open the user's thread>")
    blocks: list[Block] = [SectionBlock(text=md(clip("\n".join(lines), SECTION_TEXT_MAX)))]
    if info.status == "resolved":
        state = f":white_check_mark: Resolved by {mention(info.resolved_by)}"
    elif info.status == "claimed":
        state = f":raising_hand: Claimed by {mention(info.claimed_by)}"
    else:
        state = ":hourglass: Waiting for an agent"
    blocks.append(ContextBlock(elements=[md(clip(state, CONTEXT_TEXT_MAX))]))
    buttons = []
    if info.status == "open":
        buttons.append(
            ButtonElement(
                text=plain("Claim", 75),
                action_id=CLAIM_ACTION,
                value=info.escalation_id,
                style="primary",
            )
        )
    if info.status in {"open", "claimed"}:
        buttons.append(
            ButtonElement(
                text=plain("Resolve", 75), action_id=RESOLVE_ACTION, value=info.escalation_id
            )
        )
    if buttons:
        blocks.append(ActionsBlock(block_id="escalation_actions", elements=buttons))
    for block in blocks:
        block.validate_json()
    fallback = f"Escalation from {mention(info.requester_id)} ({info.status})"
    return fallback, blocks


def thread_notice(kind: str, agent_id: str | None) -> str:
    """What the user reads in their thread when an agent acts."""
    if kind == "escalated":
        return ":rotating_light: Escalated to the help desk. An agent will reply here."
    if kind == "claimed":
        return f":raising_hand: {mention(agent_id)} from the help desk is looking into this."
    if kind == "resolved":
        return f":white_check_mark: {mention(agent_id)} marked this as resolved."
    return kind
