"""End to end over HTTP: signed requests into the real app, a Slack stand-in, real SMTP peers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot.views import modal as m
from tests.slack_stub import SIGNING_SECRET, BotHarness, signature


async def test_help_is_ephemeral_and_immediate(bot: BotHarness) -> None:
    reply = await bot.sender.command("help")
    assert reply.status == 200
    body = reply.json()
    assert "smtpcheck" in body["text"]
    assert body.get("response_type", "ephemeral") == "ephemeral"
    assert any("/smtpcheck you@contoso.com" in json.dumps(b) for b in body["blocks"])


async def test_no_text_opens_the_modal_at_once(bot: BotHarness) -> None:
    started = time.perf_counter()
    reply = await bot.sender.command("")
    assert reply.status == 200
    [call] = await bot.stub.wait_for("views.open", timeout=3)
    assert time.perf_counter() - started < 3
    assert call.args["trigger_id"].endswith(".trigger")
    view = call.args["view"]
    if isinstance(view, str):
        view = json.loads(view)
    assert view["callback_id"] == m.CHECK_CALLBACK
    block_ids = [b.get("block_id") for b in view["blocks"]]
    for block in (m.EMAIL, m.SERVER, m.PORT, m.SECURITY, m.AUTH, m.USER, m.CLIENT, m.ERROR_TEXT):
        assert block in block_ids
    assert m.CREDTEST not in block_ids  # the password test is off by default
    assert json.loads(view["private_metadata"])["c"] == "C0HELP"


async def test_unparseable_text_gets_an_example(bot: BotHarness) -> None:
    reply = await bot.sender.command("smtp.example.com banana")
    assert reply.status == 200
    body = reply.json()
    assert "banana" in body["text"]
    assert "/smtpcheck smtp.office365.com:587 starttls" in json.dumps(body["blocks"])
    assert not bot.stub.to("chat.postMessage")


@pytest.mark.parametrize("case", ["bad_secret", "stale", "unsigned", "tampered"])
async def test_bad_signature_is_refused_without_side_effects(bot: BotHarness, case: str) -> None:
    body = bot.sender.command_body("127.0.0.1:587 starttls")
    kwargs = {"content_type": "application/x-www-form-urlencoded"}
    if case == "bad_secret":
        reply = await bot.sender.post(body, secret="not-the-secret", **kwargs)
    elif case == "stale":
        reply = await bot.sender.post(body, timestamp=time.time() - 6 * 60, **kwargs)
    elif case == "unsigned":
        reply = await bot.sender.post(body, sign=False, **kwargs)
    else:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": kwargs["content_type"],
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(SIGNING_SECRET, stamp, body),
        }
        async with bot.session.post(
            bot.sender.url, data=(body + "&text=evil").encode(), headers=headers
        ) as response:
            reply_status = response.status
        assert reply_status == 401
        reply = None
    if reply is not None:
        assert reply.status == 401
    await asyncio.sleep(0.5)  # anything the request might have started has had time to run
    assert [c.method for c in bot.stub.calls] == []
    assert await bot.store.audit_entries() == []
