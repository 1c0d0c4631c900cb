"""Row 4: dead servers against the budget: a tarpit and a filtered (silent) port.

The tarpit accepts and never says a word (tests/servers.py's "tarpit"); the silent port drops
every SYN (a listener with a full accept queue, as tests/servers.py's Blackhole). Both hold
587 and 465 on their own loopback address. smtpcheck runs as a whole process with
`--timeout BUDGET`; the peer is swaks with `--timeout BUDGET` on the same port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time

from bench._core import BenchError, Peers, Row, Stat, child_env, ratio, tool

BUDGET = 5.0
GOAL = 1.05
TARPIT = "127.0.22.1"
SILENT = "127.0.22.2"


def run(*, repeat: int) -> list[Row]:
    peers = Peers.find()
    return asyncio.run(_measure(peers, repeat))


class _SilentPort:
    """SYNs to this port go unanswered (Linux drops them when the accept queue is full)."""

    def __init__(self, host: str, port: int) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(0)
        self.fillers = []
        for _ in range(2):  # backlog 0 still queues one connection; fill it
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect((host, port))
            except BlockingIOError:
                pass
            self.fillers.append(filler)
        time.sleep(0.2)

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()


async def _tarpit(host: str, port: int) -> asyncio.AbstractServer:
    sessions: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sessions.append(writer)  # keep it open, say nothing, read nothing

    return await asyncio.start_server(accept, host, port, reuse_address=True)


async def _process(command: list[str], limit: float) -> tuple[float, int, str]:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=child_env(),
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchError(f"{command[0]} did not finish in {limit} s") from None
    return time.perf_counter() - started, process.returncode or 0, out.decode(errors="replace")


async def _measure(peers: Peers, repeat: int) -> list[Row]:
    from diagnostics import CheckRequest, EngineConfig, diagnose

    tarpits = [await _tarpit(TARPIT, port) for port in (587, 465)]
    silent = [_SilentPort(SILENT, port) for port in (587, 465)]
    rows = []
    try:
        for kind, host in (("tarpit", TARPIT), ("silent port", SILENT)):
            ours_cmd = [
                tool("smtpcheck"),
                "check",
                f"{host}:587",
                "--allow-private",
                "--nameserver",
                peers.dns,
                "--timeout",
                str(BUDGET),
                "--json",
            ]
            swaks_cmd = [
                tool("swaks"),
                "--server",
                f"{host}:587",
                "--tls",
                "--quit-after",
                "AUTH",
                "--timeout",
                f"{BUDGET:g}",
            ]
            ours, peer, engine = [], [], []
            outcome = ""
            config = EngineConfig(
                _env_file=None, nameservers=(peers.dns,), allow_private=True, budget=BUDGET
            )
            for i in range(repeat):
                for side in (
                    ("ours", "peer", "engine") if i % 2 == 0 else ("peer", "engine", "ours")
                ):
                    if side == "ours":
                        elapsed, code, out = await _process(ours_cmd, BUDGET * 3 + 10)
                        if code not in (0, 1):
                            raise BenchError(f"smtpcheck on the {kind} exited {code}: {out[-300:]}")
                        report = json.loads(out)
                        outcome = ", ".join(
                            f"{p['port']}/{p['security']} {p['outcome']}" for p in report["probes"]
                        )
                        ours.append(elapsed)
                    elif side == "peer":
                        elapsed, code, out = await _process(swaks_cmd, BUDGET * 3 + 10)
                        if code == 0:
                            raise BenchError(f"swaks succeeded against the {kind}?")
                        peer.append(elapsed)
                    else:
                        started = time.perf_counter()
                        await diagnose(CheckRequest(target=f"{host}:587"), config)
                        engine.append(time.perf_counter() - started)
            ours_stat, peer_stat, engine_stat = Stat(ours), Stat(peer), Stat(engine)
            over = engine_stat.high / BUDGET
            rows.append(
                Row(
                    key="4" + ("a" if kind == "tarpit" else "b"),
                    what=f"dead server ({kind}), budget {BUDGET:g} s: diagnose() to verdict",
                    ours=engine_stat,
                    peer_name=f"swaks --timeout {BUDGET:g}",
                    peer=peer_stat,
                    ratio=ratio(engine_stat.median, peer_stat.median),
                    goal=f"<= budget + {round((GOAL - 1) * 100)} %",
                    met=over <= GOAL,
                    notes=[
                        f"{kind}: worst diagnose() {over:.3f}x the budget; the whole "
                        f"`smtpcheck check --timeout {BUDGET:g}` process {ours_stat.text()} "
                        f"(worst {ours_stat.high / BUDGET:.3f}x: start-up and exit come on top "
                        f"of the budget), {ratio(ours_stat.median, peer_stat.median):.2f}x "
                        f"swaks; probes: {outcome}",
                    ],
                    extra={"process": ours_stat.as_json(), "budget": BUDGET},
                )
            )
    finally:
        for server in tarpits:
            server.close()
        for port in silent:
            port.close()
    return rows


if __name__ == "__main__":
    sys.exit("run with: python -m bench dead")
