"""App Home: the user's recent checks and how to use the bot."""

from __future__ import annotations

import dataclasses
import datetime as dt

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock, SectionBlock
from slack_sdk.models.views import View

from bot.views.help import HELP_TEXT
from bot.views.text import clip_escaped, md, plain


@dataclasses.dataclass(frozen=True, slots=True)
class RecentCheck:
    target: str
    verdict: str
    created_at: dt.datetime | None
    top_problem: str | None = None


def home_view(recent: list[RecentCheck]) -> View:
    """The Home tab."""
    icon = {"pass": ":white_check_mark:", "warn": ":large_orange_circle:", "fail": ":x:"}
    blocks: list[Block] = [
        HeaderBlock(text=plain("Outlook sending checks", 150)),
        SectionBlock(text=md(HELP_TEXT)),
        DividerBlock(),
        HeaderBlock(text=plain("Your recent checks", 150)),
    ]
    if not recent:
        blocks.append(SectionBlock(text=md("No checks yet. Try `/smtpcheck` in any channel.")))
    for check in recent[:20]:
        when = check.created_at.strftime("%Y-%m-%d %H:%M UTC") if check.created_at else ""
        line = f"{icon.get(check.verdict, ':grey_question:')} `{clip_escaped(check.target, 200)}`"
        line += f" · {clip_escaped(check.verdict.upper(), 10)} · {when}"
        if check.top_problem:
            line += f"\n{clip_escaped(check.top_problem, 300)}"
        blocks.append(SectionBlock(text=md(line)))
    view = View(type="home", blocks=blocks)
    view.validate_json()
    return view
