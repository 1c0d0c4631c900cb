"""`smtpcheck serve` as a process: configuration errors, health, SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.server import serve
from tests.slack_stub import (
    BOT_TOKEN,
    SIGNING_SECRET,
    BotHarness,
    SlackSender,
    SlackStub,
    engine_config_for_tests,
)

CLEAN = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SMTPCHECK_USER_RATE")


@pytest.fixture
def process_logging() -> Iterator[None]:
    """serve() configures the process' root logger; put it back for the tests after this one."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)


@pytest.mark.usefixtures("process_logging")
def test_configuration_errors_exit_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in CLEAN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMTPCHECK_USER_RATE", "fast")
    assert serve(port=0, socket_mode=True) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "SLACK_BOT_TOKEN" in err and "SLACK_APP_TOKEN" in err and "SMTPCHECK_USER_RATE" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
async def test_serve_http_health_and_sigterm(tmp_path: Path) -> None:
    stub = SlackStub()
    base_url = await stub.start()
    port, ops_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTPCHECK_"))} | {
        "SMTPCHECK_OPS_PORT": str(ops_port),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": base_url,
        "SMTPCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        "SMTPCHECK_LOG_FORMAT": "json",
    }
    code = (
        f"import sys; from bot.server import serve; sys.exit(serve(port={port}, socket_mode=False))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}"
            # A cold start imports SQLAlchemy, Alembic and aiohttp (seconds on a busy machine):
            # wait for health by a deadline, not a count of tries.
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with session.get(url + "/health") as response:
                        if response.status == 200:
                            health = await response.json()
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "the bot never became healthy"
                assert process.returncode is None, "the bot exited before it became healthy"
                await asyncio.sleep(0.1)
            assert health == {"status": "ok"}  # the public port says no more
            sender = SlackSender(url + "/slack/events", SIGNING_SECRET, session)
            reply = await sender.command("help")
            assert reply.status == 200 and "smtpcheck" in reply.text
            async with session.get(url + "/metrics") as response:
                assert response.status == 404  # metrics: the operator's port only
            ops = f"http://127.0.0.1:{ops_port}"
            async with session.get(ops + "/metrics") as response:
                assert "smtpcheck_diagnoses" in await response.text()
            async with session.get(ops + "/health") as response:
                assert (await response.json())["ready"] is True
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        _, stderr = await process.communicate()
        assert BOT_TOKEN.encode() not in stderr and SIGNING_SECRET.encode() not in stderr
        assert b"frozen out of the garbage collector" in stderr  # settle_heap ran at start
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await stub.stop()


@pytest.mark.slow
def test_settle_heap_freezes_what_lives_and_collects_the_garbage_first() -> None:
    """In a process of its own (freezing is for the whole process): a cycle nobody holds is
    collected, not frozen for ever; what is alive moves out of the collector's reach."""
    code = """
import gc, weakref
from bot.server import settle_heap
class Node: pass
garbage = Node(); garbage.me = garbage; gone = weakref.ref(garbage); del garbage
alive = Node(); alive.me = alive
gc.disable()  # only settle_heap collects
frozen = settle_heap()
assert gone() is None, "the unreachable cycle was frozen instead of collected"
assert frozen == gc.get_freeze_count() > 1000, frozen
assert not any(o is alive for o in gc.get_objects()), "a live object is still tracked"
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


async def test_a_burst_of_connections_waits_in_the_backlog_while_the_loop_is_busy(
    bot: BotHarness,
) -> None:
    """300 connections at once while the loop runs something else (this test, not yielding):
    the kernel completes them all and keeps them for the bot to accept; none is dropped to
    come back after TCP's 1 s retransmission (aiohttp's default backlog of 128 kept 129)."""
    port = int(bot.url.rsplit(":", 1)[1])
    sockets = []
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sockets.append(sock)
        pending = set(sockets)
        for _ in range(50):  # the loop stays blocked: only the kernel answers
            _, writable, _ = select.select([], list(pending), [], 0.1)
            pending -= set(writable)
            if not pending:
                break
        assert not pending, f"{len(pending)} of 300 connections were not completed"
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for s in sockets)
    finally:
        for sock in sockets:
            sock.close()
    assert (await bot.sender.command("help")).status == 200  # and it answers after all that


async def test_two_bots_share_one_port_and_either_answers(tmp_path: Path, ca_bundle: Path) -> None:
    """Replicas on one machine (SO_REUSEPORT): a second bot listens on the first one's port,
    and once the first has stopped, the port is still answered (by the second)."""
    config = engine_config_for_tests(ca_bundle)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = await BotHarness(tmp_path / "a", engine_config=config).start(reuse_port=True)
    second = BotHarness(tmp_path / "b", engine_config=config)
    second.stub = first.stub
    try:
        port = int(first.url.rsplit(":", 1)[1])
        await second.start(port=port, reuse_port=True)
        assert second.url == first.url
        assert (await first.sender.command("help")).status == 200
        await first.server.stop(grace=1.0)
        first.server = None
        async with aiohttp.ClientSession() as session:
            sender = SlackSender(f"{second.url}/slack/events", SIGNING_SECRET, session)
            reply = await sender.command("help")
        assert reply.status == 200 and "smtpcheck" in reply.text
    finally:
        await second.stop()
        await first.stop()
