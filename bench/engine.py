"""Row 2: `diagnose()` in-process against the floor, one bare aiosmtplib session.

The floor is what any client must do to learn that 587 STARTTLS works: connect, greeting,
EHLO, STARTTLS, the handshake (verified against the peers' CA), EHLO, QUIT. `diagnose()` does
that plus the 465 and mode-check probes in parallel, DNS, PTR, the chain analysis and the
findings. Both sides run warm in one event loop, interleaved.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import aiosmtplib

from bench._core import GOOD_ADDRESS, GOOD_NAME, BenchError, Peers, Row, Stat, ainterleave, ratio

GOAL = 1.5  # issue 16: per connection the diagnosis makes


def run(*, repeat: int) -> list[Row]:
    peers = Peers.find()
    return [asyncio.run(_measure(peers, repeat))]


class QuickAckSocket(socket.socket):
    """Acknowledges each read at once (TCP_QUICKACK), like the engine's probe sockets; kept
    here so that the floor is the same whichever engine version is measured."""

    __slots__ = ()

    def recv(self, *args: int) -> bytes:
        data = super().recv(*args)
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def recv_into(self, *args) -> int:  # type: ignore[no-untyped-def]
        count = super().recv_into(*args)
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return count


async def floor_session(
    context: ssl.SSLContext,
    *,
    host: str = GOOD_ADDRESS,
    server_name: str = GOOD_NAME,
    quit: bool = True,
    quickack: bool = True,
) -> None:
    """connect + greeting, EHLO, STARTTLS + handshake, EHLO (+ QUIT).

    `quickack`: the socket acknowledges reads at once, as the engine's probes do (without it,
    Postfix's TLS 1.3 tickets meet Linux's delayed ACK and most sessions wait ~40 ms).
    """
    smtp = aiosmtplib.SMTP(
        hostname=host, port=587, start_tls=False, tls_context=context, timeout=10
    )
    if quickack:
        sock = QuickAckSocket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, 587))
        except OSError:
            sock.close()
            raise
        smtp = aiosmtplib.SMTP(
            hostname=server_name, sock=sock, start_tls=False, tls_context=context, timeout=10
        )
    await smtp.connect()
    try:
        await smtp.ehlo()
        await smtp.starttls(server_hostname=server_name, tls_context=context)
        await smtp.ehlo()
        if quit:
            await smtp.quit()
    finally:
        smtp.close()


async def _measure(peers: Peers, repeat: int) -> Row:
    from diagnostics import CheckRequest, EngineConfig, diagnose

    config = EngineConfig(
        _env_file=None, nameservers=(peers.dns,), ca_bundle=peers.ca_bundle, allow_private=True
    )
    request = CheckRequest(target=f"{GOOD_NAME}:587")
    context = ssl.create_default_context(cafile=str(peers.ca_bundle))
    cpu: list[float] = []
    reports = []

    cold_started = time.perf_counter()
    first = await diagnose(request, config)
    cold = time.perf_counter() - cold_started
    if first.verdict != "pass":
        raise BenchError(f"diagnose() on the good listener: {first.verdict}")

    async def ours() -> float:
        cpu_started = time.process_time()
        started = time.perf_counter()
        report = await diagnose(request, config)
        elapsed = time.perf_counter() - started
        cpu.append(time.process_time() - cpu_started)
        reports.append(report)
        return elapsed

    async def floor() -> float:
        started = time.perf_counter()
        await floor_session(context)
        return time.perf_counter() - started

    async def plain() -> float:
        started = time.perf_counter()
        await floor_session(context, quickack=False)
        return time.perf_counter() - started

    samples = await ainterleave(
        {"ours": ours, "floor": floor, "plain": plain}, repeat=repeat, warmup=2
    )
    ours_stat, floor_stat = Stat(samples["ours"]), Stat(samples["floor"])
    plain_stat = Stat(samples["plain"])
    value = ratio(ours_stat.median, floor_stat.median)
    # The floor is one session; a diagnosis makes several connections (entered, alternatives).
    connections = len(reports[-1].probes)
    per_connection = value / connections if connections else value
    cpu = cpu[2:]
    stalls = sum(
        1
        for report in reports[2:]
        for probe in report.probes
        if any(probe.steps_ms.get(step, 0) > 35 for step in ("greeting", "ehlo_tls"))
    )
    return Row(
        key="2",
        what="engine: diagnose() in-process (Postfix 587)",
        ours=ours_stat,
        peer_name="aiosmtplib connect+STARTTLS+EHLO+QUIT",
        peer=floor_stat,
        ratio=value,
        goal=f"<= {GOAL}x floor per connection",
        met=per_connection <= GOAL,
        notes=[
            f"a diagnosis makes {connections} connections "
            f"({', '.join(f'{p.port}/{p.security}' for p in reports[-1].probes)}): "
            f"{per_connection:.2f}x the floor per connection",
            f"floor with a quick-ACK socket, as the probes use; plain aiosmtplib: "
            f"{plain_stat.text()} ({ratio(ours_stat.median, plain_stat.median):.2f}x)",
            f"diagnose() CPU per run {Stat(cpu).text()}; first (cold) call {cold * 1000:.0f} ms",
            f"probes with a >35 ms wait after TLS (Postfix's ticket write + delayed ACK): "
            f"{stalls} in {len(reports) - 2} diagnoses",
        ],
        extra={
            "cpu": Stat(cpu).as_json(),
            "cold_s": cold,
            "connections": connections,
            "per_connection": per_connection,
        },
    )
