"""Helpers for driving the bot as Slack would: submitting the modal, waiting for the report,
bursts of checks in busy channels and what Slack's limits allow for them."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store._url import database_url
from bot.views import modal as m
from bot.views.report import RERUN_ACTION
from tests.servers import TEST_USER
from tests.slack_stub import TEAM_ID, BotHarness, Call, Limit, SlackSender, SlackStub


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


async def saved_diagnosis(bot: BotHarness, diagnosis_id: str, *, timeout: float = 10) -> Any:
    """The stored row of a diagnosis whose report is out: the runner posts a ready report
    without waiting for a slow store, so the row may follow the report by a moment."""
    deadline = time.monotonic() + timeout
    while (row := await bot.store.get_diagnosis(diagnosis_id)) is None:
        assert time.monotonic() < deadline, f"diagnosis {diagnosis_id} was never stored"
        await asyncio.sleep(0.05)
    return row


async def saved_for_user(
    store: Any, user_id: str, *, team_id: str = TEAM_ID, count: int = 1, timeout: float = 10
) -> list[Any]:
    """A user's stored diagnoses, once COUNT of them are there (each may follow its report
    by a moment: see saved_diagnosis)."""
    deadline = time.monotonic() + timeout
    while len(rows := await store.recent_for_user(team_id=team_id, user_id=user_id)) < count:
        assert time.monotonic() < deadline, f"{user_id}: {len(rows)} of {count} stored"
        await asyncio.sleep(0.05)
    return list(rows)


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


# --------------------------------------------------------------------------- busy channels


@dataclasses.dataclass
class Check:
    """One user's check in a burst: what they sent and what Slack got for it."""

    user: str
    channel: str
    sent: float = 0.0  # the slash command left "Slack" (epoch seconds)
    parent: Call | None = None
    report: Call | None = None
    diagnosis_end: float | None = None  # epoch seconds, from the stored report

    @property
    def delay(self) -> float:
        """Seconds from the diagnosis' end to its report reaching Slack."""
        assert self.report is not None and self.diagnosis_end is not None
        return self.report.wall - self.diagnosis_end


def is_parent_of(call: Call, user: str) -> bool:
    return not call.args.get("thread_ts") and f"<@{user}>" in json.dumps(call.args)


async def burst(
    senders: list[SlackSender], target: str, *, users: int, channels: int, within: float
) -> list[Check]:
    """USERS `/smtpcheck TARGET` spread evenly over WITHIN seconds, round-robin over CHANNELS
    and over SENDERS (one per replica); every ack within Slack's 3 s."""
    checks = [Check(user=f"U{i:04d}", channel=f"C{i % channels:03d}") for i in range(users)]

    async def one(i: int, check: Check) -> None:
        await asyncio.sleep(i * within / users)
        check.sent = time.time()
        sender = senders[i % len(senders)]
        reply = await sender.command(target, user=check.user, channel=check.channel)
        assert reply.status == 200 and reply.elapsed < 3.0, (reply.status, reply.elapsed)

    await asyncio.gather(*(one(i, c) for i, c in enumerate(checks)))
    return checks


def is_final_state(call: Call) -> bool:
    return "Full report in the thread" in json.dumps(call.args)


