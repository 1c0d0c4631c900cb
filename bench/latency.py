"""Row 3: a diagnosis over a slow network, in round trips, against the critical path.

`bench._netdelay` puts a delaying proxy in front of Postfix (587, 465) and of a DNS zone that
maps smtp.good.test to the proxy. The peer is the critical path measured through the same
proxy in the same run: one A lookup, then connect, greeting, EHLO, STARTTLS, the TLS 1.3
handshake, EHLO (no QUIT). In this proxy's model that is 6.5 round trips: DNS 1, connect and
greeting 1.5, EHLO 1, STARTTLS 1, handshake 1, EHLO 1.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from bench._core import GOOD_NAME, BenchError, Peers, Row, Stat, ainterleave
from bench._helpers import Helper
from bench.engine import floor_session

RTT_MS = 50.0
CRITICAL_RTTS = 6.5
GOAL = 1.2


def run(*, repeat: int) -> list[Row]:
    peers = Peers.find()
    with Helper("bench._netdelay", "--rtt-ms", str(RTT_MS), "--lifetime", "900") as world:
        return [asyncio.run(_measure(peers, world.info, repeat))]


async def _measure(peers: Peers, world: dict, repeat: int) -> Row:
    import dns.asyncresolver
    import dns.nameserver

    from diagnostics import CheckRequest, EngineConfig, diagnose

    rtt = RTT_MS / 1000
    config = EngineConfig(
        _env_file=None,
        nameservers=(world["nameserver"],),
        ca_bundle=peers.ca_bundle,
        allow_private=True,
    )
    request = CheckRequest(target=f"{GOOD_NAME}:587")
    context = ssl.create_default_context(cafile=str(peers.ca_bundle))
    host, _, port = world["nameserver"].rpartition(":")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port=int(port))]
    resolver.cache = None
    reports = []

    async def ours() -> float:
        started = time.perf_counter()
        report = await diagnose(request, config)
        reports.append(report)
        return time.perf_counter() - started

    async def critical_path() -> float:
        started = time.perf_counter()
        answer = await resolver.resolve(GOOD_NAME, "A")
        address = answer[0].address
        await floor_session(context, host=address, quit=False)
        return time.perf_counter() - started

    samples = await ainterleave({"ours": ours, "floor": critical_path}, repeat=repeat, warmup=1)
    report = reports[-1]
    if report.verdict != "pass":
        raise BenchError(f"diagnose() through the delaying proxy: {report.verdict}")
    ours_stat, floor_stat = Stat(samples["ours"]), Stat(samples["floor"])
    probes = ", ".join(f"{p.port}/{p.security} {p.elapsed_ms / RTT_MS:.1f}" for p in report.probes)
    return Row.versus(
        ours_stat,
        floor_stat,
        within=GOAL,
        key="3",
        what=f"slow network: diagnose() at {RTT_MS:.0f} ms RTT",
        peer_name=f"critical path ({CRITICAL_RTTS} RTT model)",
        goal=f"<= {GOAL}x critical path",
        notes=[
            f"diagnose() = {ours_stat.median / rtt:.1f} RTT, measured critical path = "
            f"{floor_stat.median / rtt:.1f} RTT (model {CRITICAL_RTTS}); probes in RTT: {probes};"
            f" timings {report.timings_ms}",
            "delay: asyncio proxies (tc netem is unavailable in this kernel), TCP and UDP DNS",
        ],
        extra={"rtt_ms": RTT_MS, "timings": dict(report.timings_ms)},
    )
