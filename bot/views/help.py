"""Help and error replies for `/smtpcheck` (ephemeral)."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, SectionBlock

from bot.parsing import USAGE_EXAMPLES
from bot.views.text import clip, clip_escaped, md

HELP_TEXT = (
    "*smtpcheck* finds out why Outlook cannot send email and tells you what to change.\n"
    "• `/smtpcheck` opens a form for the settings from Outlook's outgoing server page.\n"
    "• `/smtpcheck you@contoso.com` checks the provider's settings for that address.\n"
    "• `/smtpcheck smtp.office365.com:587 starttls` checks a server, port and encryption.\n"
    "• Give any of these, in any order: the server (`smtp.example.com` or"
    " `smtp.example.com:587`), the port, the encryption (`ssl`, `starttls`, `none`, `auto`),"
    " your Outlook (`classic`, `new`, `mac`, `ios`, `android`) and your address, e.g."
    " `/smtpcheck me@example.com smtp.example.com 465 ssl mac`. What I cannot read opens the"
    " form, filled in with the rest.\n"
    "• `/smtpcheck explain <the error Outlook showed>` says what an error means and how to"
    " fix it (name your Outlook first for its steps, e.g. `/smtpcheck explain mac 0x800CCC0F`).\n"
    "• On a message holding an Outlook error: *More actions → Diagnose mail error* says what it"
    " means and opens the form to check the server.\n"
    "• `/smtpcheck history smtp.example.com` (help-desk agents) shows recent checks.\n"
    "The report comes in a thread, with *Re-run*, *Technical details* and *Escalate*."
)


def help_blocks() -> tuple[str, list[Block]]:
    blocks: list[Block] = [SectionBlock(text=md(HELP_TEXT))]
    return "How to use /smtpcheck", blocks


def error_blocks(message: str) -> tuple[str, list[Block]]:
    """A plain error with an example, for text we cannot act on."""
    examples = "\n".join(f"`{e}`" for e in USAGE_EXAMPLES)
    blocks: list[Block] = [
        SectionBlock(text=md(clip(f":warning: {clip_escaped(message, 1500)}", 3000))),
        ContextBlock(elements=[md(f"For example:\n{examples}")]),
    ]
    for block in blocks:
        block.validate_json()
    return f"smtpcheck: {clip_escaped(message, 1500)}", blocks


def unclear_blocks(problems: tuple[str, ...]) -> tuple[str, list[Block]]:
    """What an inline command left unclear, said while the form opens pre-filled."""
    text, blocks = error_blocks(" ".join(p.rstrip(".") + "." for p in problems[:5]))
    blocks.insert(
        1, SectionBlock(text=md("I opened the form with what I understood: complete it there."))
    )
    return text, blocks


def notice_blocks(message: str) -> tuple[str, list[Block]]:
    """A one-section message with already safe mrkdwn."""
    blocks: list[Block] = [SectionBlock(text=md(clip(message, 3000)))]
    return clip(message, 3000), blocks
