"""Row 5: the bot under load: 50 and 200 concurrent signed slash commands over HTTP.

The bot runs in its own process (`bench._botproc`, default settings: 20 diagnoses at a time)
with a ticker on its event loop; Slack's Web API is tests/slack_stub.py's stand-in in this
process; every command diagnoses the Postfix peer (smtp.good.test:587 starttls). The peer
is the same burst of `/smtpcheck help` (signature check, Bolt, an ephemeral answer: the ack
path without a diagnosis). Each burst is sent by `bench._burst`, a process of its own that
opens every connection at once (as many Slack senders would); the floor is the same burst
answered by `bench._nullserver`, aiohttp doing nothing else, measured in the same round.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench._core import GOOD_NAME, REPO, BenchError, Peers, Row, Stat, child_env, ratio
from bench._helpers import Helper

BURSTS = (50, 200)
ACK_GOAL = 0.050
STALL_GOAL = 0.020
SECRET = "bench-signing-secret-0123456789abcdef"


def run(*, repeat: int) -> list[Row]:
    peers = Peers.find()
    return asyncio.run(_measure(peers, repeat))


def _is_report(call) -> bool:
    return bool(call.args.get("thread_ts")) and "report_rerun" in json.dumps(
        call.args.get("blocks", [])
    )


async def _measure(peers: Peers, repeat: int) -> list[Row]:
    import aiohttp

    from tests.slack_stub import UNLIMITED_FOR_UNRELATED_TESTS, SlackSender, SlackStub

    # Slack's rate limits (one post per second per channel) are not what is measured here.
    stub = SlackStub(limits=UNLIMITED_FOR_UNRELATED_TESTS)
    base_url = await stub.start()
    helper = Helper(
        "bench._botproc",
        "--api",
        base_url,
        "--secret",
        SECRET,
        "--nameserver",
        peers.dns,
        "--ca-bundle",
        str(peers.ca_bundle),
        "--lifetime",
        "1200",
        "--reuse-port",  # a second bot process may join it (see _two_processes)
    )
    floor = Helper("bench._nullserver", "--lifetime", "1200")
    rows: list[Row] = []
    try:
        await asyncio.to_thread(helper.__enter__)
        await asyncio.to_thread(floor.__enter__)
        url = f"http://127.0.0.1:{helper.info['port']}/slack/events"
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=True)
        ) as session:
            sender = SlackSender(url, SECRET, session)
            await sender.command("help")  # Bolt's first auth.test
            # The first diagnosis of a fresh process: imports, knowledge base, trust store.
            await asyncio.to_thread(helper.ask, "reset")
            await sender.command(f"{GOOD_NAME}:587 starttls", user="UWARM0001")
            await stub.wait_for("chat.postMessage", _is_report, count=1, timeout=60)
            cold = await asyncio.to_thread(helper.ask, "stats")
            for size in BURSTS:
                for round_ in range(max(1, repeat)):
                    burst = _Burst(helper, stub, sender, floor)
                    rows.append(await burst.measure(size, round_))
            rows[-1].notes.append(await _two_processes(helper, sender, peers))
            first = max(cold["worst"], default=0.0)
            rows[0].notes.append(
                f"first diagnosis after start: worst loop stall {first * 1000:.0f} ms "
                f"({cold['slowest_callbacks'][:1]})"
            )
            rows[0].extra["first_diagnosis_stalls"] = cold
    finally:
        await asyncio.to_thread(floor.__exit__)
        await asyncio.to_thread(helper.__exit__)
        await stub.stop()
    return rows


async def _two_processes(helper: Helper, sender, peers: Peers) -> str:
    """The help burst of the largest size to two bot processes sharing the port."""
    size = BURSTS[-1]
    second = Helper(
        "bench._botproc",
        *(helper.command[3:]),
        "--port",
        str(helper.info["port"]),
    )
    await asyncio.to_thread(second.__enter__)
    try:
        texts = [("help", f"UW{i:04d}") for i in range(20)]
        await send_burst(sender, sender.url, texts)  # both processes' first auth.test
        p99s = []
        for round_ in range(2):
            await asyncio.sleep(0.5)
            texts = [("help", f"U2{round_}{i:04d}") for i in range(size)]
            replies = await send_burst(sender, sender.url, texts)
            p99s.append(Stat([r["elapsed"] for r in replies]).quantile(0.99))
    finally:
        await asyncio.to_thread(second.__exit__)
    shown = ", ".join(f"{p * 1000:.0f} ms" for p in p99s)
    return (
        f"{size} help commands to two bot processes sharing the port (SO_REUSEPORT, the kernel "
        f"spreading the connections): p99 {shown}"
    )


def _whose(stats: dict) -> str:
    spent = stats.get("cpu_ms_until_last_ack") or {}
    return ", ".join(f"{whose} {ms:.0f} ms" for whose, ms in spent.items()) or "-"


def _per(stats: dict, size: int) -> str:
    return f"{stats.get('cpu', 0) / size * 1000:.1f} ms" if "cpu" in stats else "-"


async def send_burst(sender, url: str, texts: list[tuple[str, str]]) -> list[dict]:
    """TEXTS (command text, user) sent at once by `bench._burst`: status and elapsed each."""
    from tests.slack_stub import signature

    requests = []
    for text, user in texts:
        body = sender.command_body(text, user=user)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(SECRET, stamp, body),
        }
        requests.append({"body": body, "headers": headers})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._burst",
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env=child_env(),
    )
    out, _ = await process.communicate(json.dumps({"requests": requests}).encode())
    if process.returncode != 0:
        raise BenchError(f"bench._burst failed (exit {process.returncode})")
    replies = json.loads(out)["replies"]
    if any(r["status"] != 200 for r in replies):
        bad = [r["status"] for r in replies if r["status"] != 200][:3]
        raise BenchError(f"a burst to {url} was answered {bad}")
    return replies


class _Burst:
    """One round: the floor, the help burst and the diagnosis burst, one after the other."""

    def __init__(self, helper: Helper, stub, sender, floor: Helper) -> None:
        self.helper = helper
        self.stub = stub
        self.sender = sender
        self.floor = floor
        self.floor_url = f"http://127.0.0.1:{floor.info['port']}/slack/events"

    async def measure(self, size: int, round_: int) -> Row:
        tag = f"{size}{round_}"
        floor = Stat(
            [
                r["elapsed"]
                for r in await send_burst(
                    self.sender, self.floor_url, [("help", f"UF{tag}{i:04d}") for i in range(size)]
                )
            ]
        )
        # The peer: the same burst of help commands (no diagnosis).
        await asyncio.to_thread(self.helper.ask, "reset")
        help_replies = await send_burst(
            self.sender, self.sender.url, [("help", f"UH{tag}{i:04d}") for i in range(size)]
        )
        help_stalls = await asyncio.to_thread(self.helper.ask, "stats")
        await asyncio.sleep(1.0)

        stub = self.stub
        before = len([c for c in stub.to("chat.postMessage") if _is_report(c)])
        await asyncio.to_thread(self.helper.ask, "reset")
        await asyncio.to_thread(self.floor.ask, "reset")  # idle now: the machine's stalls
        started = time.monotonic()
        replies = await send_burst(
            self.sender,
            self.sender.url,
            [(f"{GOOD_NAME}:587 starttls", f"UD{tag}{i:04d}") for i in range(size)],
        )
        reports = await stub.wait_for(
            "chat.postMessage", _is_report, count=before + size, timeout=30 + size
        )
        stalls = await asyncio.to_thread(self.helper.ask, "stats")
        stalls["idle_process"] = await asyncio.to_thread(self.floor.ask, "stats")
        done = sorted(c.at - started for c in reports[before:])
        ack = Stat([r["elapsed"] for r in replies])
        peer = Stat([r["elapsed"] for r in help_replies])
        return _row(size, ack, peer, floor, Stat(done), stalls, help_stalls)


def _row(size, ack: Stat, peer: Stat, floor: Stat, final: Stat, stalls, help_stalls) -> Row:
    worst_stall = max(stalls["worst"], default=0.0)
    idle = stalls["idle_process"]
    busiest_cpu = max((cpu for _, cpu, _ in stalls["busiest_callbacks"]), default=0.0)
    gc_cpu = max((cpu for _, cpu, _ in stalls["gc"]["worst_cpu"]), default=0.0)
    p99 = ack.quantile(0.99)
    slowest = "; ".join(
        f"{t * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU) {name}"
        for t, cpu, name in stalls["slowest_callbacks"][:3]
    )
    busiest = "; ".join(
        f"{cpu * 1000:.0f} ms CPU ({t * 1000:.0f} ms) {name}"
        for t, cpu, name in stalls["busiest_callbacks"][:3]
    )
    return Row(
        key=f"5{'ab'[BURSTS.index(size)]}",
        what=f"bot: {size} concurrent /smtpcheck, time to ack (p50 [min–max])",
        ours=ack,
        peer_name=f"{size} concurrent /smtpcheck help",
        peer=peer,
        ratio=ratio(p99, peer.quantile(0.99)),
        goal="ack p99 < 50 ms, stall <= 20 ms",
        met=p99 < ACK_GOAL and worst_stall <= STALL_GOAL,
        notes=[
            f"{size} commands: ack p50 {ack.median * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {ack.high * 1000:.0f} ms (help: p99 {peer.quantile(0.99) * 1000:.0f} ms; "
            f"floor, aiohttp doing nothing: p99 {floor.quantile(0.99) * 1000:.0f} ms); "
            f"final report p50 {final.median:.2f} s, p99 {final.quantile(0.99):.2f} s, "
            f"max {final.high:.2f} s; loop stalls: worst {worst_stall * 1000:.0f} ms, "
            f"{stalls['late_over_20ms']} over 20 ms, {stalls['late_over_5ms']} over 5 ms "
            f"(help burst: worst {max(help_stalls['worst'], default=0) * 1000:.0f} ms)",
            f"stalls of an idle process (another loop, ticking alike) meanwhile: worst "
            f"{max(idle['worst'], default=0) * 1000:.0f} ms, {idle['late_over_20ms']} over "
            f"20 ms: what the machine's load alone does; the bot's worst callback by its "
            f"thread's CPU {busiest_cpu * 1000:.0f} ms, its worst garbage collection "
            f"{gc_cpu * 1000:.0f} ms of CPU ({stalls['gc']['full']} full collections)",
            f"slowest single callbacks (wall): {slowest}",
            f"busiest single callbacks (the loop thread's CPU): {busiest}",
            f"bot process CPU (all threads) per command: help {_per(help_stalls, size)}, "
            f"diagnosis and report {_per(stalls, size)}; a burst of {size} help commands is "
            f"{help_stalls.get('cpu', 0) * 1000:.0f} ms of the process' CPU; the loop's CPU "
            f"until the last ack, by whose work: {_whose(stalls)} (help burst: "
            f"{_whose(help_stalls)})",
        ],
        extra={
            "ack_p99": p99,
            "floor": floor.as_json(),
            "final_report": final.as_json(),
            "stalls": stalls,
            "help_stalls": help_stalls,
        },
    )
