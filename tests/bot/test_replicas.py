"""Two `smtpcheck serve` processes sharing PostgreSQL take one burst of checks, each command
reaching one of them (as a load balancer spreads Slack's requests): every report once, in its
own thread, after its progress message; nothing parked; the same as one process gives.

Needs the peers' PostgreSQL: `scripts/peers.sh start`, `eval "$(scripts/peers.sh env)"`,
`pytest -m postgres tests/bot/test_replicas.py`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.store import Store
from tests.bot.support import (
    burst,
    empty_database,
    final_states,
    ideal_delays,
    match,
    postgres_url,
    settle,
)
from tests.servers import SmtpTestServer
from tests.slack_stub import (
    BOT_TOKEN,
    POST_PER_CHANNEL,
    SIGNING_SECRET,
    SlackLimits,
    SlackSender,
    SlackStub,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SPEED = 8.0
OVERHEAD = 1.0  # test seconds the bot may add to the limit's minimum (see test_busy_channel)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    """One `smtpcheck serve` process."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--port", str(self.port),
            env=self.env, cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        for _ in range(150):
            try:
                async with session.get(self.url + "/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"replica on port {self.port} never became healthy")

    async def stop(self) -> str:
        if self.process is None:
            return ""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")


@pytest.fixture
async def stub() -> AsyncIterator[SlackStub]:
    async with SlackStub(limits=SlackLimits(speed=SPEED)) as stub:
        yield stub


async def test_two_replicas_take_one_burst(
    stub: SlackStub, tls_server: SmtpTestServer, ca_bundle: Path, tmp_path: Path
) -> None:
    url = postgres_url()
    await empty_database(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTPCHECK_"))}
    env |= {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": stub.base_url,
        "SMTPCHECK_DATABASE_URL": url,
        "SMTPCHECK_ALLOW_PRIVATE": "true",
        "SMTPCHECK_ALLOW_TARGETS": "127.0.0.0/8",
        "SMTPCHECK_CA_BUNDLE": str(ca_bundle),
        "SMTPCHECK_NAMESERVERS": "127.0.0.1:9",
        "SMTPCHECK_BUDGET": "6",
        "SMTPCHECK_USER_RATE": "1000/60",
        "SMTPCHECK_MAX_CONCURRENT": "60",
        "SMTPCHECK_PROGRESS_INTERVAL": "0.2",
        "SMTPCHECK_OUTBOX_INTERVAL": "0.5",
        "SMTPCHECK_LOG_FORMAT": "json",
    }
    replicas = [Replica(env, tmp_path), Replica(env, tmp_path)]
    store = None
    logs: list[str] = []
    async with aiohttp.ClientSession() as session:
        try:
            for replica in replicas:  # one after the other: the first creates the schema
                await replica.start(session)
            senders = [
                SlackSender(r.url + "/slack/events", SIGNING_SECRET, session) for r in replicas
            ]
            for sender in senders:
                await sender.command("help")  # warm-up: Bolt's first auth.test
            target = f"{tls_server.host}:{tls_server.port} starttls"
            checks = await burst(senders, target, users=30, channels=1, within=10 / SPEED)
            await settle(stub, checks, timeout=40)
            store = await Store.open(url, create=False)
            await match(stub, store, checks)
            final_states(stub, checks)
            actual = [c.delay for c in checks]
            ideal = ideal_delays(checks, POST_PER_CHANNEL, SPEED)
            print(
                f"\ntwo replicas, 30 users, 1 channel: report delay median"
                f" {statistics.median(actual):.2f} s, worst {max(actual):.2f} s; the limit's"
                f" minimum median {statistics.median(ideal):.2f} s, worst {max(ideal):.2f} s"
                f" (x{SPEED:g} = Slack seconds)"
            )
            # Two processes share the channel's allowance as one would: each learns Slack's
            # waits from its own 429s, so a little more than one process' overhead.
            assert max(actual) <= max(ideal) + 2 * OVERHEAD
            assert statistics.median(actual) <= statistics.median(ideal) + 2 * OVERHEAD
        finally:
            for replica in replicas:
                logs.append(await replica.stop())
            if store is not None:
                await store.close()
    for log in logs:
        assert BOT_TOKEN not in log and "Traceback" not in log, log[-2000:]
