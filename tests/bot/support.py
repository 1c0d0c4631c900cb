"""Helpers for driving the bot as Slack would: submitting the modal, waiting for the report."""

from __future__ import annotations

import json
from typing import Any, Protocol

from bot.views import modal as m
from bot.views.report import RERUN_ACTION
from tests.servers import TEST_USER
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


def diagnosis_id(report: Call) -> str:
    """The diagnosis a report message is about (its Re-run button carries the id)."""
    return next(
        e["value"] for e in report.args["blocks"][-1]["elements"] if e["action_id"] == RERUN_ACTION
    )


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


def login_test_form(server: str) -> dict[str, Any]:
    """The modal's first step: STARTTLS on 587 with TEST_USER, the login test ticked."""
    return form(
        server=server,
        port="587",
        security="starttls",
        auth=m.AUTH_OPTION,
        user=TEST_USER,
        credtest=m.CREDTEST_OPTION,
    )


async def submit_password(bot: BotHarness, password: str, *, metadata: str):
    """The second step: the password modal that the first step pushed (`metadata` is its
    private_metadata)."""
    values = {m.PASSWORD: {m.VALUE: {"type": "plain_text_input", "value": password}}}
    return await submit(bot, values, metadata=metadata, callback=m.CREDENTIALS_CALLBACK)
