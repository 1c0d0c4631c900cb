"""Slack faults: the Web API rate-limits, fails, refuses the token or hangs.

The real bot (aiohttp + Bolt + store) talks to the loopback stand-in (`tests.slack_stub`),
diagnosing a real loopback SMTP server. Whatever the Web API does, the bot must keep
acknowledging other users' slash commands within Slack's 3 s, and each report must be
delivered or parked in the outbox, from which it is retried.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from typing import Any

import pytest
from aiohttp import web

from tests.bot.support import MakeBot
from tests.servers import SmtpTestServer
from tests.slack_stub import BotHarness, Call, SlackStub

WEB_API_TIMEOUT = 1.0  # seconds per Web API call in these tests (production: 15)
MEASURED: list[str] = []
ERROR_BODIES = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}


class JsonErrorStub(SlackStub):
    """The stand-in, but 429/5xx answers carry Slack's JSON error body instead of none."""

    async def _handle(self, request: web.Request) -> web.Response:
        response = await super()._handle(request)
        if response.status in ERROR_BODIES and not response.text:
            body = {"ok": False, "error": ERROR_BODIES[response.status]}
            headers = {k: v for k, v in response.headers.items() if k == "Retry-After"}
            return web.json_response(body, status=response.status, headers=headers)
        return response


@pytest.fixture
def make_bot(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch) -> MakeBot:
    """The shared make_bot with a short Web API timeout, a fast outbox and no per-user limit;
    `json_errors=True` answers 429/5xx with Slack's JSON error bodies."""
    import bot.app

    monkeypatch.setattr(bot.app, "WEB_API_TIMEOUT", WEB_API_TIMEOUT)

    async def make(*, json_errors: bool = False, **settings: Any) -> BotHarness:
        options = {"outbox_interval": 0.5, "user_rate": "100/60", **settings}
        return await make_bot(stub=JsonErrorStub() if json_errors else None, **options)

    return make


def is_report(call: Call) -> bool:
    return bool(call.args.get("thread_ts")) and "report_rerun" in json.dumps(call.args)


def is_parent(call: Call) -> bool:
    return not call.args.get("thread_ts")


def posts(bot: BotHarness, *, status: int | None = None) -> list[Call]:
    return [
        c
        for c in bot.stub.calls
        if c.method == "chat.postMessage" and (status is None or c.status == status)
    ]


async def others_are_served(bot: BotHarness, *, users: int = 5) -> list[float]:
    """Slash commands from other users while the fault lasts: every ack within 3 s."""
    replies = await asyncio.gather(
        *(bot.sender.command("help", user=f"U0OTHER{i}") for i in range(users))
    )
    assert all(r.status == 200 for r in replies), [r.status for r in replies]
    assert all("smtpcheck" in r.text for r in replies)
    elapsed = [r.elapsed for r in replies]
    assert max(elapsed) < 3.0, elapsed
    return elapsed


async def outbox_sent(bot: BotHarness, outbox_id: int = 1) -> Any:
    """The outbox entry once the bot has marked it sent (the stub sees the call first)."""
    entry = None
    for _ in range(50):
        entry = await bot.store.outbox_entry(outbox_id)
        if entry is not None and entry.state == "sent":
            return entry
        await asyncio.sleep(0.1)
    raise AssertionError(f"outbox entry {outbox_id} not sent: {entry}")


async def run_check(bot: BotHarness, tls_server: SmtpTestServer, user: str = "U0ALICE") -> float:
    reply = await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls", user=user)
    assert reply.status == 200 and reply.elapsed < 3.0
    return reply.elapsed


# --------------------------------------------------------------------------- rate limits


@pytest.mark.slow
async def test_429_twice_then_success_honours_retry_after(make_bot, tls_server) -> None:
    bot = await make_bot()
    bot.stub.fail("chat.postMessage", status=429, retry_after=1, times=2, after=1)
    started = time.perf_counter()
    await run_check(bot, tls_server)
    acks = await others_are_served(bot)
    [report] = await bot.stub.wait_for("chat.postMessage", is_report, timeout=15)
    limited = posts(bot, status=429)
    assert len(limited) == 2
    # Each retry waited for Retry-After (1 s) after the 429 before it.
    tries = [*limited, report]
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert await bot.store.pending_outbox() == []
    MEASURED.append(
        f"429 x2: report after {time.perf_counter() - started:.2f} s, retry gaps"
        f" {', '.join(f'{g:.2f}' for g in gaps)} s; other users' acks max {max(acks) * 1000:.0f} ms"
    )