async def settle(stub: SlackStub, checks: list[Check], *, timeout: float) -> None:
    """Wait for every report and every progress message's final state (then a little more,
    for anything late: a duplicate, a stray update)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = [c for c in stub.to("chat.postMessage") if is_report(c)]
        finals = {c.args["ts"] for c in stub.to("chat.update") if is_final_state(c)}
        if len(reports) >= len(checks) and len(finals) >= len(checks):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)


async def match(stub: SlackStub, store: Any, checks: list[Check]) -> None:
    """Each check's progress message, report and diagnosis end: exactly one report per
    check, in its own thread, after its parent; nothing parked, nothing twice."""
    posts = stub.to("chat.postMessage")
    reports = [c for c in posts if is_report(c)]
    stray = [
        c for c in posts if not c.args.get("thread_ts") and "report_rerun" in json.dumps(c.args)
    ]
    assert not stray, f"{len(stray)} reports outside their thread"
    threads = [c.args["thread_ts"] for c in reports]
    assert len(threads) == len(set(threads)), "a report posted twice"
    for check in checks:
        parents = [c for c in posts if is_parent_of(c, check.user)]
        assert len(parents) == 1, f"{check.user}: {len(parents)} progress messages"
        check.parent = parents[0]
        assert check.parent.args["channel"] == check.channel
        assert check.parent.response is not None
        ts = check.parent.response["ts"]
        mine = [c for c in reports if c.args["thread_ts"] == ts]
        assert len(mine) == 1, f"{check.user}: {len(mine)} reports in its thread"
        check.report = mine[0]
        assert check.report.args["channel"] == check.channel
        assert check.parent.at < check.report.at, "a report came before its parent"
        [row] = await saved_for_user(store, check.user)
        assert row.thread_ts == ts
        started = dt.datetime.fromisoformat(row.report["started_at"]).timestamp()
        check.diagnosis_end = started + row.report["timings_ms"]["total"] / 1000
    assert len(reports) == len(checks)
    assert await store.pending_outbox() == [], "a message went to the outbox"


def final_states(stub: SlackStub, checks: list[Check]) -> None:
    """The last update of each progress message is its final state."""
    updates = stub.to("chat.update")
    for check in checks:
        assert check.parent is not None and check.parent.response is not None
        mine = [c for c in updates if c.args["ts"] == check.parent.response["ts"]]
        assert mine, f"{check.user}: its progress message never got its final state"
        assert is_final_state(mine[-1]), f"{check.user}: a progress update came after the final"


def ideal_delays(checks: list[Check], limit: Limit, speed: float) -> list[float]:
    """Each report's delay after its diagnosis through an ideal sender on the same token bucket
    per channel: zero latency, a post the moment a token is free, reports before new progress
    messages, and each report after its own progress message. What the limit forces."""
    rate, capacity = limit.per_minute / 60 * speed, limit.burst
    delays = []
    for channel in sorted({c.channel for c in checks}):
        mine = [c for c in checks if c.channel == channel]
        # (release time, kind, index): kind 0 = a report, 1 = a progress message.
        waiting = [(c.sent, 1, i) for i, c in enumerate(mine)]
        t, tokens = min(c.sent for c in mine), float(capacity)
        while waiting:
            ready = [w for w in waiting if w[0] <= t]
            if not ready:
                upcoming = min(w[0] for w in waiting)
                tokens, t = min(capacity, tokens + (upcoming - t) * rate), upcoming
                continue
            if tokens < 1:
                tokens, t = 1.0, t + (1 - tokens) / rate
                continue
            item = min(ready, key=lambda w: (w[1], w[0]))
            waiting.remove(item)
            tokens -= 1
            _, kind, i = item
            end = mine[i].diagnosis_end
            assert end is not None
            if kind == 1:
                waiting.append((max(end, t), 0, i))
            else:
                delays.append(t - end)
    return delays


# --------------------------------------------------------------------------- PostgreSQL


def postgres_url() -> str:
    """The test server's URL, from the environment or the file scripts/peers.sh writes."""
    url = os.environ.get("SMTPCHECK_TEST_POSTGRES_URL")
    if not url:
        env_file = Path(os.environ.get("SMTPCHECK_PEERS_DIR", "/tmp/smtpcheck-peers")) / "env"
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                name, _, value = line.removeprefix("export ").partition("=")
                if name == "SMTPCHECK_TEST_POSTGRES_URL":
                    url = value.strip()
    if not url:
        pytest.fail(
            "postgres tests selected but SMTPCHECK_TEST_POSTGRES_URL is not set: "
            'run `scripts/peers.sh start` and `eval "$(scripts/peers.sh env)"` first'
        )
    return url


async def empty_database(url: str) -> None:
    """Drop every table, so each test starts from an empty database."""
    engine = create_async_engine(database_url(url))
    try:
        async with engine.begin() as conn:

            def drop(sync_conn: Any) -> None:
                existing = sa.MetaData()
                existing.reflect(sync_conn)
                existing.drop_all(sync_conn)

            await conn.run_sync(drop)
    finally:
        await engine.dispose()
