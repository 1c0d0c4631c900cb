"""The bot's HTTP endpoint under abuse (issue 12, item 7).

* A body trickled at 1 byte/s is cut off after the body-read timeout (408), and the
  connection is closed: it cannot hold a connection (and a handler) for long.
* A malformed X-Slack-Request-Timestamp (`abc`, `1.5`, ...) is an unauthenticated request:
  401 and one log line, never a 500 with a traceback.
* /metrics and the detailed /health live on the operator's port (SMTPCHECK_OPS_PORT), not
  on the listener Slack (and anyone else) reaches; the public /health says ok or not and
  nothing else, and no health text names a store error.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.faults._support import all_logs
from tests.slack_stub import SIGNING_SECRET, signature

MEASURED: list[str] = []


async def _trickle(host: str, port: int, *, seconds: float) -> tuple[float, bytes]:
    """POST a 200-byte body one byte per second; (seconds until the server answered or
    closed, what it answered)."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        "POST /slack/events HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 200\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    started = time.monotonic()
    answer = b""

    async def drip() -> None:
        for _ in range(200):
            await asyncio.sleep(1.0)
            writer.write(b"a")
            await writer.drain()

    dripping = asyncio.create_task(drip())
    try:
        answer = await asyncio.wait_for(reader.read(4096), seconds)
    except TimeoutError:
        pass
    finally:
        dripping.cancel()
        writer.close()
    return time.monotonic() - started, answer


async def test_a_trickled_body_does_not_hold_the_connection(make_bot, monkeypatch) -> None:
    import bot.server

    monkeypatch.setattr(bot.server, "BODY_READ_TIMEOUT", 2.0)
    harness = await make_bot()
    port = int(harness.url.rsplit(":", 1)[1])
    with all_logs() as logs:
        held, answer = await _trickle("127.0.0.1", port, seconds=15.0)
    MEASURED.append(
        f"http     trickled body (1 byte/s) answered after {held:.1f} s: {answer[:12]!r}"
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert held < 2.0 + 3.0  # the timeout, plus slack for a loaded machine
    assert "Traceback" not in logs.text


@pytest.mark.parametrize(
    "stamp",
    [
        *("abc", "1.5", "", "1e9", "9" * 400),
        " 1700000000",
        "١٧٠٠٠٠٠٠٠٠",
        "-1",
    ],
)
async def test_a_malformed_timestamp_is_401_with_one_log_line(make_bot, stamp: str) -> None:
    harness = await make_bot()
    body = harness.sender.command_body("help")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature(SIGNING_SECRET, stamp, body),
    }
    with all_logs() as logs:
        async with aiohttp.ClientSession() as session:
            async with session.post(harness.url + "/slack/events", data=body, headers=headers) as r:
                status = r.status
                text = await r.text()
    assert status == 401, (status, text)
    assert "Traceback" not in logs.text and "Traceback" not in text
    lines = [line for line in logs.text.splitlines() if "timestamp" in line.lower()]
    assert len(lines) == 1, logs.text[-2000:]
    assert not harness.stub.calls  # nothing happened


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            return response.status, await response.text()


async def test_metrics_and_health_details_are_on_the_ops_port_only(make_bot) -> None:
    harness = await make_bot(ops_port=0)
    server: Any = harness.server
    assert server.ops_port and server.ops_port != int(harness.url.rsplit(":", 1)[1])
    ops = f"http://127.0.0.1:{server.ops_port}"
    # The listener Slack reaches: no metrics; health says ok and nothing else.
    status, text = await _get(harness.url + "/metrics")
    assert status == 404, text
    status, text = await _get(harness.url + "/health")
    assert status == 200 and text.strip() == '{"status": "ok"}', text
    # The operator's port: both, in full.
    status, text = await _get(ops + "/metrics")
    assert status == 200 and "smtpcheck_" in text
    status, text = await _get(ops + "/health")
    assert status == 200 and '"ready": true' in text
    status, text = await _get(ops + "/health?live=1")
    assert status == 200


async def test_health_reveals_no_internals_when_the_store_fails(make_bot) -> None:
    harness = await make_bot(ops_port=0)
    server: Any = harness.server
    secret_path = "/var/lib/smtpcheck/secret-internal-host.db"

    async def failing() -> None:
        raise OSError(f"unable to open database file {secret_path} at 10.9.8.7:5432")

    server.health.add_check("store", failing)
    with all_logs() as logs:
        public = await _get(harness.url + "/health")
        operator = await _get(f"http://127.0.0.1:{server.ops_port}/health")
    assert public[0] == 503 and public[1].strip() == '{"status": "unavailable"}', public
    assert operator[0] == 503 and '"store": "failing"' in operator[1], operator
    for _status, text in (public, operator):
        assert secret_path not in text and "10.9.8.7" not in text and "OSError" not in text
    assert secret_path in logs.text  # the operator's log says why
