"""Fixtures for the bot's tests: bots on loopback against the Slack stand-in, and a TLS
SMTP server to diagnose. A test module's own fixture of the same name takes precedence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.certs import CertFactory
from tests.servers import SERVER_NAME, SmtpTestServer
from tests.slack_stub import BotHarness, engine_config_for_tests


@pytest.fixture
async def make_bot(tmp_path: Path, ca_bundle: Path) -> AsyncIterator[Any]:
    """make_bot(engine={...}, limits=SlackLimits(...), **settings): a started bot; every
    payload each bot sent is checked against Block Kit's limits at the end."""
    started: list[BotHarness] = []

    async def make(*, engine: dict[str, Any] | None = None, **settings: Any) -> BotHarness:
        directory = tmp_path / f"bot{len(started)}"
        directory.mkdir()
        config = engine_config_for_tests(ca_bundle, **(engine or {}))
        harness = BotHarness(directory, engine_config=config, **settings)
        started.append(harness)
        return await harness.start()

    try:
        yield make
        for harness in started:
            harness.check_payloads()
    finally:
        for harness in started:
            await harness.stop()


@pytest.fixture
async def tls_server(cert_factory: CertFactory) -> AsyncIterator[SmtpTestServer]:
    """A well-behaved submission server (STARTTLS, a certificate the test CA signed)."""
    async with SmtpTestServer(cert=cert_factory.valid(SERVER_NAME)) as smtp:
        yield smtp
