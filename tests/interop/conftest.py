"""The real peers for the interop suite: Postfix, Dovecot, Knot and PostgreSQL.

`scripts/peers.sh start` runs them and writes `$SMTPCHECK_PEERS_DIR/env`; these fixtures
read that file (or the same variables from the environment). A peer that is missing is a
test failure, never a skip: CI must not pass because the servers did not start.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import pytest

from diagnostics import CheckRequest, EngineConfig, Report, Timeouts

REPO = Path(__file__).resolve().parents[2]
PEERS_SCRIPT = REPO / "scripts" / "peers.sh"
DEFAULT_PEERS_DIR = "/tmp/smtpcheck-peers"  # the script's default

# One loopback address per Postfix scenario (scripts/peers/postfix-master.cf.in).
SCENARIO_ADDRESSES = {
    "smtp.good.test": "127.0.20.1",
    "nostarttls.good.test": "127.0.20.2",
    "expired.good.test": "127.0.20.3",
    "wrongname.good.test": "127.0.20.4",
    "selfsigned.good.test": "127.0.20.5",
    "nochain.good.test": "127.0.20.6",
    "legacytls.good.test": "127.0.20.7",
    "authbeforetls.good.test": "127.0.20.8",
    "noauth.good.test": "127.0.20.9",
    "ptrmismatch.good.test": "127.0.20.10",
    "sslonly.good.test": "127.0.20.11",
    "smtp6.good.test": "::1",
}


@dataclasses.dataclass(frozen=True)
class Peers:
    """Where the running peers are and how to use them."""

    dir: Path
    dns: str  # IP:PORT of Knot
    ca_bundle: Path  # the throwaway root CA, the only one the client should trust
    user: str
    password: str
    postgres_url: str

    @property
    def dns_host(self) -> str:
        return self.dns.rpartition(":")[0]

    @property
    def dns_port(self) -> int:
        return int(self.dns.rpartition(":")[2])


def _env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            values[name] = value
    return values


def _not_running(why: str) -> None:
    pytest.fail(
        f"interop peers are not usable: {why}\n"
        "Start them with `scripts/peers.sh start` (as root), then run "
        "`pytest -m interop`. See `scripts/peers.sh status`.",
        pytrace=False,
    )


def _dns_answers(server: str, port: int) -> bool:
    query = dns.message.make_query("good.test", dns.rdatatype.SOA)
    try:
        answer = dns.query.udp(query, server, port=port, timeout=2)
    except (OSError, dns.exception.DNSException):
        return False
    return bool(answer.answer)


def _listens(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def peers() -> Peers:
    """The running peers; fails (not skips) every test that needs them when they are down."""
    peers_dir = Path(os.environ.get("SMTPCHECK_PEERS_DIR", DEFAULT_PEERS_DIR))
    values = {**_env_file(peers_dir / "env"), **os.environ}
    needed = (
        "SMTPCHECK_TEST_DNS",
        "SMTPCHECK_TEST_CA_BUNDLE",
        "SMTPCHECK_TEST_SMTP_USER",
        "SMTPCHECK_TEST_SMTP_PASSWORD",
        "SMTPCHECK_TEST_POSTGRES_URL",
    )
    missing = [name for name in needed if not values.get(name)]
    if missing:
        _not_running(f"{peers_dir}/env is missing and {', '.join(missing)} not set")
    result = subprocess.run(
        [str(PEERS_SCRIPT), "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "SMTPCHECK_PEERS_DIR": str(peers_dir)},
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        _not_running(f"`scripts/peers.sh status` says:\n{result.stdout}{result.stderr}")
    found = Peers(
        dir=peers_dir,
        dns=values["SMTPCHECK_TEST_DNS"],
        ca_bundle=Path(values["SMTPCHECK_TEST_CA_BUNDLE"]),
        user=values["SMTPCHECK_TEST_SMTP_USER"],
        password=values["SMTPCHECK_TEST_SMTP_PASSWORD"],
        postgres_url=values["SMTPCHECK_TEST_POSTGRES_URL"],
    )
    if not found.ca_bundle.is_file():
        _not_running(f"no CA bundle at {found.ca_bundle}")
    if not _dns_answers(found.dns_host, found.dns_port):
        _not_running(f"Knot does not answer for good.test on {found.dns}")
    for host, port in (("127.0.20.1", 587), ("127.0.20.1", 465), ("::1", 587)):
        if not _listens(host, port):
            _not_running(f"Postfix does not listen on [{host}]:{port}")
    return found


FAST_TIMEOUTS = Timeouts(dns=1.0, connect=1.5, greeting=1.5, command=2.0, tls=2.0)


@pytest.fixture
def engine_config(peers: Peers) -> EngineConfig:
    """The engine pointed at Knot and the throwaway CA, with short timeouts."""
    return EngineConfig(
        nameservers=(peers.dns,),
        ca_bundle=peers.ca_bundle,
        allow_private=True,
        budget=8.0,
        timeouts=FAST_TIMEOUTS,
    )


Diagnose = Callable[..., Coroutine[Any, Any, Report]]


@pytest.fixture
def check(engine_config: EngineConfig) -> Diagnose:
    """`await check(target=..., security=...)`: one in-process diagnosis against the peers."""
    from diagnostics import diagnose

    async def run(**request: Any) -> Report:
        return await diagnose(CheckRequest(**request), engine_config)

    return run
