"""run_probe against real aiosmtpd servers (and raw misbehaving peers) on loopback."""

from __future__ import annotations

import asyncio
import socket

import aiosmtplib
import pytest
from pydantic import SecretStr

from diagnostics import _smtp_probe
from diagnostics._config import EngineConfig, Timeouts
from diagnostics._models import (
    CertProblem,
    Credentials,
    ProbeOutcome,
    ProbePlan,
    ProbeResult,
    Security,
)
from diagnostics._tls import TrustStore
from tests.servers import (
    REPLY_APP_PASSWORD,
    REPLY_BAD_CREDENTIALS,
    REPLY_BASIC_AUTH_DISABLED,
    REPLY_RELAY_DENIED,
    SERVER_NAME,
    TEST_PASSWORD,
    TEST_USER,
    Blackhole,
    ServerPool,
    SmtpTestServer,
    next_loopback,
)

CONFIG = EngineConfig(timeouts=Timeouts(connect=1, greeting=1, command=1, tls=1), budget=5)
CREDENTIALS = Credentials(user=TEST_USER, password=SecretStr(TEST_PASSWORD))
O = ProbeOutcome  # noqa: E741
STARTTLS, SSL, NONE = Security.STARTTLS, Security.SSL, Security.NONE


@pytest.fixture(scope="module")
def trust(ca_bundle) -> TrustStore:
    return TrustStore.load(ca_bundle)


