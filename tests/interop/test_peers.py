"""The peers themselves behave as each scenario says, independently of smtpcheck's engine.

If one of these fails, an engine test failing on the same scenario says nothing about the
engine: fix the peer first.
"""

from __future__ import annotations

import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import warnings

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from tests.interop.conftest import PEERS_SCRIPT, REPO, Peers

pytestmark = pytest.mark.interop


def _swaks(*args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--timeout", "5", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_swaks_starttls_and_auth_on_587(peers: Peers) -> None:
    result = _swaks(
        "--server", "127.0.20.1:587", "--tls", "--quit-after", "AUTH",
        "--tls-verify", "--tls-ca-path", str(peers.ca_bundle),
        "--auth", "PLAIN", "--auth-user", peers.user, "--auth-password", peers.password,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "=== TLS started with cipher TLSv1.3" in out
    assert 'peer DN="/O=smtpcheck interop peers/CN=smtp.good.test"' in out
    # AUTH is listed only after STARTTLS (smtpd_tls_auth_only = yes).
    before_tls, _, after_tls = out.partition("=== TLS started")
    assert "250-AUTH" not in before_tls
    assert "250-AUTH PLAIN LOGIN" in after_tls
    assert "235 2.7.0 Authentication successful" in after_tls


def test_swaks_wrong_password_is_535(peers: Peers) -> None:
    result = _swaks(
        "--server", "127.0.20.1:587", "--tls", "--quit-after", "AUTH",
        "--auth", "PLAIN", "--auth-user", peers.user, "--auth-password", "not-the-password",
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(r"535 5\.7\.8 Error: authentication failed", out), out


def test_swaks_port_25_refuses_relay_without_auth(peers: Peers) -> None:
    result = _swaks(
        "--server", "127.0.20.1:25", "--from", "alice@good.test", "--to", "bob@example.org",
        "--quit-after", "RCPT",
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert "554 5.7.1 <bob@example.org>: Relay access denied" in out
    assert "AUTH" not in out.partition("<** 554")[0].split("EHLO", 1)[1]


def test_accepted_mail_is_discarded_never_delivered(peers: Peers) -> None:
    """The one property that makes a real MTA safe here: whatever it accepts, it discards."""
    result = _swaks(
        "--server", "127.0.20.1:587", "--tls",
        "--auth", "PLAIN", "--auth-user", peers.user, "--auth-password", peers.password,
        "--from", peers.user, "--to", "someone@example.org",
        "--header", "Subject: smtpcheck interop discard check",
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    queue_id = re.search(r"250 2\.0\.0 Ok: queued as (\w+)", out)
    assert queue_id, out
    maillog = peers.dir / "postfix" / "maillog"
    pattern = re.compile(
        rf"{queue_id.group(1)}: to=<someone@example\.org>.*relay=none.*status=sent "
        r"\(smtpcheck peers deliver nothing\)"
    )
    deadline = time.monotonic() + 10
    while not pattern.search(maillog.read_text(errors="replace")):
        assert time.monotonic() < deadline, "no discard line in the Postfix log"
        time.sleep(0.1)
    log = maillog.read_text(errors="replace")
    assert "relay=smtp" not in log and "relay=local" not in log
    # Nothing stays queued for a later delivery attempt.
    queue = peers.dir / "postfix" / "queue"
    leftovers = [
        p for d in ("active", "deferred", "incoming", "hold") for p in (queue / d).rglob("*")
    ]
    assert [p for p in leftovers if p.is_file()] == []


def _tls_handshake(address: str, port: int, version: ssl.TLSVersion) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.0/1.1 on purpose: that is the scenario
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    context.set_ciphers("ALL:@SECLEVEL=0")
    with (
        socket.create_connection((address, port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        return str(tls.version())


def test_legacy_listener_speaks_only_tls_1_0_and_1_1(peers: Peers) -> None:
    assert _tls_handshake("127.0.20.7", 465, ssl.TLSVersion.TLSv1) == "TLSv1"
    assert _tls_handshake("127.0.20.7", 465, ssl.TLSVersion.TLSv1_1) == "TLSv1.1"
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with pytest.raises(ssl.SSLError):
            _tls_handshake("127.0.20.7", 465, version)
    # And the good listener refuses TLS 1.0 (smtpd_tls_protocols >= TLSv1.2).
    with pytest.raises(ssl.SSLError):
        _tls_handshake("127.0.20.1", 465, ssl.TLSVersion.TLSv1)


def test_ipv6_listener_verifies_and_authenticates(peers: Peers) -> None:
    context = ssl.create_default_context(cafile=str(peers.ca_bundle))
    with smtplib.SMTP("::1", 587, timeout=5) as client:
        client.ehlo("interop.test")
        assert not client.has_extn("auth")
        # Verified against the certificate's IP address entry (::1) and the throwaway root.
        client.starttls(context=context)
        names = [value for _, value in client.sock.getpeercert()["subjectAltName"]]  # type: ignore[union-attr]
        assert "smtp6.good.test" in names
        client.ehlo("interop.test")
        assert "PLAIN" in client.esmtp_features["auth"]
        code, _ = client.login(peers.user, peers.password)
        assert code == 235


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        ("good.test", "MX", {"10 smtp.good.test."}),
        ("smtp6.good.test", "AAAA", {"::1"}),
        ("mxcname.test", "MX", {"10 mail.mxcname.test."}),
        ("mail.mxcname.test", "A", {"relay.mxcname.test.", "127.0.20.1"}),
        ("10.20.0.127.in-addr.arpa", "PTR", {"dynamic-10.isp.example."}),
        ("1.20.0.127.in-addr.arpa", "PTR", {"smtp.good.test."}),
        (str(dns.reversename.from_address("::1")), "PTR", {"smtp6.good.test."}),
    ],
)
@pytest.mark.parametrize("server", ["127.0.0.1", "::1"])
def test_knot_serves_the_test_zones(
    peers: Peers, server: str, name: str, rdtype: str, expected: set[str]
) -> None:
    query = dns.message.make_query(name, rdtype)
    answer = dns.query.udp(query, server, port=peers.dns_port, timeout=2)
    assert answer.rcode() == dns.rcode.NOERROR
    assert answer.flags & dns.flags.AA  # authoritative, not a forwarder
    got = {rd.to_text() for rrset in answer.answer for rd in rrset}
    assert got == expected


def test_knot_zone_defects(peers: Peers) -> None:
    def txt(name: str) -> list[str]:
        answer = dns.query.udp(
            dns.message.make_query(name, "TXT"), "127.0.0.1", port=peers.dns_port, timeout=2
        )
        return [b"".join(rd.strings).decode() for rrset in answer.answer for rd in rrset]

    assert len([t for t in txt("twospf.test") if t.startswith("v=spf1")]) == 2
    assert txt("toomany.test")[0].count("include:") == 12
    assert "p=maybe" in txt("_dmarc.baddmarc.test")[0]
    nomx = dns.query.udp(
        dns.message.make_query("nomx.test", "MX"), "127.0.0.1", port=peers.dns_port, timeout=2
    )
    assert nomx.rcode() == dns.rcode.NOERROR and not nomx.answer
    missing = dns.query.udp(
        dns.message.make_query("nowhere.mxmissing.test", "A"),
        "127.0.0.1",
        port=peers.dns_port,
        timeout=2,
    )
    assert missing.rcode() == dns.rcode.NXDOMAIN


async def test_postgres_database_is_reachable(peers: Peers) -> None:
    import asyncpg

    url = peers.postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(url, timeout=5)
    try:
        assert await connection.fetchval("select current_database()") == "smtpcheck_test"
        assert await connection.fetchval("select current_user") == "smtpcheck"
    finally:
        await connection.close()


def test_start_again_is_a_no_op(peers: Peers) -> None:
    """`start` on running peers keeps them (same PIDs): CI and developers may both call it."""

    def status() -> str:
        result = subprocess.run(
            [str(PEERS_SCRIPT), "status"], capture_output=True, text=True, timeout=30, check=True
        )
        return result.stdout

    before = status()
    started = subprocess.run(
        [str(PEERS_SCRIPT), "start"], capture_output=True, text=True, timeout=60, check=False
    )
    assert started.returncode == 0, started.stderr
    assert "already running" in started.stderr
    assert status() == before


def test_suite_fails_rather_than_skips_without_peers(tmp_path) -> None:
    """With no peers, every interop test errors (exit 1): CI cannot pass by skipping."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMTPCHECK_")}
    env["SMTPCHECK_PEERS_DIR"] = str(tmp_path / "no-peers-here")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "interop",
            "-p",
            "no:cacheprovider",
            "-q",
            f"{__file__}::test_knot_zone_defects",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "1 error" in out and "skipped" not in out
    assert "interop peers are not usable" in out
