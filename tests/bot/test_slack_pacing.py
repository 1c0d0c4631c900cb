"""The gate honours Retry-After: it waits, keeps order and urgency, and never gives up on a
rate limit that Slack will lift; intermediate progress updates are skipped, not queued."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from bot.slack_pacing import (
    MAX_LIKES,
    PacedWebClient,
    Priority,
    RateLimited,
    RateLimitGate,
    RateLimitWaitTooLong,
    retry_after,
    slack_priority,
)
from tests.slack_stub import SlackLimits, SlackStub

TOKEN = "xoxb-test-0000-token"
SPEED = 4.0  # Slack's clock, 4x: 4 messages a second per channel


@pytest.fixture
async def stub() -> AsyncIterator[SlackStub]:
    async with SlackStub(limits=SlackLimits(speed=SPEED)) as stub:
        yield stub


def client_for(stub: SlackStub, gate: RateLimitGate | None = None) -> PacedWebClient:
    return PacedWebClient(token=TOKEN, base_url=stub.base_url, timeout=5, gate=gate)


async def test_a_burst_in_one_channel_all_arrives_in_order_and_nothing_fails(
    stub: SlackStub,
) -> None:
    client = client_for(stub)
    started = time.monotonic()

    async def post(i: int) -> None:
        await asyncio.sleep(i * 0.001)  # arrival order
        await client.chat_postMessage(channel="C1", text=f"m{i}")

    await asyncio.gather(*(post(i) for i in range(12)))
    elapsed = time.monotonic() - started
    ok = [c for c in stub.to("chat.postMessage")]
    assert sorted(c.args["text"] for c in ok) == sorted(f"m{i}" for i in range(12))
    # The limit allows 3 at once, then 4 a second: the other 9 need 9/4 s at least.
    minimum = (12 - 3) / SPEED
    assert elapsed >= minimum * 0.9
    assert elapsed < minimum + 3.0, f"{elapsed:.2f} s for what the limit allows in {minimum} s"
    # Once queued, they went in arrival order.
    queued = [c.args["text"] for c in ok][3:]
    assert queued == sorted(queued, key=lambda t: int(t[1:])), queued
    # The first 9 were on their way together (9 429s); after that the gate paces itself by
    # Slack's waits instead of provoking a 429 before each message (that would be 9 more; a
    # loaded machine's late wake-ups cost a few, seen up to 7).
    assert client.gate.limited < 9 + 9, client.gate.limited


async def test_retry_after_is_honoured_not_retried_early(stub: SlackStub) -> None:
    client = client_for(stub)
    stub.fail("chat.postMessage", status=429, retry_after=0.5, times=2)
    started = time.monotonic()
    await client.chat_postMessage(channel="C1", text="x")
    assert time.monotonic() - started >= 2 * 0.5 * 0.95
    attempts = stub.to("chat.postMessage", ok_only=False)
    assert [c.status for c in attempts] == [429, 429, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.47 for gap in gaps), gaps


async def test_final_messages_go_before_new_ones_queued_earlier(stub: SlackStub) -> None:
    client = client_for(stub)
    stub.fail("chat.postMessage", status=429, retry_after=0.3)
    first = asyncio.ensure_future(client.chat_postMessage(channel="C1", text="first"))
    await asyncio.sleep(0.05)  # the lane is now closed for 0.3 s
    news = []
    for i in range(3):
        news.append(asyncio.ensure_future(client.chat_postMessage(channel="C1", text=f"new{i}")))
        await asyncio.sleep(0.01)
    with slack_priority(Priority.FINAL):
        report = asyncio.ensure_future(client.chat_postMessage(channel="C1", text="report"))
    await asyncio.gather(first, report, *news)
    order = [c.args["text"] for c in stub.to("chat.postMessage")]
    assert order.index("report") < order.index("new0"), order
    assert order[order.index("new0") :] == ["new0", "new1", "new2"]


async def test_progress_updates_are_skipped_while_limited_not_queued(stub: SlackStub) -> None:
    client = client_for(stub)
    stub.fail("chat.update", status=429, retry_after=0.4)
    with pytest.raises(RateLimited) as caught, slack_priority(Priority.PROGRESS):
        await client.chat_update(channel="C1", ts="1.2", text="step 1")
    assert caught.value.retry_at > time.monotonic()
    sent = len(stub.calls)
    with pytest.raises(RateLimited), slack_priority(Priority.PROGRESS):
        await client.chat_update(channel="C1", ts="1.2", text="step 2")
    assert len(stub.calls) == sent  # not even sent: the lane is closed
    with slack_priority(Priority.FINAL):  # the final state waits its turn and goes through
        await client.chat_update(channel="C1", ts="1.2", text="done")
    assert stub.to("chat.update")[-1].args["text"] == "done"


async def test_lanes_are_per_channel_for_posts_and_per_method_otherwise(stub: SlackStub) -> None:
    client = client_for(stub)
    stub.fail("chat.postMessage", status=429, retry_after=5)
    blocked = asyncio.ensure_future(client.chat_postMessage(channel="C1", text="waits"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await client.chat_postMessage(channel="C2", text="other channel")
    await client.chat_update(channel="C1", ts="1.2", text="other method")
    assert time.monotonic() - started < 1.0
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked


async def test_waiting_longer_than_the_patience_is_a_failure(stub: SlackStub) -> None:
    client = client_for(stub, RateLimitGate(patience=0.5))
    stub.fail("chat.postMessage", status=429, retry_after=3)
    with pytest.raises(RateLimitWaitTooLong):
        await client.chat_postMessage(channel="C1", text="x")


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": ["0.25"]}, 0.25),
        ({}, 1.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1.0),
        ({"Retry-After": "-5"}, 1.0),
        ({"Retry-After": "nan"}, 1.0),
        ({"Retry-After": "999999"}, 300.0),
    ],
)
def test_retry_after_header(headers: dict, seconds: float) -> None:
    assert retry_after(headers) == seconds


async def test_a_client_like_another_is_kept_per_token_and_workspace(stub: SlackStub) -> None:
    """Every Slack request asks for its workspace's client: the same one comes back (with
    the shared gate), another token or workspace gets its own, and the oldest are let go."""
    base = client_for(stub)
    first = base.like(token="xoxb-one", team_id="T1")
    assert base.like(token="xoxb-one", team_id="T1") is first
    assert first.token == "xoxb-one" and first.gate is base.gate
    other = base.like(token="xoxb-two", team_id="T1")
    assert other is not first and other.token == "xoxb-two"
    assert base.like(token="xoxb-one", team_id="T2") is not first
    assert (await first.auth_test())["ok"]  # a working client, not a placeholder
    for n in range(MAX_LIKES):
        base.like(token=f"xoxb-{n}", team_id="T9")
    assert base.like(token="xoxb-one", team_id="T1") is not first  # evicted long ago
