"""What every benchmark row shares: samples and their summary, interleaving, peers, the table."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PEERS_DIR = Path(os.environ.get("SMTPCHECK_PEERS_DIR", "/tmp/smtpcheck-peers"))
GOOD_NAME = "smtp.good.test"  # Knot maps it to the Postfix "good" listeners
GOOD_ADDRESS = "127.0.20.1"
KNOT = "127.0.0.1:5300"


class BenchError(Exception):
    """A row could not be measured (a peer is down, a result was wrong); said in one line."""


# --------------------------------------------------------------------------- samples


@dataclasses.dataclass
class Stat:
    """Samples of one quantity (seconds, bytes, ...): median and spread."""

    samples: list[float]
    unit: str = "s"

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def low(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def high(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile (p99 of 50 samples is the largest but none)."""
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
        return ordered[rank - 1]

    def text(self, *, spread: bool = True) -> str:
        if not self.samples:
            return "-"
        middle = fmt(self.median, self.unit)
        if not spread or len(self.samples) < 2:
            return middle
        return f"{middle} [{fmt(self.low, self.unit, bare=True)}–{fmt(self.high, self.unit)}]"

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "n": len(self.samples),
            "samples": [round(s, 6) for s in self.samples],
        }


def fmt(value: float, unit: str, *, bare: bool = False) -> str:
    """A number for the table: seconds as ms or s, bytes as MB."""
    if value != value:  # NaN
        return "-"
    if unit == "s":
        text = f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
        if value < 0.01:
            text = f"{value * 1000:.1f} ms"
    elif unit == "B":
        text = f"{value / 1e6:.0f} MB" if value >= 1e7 else f"{value / 1e6:.1f} MB"
    elif unit == "x":
        text = f"{value:.2f}x"
    else:
        text = f"{value:.3g} {unit}".strip()
    if bare:
        return text.rsplit(" ", 1)[0] if " " in text else text
    return text


def ratio(ours: float, peer: float) -> float:
    return ours / peer if peer else float("nan")


def interleave(
    runs: dict[str, Callable[[], float]], *, repeat: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Call each measurement `repeat` times, alternating (and rotating) their order."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeat):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            samples[name].append(runs[name]())
    return samples


async def ainterleave(
    runs: dict[str, Callable[[], Awaitable[float]]], *, repeat: int, warmup: int = 1
) -> dict[str, list[float]]:
    """`interleave` for coroutines, in the running loop."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            await runs[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeat):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            samples[name].append(await runs[name]())
    return samples


# --------------------------------------------------------------------------- rows


@dataclasses.dataclass
class Row:
    """One line of the table: our number, the peer's in the same run, and the goal."""

    key: str
    what: str
    ours: Stat
    peer_name: str
    peer: Stat | None
    goal: str
    met: bool | None
    ratio: float | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def versus(
        cls,
        ours: Stat,
        peer: Stat,
        *,
        within: float | None,
        **fields: Any,
    ) -> Row:
        """A row whose ratio is our median over the peer's, met when it is at most `within`
        (None: measured, no goal to meet); `fields` are the row's other fields."""
        value = ratio(ours.median, peer.median)
        met = None if within is None else value <= within
        return cls(ours=ours, peer=peer, ratio=value, met=met, **fields)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "what": self.what,
            "ours": self.ours.as_json(),
            "peer_name": self.peer_name,
            "peer": self.peer.as_json() if self.peer else None,
            "ratio": self.ratio,
            "goal": self.goal,
            "met": self.met,
            "notes": self.notes,
            "extra": self.extra,
        }


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table (it reads in a terminal and pastes into the README)."""
    header = ["#", "measurement", "smtpcheck", "peer", "peer value", "ratio", "goal", "met"]
    lines = [header]
    for row in rows:
        lines.append(
            [
                row.key,
                row.what,
                row.ours.text(),
                row.peer_name,
                row.peer.text() if row.peer else "-",
                "-" if row.ratio is None else f"{row.ratio:.2f}x",
                row.goal,
                {True: "yes", False: "**no**", None: "-"}[row.met],
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """What the numbers ran on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "swaks": _first_line(["swaks", "--version"]),
        "postfix": _first_line(["postconf", "-d", "-h", "mail_version"]),
        "openssl": __import__("ssl").OPENSSL_VERSION,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _first_line(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return ""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout or result.stderr).strip().splitlines()[0] if result.stdout else ""


