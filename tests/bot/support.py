"""Helpers for driving the bot as Slack would: submitting the modal, waiting for the report."""

from __future__ import annotations

import json
from typing import Any, Protocol

from bot.views import modal as m
from tests.slack_stub import BotHarness, Call, SlackStub


class MakeBot(Protocol):
    """The `make_bot` fixture: `await make_bot(engine={...}, limits=..., **settings)`."""

    async def __call__(
        self,
        *,
        engine: dict[str, Any] | None = None,
        stub: SlackStub | None = None,
        **settings: Any,
    ) -> BotHarness: ...


def is_report(call: Call) -> bool:
    blocks = json.dumps(call.args.get("blocks", []))
    return bool(call.args.get("thread_ts")) and "report_rerun" in blocks


async def wait_report(bot: BotHarness, *, count: int = 1, timeout: float = 15) -> list[Call]:
    return await bot.stub.wait_for("chat.postMessage", is_report, count=count, timeout=timeout)


def blocks_text(call: Call) -> str:
    return json.dumps(call.args.get("blocks", [])) + str(call.args.get("text", ""))


def form(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for block, value in fields.items():
        if block in {m.PORT, m.SECURITY, m.CLIENT}:
            values[block] = {
                m.VALUE: {"type": "static_select", "selected_option": {"value": value}}
            }
        elif block in {m.AUTH, m.CREDTEST}:
            values[block] = {
                m.VALUE: {"type": "checkboxes", "selected_options": [{"value": value}]}
            }
        else:
            values[block] = {m.VALUE: {"type": "plain_text_input", "value": value}}
    return values


async def submit(
    bot: BotHarness,
    values: dict[str, Any],
    *,
    user: str = "U0ALICE",
    metadata: str = '{"c":"C0HELP"}',
    callback: str = m.CHECK_CALLBACK,
):
    payload = bot.sender.view_submission(
        callback_id=callback, values=values, private_metadata=metadata, user=user
    )
    return await bot.sender.interaction(payload)
