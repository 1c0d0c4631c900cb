"""The report's 'Enter the server name' button: an address whose domain names no outgoing
server gets a report (not an error), and the button opens the form with the address in it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.views import modal as m
from bot.views.report import ENTER_SERVER_ACTION, RERUN_ACTION
from tests.bot.support import blocks_text, wait_report
from tests.slack_stub import BotHarness


def buttons(call: Any) -> dict[str, str]:
    blocks = call.args.get("blocks")
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
    return {
        e["action_id"]: e["value"]
        for block in blocks
        for e in block.get("elements") or []
        if e.get("type") == "button"
    }


def view_of(call: Any) -> dict[str, Any]:
    view = call.args["view"]
    return json.loads(view) if isinstance(view, str) else view


@pytest.mark.slow
async def test_no_server_found_offers_the_form_with_the_address(bot: BotHarness) -> None:
    reply = await bot.sender.command("someone@nowhere.test")
    assert reply.status == 200
    [report] = await wait_report(bot)
    text = blocks_text(report)
    assert "No outgoing server could be found for nowhere.test" in text
    found = buttons(report)
    assert found[ENTER_SERVER_ACTION] == found[RERUN_ACTION]  # the check's ID
    before = len(bot.stub.to("views.open"))
    reply = await bot.sender.interaction(
        bot.sender.block_action(action_id=ENTER_SERVER_ACTION, value=found[ENTER_SERVER_ACTION])
    )
    assert reply.status == 200
    opened = await bot.stub.wait_for("views.open", count=before + 1)
    view = view_of(opened[-1])
    email = next(b for b in view["blocks"] if b.get("block_id") == m.EMAIL)
    assert email["element"]["initial_value"] == "someone@nowhere.test"
    server = next(b for b in view["blocks"] if b.get("block_id") == m.SERVER)
    assert not server["element"].get("initial_value")


async def test_a_working_report_has_no_such_button(bot: BotHarness, tls_server: Any) -> None:
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    [report] = await wait_report(bot)
    assert ENTER_SERVER_ACTION not in buttons(report)
