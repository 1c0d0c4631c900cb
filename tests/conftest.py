"""Shared fixtures. Server logic lives in tests/servers.py, certificates in tests/certs.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.certs import CertFactory, default_factory
from tests.dns_server import dns_server  # noqa: F401  (a fixture, shared)
from tests.servers import ServerPool, SmtpTestServer


@pytest.fixture(scope="session")
def cert_factory() -> CertFactory:
    """The test CA (root + intermediate) that the test servers' certificates come from."""
    return default_factory()


@pytest.fixture(scope="session")
def ca_bundle(cert_factory: CertFactory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEM file with the test root only, as an operator would pass with --ca-bundle."""
    return cert_factory.write_ca_bundle(tmp_path_factory.mktemp("ca"))


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
