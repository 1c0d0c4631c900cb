"""Delivery under Slack's limits and outages: a Retry-After is an instruction to wait, the
report stays in its thread under its progress message, and the outbox is for outages only
(then it delivers the progress message and the report together, in order, in the thread).
A report waiting on Slack at SIGTERM is parked and delivered in its thread by the next process.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.bot.support import blocks_text, is_report, wait_report
from tests.servers import SmtpTestServer
from tests.slack_stub import BotHarness, Call


def is_parent(call: Call) -> bool:
    return not call.args.get("thread_ts") and "report_rerun" not in json.dumps(call.args)


def one_check_in_its_thread(bot: BotHarness) -> tuple[Call, Call]:
    """The check's progress message and its one report, in that thread, in that order."""
    posts = bot.stub.to("chat.postMessage")
    parents = [c for c in posts if is_parent(c)]
    reports = [c for c in posts if is_report(c)]
    assert len(parents) == 1, [c.args.get("text") for c in parents]
    assert len(reports) == 1, "the report is missing, or came twice"
    assert not [c for c in posts if "report_rerun" in json.dumps(c.args) and not is_report(c)]
    parent, report = parents[0], reports[0]
    assert report.args["thread_ts"] == parent.response["ts"]
    assert parent.at < report.at
    return parent, report


async def final_state(bot: BotHarness, parent: Call, timeout: float = 10) -> Call:
    ts = parent.response["ts"]
    [update] = await bot.stub.wait_for(
        "chat.update",
        lambda c: c.args.get("ts") == ts and "Full report in the thread" in blocks_text(c),
        timeout=timeout,
    )
    return update


@pytest.mark.parametrize(
    ("method", "after"),
    [
        ("chat.postMessage", 0),  # the progress message (the case)
        ("chat.postMessage", 1),  # the report
        ("chat.update", 0),  # the first progress update
        ("*", 0),  # whatever comes first
        ("*", 2),
        ("*", 4),
    ],
)
async def test_a_429_on_any_single_call_keeps_the_report_in_its_thread(
    make_bot: Any, tls_server: SmtpTestServer, method: str, after: int
) -> None:
    bot: BotHarness = await make_bot(outbox_interval=0.3)
    bot.stub.fail(method, status=429, retry_after=1, after=after)
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot, timeout=15)
    parent, _ = one_check_in_its_thread(bot)
    await final_state(bot, parent)
    limited = [c for c in bot.stub.calls if c.status == 429]
    assert len(limited) == 1
    # Honoured: nothing more on that lane until its Retry-After (1 s) had passed.
    lane = [
        c
        for c in bot.stub.calls
        if c.method == limited[0].method
        and (c.method != "chat.postMessage" or c.args["channel"] == limited[0].args["channel"])
    ]
    after_429 = [c for c in lane if c.at > limited[0].at]
    assert after_429 and after_429[0].at - limited[0].at >= 0.95
    await asyncio.sleep(0.5)
    assert await bot.store.pending_outbox() == [] and await bot.store.outbox_entry(1) is None


async def test_a_long_retry_after_on_the_progress_message_is_waited_out(
    make_bot: Any, tls_server: SmtpTestServer
) -> None:
    bot: BotHarness = await make_bot(outbox_interval=0.3)
    bot.stub.fail("chat.postMessage", status=429, retry_after=4)
    started = time.monotonic()
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot, timeout=20)
    assert time.monotonic() - started >= 4
    parent, _ = one_check_in_its_thread(bot)
    await final_state(bot, parent)
    assert await bot.store.outbox_entry(1) is None


async def test_an_outage_parks_the_check_and_delivers_it_in_order_in_its_thread(
    make_bot: Any, tls_server: SmtpTestServer
) -> None:
    bot: BotHarness = await make_bot(outbox_interval=0.3)
    # Slack answers 503 to every post for a while: the progress message and its second try
    # (each after the client's two retries) fail; nothing else is tried before the outbox.
    bot.stub.fail("chat.postMessage", status=503, times=6)
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    for _ in range(100):
        entry = await bot.store.outbox_entry(1)
        if entry is not None:
            break
        await asyncio.sleep(0.1)
    assert entry is not None, "the check was neither delivered nor parked"
    await wait_report(bot, timeout=15)  # the outbox, once Slack answers again
    parent, _ = one_check_in_its_thread(bot)
    assert "Full report in the thread" in blocks_text(parent)  # posted in its final state
    await asyncio.sleep(1.0)
    assert len([c for c in bot.stub.to("chat.postMessage") if is_report(c)]) == 1


async def test_a_report_waiting_on_slack_at_sigterm_is_delivered_in_its_thread_after(
    make_bot: Any, tls_server: SmtpTestServer
) -> None:
    bot: BotHarness = await make_bot(outbox_interval=0.3)
    bot.stub.fail("chat.postMessage", status=429, retry_after=30, after=1)  # the report
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    for _ in range(100):
        if [c for c in bot.stub.calls if c.status == 429]:
            break
        await asyncio.sleep(0.1)
    interrupted = await bot.restart(grace=0.5)
    assert interrupted == 1
    # The next process' outbox delivers the parked report in the check's thread (Slack's
    # 30 s were a one-off here: the stand-in's allowance is full again).
    await wait_report(bot, timeout=10)
    parent, _ = one_check_in_its_thread(bot)
    await final_state(bot, parent)
    posts = bot.stub.to("chat.postMessage")
    assert not [c for c in posts if "interrupted" in str(c.args.get("text"))]


async def test_progress_updates_coalesce_and_the_final_state_wins(
    make_bot: Any, tls_server: SmtpTestServer
) -> None:
    bot: BotHarness = await make_bot()
    bot.stub.fail("chat.update", status=429, retry_after=2)  # chat.update closed for 2 s
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot, timeout=15)
    parent, _ = one_check_in_its_thread(bot)
    final = await final_state(bot, parent)
    await asyncio.sleep(0.8)
    updates = bot.stub.to("chat.update", ok_only=False)
    assert updates[-1] is final  # nothing after the final state
    # While the lane was closed nothing was sent; after, the final state went at once.
    closed_from = updates[0].at
    assert not [c for c in updates[1:] if c.at < closed_from + 1.95]
    assert len(updates) <= 3


async def test_a_slow_store_never_holds_the_report_and_its_buttons_wait_for_the_row(
    make_bot: Any, tls_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.views.report import DETAILS_ACTION

    bot: BotHarness = await make_bot()
    save = bot.store.save_diagnosis

    async def slow_save(**kwargs: Any) -> Any:
        await asyncio.sleep(1.5)  # a database under load
        return await save(**kwargs)

    monkeypatch.setattr(bot.store, "save_diagnosis", slow_save)
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    [report] = await wait_report(bot, timeout=15)
    diagnosis_id = next(
        e["value"]
        for e in report.args["blocks"][-1]["elements"]
        if e["action_id"] == DETAILS_ACTION
    )
    assert await bot.store.get_diagnosis(diagnosis_id) is None  # the report came first
    await bot.sender.interaction(
        bot.sender.block_action(action_id=DETAILS_ACTION, value=diagnosis_id)
    )
    await bot.stub.wait_for("views.open", timeout=5)  # the details, not "no longer stored"
    assert not bot.stub.to("chat.postEphemeral")
