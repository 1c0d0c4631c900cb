"""Shared instruments for the fault suite: memory, socket recorders, the CLI as a process.

* `memory()` reads VmRSS / VmHWM of this process; `reset_peak()` restarts VmHWM so the
  peak of one diagnosis can be measured in a long-lived test process.
* `SocketAudit` sees every TCP connect and name lookup this process makes (a `sys` audit
  hook), and refuses any connect that would leave loopback: a policy bug can show up as
  a failed test, never as traffic to the network.
* `RecordingListener` is a raw TCP listener that only counts what reaches it.
* `run_cli()` runs `smtpcheck` as a real process with DEBUG logging, and reports the
  process's own memory and the time spent in `main()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MB = 1024 * 1024

# --------------------------------------------------------------------------- memory


def memory(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    return {
        key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) * 1024
        for key in ("VmRSS", "VmHWM")
    }


def reset_peak() -> bool:
    """Restart this process's VmHWM at its current RSS (Linux clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- socket audit


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclasses.dataclass
class SocketAudit:
    """TCP connects, off-loopback sends (refused) and getaddrinfo calls made while active."""

    connects: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    blocked: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    lookups: list[str] = dataclasses.field(default_factory=list)

    def to(self, host: str, port: int | None = None) -> list[tuple[str, int]]:
        return [c for c in self.connects if c[0] == host and (port is None or c[1] == port)]


_active: list[SocketAudit] = []
_installed = False
_lock = threading.Lock()


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _active or event not in _EVENTS:
        return
    if event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is not None:
            for audit in _active:
                audit.lookups.append(str(host))
        return
    sock, address = args[0], args[1]
    if not isinstance(address, tuple):
        return  # Unix sockets, or sendmsg on a connected socket (its connect was seen)
    host, port = str(address[0]), int(address[1])
    if getattr(sock, "type", None) == socket.SOCK_STREAM and event == "socket.connect":
        for audit in _active:
            audit.connects.append((host, port))
    if not _is_loopback(host):
        for audit in _active:
            audit.blocked.append((host, port))
        # Refuse before a packet leaves (TCP or UDP, e.g. a DNS query to the system's
        # resolver): the suite never sends traffic off loopback, even if the product errs.
        raise PermissionError(errno.EACCES, f"fault suite: {event} to {host}:{port} blocked")


_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"})


@contextlib.contextmanager
def socket_audit() -> Iterator[SocketAudit]:
    """Record (and keep on loopback) every TCP connect of this process inside the block."""
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)  # cannot be removed: it is inert while nothing is active
            _installed = True
    audit = SocketAudit()
    _active.append(audit)
    try:
        yield audit
    finally:
        _active.remove(audit)


# --------------------------------------------------------------------------- listeners


class RecordingListener:
    """A TCP listener that accepts, records the peer and closes: "did anything get here?"."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.accepted: list[tuple[str, int]] = []
        self.error: str | None = None
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> bool:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted.append(writer.get_extra_info("peername")[:2])
            writer.close()

        try:
            self._server = await asyncio.start_server(
                accepted, self.host, self.port, reuse_address=True
            )
        except OSError as exc:
            self.error = f"{exc.strerror or exc}"
            return False
        return True

    @property
    def bound(self) -> bool:
        return self._server is not None

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


# --------------------------------------------------------------------------- the CLI process

# Runs `smtpcheck` in a fresh interpreter with every logger at DEBUG on stderr, and writes
# what the process measured about itself (memory, time in main) to $FAULTS_MEASURE.
_WRAPPER = r"""
import json, logging, os, re, sys, time
def mem():
    text = open("/proc/self/status").read()
    keys = ("VmRSS", "VmHWM")
    return {k: int(re.search(k + r":\s+(\d+) kB", text).group(1)) * 1024 for k in keys}
logging.basicConfig(
    level=logging.DEBUG, stream=sys.stderr, format="LOG %(levelname)s %(name)s: %(message)s"
)
from diagnostics import cli
import diagnostics._engine, diagnostics._render  # before the baseline: imports are not growth
from diagnostics.knowledge import load_knowledge
load_knowledge()
base = mem()
try:
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
started = time.perf_counter()
code = cli.main(sys.argv[1:])
elapsed = time.perf_counter() - started
end = mem()
with open(os.environ["FAULTS_MEASURE"], "w") as out:
    json.dump(
        {"base_rss": base["VmRSS"], "hwm": end["VmHWM"], "rss": end["VmRSS"], "main_s": elapsed},
        out,
    )
