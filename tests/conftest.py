"""Shared fixtures. Server logic lives in tests/servers.py, certificates in tests/certs.py,
the Slack stand-in and the bot harness in tests/slack_stub.py, reports built by hand in
tests/factories.py. A test module's own fixture of the same name takes precedence."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.bot.support import MakeBot
from tests.certs import CertFactory, default_factory
from tests.dns_server import DnsServer, Zone, dns_server  # noqa: F401  (a fixture, shared)
from tests.servers import SERVER_NAME, TEST_PASSWORD, ServerPool, SmtpTestServer
from tests.slack_stub import BotHarness, SlackStub, engine_config_for_tests


@pytest.fixture(scope="session")
def cert_factory() -> CertFactory:
    """The test CA (root + intermediate) that the test servers' certificates come from."""
    return default_factory()


@pytest.fixture(scope="session")
def ca_bundle(cert_factory: CertFactory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEM file with the test root only, as an operator would pass with --ca-bundle."""
    return cert_factory.write_ca_bundle(tmp_path_factory.mktemp("ca"))


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    """A test DNS server on loopback with an empty zone; add names with `dns.zone.host(...)`."""
    async with DnsServer(Zone()) as server:
        yield server


@pytest.fixture
async def smtp_server(request: pytest.FixtureRequest) -> AsyncIterator[SmtpTestServer]:
    """One running server, shaped by `@pytest.mark.server_behaviour(**SmtpTestServer kwargs)`."""
    marker = request.node.get_closest_marker("server_behaviour")
    async with SmtpTestServer(**(marker.kwargs if marker else {})) as server:
        yield server


@pytest.fixture
async def smtp_servers(request: pytest.FixtureRequest) -> AsyncIterator[ServerPool]:
    """Start servers on demand (`await smtp_servers.start(port=465, mode="ssl")`)."""
    marker = request.node.get_closest_marker("server_behaviour")
    async with ServerPool(**(marker.kwargs if marker else {})) as pool:
        yield pool


@pytest.fixture(autouse=True)
def _no_system_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that forgets its nameserver must not reach the system's resolver (loopback only)."""
    monkeypatch.setenv("SMTPCHECK_NAMESERVERS", "127.0.0.1:9")


@pytest.fixture
async def tls_server(cert_factory: CertFactory) -> AsyncIterator[SmtpTestServer]:
    """A well-behaved submission server (STARTTLS, a certificate the test CA signed)."""
    async with SmtpTestServer(cert=cert_factory.valid(SERVER_NAME)) as smtp:
        yield smtp


@pytest.fixture
async def make_bot(tmp_path: Path, ca_bundle: Path) -> AsyncIterator[MakeBot]:
    """`await make_bot(engine={...}, limits=SlackLimits(...), stub=..., **settings)`: a bot
    started on loopback against the Slack stand-in (or `stub`). When the test ends, every
    payload each bot sent is checked: Block Kit's limits, and never the test password."""
    started: list[BotHarness] = []

    async def make(
        *, engine: dict[str, Any] | None = None, stub: SlackStub | None = None, **settings: Any
    ) -> BotHarness:
        directory = tmp_path / f"bot{len(started)}"
        directory.mkdir()
        config = engine_config_for_tests(ca_bundle, **(engine or {}))
        harness = BotHarness(directory, engine_config=config, **settings)
        if stub is not None:
            harness.stub = stub
        started.append(harness)
        return await harness.start()

    try:
        yield make
        for harness in started:
            harness.check_payloads()
            for call in harness.stub.calls:
                assert TEST_PASSWORD not in call.raw, f"{call.method} carried the test password"
    finally:
        for harness in started:
            await harness.stop()


@pytest.fixture
async def bot(make_bot: MakeBot) -> BotHarness:
    """One bot with the default settings (see make_bot)."""
    return await make_bot()


# --------------------------------------------------------------------------- the slow marker

SLOW_SECONDS = 2.0  # pyproject's `slow` marker: tests over about this long
_unmarked_slow: list[tuple[float, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note how long each test without the `slow` marker took to run."""
    if report.when == "call" and "slow" not in report.keywords:
        _unmarked_slow.append((report.duration, report.nodeid))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault suite's measurements, then name the unmarked slow tests: a hint, never a
    failure (a loaded machine makes anything slow), so that `-m 'not slow'` stays a quick run."""
    measured = _measured_here() + _measured_in_workers
    if measured:
        terminalreporter.section("fault suite measurements")
        for line in measured:
            terminalreporter.write_line(line)
    slow = sorted((d, n) for d, n in _unmarked_slow if d > SLOW_SECONDS)
    if slow:
        terminalreporter.write_sep("-", f"over {SLOW_SECONDS:.0f} s without @pytest.mark.slow")
        for duration, nodeid in reversed(slow[-10:]):
            terminalreporter.write_line(f"{duration:5.1f} s  {nodeid}")


# --------------------------------------------------------------------------- measured numbers
# Fault-suite modules keep the numbers they measure (MEASURED, SLOWEST); the end of the run
# prints them. With pytest-xdist they are measured in the workers, which hand their lines to
# the controller through xdist's `workeroutput` (a test directory's own conftest is not loaded
# in the controller, so these hooks live here).

_measured_in_workers: list[str] = []


def _measured_here() -> list[str]:
    lines: list[str] = []
    # Only modules that ran have numbers; never import one just for the summary.
    for name in ("test_hostile_servers", "test_slack_faults", "test_http_endpoint"):
        module = sys.modules.get(f"tests.faults.{name}")
        lines += list(getattr(module, "MEASURED", []))
    fuzz = sys.modules.get("tests.faults.test_fuzz")
    for what, seconds in sorted(getattr(fuzz, "SLOWEST", {}).items()):
        lines.append(f"fuzz     slowest {what}: {seconds * 1000:.0f} ms")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints
        workeroutput["fault_measurements"] = _measured_here()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _measured_in_workers.extend(getattr(node, "workeroutput", {}).get("fault_measurements", []))
