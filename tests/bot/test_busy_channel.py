"""A help-desk channel on a busy morning, against the stand-in's Slack limits.

30 users run checks in one channel within 10 s (and 200 across 20 channels). Every report
lands in its own thread under its own progress message, after it, once; every progress message
ends in its final state; and each report's delay after its diagnosis finished is set beside
what Slack's limits force: the same checks through an ideal sender (no latency, perfect
knowledge of the allowance, reports first) on the same token bucket.

Slack's clock runs SPEED times faster here (limits SPEED x higher, Retry-After SPEED x
shorter) so that the test takes seconds; the delays x SPEED are Slack seconds.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from tests.bot.support import Check, burst, final_states, ideal_delays, match, settle
from tests.servers import SmtpTestServer
from tests.slack_stub import POST_PER_CHANNEL, BotHarness, SlackLimits

pytestmark = pytest.mark.slow

# What the bot may add to the limit's minimum, in test seconds: loopback latency, the event
# loop serving every diagnosis on two shared CPUs, the store write and rendering before a post.
OVERHEAD = 1.0


def compare(label: str, checks: list[Check], speed: float) -> tuple[float, float, float, float]:
    actual = [c.delay for c in checks]
    ideal = ideal_delays(checks, POST_PER_CHANNEL, speed)
    med, worst = statistics.median(actual), max(actual)
    ideal_med, ideal_worst = statistics.median(ideal), max(ideal)
    print(
        f"\n{label}: report delay after its diagnosis: median {med:.2f} s, worst {worst:.2f} s;"
        f" the limit's minimum: median {ideal_med:.2f} s, worst {ideal_worst:.2f} s (test"
        f" clock; x{speed:g} in Slack seconds: median {med * speed:.1f} vs {ideal_med * speed:.1f},"
        f" worst {worst * speed:.1f} vs {ideal_worst * speed:.1f})"
    )
    return med, worst, ideal_med, ideal_worst


def calls_summary(bot: BotHarness) -> str:
    limited = [c for c in bot.stub.calls if c.status == 429]
    updates = bot.stub.to("chat.update", ok_only=False)
    return (
        f"429s: {len(limited)} of {len(bot.stub.calls)} calls; chat.update calls:"
        f" {len(updates)} ({len([c for c in updates if c.status == 429])} answered 429)"
    )


@pytest.mark.parametrize(
    "users, channels, speed, max_concurrent, timeout, overhead",
    [(30, 1, 8.0, 60, 40, OVERHEAD), (200, 20, 10.0, 100, 50, 2 * OVERHEAD)],
    ids=["30-users-in-one-channel-within-10-s", "200-users-across-20-channels"],
)
async def test_a_burst_of_users_is_paced_not_stormed(
    make_bot: Any,
    tls_server: SmtpTestServer,
    users: int,
    channels: int,
    speed: float,
    max_concurrent: int,
    timeout: float,
    overhead: float,
) -> None:
    bot = await make_bot(
        limits=SlackLimits(speed=speed), user_rate="1000/60", max_concurrent=max_concurrent
    )
    await bot.sender.command("help")  # warm-up: Bolt's first auth.test
    target = f"{tls_server.host}:{tls_server.port} starttls"
    checks = await burst([bot.sender], target, users=users, channels=channels, within=10 / speed)
    await settle(bot.stub, checks, timeout=timeout)
    await match(bot.stub, bot.store, checks)
    final_states(bot.stub, checks)
    label = f"{users} users, {channels} channel{'s' if channels > 1 else ''}"
    med, worst, ideal_med, ideal_worst = compare(label, checks, speed)
    print(calls_summary(bot))
    assert worst <= ideal_worst + overhead
    assert med <= ideal_med + overhead
    # No update storm: about one update per check gets through (its final state); the
    # intermediate ones are skipped while chat.update is limited, never queued.
    assert len(bot.stub.to("chat.update", ok_only=False)) <= 3 * len(checks)