async def probe(
    trust: TrustStore,
    security: Security,
    *,
    host: str,
    port: int,
    budget: float = 5.0,
    config: EngineConfig = CONFIG,
    server_name: str = SERVER_NAME,
    **kwargs,
) -> tuple[ProbeResult, float]:
    """Run one probe; returns the result and how long past t0 it took (seconds)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await _smtp_probe.run_probe(
        ProbePlan(port, security),
        address=host,
        server_name=server_name,
        config=config,
        deadline=t0 + budget,
        t0=t0,
        trust=trust,
        **kwargs,
    )
    return result, loop.time() - t0


async def probe_server(trust, server: SmtpTestServer, security: Security, **kwargs):
    return await probe(trust, security, host=server.host, port=server.port, **kwargs)


def lines(result: ProbeResult, direction: str | None = None) -> list[str]:
    return [t.line for t in result.transcript if direction is None or t.dir == direction]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# ---------------------------------------------------------------------- working servers


@pytest.mark.server_behaviour(mode="starttls", port=587)
async def test_starttls_dialogue(trust, smtp_server):
    result, _ = await probe_server(trust, smtp_server, STARTTLS)
    assert result.outcome is O.OK and result.works
    assert result.address == smtp_server.host
    assert result.greeting is not None and result.greeting.code == 220
    assert result.starttls_offered is True
    assert "STARTTLS" in result.extensions_before and "AUTH" not in result.extensions_before
    assert result.auth_before_tls == ()
    assert result.auth_after_tls == ("LOGIN", "PLAIN")
    assert "AUTH" in result.extensions_after and "STARTTLS" not in result.extensions_after
    assert result.tls is not None and result.tls.version == "TLSv1.3"
    assert result.tls.cipher and result.tls.cert is not None
    assert result.tls.cert.problems == () and result.tls.cert.chain_length == 2
    assert {"connect", "greeting", "ehlo", "starttls", "tls", "ehlo_tls", "quit"} <= set(
        result.steps_ms
    )
    assert result.auth is None and result.relay_reply is None  # neither was asked for
    transcript = lines(result)
    assert transcript[0] == f"connected to {smtp_server.host}:587"
    assert transcript[1] == "220 mail.example.test smtpcheck test ESMTP"
    assert "EHLO smtpcheck.invalid" in lines(result, ">")
    # Multi-line replies become one transcript line each, "250-" then "250 ".
    assert "250-STARTTLS" in transcript and "250 HELP" in transcript
    assert any(line.startswith("TLS 1.3 established (") for line in lines(result, "*"))
    assert lines(result, ">")[-1] == "QUIT" and lines(result, "<")[-1].startswith("221")
    assert all(t.probe == "587/starttls" for t in result.transcript)
    t_ms = [t.t_ms for t in result.transcript]
    assert t_ms == sorted(t_ms) and 0 <= t_ms[0] < t_ms[-1] < 5000
    assert smtp_server.commands == ["EHLO", "EHLO", "QUIT"]


async def test_implicit_tls_dialogue(trust, smtp_servers: ServerPool):
    server = await smtp_servers.start(mode="ssl", port=465)
    result, _ = await probe_server(trust, server, SSL)
    assert result.outcome is O.OK
    assert result.tls is not None and result.tls.version == "TLSv1.3"
    assert result.tls.cert is not None and result.tls.cert.problems == ()
    assert result.ehlo_before is None and result.ehlo_after is not None
    assert result.auth_after_tls == ("LOGIN", "PLAIN")
    assert result.starttls_offered is None
    assert {"connect", "tls", "greeting", "ehlo", "quit"} <= set(result.steps_ms)
    events = lines(result, "*")
    assert events[0] == f"connected to {server.host}:465"
    assert events[1].startswith("TLS 1.3 established")


async def test_security_none_records_what_is_offered(trust, smtp_servers):
    server = await smtp_servers.start(mode="starttls", port=25, auth="always")
    result, _ = await probe_server(trust, server, NONE)
    assert result.outcome is O.OK
    assert result.tls is None
    assert result.starttls_offered is True
    assert result.auth_before_tls == ("LOGIN", "PLAIN")  # offered in plain text


async def test_ipv6_loopback(trust, smtp_servers):
    server = await smtp_servers.start(host="::1", port=0)
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.OK
    assert lines(result)[0] == f"connected to [::1]:{server.port}"


@pytest.mark.parametrize("mode, security", [("starttls", STARTTLS), ("ssl", SSL)])
async def test_legacy_tls_still_handshakes(trust, smtp_servers, mode, security):
    server = await smtp_servers.start(mode=mode, port=465, behaviour="legacy_tls")
    result, _ = await probe_server(trust, server, security)
    assert result.outcome is O.OK
    assert result.tls is not None and result.tls.version in {"TLSv1", "TLSv1.1"}
    assert any(line.startswith("TLS 1.1 established") for line in lines(result, "*"))


@pytest.mark.parametrize(
    ("shape", "names", "problems"),
    [
        ("expired", (SERVER_NAME,), (CertProblem.EXPIRED,)),
        ("wrong_name", ("smtp.other.test",), (CertProblem.HOSTNAME_MISMATCH,)),
        ("missing_intermediate", (SERVER_NAME,), (CertProblem.CHAIN_INCOMPLETE,)),
        ("self_signed", (SERVER_NAME,), (CertProblem.SELF_SIGNED,)),
    ],
)
async def test_certificate_problems_are_reported_not_fatal(
    trust, smtp_servers, cert_factory, shape, names, problems
):
    cert = getattr(cert_factory, shape)(*names)
    server = await smtp_servers.start(mode="starttls", cert=cert)
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.OK  # the engine decides what a bad certificate means
    assert result.tls is not None and result.tls.cert is not None
    assert result.tls.cert.problems == problems
    assert result.tls.cert.names == names
    assert result.tls.cert.chain_length == len(cert.chain_pem)


# ---------------------------------------------------------------------- mode mistakes


async def test_ssl_on_a_starttls_port_is_plaintext_on_tls(trust, smtp_servers):
    server = await smtp_servers.start(mode="starttls", port=587)
    result, elapsed = await probe_server(trust, server, SSL)
    assert result.outcome is O.PLAINTEXT_ON_TLS
    assert "wrong version number" in (result.error or "").lower()
    assert result.tls is None
    assert elapsed < 1.0


async def test_starttls_on_an_implicit_tls_port_times_out_waiting_for_the_greeting(
    trust, smtp_servers
):
    server = await smtp_servers.start(mode="ssl", port=465)
    result, elapsed = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.BANNER_TIMEOUT
    assert "timeout waiting for greeting after 1.0 s" in lines(result, "*")
    assert 0.9 < elapsed < 1.5


async def test_starttls_not_offered(trust, smtp_servers):
    server = await smtp_servers.start(mode="plain", port=587, auth="always")
    result, _ = await probe_server(trust, server, STARTTLS, credentials=CREDENTIALS)
    assert result.outcome is O.STARTTLS_NOT_OFFERED
    assert result.starttls_offered is False
    assert result.extensions_before and result.auth_before_tls == ("LOGIN", "PLAIN")
    assert result.auth is None  # never a password over a plain connection
    assert server.auth_attempts == []
    assert server.commands[-1] == "QUIT"


@pytest.mark.parametrize("mode, security", [("starttls", STARTTLS), ("ssl", SSL)])
async def test_handshake_failure_keeps_the_openssl_reason(trust, smtp_servers, mode, security):
    server = await smtp_servers.start(mode=mode, port=465, behaviour="tls_alert")
    result, _ = await probe_server(trust, server, security)
    assert result.outcome is O.TLS_FAILED
    assert "handshake failure" in (result.error or "").lower()
    assert result.error.startswith("[SSL: ")
    assert result.tls is None


# ---------------------------------------------------------------------- misbehaviour


@pytest.mark.parametrize(
    ("mode", "security", "outcome"),
    [("starttls", STARTTLS, O.BANNER_TIMEOUT), ("ssl", SSL, O.TLS_TIMEOUT)],
)
async def test_tarpit(trust, smtp_servers, mode, security, outcome):
    server = await smtp_servers.start(mode=mode, port=465, behaviour="tarpit")
    result, elapsed = await probe_server(trust, server, security)
    assert result.outcome is outcome
    assert 0.9 < elapsed < 1.5  # the step's own 1 s timeout, well inside the budget


@pytest.mark.server_behaviour(behaviour="tarpit")
async def test_tarpit_ends_within_the_deadline(trust, smtp_server):
    slow = EngineConfig(timeouts=Timeouts(connect=5, greeting=30, command=30, tls=30))
    result, elapsed = await probe_server(trust, smtp_server, STARTTLS, config=slow, budget=0.7)
    assert result.outcome is O.BUDGET_EXHAUSTED
    assert elapsed < 0.7 + 0.5


async def test_deadline_already_passed(trust, smtp_servers):
    server = await smtp_servers.start()
    result, elapsed = await probe_server(trust, server, STARTTLS, budget=0.0)
    assert result.outcome is O.BUDGET_EXHAUSTED
    assert server.connections == 0
    assert elapsed < 0.2


async def test_budget_runs_out_in_the_middle(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="silent_after_greeting")
    slow = EngineConfig(timeouts=Timeouts(connect=5, greeting=5, command=30, tls=5))
    result, elapsed = await probe_server(trust, server, STARTTLS, config=slow, budget=0.6)
    assert result.outcome is O.BUDGET_EXHAUSTED
    assert result.greeting is not None
    assert elapsed < 0.6 + 0.5


async def test_greeting_421(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="greeting_421")
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.BANNER_REJECTED
    assert result.failed_reply is not None and result.failed_reply.code == 421
    assert result.failed_reply.enhanced == "4.3.2"
    assert result.greeting == result.failed_reply


async def test_silence_after_greeting(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="silent_after_greeting")
    result, elapsed = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.EHLO_TIMEOUT
    assert result.greeting is not None
    assert 0.9 < elapsed < 1.5


async def test_no_greeting_after_the_handshake(trust, smtp_servers):
    server = await smtp_servers.start(mode="ssl", port=465, behaviour="no_greeting")
    result, elapsed = await probe_server(trust, server, SSL)
    assert result.outcome is O.BANNER_TIMEOUT
    # The handshake's facts survive although aiosmtplib gave up inside connect().
    assert result.tls is not None and result.tls.version == "TLSv1.3"
    assert result.tls.cert is not None and result.tls.cert.problems == ()
    assert "tls" in result.steps_ms
    assert any(line.startswith("timeout waiting for greeting after") for line in lines(result))
    assert 0.9 < elapsed < 1.5


async def test_drop_after_greeting(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="drop_after_greeting")
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.DROPPED
    assert result.greeting is not None and result.ehlo_before is None


async def test_ehlo_rejected(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="ehlo_rejected")
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.EHLO_REJECTED
    assert result.failed_reply is not None and result.failed_reply.code == 550
    assert server.commands[-1] == "QUIT"  # still polite


async def test_starttls_rejected(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="starttls_rejected")
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.STARTTLS_REJECTED
    assert str(result.failed_reply) == "454 4.7.0 TLS not available due to local problem"
    assert result.tls is None
    assert server.commands[-1] == "QUIT"


async def test_drop_after_starttls(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="drop_after_starttls")
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.DROPPED
    assert result.tls is None


async def test_refused(trust):
    host = next_loopback()  # nothing listens there
    result, elapsed = await probe(trust, STARTTLS, host=host, port=587)
    assert result.outcome is O.REFUSED
    assert elapsed < 0.5
    assert result.steps_ms.get("connect") is not None


async def test_connect_timeout(trust):
    with Blackhole() as hole:
        result, elapsed = await probe(trust, STARTTLS, host=hole.host, port=hole.port)
    assert result.outcome is O.CONNECT_TIMEOUT
    assert 0.9 < elapsed < 1.5


async def test_a_name_instead_of_an_address_is_never_resolved(trust):
    result, _ = await probe(trust, STARTTLS, host="mail.example.test", port=587)
    assert result.outcome is O.ERROR
    assert "not an IP address" in (result.error or "")


@pytest.mark.parametrize(
    ("behaviour", "security"),
    [
        ("huge_greeting", STARTTLS),
        ("huge_greeting", SSL),
        ("endless_line", STARTTLS),
        ("huge_ehlo", STARTTLS),
    ],
)
async def test_oversized_replies_stop_with_bounded_memory(trust, smtp_servers, behaviour, security):
    mode = "ssl" if security is SSL else "starttls"
    server = await smtp_servers.start(mode=mode, port=465, behaviour=behaviour)
    before = rss_mb()
    result, elapsed = await probe_server(trust, server, security)
    growth = rss_mb() - before
    assert result.outcome is O.REPLY_TOO_LONG
    assert growth < 50, f"RSS grew by {growth:.1f} MB"
    assert elapsed < 1.0
    assert any("longer than 32 KiB" in line for line in lines(result, "*"))
    assert sum(len(line) for line in lines(result)) < 10_000
    if behaviour == "endless_line":
        protocol = server.protocols[0]
        assert protocol.sent > 32 * 1024  # it really did send more than the cap


async def test_long_reply_is_capped_in_the_transcript(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="long_ehlo")
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.OK
    transcript = lines(result)
    first = transcript.index("EHLO smtpcheck.invalid") + 1
    reply = transcript[first : transcript.index("STARTTLS")]
    # 104 lines sent: 60 kept, then a marker; no line longer than the cap.
    assert len(reply) == _smtp_probe.MAX_LINES_PER_REPLY + 1
    assert reply[-1] == "... 44 more lines"
    assert reply[4] == "250-X-WIDE-" + "w" * (_smtp_probe.MAX_LINE_CHARS - 11) + "…"
    assert max(map(len, transcript)) <= _smtp_probe.MAX_LINE_CHARS + 1
    assert result.ehlo_before is not None
    assert result.ehlo_before.message.count("\n") == _smtp_probe.MAX_LINES_PER_REPLY
    assert result.starttls_offered is True  # parsed from the full reply, not the capped one


# ---------------------------------------------------------------------- AUTH


@pytest.mark.parametrize("mode, security", [("starttls", STARTTLS), ("ssl", SSL)])
async def test_auth_succeeds_once_with_plain(trust, smtp_servers, mode, security):
    server = await smtp_servers.start(mode=mode, port=465)
    result, _ = await probe_server(trust, server, security, credentials=CREDENTIALS)
    assert result.outcome is O.OK
    assert result.auth is not None and result.auth.ok
    assert result.auth.mechanism == "PLAIN" and result.auth.reply.code == 235
    assert server.auth_attempts == [("PLAIN", TEST_USER)]
    assert f"AUTH PLAIN {_smtp_probe.REDACTED}" in lines(result, ">")
    assert "auth" in result.steps_ms


@pytest.mark.parametrize(
    ("behaviour", "reply"),
    [
        ("auth_basic_disabled", REPLY_BASIC_AUTH_DISABLED),
        ("auth_app_password", REPLY_APP_PASSWORD),
        ("auth_bad_credentials", REPLY_BAD_CREDENTIALS),
    ],
)
async def test_provider_auth_replies(trust, smtp_servers, behaviour, reply):
    server = await smtp_servers.start(behaviour=behaviour)
    result, _ = await probe_server(trust, server, STARTTLS, credentials=CREDENTIALS)
    assert result.outcome is O.OK
    attempt = result.auth
    assert attempt is not None and not attempt.ok and attempt.error is None
    assert str(attempt.reply) == reply
    assert len(server.auth_attempts) == 1  # one attempt, never a second mechanism
    assert lines(result, ">")[-1] == "QUIT"


async def test_login_mechanism_is_redacted_after_each_challenge(trust, smtp_servers):
    server = await smtp_servers.start(mechanisms=("LOGIN",))
    result, _ = await probe_server(trust, server, STARTTLS, credentials=CREDENTIALS)
    assert result.auth is not None and result.auth.ok and result.auth.mechanism == "LOGIN"
    sent = lines(result, ">")
    start = sent.index("AUTH LOGIN")
    assert sent[start + 1 : start + 3] == [_smtp_probe.REDACTED, _smtp_probe.REDACTED]
    assert server.auth_attempts == [("LOGIN", TEST_USER)]


async def test_oauth_only_is_not_attempted(trust, smtp_servers):
    server = await smtp_servers.start(auth="xoauth2")
    result, _ = await probe_server(trust, server, STARTTLS, credentials=CREDENTIALS)
    assert result.auth_after_tls == ("XOAUTH2", "OAUTHBEARER")
    assert result.auth is not None and not result.auth.ok
    assert result.auth.error == "oauth only" and result.auth.reply is None
    assert server.auth_attempts == []


async def test_no_auth_offered_means_no_attempt(trust, smtp_servers):
    server = await smtp_servers.start(auth="none")
    result, _ = await probe_server(trust, server, STARTTLS, credentials=CREDENTIALS)
    assert result.outcome is O.OK and result.auth_after_tls == ()
    assert result.auth is None


async def test_no_auth_without_tls(trust, smtp_servers):
    server = await smtp_servers.start(mode="plain", port=25, auth="always")
    result, _ = await probe_server(trust, server, NONE, credentials=CREDENTIALS)
    assert result.outcome is O.OK and result.auth_before_tls
    assert result.auth is None and server.auth_attempts == []


@pytest.mark.parametrize("behaviour", ["auth_bad_credentials", "auth_echo"])
async def test_the_password_appears_nowhere(trust, smtp_servers, behaviour):
    server = await smtp_servers.start(behaviour=behaviour)
    result, _ = await probe_server(trust, server, STARTTLS, credentials=CREDENTIALS)
    assert result.auth is not None and result.auth.reply is not None
    everything = repr(result) + "\n".join(lines(result)) + str(result.error)
    assert TEST_PASSWORD not in everything
    if behaviour == "auth_echo":  # the server really did echo it; we removed it
        assert _smtp_probe.REDACTED in result.auth.reply.message


async def test_unexpected_exceptions_become_error_without_secrets(trust, smtp_servers, monkeypatch):
    async def explode(self, *args, **kwargs):
        raise RuntimeError(f"library bug while holding {TEST_PASSWORD}")

    monkeypatch.setattr(aiosmtplib.SMTP, "starttls", explode)
    server = await smtp_servers.start()
    result, _ = await probe_server(trust, server, STARTTLS, credentials=CREDENTIALS)
    assert result.outcome is O.ERROR
    assert result.error is not None and "RuntimeError" in result.error
    assert TEST_PASSWORD not in repr(result)


# ---------------------------------------------------------------------- relay test


async def test_relay_denied(trust, smtp_servers):
    server = await smtp_servers.start(mode="starttls", port=25)
    result, _ = await probe_server(
        trust, server, STARTTLS, relay_test=True, credentials=CREDENTIALS
    )
    assert result.outcome is O.OK
    assert str(result.relay_reply) == REPLY_RELAY_DENIED
    assert "DATA" not in server.commands
    # Relay first (unauthenticated), then the login.
    assert server.commands == ["EHLO", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    assert "MAIL FROM:<postmaster@smtpcheck.invalid>" in lines(result, ">")
    assert result.auth is not None and result.auth.ok


async def test_open_relay(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="open_relay", port=25)
    result, _ = await probe_server(
        trust, server, STARTTLS, relay_test=True, sender="bob@example.test"
    )
    assert result.relay_reply is not None and result.relay_reply.code == 250
    assert "MAIL FROM:<bob@example.test>" in lines(result, ">")
    assert "RCPT TO:<relay-test@example.com>" in lines(result, ">")
    assert "DATA" not in server.commands and "RSET" in server.commands


async def test_relay_test_reports_a_refused_mail_from(trust, smtp_servers):
    server = await smtp_servers.start(behaviour="mail_refused", port=25)
    result, _ = await probe_server(trust, server, STARTTLS, relay_test=True)
    assert str(result.relay_reply) == "530 5.7.0 Authentication required"
    assert "RCPT" not in server.commands and "RSET" in server.commands


async def test_probe_never_resolves_names(trust, smtp_servers, monkeypatch):
    """The pinned address is used as given: numeric look-ups only, no getfqdn for EHLO."""
    server = await smtp_servers.start()
    seen: list[tuple[str, int]] = []
    real = socket.getaddrinfo

    def spy(host, *args, **kwargs):
        seen.append((host, kwargs.get("flags", 0)))
        return real(host, *args, **kwargs)

    def no_fqdn(*args):
        raise AssertionError("getfqdn() resolves names")

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    monkeypatch.setattr(socket, "getfqdn", no_fqdn)
    result, _ = await probe_server(trust, server, STARTTLS)
    assert result.outcome is O.OK
    assert seen and all(flags & socket.AI_NUMERICHOST for _host, flags in seen)
