"""bot/views/explain.py: the Slack answer to `/smtpcheck explain` and the message shortcut."""

from __future__ import annotations

import json

import diagnostics
from bot.views.explain import explain_blocks, explain_fallback_text
from bot.views.text import MESSAGE_BLOCKS_MAX


def rendered(text: str, client: str = "classic") -> str:
    blocks = explain_blocks(diagnostics.explain(text, client=client))
    assert len(blocks) <= MESSAGE_BLOCKS_MAX
    return json.dumps([b.to_dict() for b in blocks])


def test_cause_fix_and_not_probed_are_shown() -> None:
    out = rendered("535 5.7.0 (#AUTH005) Too many bad auth attempts.")
    assert "app password" in out and "Login not tested" in out
    assert "classic Outlook" in out


def test_pasted_mentions_and_links_cannot_ping_or_link() -> None:
    out = rendered("550 5.1.1 <@U123> <!channel> <https://evil.example|click> unknown")
    assert "<@U123>" not in out and "<!channel>" not in out and "<https://evil" not in out


def test_not_about_sending_and_unknown_texts() -> None:
    assert "not an outgoing-settings problem" in rendered(
        "Log onto incoming mail server (IMAP): Your e-mail server rejected your login."
    )
    assert "Nothing in this text is a known Outlook error" in rendered("my printer is out of toner")
    nothing = diagnostics.explain("my printer is out of toner")
    assert explain_fallback_text(nothing) == "This text is not a known Outlook error."


def test_unverified_steps_are_marked_for_the_phone_apps() -> None:
    out = rendered("530 5.7.0 Must issue a STARTTLS command first", client="android")
    assert "not yet confirmed against Microsoft" in out