@pytest.mark.slow
async def test_429_on_every_try_is_waited_out_in_the_thread(make_bot, tls_server) -> None:
    """A 429 is an instruction to wait, however often it comes: the report is not parked
    (that was the old client's three retries), it arrives in its thread once Slack takes it."""
    bot = await make_bot(json_errors=True)
    bot.stub.fail("chat.postMessage", status=429, retry_after=0, times=6, after=1)
    await run_check(bot, tls_server)
    [report] = await bot.stub.wait_for("chat.postMessage", is_report, timeout=10)
    assert len(posts(bot, status=429)) == 6
    [parent] = [c for c in posts(bot, status=200) if is_parent(c)]
    assert report.args["thread_ts"] == parent.response["ts"]
    assert await bot.store.outbox_entry(1) is None


API_ERROR_BUG = (
    "BUG: bot/slack_io.py api_error() calls exc.response.get('error'), which raises "
    "AttributeError when the error response has no JSON body (slack_sdk then keeps the body "
    "as a str: empty 429/5xx answers from Slack's edge or a proxy once the client's retries "
    "run out). Runner.deliver's except branch then crashes, so the report is neither "
    "delivered nor parked in the outbox (the same crash hits ProgressBoard._update and the "
    "'could not post the progress message' path)"
)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=API_ERROR_BUG)
@pytest.mark.parametrize(("status", "times"), [(500, 3)])
async def test_bodyless_error_after_retries_still_parks_the_report(
    make_bot, tls_server, status: int, times: int
) -> None:
    bot = await make_bot()
    bot.stub.fail("chat.postMessage", status=status, retry_after=0, times=times, after=1)
    await run_check(bot, tls_server)
    await bot.stub.wait_for("chat.postMessage", is_report, timeout=2.5)


def test_api_error_names_a_bodyless_failure() -> None:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

    from bot.slack_io import api_error

    response = AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.invalid/api/chat.postMessage",
        req_args={},
        data="",
        headers={},
        status_code=503,
    )
    assert api_error(SlackApiError("failed", response)) == "503"


# --------------------------------------------------------------------------- server errors


@pytest.mark.slow
async def test_500_once_is_retried_by_the_client(make_bot, tls_server) -> None:
    bot = await make_bot()
    bot.stub.fail("chat.postMessage", status=500, times=1, after=1)
    await run_check(bot, tls_server)
    await bot.stub.wait_for("chat.postMessage", is_report, timeout=15)
    assert len(posts(bot, status=500)) == 1
    assert await bot.store.outbox_entry(1) is None  # delivered without the outbox


@pytest.mark.slow
async def test_500_until_retries_run_out_goes_through_the_outbox(make_bot, tls_server) -> None:
    bot = await make_bot(json_errors=True)
    bot.stub.fail("chat.postMessage", status=500, times=3, after=1)  # 1 try + 2 retries
    await run_check(bot, tls_server)
    acks = await others_are_served(bot)
    [report] = await bot.stub.wait_for("chat.postMessage", is_report, timeout=10)
    assert len(posts(bot, status=500)) == 3
    await outbox_sent(bot)
    assert report.args["thread_ts"]  # still answered in the user's thread
    MEASURED.append(
        f"500 x3: outbox then delivered; other users' acks max {max(acks) * 1000:.0f} ms"
    )


# --------------------------------------------------------------------------- invalid_auth


async def test_invalid_auth_parks_the_report_until_the_token_works(make_bot, tls_server) -> None:
    bot = await make_bot(outbox_interval=3600)  # retried by hand below, after the "fix"
    bot.stub.fail("chat.postMessage", error="invalid_auth", times=1, after=1)
    await run_check(bot, tls_server)
    for _ in range(100):
        entry = await bot.store.outbox_entry(1)
        if entry is not None:
            break
        await asyncio.sleep(0.05)
    assert entry is not None and entry.state == "pending"
    assert "report_rerun" in json.dumps(entry.payload)
    # invalid_auth is not retried blindly by the client: one refused call, nothing else.
    assert len([c for c in posts(bot) if (c.response or {}).get("error") == "invalid_auth"]) == 1
    assert await bot.server.deps.runner.flush_outbox() == 1
    await bot.stub.wait_for("chat.postMessage", is_report)
    await outbox_sent(bot)


