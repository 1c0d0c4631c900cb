"""Row 7: a fresh `smtpcheck serve`: start to first ack, first command to first report.

The real console command (pyproject's entry point) in HTTP mode against the Slack stand-in
(tests/slack_stub.py) in this process, SQLite in a temporary directory, the Postfix peer
behind the command. 7a: from the process' start until a signed `/smtpcheck help` is first
acknowledged (polled every 20 ms); its peer is the same ack once the bot runs. 7b: the first
diagnosis command's ack-to-report time; its peer is a second command's, in the same process.
Each sample is a new process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time

from bench._core import GOOD_NAME, REPO, BenchError, Peers, Row, Stat, child_env
from bench.bot import SECRET, _is_report


def run(*, repeat: int) -> list[Row]:
    peers = Peers.find()
    return asyncio.run(_measure(peers, max(1, repeat)))


def entry_command() -> list[str]:
    """`smtpcheck` as pyproject names it now (the installed wrapper may predate a move)."""
    import sys
    import tomllib

    script = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = script["smtpcheck"].partition(":")
    code = f"import sys; from {module} import {function} as main; sys.exit(main())"
    return [sys.executable, "-c", code]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _measure(peers: Peers, repeat: int) -> list[Row]:
    import aiohttp

    from tests.slack_stub import UNLIMITED_FOR_UNRELATED_TESTS, SlackSender, SlackStub

    samples: dict[str, list[float]] = {"ack": [], "warm_ack": [], "report": [], "warm_report": []}
    # Slack's rate limits (one post per second per channel) are not what is measured here.
    stub = SlackStub(limits=UNLIMITED_FOR_UNRELATED_TESTS)
    base_url = await stub.start()
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True)
        ) as session:
            for round_ in range(repeat):
                await _one(peers, base_url, stub, session, SlackSender, samples, round_)
    finally:
        await stub.stop()
    ack, warm_ack = Stat(samples["ack"]), Stat(samples["warm_ack"])
    report, warm = Stat(samples["report"]), Stat(samples["warm_report"])
    return [
        Row.versus(
            ack,
            warm_ack,
            within=None,
            key="7a",
            what="cold start: `smtpcheck serve` started to first ack",
            peer_name="the same ack, bot running",
            goal="measured",
            notes=[
                f"{repeat} fresh processes (HTTP mode, SQLite, Slack stand-in); the validated "
                "knowledge base comes from the user's cache (written by an earlier run)"
            ],
        ),
        Row.versus(
            report,
            warm,
            within=None,
            key="7b",
            what="cold start: first command to its report",
            peer_name="a second command to its report",
            goal="measured",
            notes=[f"{GOOD_NAME}:587 starttls (Postfix), ack to the report's chat.postMessage"],
        ),
    ]


async def _one(peers, base_url, stub, session, sender_class, samples, round_: int) -> None:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="smtpcheck-bench-cold-") as folder:
        env = {k: v for k, v in child_env().items() if not k.startswith("SLACK_")} | {
            "SLACK_BOT_TOKEN": "xoxb-bench-0000-token",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_BASE_URL": base_url,
            "SMTPCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bot.db",
            "SMTPCHECK_NAMESERVERS": peers.dns,
            "SMTPCHECK_CA_BUNDLE": str(peers.ca_bundle),
            "SMTPCHECK_ALLOW_PRIVATE": "true",
            "SMTPCHECK_USER_RATE": "100000/60",
        }
        sender = sender_class(f"http://127.0.0.1:{port}/slack/events", SECRET, session)
        log = open(f"{folder}/serve.log", "wb")  # noqa: ASYNC230 (a file: a pipe could fill)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *entry_command(),
            "serve",
            "--port",
            str(port),
            env=env,
            cwd=folder,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        try:
            samples["ack"].append(await _first_ack(sender, started, process, f"{folder}/serve.log"))
            samples["warm_ack"].append(await _timed_ack(sender, "help", f"UCW{round_:04d}"))
            for key, user in (("report", "UCR"), ("warm_report", "UCS")):
                before = len([c for c in stub.to("chat.postMessage") if _is_report(c)])
                sent = time.monotonic()
                await _timed_ack(sender, f"{GOOD_NAME}:587 starttls", f"{user}{round_:04d}")
                calls = await stub.wait_for(
                    "chat.postMessage", _is_report, count=before + 1, timeout=60
                )
                samples[key].append(calls[before].at - sent)
        finally:
            if process.returncode is None:
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
            log.close()


async def _first_ack(
    sender, started: float, process: asyncio.subprocess.Process, log_path: str
) -> float:
    import aiohttp

    while time.monotonic() - started < 60:
        if process.returncode is not None:
            with open(log_path, "rb") as log:  # noqa: ASYNC230
                err = log.read()[-400:].decode(errors="replace")
            raise BenchError(f"smtpcheck serve exited {process.returncode}: {err}")
        try:
            reply = await sender.command("help", user="UCOLD0001")
        except (aiohttp.ClientError, OSError):
            await asyncio.sleep(0.02)
            continue
        if reply.status == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise BenchError("smtpcheck serve did not acknowledge within 60 s")


async def _timed_ack(sender, text: str, user: str) -> float:
    sent = time.monotonic()
    reply = await sender.command(text, user=user)
    if reply.status != 200:
        raise BenchError(f"the bot answered {reply.status} to {text!r}")
    return time.monotonic() - sent


if __name__ == "__main__":
    print(json.dumps([row.as_json() for row in run(repeat=3)], indent=1, default=str))
