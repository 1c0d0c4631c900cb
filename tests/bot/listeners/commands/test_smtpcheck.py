"""`/smtpcheck` over HTTP as Slack sends it: settings in any order, `explain`, and the form
pre-filled with what an unclear line did say."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from slack_sdk.models.views import View

from bot.views import modal as m
from bot.views.report import ESCALATE_ACTION
from tests.bot.support import blocks_text, wait_report
from tests.servers import SmtpTestServer
from tests.slack_stub import BotHarness, Call


def opened_view(call: Call) -> dict[str, Any]:
    view = call.args["view"]
    return json.loads(view) if isinstance(view, str) else view


def initial_values(view: dict[str, Any]) -> dict[str, Any]:
    """block_id -> the value the form shows before the user types anything."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        element = block.get("element") or {}
        if "initial_value" in element:
            values[block["block_id"]] = element["initial_value"]
        elif "initial_option" in element:
            values[block["block_id"]] = element["initial_option"]["value"]
    return values


async def test_settings_in_any_order_run_the_check(
    make_bot: Any, tls_server: SmtpTestServer
) -> None:
    bot: BotHarness = await make_bot(escalation_channel="C0DESK")
    line = f"me@example.com mac starttls {tls_server.host}:{tls_server.port}"
    reply = await bot.sender.command(line)
    assert reply.status == 200 and not reply.text.strip()  # a plain ack: the check runs
    [report] = await wait_report(bot)
    text = blocks_text(report)
    assert tls_server.host in text and "me@example.com" in text
    assert "Outlook for Mac" in text
    assert ESCALATE_ACTION in text  # on every report, whatever the verdict
    assert not bot.stub.to("views.open")


async def test_the_issue_s_line_is_understood(make_bot: Any, tls_server: SmtpTestServer) -> None:
    bot: BotHarness = await make_bot()
    reply = await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls me@example.com")
    assert reply.status == 200
    assert "understand" not in reply.text
    [report] = await wait_report(bot)
    assert "me@example.com" in blocks_text(report)


async def test_an_unclear_line_opens_the_form_pre_filled(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    reply = await bot.sender.command("me@example.com smtp.example.com 465 ssl banana")
    assert reply.status == 200
    body = reply.json()
    assert "banana" in body["text"]  # said at once, ephemerally
    assert "opened the form" in json.dumps(body["blocks"])
    [call] = await bot.stub.wait_for("views.open", timeout=3)
    view = opened_view(call)
    assert view["callback_id"] == m.CHECK_CALLBACK
    shown = initial_values(view)
    assert shown[m.EMAIL] == "me@example.com"
    assert shown[m.SERVER] == "smtp.example.com"
    assert shown[m.PORT] == "465"
    assert shown[m.SECURITY] == "ssl"
    assert "banana" in json.dumps(view["blocks"][0])  # the form says what was unclear
    assert not bot.stub.to("chat.postMessage")  # nothing ran


async def test_hostile_unclear_words_are_escaped_in_the_reply_and_the_form(
    make_bot: Any,
) -> None:
    bot: BotHarness = await make_bot()
    reply = await bot.sender.command("smtp.example.com <!channel> \u202eevil")
    assert reply.status == 200
    assert "<!channel>" not in json.dumps(reply.json())
    [call] = await bot.stub.wait_for("views.open", timeout=3)
    dumped = json.dumps(opened_view(call))
    assert "<!channel>" not in dumped and "\\u202e" not in dumped.lower()


TENANT_OFF = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant"
)


async def test_explain_answers_with_the_cause_and_the_fix(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    reply = await bot.sender.command(f"explain {TENANT_OFF}")
    assert reply.status == 200 and not reply.text.strip()  # a plain ack: the answer follows
    [answer] = await bot.stub.wait_for("chat.postEphemeral", timeout=5)
    assert answer.args["user"] == "U0ALICE" and answer.args["channel"] == "C0HELP"
    text = blocks_text(answer)
    assert "535 5.7.139" in text and "SMTP AUTH is switched off" in text  # the cause
    assert "Authenticated SMTP" in text and "Add Account" in text  # the fix, classic Outlook
    assert "classic Outlook for Windows" in text
    assert "Login not tested" in text and "`/smtpcheck`" in text  # how to check for real
    assert "SMTP AUTH is switched off" in answer.args["text"]  # the notification says it too
    assert not bot.stub.to("views.open") and not bot.stub.to("chat.postMessage")


async def test_explain_gives_the_steps_for_the_outlook_named(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    await bot.sender.command("explain mac 0x800CCC0F")
    [answer] = await bot.stub.wait_for("chat.postEphemeral", timeout=5)
    text = blocks_text(answer)
    assert "0x800CCC0F" in text and "Outlook for Mac" in text
    assert "Control Panel" not in text  # classic Outlook's way to the setting


async def test_hostile_pasted_text_cannot_ping_link_or_flip(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    hostile = "550 5.7.1 &lt;!channel&gt; <!channel> <https://evil.example|x> \u202eevil relay"
    await bot.sender.command(f"explain {hostile}")
    [answer] = await bot.stub.wait_for("chat.postEphemeral", timeout=5)
    dumped = json.dumps(answer.args)
    assert "5.7.1" in dumped  # the reply was read and explained
    assert "<!channel>" not in dumped and "<https://evil" not in dumped
    assert "\u202e" not in json.dumps(answer.args, ensure_ascii=False)


async def test_explain_without_an_error_says_how(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    for line in ("explain", "explain   ", "explain mac"):
        reply = await bot.sender.command(line)
        assert "Paste the error" in reply.json()["text"]
    await asyncio.sleep(0.2)
    assert not bot.stub.to("views.open") and not bot.stub.to("chat.postEphemeral")


async def test_help_shows_the_new_command_forms(make_bot: Any) -> None:
    bot: BotHarness = await make_bot()
    reply = await bot.sender.command("help")
    dumped = json.dumps(reply.json())
    assert "in any order" in dumped
    assert "/smtpcheck me@example.com smtp.example.com 465 ssl mac" in dumped
    assert "/smtpcheck explain" in dumped


async def test_the_form_is_built_off_the_loop_and_holds_no_other_ack(
    make_bot: Any, monkeypatch: Any
) -> None:
    """While one user's form is still being converted for views.open (held here, in its
    thread), another user's command is acked and answered: the loop was free."""
    bot: BotHarness = await make_bot()
    entered, release = threading.Event(), threading.Event()
    to_dict = View.to_dict

    def held_to_dict(view: View, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if view.callback_id == m.CHECK_CALLBACK:
            entered.set()
            release.wait(10)
        return to_dict(view, *args, **kwargs)

    monkeypatch.setattr(View, "to_dict", held_to_dict)
    try:
        first = await bot.sender.command("", user="U0FIRST")
        assert first.status == 200
        assert await asyncio.to_thread(entered.wait, 10)  # the form is being built
        second = await bot.sender.command("help", user="U0SECOND")
        assert second.status == 200 and "smtpcheck" in second.text
        assert not bot.stub.to("views.open")  # the first form is still held
    finally:
        release.set()
    [call] = await bot.stub.wait_for("views.open", timeout=5)
    assert opened_view(call)["callback_id"] == m.CHECK_CALLBACK