sys.stdout.flush()
sys.exit(code)
"""


@dataclasses.dataclass
class CliRun:
    code: int
    out: str
    err: str
    wall_s: float
    main_s: float
    base_rss: int
    hwm: int
    rss: int

    @property
    def growth(self) -> int:
        """Peak RSS during main() above the RSS before it (bytes)."""
        return self.hwm - self.base_rss

    @property
    def log_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("LOG ")]

    @property
    def user_lines(self) -> list[str]:
        """stderr without the DEBUG log lines: what a user would see."""
        return [line for line in self.err.splitlines() if not line.startswith("LOG ")]

    def json(self) -> Any:
        return json.loads(self.out)


async def run_cli(
    *args: str,
    stdin: str | bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> CliRun:
    """`smtpcheck ARGS` as a process (DEBUG logs on stderr); measures it from the inside."""
    with tempfile.TemporaryDirectory(prefix="faults-cli-") as tmp:
        measure = Path(tmp) / "measure.json"
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WRAPPER,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp,  # no stray .env
            env={
                **os.environ,
                "NO_COLOR": "1",
                "COLUMNS": "120",
                "FAULTS_MEASURE": str(measure),
                **(env or {}),
            },
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(stdin.encode() if isinstance(stdin, str) else stdin), timeout
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        wall = time.perf_counter() - started
        data = json.loads(measure.read_text()) if measure.exists() else {}
    return CliRun(
        code=process.returncode,
        out=out.decode(errors="replace"),
        err=err.decode(errors="replace"),
        wall_s=wall,
        main_s=data.get("main_s", float("nan")),
        base_rss=data.get("base_rss", 0),
        hwm=data.get("hwm", 0),
        rss=data.get("rss", 0),
    )


def mib(value: float) -> str:
    return f"{value / MB:.1f} MiB"


# --------------------------------------------------------------------------- logs


class _Collect(logging.Handler):
    def __init__(self, exclude: tuple[str, ...]) -> None:
        super().__init__(logging.DEBUG)
        self.exclude = exclude
        self.texts: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self.exclude):
            return
        try:
            text = record.getMessage()
        except Exception:
            text = f"{record.msg!s} {record.args!r}"
        parts = [f"{record.levelname} {record.name}: {text}"]
        if record.exc_info:
            parts.append(self._formatter.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        self.texts.append("\n".join(parts))


@dataclasses.dataclass
class CapturedLogs:
    handler: _Collect

    @property
    def text(self) -> str:
        return "\n".join(self.handler.texts)

    def __len__(self) -> int:
        return len(self.handler.texts)


@contextlib.contextmanager
def all_logs(*, exclude: tuple[str, ...] = ("mail.log",)) -> Iterator[CapturedLogs]:
    """Every record of every logger at DEBUG, as raw text (before any redacting handler).

    Loggers that set their own level are turned down to DEBUG for the block and restored.
    `mail.log` is aiosmtpd's own (the test server's) log, which sees the password by design.
    """
    handler = _Collect(exclude)
    root = logging.getLogger()
    saved: dict[logging.Logger, int] = {root: root.level}
    isolated: list[logging.Logger] = []  # propagate=False: they get the handler themselves
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            saved[logger] = logger.level
            if logger.level > logging.DEBUG:
                logger.setLevel(logging.DEBUG)
            if not logger.propagate:
                isolated.append(logger)
                logger.addHandler(handler)
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    try:
        yield CapturedLogs(handler)
    finally:
        root.removeHandler(handler)
        for logger in isolated:
            logger.removeHandler(handler)
        logging.disable(disabled)
        for logger, level in saved.items():
            logger.setLevel(level)


def loopback_engine(dns: Any, ca_bundle: Path, *, budget: float, timeouts: Any) -> Any:
    """The engine as the fault tests run it: the test DNS, the test CA, loopback allowed."""
    from tests.factories import engine_config

    return engine_config(dns, ca_bundle, budget=budget, timeouts=timeouts)
