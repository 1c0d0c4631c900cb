"""The answer to `/smtpcheck explain <error>` (and the message shortcut): what a pasted error
means, what it is about, and the fix for the user's Outlook; nothing was probed.

Build the Explanation off the event loop (the parse is bounded but CPU work):

    result = await asyncio.to_thread(diagnostics.explain, text, client=client)
    blocks = explain_blocks(result)
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, SectionBlock

from bot.views import text as t
from bot.views.report import finding_text
from diagnostics.knowledge._explain import Explanation
from diagnostics.labels import client_label

NOT_RECOGNISED = (
    "Nothing in this text is a known Outlook error or server reply. Paste the whole message, "
    "with any code (such as 0x800CCC0E) or server reply (such as 535 5.7.8 …)."
)
NOT_PROBED = (
    "Login not tested: this only reads the text, nothing was checked. Run `/smtpcheck` with "
    "the outgoing server to test the settings."
)


def explain_blocks(result: Explanation) -> list[Block]:
    """Header, what the error says, what it is about, one fix per cause; escaped, bounded."""
    blocks: list[Block] = [
        HeaderBlock(text=t.plain("What this Outlook error means", t.HEADER_MAX)),
    ]
    if not result.recognised:
        blocks.append(SectionBlock(text=t.md(NOT_RECOGNISED)))
    else:
        blocks.append(SectionBlock(text=t.md(causes_text(result))))
    if result.notes:
        notes = "\n".join(f"*{t.clip_escaped(note, 600)}*" for note in result.notes)
        blocks.append(SectionBlock(text=t.md(t.clip(notes, t.SECTION_TEXT_MAX))))
    room = t.MESSAGE_BLOCKS_MAX - len(blocks) - 1
    for finding in result.findings[:room]:
        if finding.fix is not None:
            blocks.append(SectionBlock(text=t.md(finding_text(finding))))
    footer = f"Fix steps for {client_label(result.client)}. {NOT_PROBED}"
    if result.truncated:
        footer += " Only the start of a long text was read."
    blocks.append(ContextBlock(elements=[t.md(t.clip(footer, t.CONTEXT_TEXT_MAX))]))
    return blocks


def causes_text(result: Explanation) -> str:
    """One line per thing recognised: its code, its meaning, unconfirmed ones marked."""
    lines = ["*What the error says:*"]
    for cause in result.causes[:10]:
        code_part = f"{t.code(t.clip(cause.code, 60))} " if cause.code else ""
        mark = "" if cause.status == "verified" else " _(not confirmed by a vendor)_"
        lines.append(f"• {code_part}{t.clip_escaped(cause.cause, 500)}{mark}")
    if len(result.causes) > 10:
        lines.append(f"_…and {len(result.causes) - 10} more_")
    return t.clip("\n".join(lines), t.SECTION_TEXT_MAX)


def explain_fallback_text(result: Explanation) -> str:
    """The notification text (no mrkdwn): the first cause, or that nothing was recognised."""
    if not result.causes:
        return "This text is not a known Outlook error."
    first = result.causes[0]
    return t.clip(f"{first.code or 'Error'}: {first.cause}", 300)
