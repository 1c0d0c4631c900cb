"""Message shortcut "Diagnose mail error" over HTTP as Slack sends it: the form to check the
server against the error, and the meaning at once, the same answer as `/smtpcheck explain`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.listeners.shortcuts import DIAGNOSE_MESSAGE
from bot.views import modal as m
from tests.bot.support import blocks_text
from tests.slack_stub import BotHarness


def error_text_shown(call: Any) -> str:
    view = call.args["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    block = next(b for b in view["blocks"] if b.get("block_id") == m.ERROR_TEXT)
    return str(block["element"]["initial_value"])


async def test_the_form_opens_and_the_meaning_is_told(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    error = (
        "Send test e-mail message: 535 5.7.139 Authentication unsuccessful,"
        " SmtpClientAuthentication is disabled for the Tenant <!here> \u202e"
    )
    payload = bot.sender.message_shortcut(callback_id=DIAGNOSE_MESSAGE, text=error)
    reply = await bot.sender.interaction(payload)
    assert reply.status == 200
    [opened] = await bot.stub.wait_for("views.open")
    assert "535 5.7.139" in error_text_shown(opened)  # to check the server against it
    [answer] = await bot.stub.wait_for("chat.postEphemeral", timeout=5)
    assert answer.args["user"] == "U0ALICE" and answer.args["channel"] == "C0HELP"
    text = blocks_text(answer)
    assert "SMTP AUTH is switched off" in text and "Authenticated SMTP" in text
    assert "Login not tested" in text
    dumped = json.dumps(answer.args, ensure_ascii=False)
    assert "<!here>" not in dumped and "\u202e" not in dumped


async def test_a_message_without_text_only_opens_the_form(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    payload = bot.sender.message_shortcut(callback_id=DIAGNOSE_MESSAGE, text="")
    assert (await bot.sender.interaction(payload)).status == 200
    await bot.stub.wait_for("views.open")
    await asyncio.sleep(0.3)
    assert not bot.stub.to("chat.postEphemeral")  # nothing to explain, no empty answer
