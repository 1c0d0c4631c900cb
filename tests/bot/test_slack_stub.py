"""The Slack stand-in enforces Slack's limits as Slack does, and fails on request on any call.

(The stand-in is the yardstick of every rate-limit test: if it were lenient, they would prove
nothing.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.slack_stub import SlackLimits, SlackStub

TOKEN = "xoxb-test-0000-token"
OTHER_WORKSPACE = "xoxb-other-1111-token"


@pytest.fixture
async def stub() -> AsyncIterator[SlackStub]:
    stub = SlackStub()
    await stub.start()
    yield stub
    await stub.stop()


async def call(
    stub: SlackStub, method: str, *, token: str = TOKEN, timeout: float = 5, **args: Any
) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {token}"}
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        async with session.post(stub.base_url + method, json=args, headers=headers) as response:
            body = await response.json(content_type=None) if await response.read() else None
            return response.status, dict(response.headers), body


async def test_post_message_is_one_per_second_per_channel_with_a_short_burst(
    stub: SlackStub,
) -> None:
    statuses = [(await call(stub, "chat.postMessage", channel="C1", text="x"))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]  # a short burst is allowed
    status, headers, body = await call(stub, "chat.postMessage", channel="C1", text="x")
    assert status == 429 and body == {"ok": False, "error": "ratelimited"}
    assert headers["Retry-After"] == "1"  # whole seconds, as Slack sends it
    # Another channel has its own allowance; another workspace too.
    assert (await call(stub, "chat.postMessage", channel="C2", text="x"))[0] == 200
    other = await call(stub, "chat.postMessage", channel="C1", text="x", token=OTHER_WORKSPACE)
    assert other[0] == 200
    await asyncio.sleep(1.05)
    assert (await call(stub, "chat.postMessage", channel="C1", text="x"))[0] == 200
    assert (await call(stub, "chat.postMessage", channel="C1", text="x"))[0] == 429
    limited = stub.to("chat.postMessage", ok_only=False)
    assert [c.status for c in limited].count(429) == 2


@pytest.mark.parametrize(("method", "burst"), [("chat.update", 5), ("views.open", 10)])
async def test_tiered_methods_are_limited_per_workspace(
    stub: SlackStub, method: str, burst: int
) -> None:
    args = {"channel": "C1", "ts": "1.2", "trigger_id": "t", "view": {}}
    statuses = [(await call(stub, method, **args))[0] for _ in range(burst + 1)]
    assert statuses == [200] * burst + [429]
    # Per workspace and method, not per channel: another channel is limited as well...
    assert (await call(stub, method, **{**args, "channel": "C2"}))[0] == 429
    # ...while another workspace, and another method, are not.
    assert (await call(stub, method, token=OTHER_WORKSPACE, **args))[0] == 200
    assert (await call(stub, "chat.postEphemeral", channel="C1", user="U1"))[0] == 200


async def test_a_faster_clock_scales_limits_and_retry_after() -> None:
    stub = SlackStub(limits=SlackLimits(speed=4.0))
    await stub.start()
    try:
        for _ in range(3):
            await call(stub, "chat.postMessage", channel="C1", text="x")
        status, headers, _ = await call(stub, "chat.postMessage", channel="C1", text="x")
        assert status == 429
        assert 0.1 < float(headers["Retry-After"]) <= 0.25
        await asyncio.sleep(float(headers["Retry-After"]) + 0.02)
        assert (await call(stub, "chat.postMessage", channel="C1", text="x"))[0] == 200
    finally:
        await stub.stop()


async def test_faults_on_any_method(stub: SlackStub) -> None:
    stub.fail("*", error="invalid_auth")
    assert (await call(stub, "views.publish", user_id="U1", view={}))[2]["error"] == "invalid_auth"
    stub.fail("*", status=503)
    assert (await call(stub, "chat.getPermalink", channel="C1", message_ts="1.2"))[0] == 503
    stub.fail("*", status=429, retry_after=7)
    status, headers, _ = await call(stub, "views.open", trigger_id="t", view={})
    assert status == 429 and headers["Retry-After"] == "7"
    stub.fail("*", hang=2)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await call(stub, "chat.update", channel="C1", ts="1.2", timeout=0.3)
    assert time.monotonic() - started < 1.0
    # A method's own faults come before the "*" ones; the rest go through.
    assert (await call(stub, "chat.update", channel="C1", ts="1.2"))[0] == 200
