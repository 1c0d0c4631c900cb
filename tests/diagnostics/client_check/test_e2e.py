"""The generated macOS check run for real (bash, dash, zsh) against loopback SMTP servers.

macOS' `nc -G` does not exist on Linux, so a tiny stand-in prints macOS nc's messages;
openssl, perl, grep and sed are the machine's own. The parsed output is then compared with
a report of what "the bot" saw, for the same server and for an intercepting one.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from diagnostics._models import Report, Security
from diagnostics.client_check import (
    ClientTargets,
    TargetPort,
    client_check_script,
    compare,
    parse_client_output,
)
from tests.certs import ServerCert, default_factory
from tests.client_side import fake_nc_env, interceptor_cert, run_script
from tests.factories import probe, report
from tests.servers import SmtpTestServer

UTC = dt.UTC
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")


@pytest.fixture
def fake_nc(tmp_path: Path) -> dict[str, str]:
    return fake_nc_env(tmp_path)


async def _servers(cert: ServerCert) -> tuple[SmtpTestServer, SmtpTestServer]:
    first = await SmtpTestServer(port=587, mode="starttls", cert=cert).start()
    second = await SmtpTestServer(host=first.host, port=465, mode="ssl", cert=cert).start()
    return first, second


def _seen_by_the_bot(host: str, cert: ServerCert) -> Report:
    """What the bot saw: the server's own certificate on 587 and 465, nothing on 2525."""
    leaf = cert.leaf
    evidence = {
        "issuer": leaf.issuer.rfc4514_string(),
        "subject": leaf.subject.rfc4514_string(),
        "sha256": leaf.fingerprint(hashes.SHA256()).hex(),
    }
    return report(
        host,
        587,
        security=Security.STARTTLS,
        client="mac",
        probes=(
            probe(587, address=host, cert=evidence, starttls_offered=True),
            probe(465, address=host, cert=evidence),
            probe(2525, "refused", address=host, role="alternative"),
        ),
    )


def _targets(host: str) -> ClientTargets:
    return ClientTargets(
        host=host,
        ports=(
            TargetPort(port=587, security=Security.STARTTLS),
            TargetPort(port=465, security=Security.SSL),
            TargetPort(port=2525, security=Security.STARTTLS),
        ),
    )


@pytest.mark.parametrize("shell", ["bash", "dash", "zsh"])
async def test_mac_script_sees_the_server_as_the_bot_does(shell: str, fake_nc) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} not installed")
    cert = default_factory().valid("mail.example.test")
    first, second = await _servers(cert)
    try:
        output = await run_script(exe, client_check_script(_targets(first.host), "mac"), fake_nc)
    finally:
        await first.stop()
        await second.stop()
    obs = parse_client_output(output)
    assert obs.from_script and obs.platform == "mac" and obs.host == first.host, output
    assert obs.reachable == {587: True, 465: True, 2525: False}, output
    assert obs.reasons[2525] == "refused"
    fingerprint = cert.leaf.fingerprint(hashes.SHA256()).hex().upper()
    assert {p: c.sha256 for p, c in obs.certs.items()} == {587: fingerprint, 465: fingerprint}
    assert obs.certs[587].not_after == cert.leaf.not_valid_after_utc
    # Read-only: the server saw EHLO (before STARTTLS), never MAIL, RCPT or AUTH.
    assert first.commands and all(c.upper() == "EHLO" for c in first.commands)
    assert first.auth_attempts == []

    result = compare(_seen_by_the_bot(first.host, cert), obs)
    assert [f.id for f in result.findings] == ["client.same_as_server"]


async def test_mac_script_reveals_interception(fake_nc) -> None:
    # The user's computer is shown an Avast-issued certificate; the bot saw the real one.
    real = default_factory().valid("mail.example.test")
    first, second = await _servers(interceptor_cert("mail.example.test"))
    try:
        output = await run_script("sh", client_check_script(_targets(first.host), "mac"), fake_nc)
    finally:
        await first.stop()
        await second.stop()
    obs = parse_client_output(output)
    assert set(obs.certs) == {587, 465}, output
    result = compare(_seen_by_the_bot(first.host, real), obs)
    (finding,) = [f for f in result.findings if f.id == "client.tls_intercepted"]
    assert finding.evidence["product"] == "Avast"
    assert finding.evidence["ports"] == [465, 587]


@pytest.mark.slow
async def test_mac_script_bounds_a_silent_port(fake_nc, monkeypatch) -> None:
    # STARTTLS tried on an implicit-TLS port waits for a greeting that never comes;
    # perl's alarm ends openssl, and the script still finishes and says so.
    cert = default_factory().valid("mail.example.test")
    server = await SmtpTestServer(port=587, mode="ssl", cert=cert).start()
    targets = ClientTargets(
        host=server.host, ports=(TargetPort(port=587, security=Security.STARTTLS),)
    )
    script = client_check_script(targets, "mac").replace("exec @ARGV' 15", "exec @ARGV' 2")
    try:
        output = await run_script("sh", script, fake_nc)
    finally:
        await server.stop()
    obs = parse_client_output(output)
    assert obs.reachable == {587: True}
    assert 587 in obs.tls_errors and 587 not in obs.certs, output
    assert output.rstrip().endswith("== end ==")