# --------------------------------------------------------------------------- peers


@dataclasses.dataclass(frozen=True)
class Peers:
    """The interop peers (scripts/peers.sh): Knot on 127.0.0.1:5300, Postfix on 127.0.20.x."""

    ca_bundle: Path
    dns: str

    @classmethod
    def _running(cls) -> Peers:
        """The running peers, or BenchError saying how to start them."""
        values: dict[str, str] = {}
        env_file = PEERS_DIR / "env"
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                name, _, value = line.removeprefix("export ").partition("=")
                values[name.strip()] = value.strip()
        values.update({k: v for k, v in os.environ.items() if k.startswith("SMTPCHECK_TEST_")})
        bundle = values.get("SMTPCHECK_TEST_CA_BUNDLE")
        if not bundle or not Path(bundle).is_file():
            raise BenchError("interop peers not found: run `scripts/peers.sh start` (as root)")
        peers = cls(ca_bundle=Path(bundle), dns=values.get("SMTPCHECK_TEST_DNS", KNOT))
        peers.wait_ready()
        return peers

    @classmethod
    def find(cls) -> Peers:
        """The running peers; started (scripts/peers.sh start, idempotent) when they are down.

        scripts/test.sh stops the shared peers when it ends, so they may come and go.
        """
        if subprocess.run(
            [str(REPO / "scripts" / "peers.sh"), "status"], capture_output=True, check=False
        ).returncode:
            print("  starting the interop peers (scripts/peers.sh start) ...", flush=True)
            started = subprocess.run(
                [str(REPO / "scripts" / "peers.sh"), "start"],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if started.returncode:
                raise BenchError(f"scripts/peers.sh start failed: {started.stderr[-300:]}")
        return cls._running()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Postfix 587/465 and Knot answer (others may be restarting the shared peers)."""
        import socket

        deadline = time.monotonic() + timeout
        while True:
            try:
                for port in (587, 465):
                    with socket.create_connection((GOOD_ADDRESS, port), timeout=2):
                        pass
                if _knot_answers(self.dns):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(
                    f"Postfix on {GOOD_ADDRESS}:587/465 or Knot on {self.dns} is not answering;"
                    " `scripts/peers.sh status`"
                )
            time.sleep(0.5)


def _knot_answers(server: str) -> bool:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rdatatype

    host, _, port = server.rpartition(":")
    query = dns.message.make_query(GOOD_NAME, dns.rdatatype.A)
    try:
        answer = dns.query.udp(query, host, port=int(port), timeout=2)
    except (OSError, dns.exception.DNSException):
        return False
    return bool(answer.answer)


# --------------------------------------------------------------------------- processes


def tool(name: str) -> str:
    """A console script of this interpreter's environment (not a pyenv shim that adds ~70 ms)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"{name} is not installed")
    return found


def child_env() -> dict[str, str]:
    """The environment of measured child processes.

    Bytecode is cached (under bench/results/pycache) as it is for an installed package, even
    where PYTHONDONTWRITEBYTECODE is set; no SMTPCHECK_ variable leaks in from outside.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPCHECK_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(RESULTS / "pycache")
    env["PYTHONPATH"] = str(REPO)
    return env


def timed_run(
    command: list[str],
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of one process, and what it printed."""
    RESULTS.mkdir(parents=True, exist_ok=True)  # the children's working directory
    started = time.perf_counter()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else child_env(),
        cwd=cwd or RESULTS,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - started, result


async def serve_until_stdin_closes(lifetime: float) -> None:
    """Wait until the parent closes our stdin (or `lifetime` seconds pass): the helper
    processes' way of knowing the bench no longer needs them, even if it was killed."""
    loop = asyncio.get_running_loop()
    closed = loop.create_future()

    def on_stdin() -> None:
        loop.remove_reader(sys.stdin.fileno())
        if not closed.done():
            closed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closed, lifetime)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