async def test_invalid_auth_on_every_call_keeps_acking(make_bot, tls_server) -> None:
    """A revoked token: nothing can be posted, but Slack still gets its acks in time."""
    bot = await make_bot()
    bot.stub.fail("chat.postMessage", error="invalid_auth", times=50)
    bot.stub.fail("chat.update", error="invalid_auth", times=50)
    bot.stub.fail("chat.postEphemeral", error="invalid_auth", times=50)
    elapsed = [await run_check(bot, tls_server, user=f"U0USER{i}") for i in range(3)]
    elapsed += await others_are_served(bot)
    assert max(elapsed) < 3.0
    await asyncio.sleep(1.0)
    assert bot.stub.to("chat.postMessage") == []  # nothing got through...
    assert bot.server.deps.runner.active == 0  # ...and no job is stuck


# --------------------------------------------------------------------------- a hanging API


@pytest.mark.slow
async def test_hanging_report_post_goes_to_the_outbox_and_others_are_served(
    make_bot, tls_server
) -> None:
    bot = await make_bot()
    bot.stub.fail("chat.postMessage", hang=2, times=1, after=1)  # the report's post hangs
    started = time.perf_counter()
    await run_check(bot, tls_server)
    # The parent's final update and the report's post go out together: from the final
    # update on, the report's post is hanging.
    await bot.stub.wait_for("chat.update", lambda c: "checking" not in str(c.args.get("text")))
    acks = await others_are_served(bot, users=8)
    # A second user's whole check goes through while the first report hangs.
    await run_check(bot, tls_server, user="U0BOB")
    [bob_parent] = await bot.stub.wait_for(
        "chat.postMessage", lambda c: is_parent(c) and "<@U0BOB>" in json.dumps(c.args)
    )
    [bob] = await bot.stub.wait_for(
        "chat.postMessage",
        lambda c: is_report(c) and c.args["thread_ts"] == bob_parent.response["ts"],
        timeout=10,
    )
    assert bob.at - started < 5.0  # well before the hung call would have answered
    # Alice's report: parked when its post timed out, then sent by the outbox loop.
    entry = await outbox_sent(bot)
    assert "report_rerun" in json.dumps(entry.payload)
    delivered = time.perf_counter() - started
    assert delivered < WEB_API_TIMEOUT + 0.5 + 4.0
    # The stand-in answers the hung call late, as Slack may: the report can then arrive
    # twice (at-least-once delivery); counted for the report, not asserted.
    await asyncio.sleep(max(0.0, 2.0 - (time.perf_counter() - started)) + 0.3)
    alice_reports = [c for c in bot.stub.to("chat.postMessage") if is_report(c) and c is not bob]
    MEASURED.append(
        f"hang: others' acks median {statistics.median(acks) * 1000:.0f} ms, max"
        f" {max(acks) * 1000:.0f} ms; Bob's report {bob.at - started:.1f} s, Alice's parked"
        f" report sent by the outbox {delivered:.1f} s after her command; copies of Alice's"
        f" report at Slack: {len(alice_reports)}"
    )


async def test_hanging_first_post_still_delivers_or_parks_the_report(make_bot, tls_server) -> None:
    bot = await make_bot()
    bot.stub.fail("chat.postMessage", hang=2, times=1)  # the progress message hangs
    await run_check(bot, tls_server)
    acks = await others_are_served(bot)
    assert max(acks) < 3.0
    await assert_delivered_or_parked(bot, within=WEB_API_TIMEOUT + 1.5)


@pytest.mark.slow
async def test_failing_first_post_still_delivers_or_parks_the_report(make_bot, tls_server) -> None:
    bot = await make_bot(json_errors=True)  # Slack's JSON error bodies: api_error() copes
    bot.stub.fail("chat.postMessage", status=500, times=3)  # the progress message fails
    await run_check(bot, tls_server)
    # Three 500s are retried with back-off and jitter (measured 2.4-3.2 s to delivery alone):
    # the bound says "not lost", not how fast.
    await assert_delivered_or_parked(bot, within=8.0)


async def assert_delivered_or_parked(bot: BotHarness, *, within: float) -> None:
    """The report reached Slack or waits in the outbox within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        # A hung post is recorded late (Slack did get it): only a report counts.
        delivered = [c for c in bot.stub.to("chat.postMessage") if is_report(c)]
        parked = await bot.store.outbox_entry(1)
        if delivered or parked is not None:
            break
        await asyncio.sleep(0.2)
    assert delivered or parked is not None, "the check vanished"


# --------------------------------------------------------------------------- hostile input


async def test_superscript_port_gets_a_plain_answer(make_bot) -> None:
    bot = await make_bot()
    reply = await bot.sender.command("smtp.example.test ²")
    assert reply.status == 200, reply.status
    assert reply.json()["text"]
