"""diagnose() end to end: real aiosmtpd servers on their own loopback addresses, real DNS.

Each test gives the engine a name (mail.example.test or a provider's host) that the test
DNS server maps to the loopback address of the servers it started, so the engine resolves,
pins, probes the entered setting and its alternatives exactly as in production.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from diagnostics import CheckRequest, EngineConfig, TargetRefused, Timeouts, diagnose
from diagnostics._models import Report
from tests.certs import CertFactory
from tests.dns_server import Behaviour, DnsServer, Zone
from tests.factories import engine_config
from tests.servers import (
    TEST_PASSWORD,
    TEST_USER,
    Blackhole,
    ServerPool,
    next_loopback,
)

NAME = "mail.example.test"
# DNS answers from the test server in microseconds; 2 s leaves room for a loaded machine.
FAST = Timeouts(dns=2.0, connect=1.0, greeting=1.5, command=1.5, tls=1.5)


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    # Provider names are served too (only to this resolver): the engine's provider endpoints.
    apexes = ("test", "in-addr.arpa", "ip6.arpa", "office365.com", "outlook.com", "gmail.com")
    async with DnsServer(Zone(apexes=apexes)) as server:
        yield server


@pytest.fixture
def config_for(dns: DnsServer, ca_bundle: Path):
    def make(**overrides) -> EngineConfig:
        return engine_config(dns, ca_bundle, **{"timeouts": FAST, "budget": 6.0, **overrides})

    return make


async def check(dns: DnsServer, config: EngineConfig, host: str, **fields) -> Report:
    dns.zone.host(NAME, host)
    return await diagnose(CheckRequest(target=NAME, **fields), config)


async def check_ssl_on_starttls_port(dns, config_for, smtp_servers, **fields):
    """Outlook set to SSL/TLS on 587, where the server speaks STARTTLS: (server, report)."""
    server = await smtp_servers.start(port=587, mode="starttls")
    report = await check(dns, config_for(), server.host, port=587, security="ssl", **fields)
    return server, report


async def check_login(dns: DnsServer, config: EngineConfig, host: str, password: str) -> Report:
    """STARTTLS on 587 with TEST_USER and this password: the login is tested."""
    return await check(
        dns,
        config,
        host,
        port=587,
        security="starttls",
        user=TEST_USER,
        password=SecretStr(password),
    )


def ids(report: Report) -> set[str]:
    return {f.id for f in report.findings}


# ------------------------------------------------------------------ settings that work


async def test_good_starttls_submission_passes(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls")
    await smtp_servers.start(host=server.host, port=465, mode="ssl")
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    assert report.verdict in {"pass", "warn"}, report.finding_ids
    assert not [f for f in report.findings if f.severity == "error"]
    assert report.recommended is None
    entered = next(p for p in report.probes if p.role == "entered")
    assert entered.outcome == "ok"
    assert entered.tls_version in {"TLSv1.2", "TLSv1.3"}
    assert "PLAIN" in entered.auth_after_tls
    assert entered.auth_before_tls == ()
    assert report.input.host == NAME and report.input.port == 587
    assert {"tls.ok", "settings.ok"} <= ids(report)
    # The issuer as a person reads it; its raw name stays in the evidence.
    tls_ok = report.by_id("tls.ok")[0]
    raw = entered.certificate["issuer"]  # "OU=Testing CA #…,O=trustme v…"
    assert raw.startswith("OU=Testing CA #") and tls_ok.evidence["issuer"] == raw
    assert tls_ok.detail.startswith("Certificate issued by trustme v")
    assert "(Testing CA #" in tls_ok.detail and "O=" not in tls_ok.detail
    # The transcript shows the real dialogue, with timestamps in order.
    lines = [t.line for t in report.transcript if t.probe == "587/starttls"]
    assert any(line.startswith("220") for line in lines)
    assert any(line.upper().startswith("EHLO") for line in lines)
    assert "STARTTLS" in lines
    times = [t.t_ms for t in report.transcript]
    assert times == sorted(times)
    assert report.timings_ms["total"] > 0 and "dns" in report.timings_ms


async def test_json_report_follows_the_contract(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls")
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    data = json.loads(report.to_json())
    assert data["schema"] == "smtpcheck.report/1"
    assert set(data) >= {
        "schema",
        "input",
        "verdict",
        "provider",
        "recommended",
        "findings",
        "probes",
        "transcript",
        "timings_ms",
    }
    assert set(data["input"]) >= {"target", "host", "port", "security", "email", "user", "client"}
    for finding in data["findings"]:
        assert set(finding) >= {"id", "severity", "title", "detail", "evidence", "fix"}
        assert finding["severity"] in {"info", "warn", "error"}
    for probe in data["probes"]:
        assert set(probe) >= {"port", "security", "address", "outcome", "tls_version", "elapsed_ms"}
    for line in data["transcript"]:
        assert set(line) >= {"t_ms", "dir", "line"}


# ------------------------------------------------------------------ the Outlook traps


async def test_starttls_chosen_on_implicit_tls_port(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=465, mode="ssl")
    report = await check(dns, config_for(), server.host, port=465, security="starttls")
    assert "tls.mode.starttls_on_ssl_port" in ids(report)
    assert report.verdict == "fail"
    assert report.recommended is not None
    assert (report.recommended.port, report.recommended.security) == (465, "ssl")
    finding = report.by_id("tls.mode.starttls_on_ssl_port")[0]
    assert finding.fix is not None and finding.fix.steps


async def test_ssl_chosen_on_starttls_port(dns, config_for, smtp_servers: ServerPool):
    _, report = await check_ssl_on_starttls_port(dns, config_for, smtp_servers)
    assert "tls.mode.ssl_on_starttls_port" in ids(report)
    assert report.recommended is not None
    assert (report.recommended.host, report.recommended.port) == (NAME, 587)
    assert report.recommended.security == "starttls"


async def test_closed_port_recommends_the_port_that_works(dns, config_for, smtp_servers):
    server = await smtp_servers.start(port=587, mode="starttls")
    report = await check(dns, config_for(), server.host, port=2525, security="starttls")
    assert "tcp.refused" in ids(report)
    assert report.recommended is not None and report.recommended.port == 587


async def test_filtered_port_times_out_within_the_step_timeout(dns, config_for):
    with Blackhole() as hole:
        config = config_for(allowed_ports=frozenset({hole.port, 587, 465}))
        started = time.monotonic()
        report = await check(dns, config, hole.host, port=hole.port, security="starttls")
    assert "tcp.timeout" in ids(report)
    assert time.monotonic() - started < config.budget + 1


async def test_port_25_relay_refused_without_login(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=25, mode="plain", auth="none")
    report = await check(
        dns, config_for(), server.host, port=25, security="none", requires_auth=False
    )
    assert "smtp.relay.denied" in ids(report)
    finding = report.by_id("smtp.relay.denied")[0]
    assert "554" in finding.evidence["reply"]
    # The relay test never gets as far as DATA: nothing is ever delivered.
    assert not any(c.upper().startswith("DATA") for c in server.commands)


async def test_port_25_for_a_mail_client_is_moved_to_587(dns, config_for, smtp_servers):
    server = await smtp_servers.start(port=25, mode="starttls")
    await smtp_servers.start(host=server.host, port=587, mode="starttls")
    report = await check(dns, config_for(), server.host, port=25, security="starttls")
    assert "settings.port25_blocked_likely" in ids(report)
    assert report.recommended is not None and report.recommended.port == 587
    assert "Port 587 with STARTTLS works on mail.example.test" in (
        report.by_id("settings.port25_blocked_likely")[0].detail
    )


@pytest.mark.parametrize(
    ("entered_security", "other_ports"),
    [
        # SSL/TLS chosen with port 25: 465 SSL/TLS changes one field, 587 STARTTLS two.
        ("ssl", (587, 465)),
        # No 587 on this server: 465 SSL/TLS is the way round the usual port 25 block.
        ("starttls", (465,)),
    ],
    ids=["ssl-entered-587-and-465-work", "only-465-works"],
)
async def test_port_25_finding_names_the_setting_the_report_recommends(
    dns, config_for, smtp_servers, entered_security, other_ports
):
    server = await smtp_servers.start(port=25, mode="starttls")
    for port in other_ports:
        mode = "ssl" if port == 465 else "starttls"
        await smtp_servers.start(host=server.host, port=port, mode=mode)
    report = await check(dns, config_for(), server.host, port=25, security=entered_security)
    assert report.recommended is not None
    assert (report.recommended.port, report.recommended.security) == (465, "ssl")
    found = report.by_id("settings.port25_blocked_likely")[0]
    assert "Port 465 with SSL/TLS works on mail.example.test: use that." in found.detail
    assert "587" not in found.detail
    assert found.evidence["recommended"] == {"host": NAME, "port": 465, "security": "ssl"}
    assert found.fix is not None and "465" in found.fix.summary


# ------------------------------------------------------------------ hostile servers


@pytest.mark.parametrize(
    ("behaviour", "finding_id"),
    [
        ("tarpit", "smtp.banner.timeout"),
        ("greeting_421", "smtp.banner.rejected"),
        ("silent_after_greeting", "smtp.ehlo.timeout"),
        ("huge_greeting", "smtp.reply.too_long"),
        ("huge_ehlo", "smtp.reply.too_long"),
        ("endless_line", "smtp.reply.too_long"),
        ("drop_after_starttls", "smtp.connection.dropped"),
        ("tls_alert", "tls.handshake.failed"),
        ("legacy_tls", "tls.version.legacy"),
        ("starttls_rejected", "tls.starttls.rejected"),
        ("ehlo_rejected", "smtp.ehlo.rejected"),
    ],
)
async def test_misbehaving_server_ends_in_its_finding(
    dns, config_for, smtp_servers: ServerPool, behaviour: str, finding_id: str
):
    mode = "ssl" if behaviour == "tls_alert" else "starttls"
    port = 465 if mode == "ssl" else 587
    server = await smtp_servers.start(port=port, mode=mode, behaviour=behaviour)
    config = config_for(budget=5.0)
    started = time.monotonic()
    report = await check(dns, config, server.host, port=port, security=mode)
    elapsed = time.monotonic() - started
    assert finding_id in ids(report), report.finding_ids
    assert report.verdict == "fail"
    assert elapsed < config.budget + 1.0


@pytest.mark.slow
async def test_tarpit_ends_within_the_budget_not_after(dns, config_for, smtp_servers):
    server = await smtp_servers.start(port=587, behaviour="tarpit")
    config = config_for(budget=2.0, timeouts=Timeouts(connect=1, greeting=30, command=30, tls=30))
    started = time.monotonic()
    report = await check(dns, config, server.host, port=587, security="starttls")
    assert time.monotonic() - started < config.budget + 1.0
    assert ids(report) & {"smtp.banner.timeout", "probe.budget_exhausted"}


async def test_banner_injection_is_kept_as_text(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls", behaviour="greeting_421")
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    finding = report.by_id("smtp.banner.rejected")[0]
    assert finding.evidence["reply"].startswith("421")


# ------------------------------------------------------------------ encryption choices


async def test_none_chosen_while_server_offers_starttls(dns, config_for, smtp_servers):
    server = await smtp_servers.start(port=587, mode="starttls")
    report = await check(dns, config_for(), server.host, port=587, security="none")
    assert "tls.none.selected" in ids(report)
    assert report.recommended is not None and report.recommended.security == "starttls"


async def test_starttls_not_offered(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="plain", auth="always")
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    assert "tls.starttls.not_offered" in ids(report)


@pytest.mark.parametrize(
    ("shape", "finding_id"),
    [
        ("expired", "tls.cert.expired"),
        ("not_yet_valid", "tls.cert.not_yet_valid"),
        ("wrong_name", "tls.cert.hostname_mismatch"),
        ("self_signed", "tls.cert.self_signed"),
        ("unknown_root", "tls.cert.untrusted"),
        ("missing_intermediate", "tls.cert.chain_incomplete"),
    ],
)
async def test_certificate_problems(
    dns, config_for, smtp_servers, cert_factory: CertFactory, shape: str, finding_id: str
):
    cert = (
        getattr(cert_factory, shape)()
        if shape == "wrong_name"
        else getattr(cert_factory, shape)(NAME)
    )
    server = await smtp_servers.start(port=587, mode="starttls", cert=cert)
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    assert finding_id in ids(report), report.finding_ids
    assert report.verdict == "fail"
    finding = report.by_id(finding_id)[0]
    assert finding.evidence["certificate"]["names"]
    if shape == "wrong_name":
        assert "other.example.net" in finding.detail
    if shape in {"unknown_root", "missing_intermediate"}:  # they name the issuer
        certificate = finding.evidence["certificate"]
        assert certificate["issuer_name"] in finding.detail  # readable: organisation (name)
        assert "O=" not in finding.detail and "O=" in certificate["issuer"]  # raw: evidence


async def test_certificate_expiring_soon(dns, config_for, smtp_servers, cert_factory):
    now = dt.datetime.now(dt.UTC)
    leaf = cert_factory.intermediate.issue_cert(
        NAME, not_before=now - dt.timedelta(days=80), not_after=now + dt.timedelta(days=5)
    )
    from tests.certs import _served

    server = await smtp_servers.start(port=587, mode="starttls", cert=_served(leaf))
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    finding = report.by_id("tls.cert.expiring_soon")[0]
    assert finding.severity == "warn"
    assert "4 days" in finding.title or "5 days" in finding.title


# ------------------------------------------------------------------ authentication


async def test_auth_offered_before_tls(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls", auth="always")
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    assert "auth.offered_before_tls" in ids(report)


async def test_auth_not_offered(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls", auth="none")
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    assert "auth.not_offered" in ids(report)
    assert report.verdict == "fail"


async def test_oauth_only(dns, config_for, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls", auth="xoauth2")
    report = await check(dns, config_for(), server.host, port=587, security="starttls")
    assert "auth.oauth_only" in ids(report)


@pytest.mark.parametrize(
    ("behaviour", "password", "finding_id"),
    [
        (None, TEST_PASSWORD, "auth.ok"),
        (None, "wrong-password", "auth.failed.credentials"),
        ("auth_bad_credentials", TEST_PASSWORD, "auth.failed.credentials"),
        ("auth_basic_disabled", TEST_PASSWORD, "auth.failed.basic_disabled"),
        ("auth_app_password", TEST_PASSWORD, "auth.failed.app_password_required"),
    ],
)
async def test_credential_test(
    dns, config_for, smtp_servers, behaviour: str | None, password: str, finding_id: str
):
    server = await smtp_servers.start(port=587, mode="starttls", behaviour=behaviour)
    await smtp_servers.start(host=server.host, port=465, mode="ssl", behaviour=behaviour)
    report = await check_login(dns, config_for(), server.host, password)
    assert finding_id in ids(report), report.finding_ids
    assert len(server.auth_attempts) == 1  # one attempt only: no lockouts
    # A refused password fails on every port alike: no other setting is recommended.
    assert report.recommended is None
    if finding_id != "auth.ok":
        assert report.verdict == "fail"


async def test_canary_password_never_leaves_the_engine(
    dns, config_for, smtp_servers: ServerPool, caplog
):
    canary = "CANARY-engine-7d1c"
    caplog.set_level(logging.DEBUG)
    server = await smtp_servers.start(port=587, mode="starttls", behaviour="auth_echo")
    report = await check_login(dns, config_for(), server.host, canary)
    assert report.by_id("auth.failed.credentials") or report.has("auth.ok") or report.findings
    assert canary not in report.to_json()
    assert canary not in repr(report)
    # The test server's own log (aiosmtpd's mail.log) is the peer's, not ours.
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    assert not any(canary in message for message in ours)
    for line in report.transcript:
        assert canary not in line.line


async def test_credentials_are_tried_on_the_setting_that_works(dns, config_for, smtp_servers):
    """SSL/TLS on a STARTTLS port: the login is still tested, on the working setting."""
    server, report = await check_ssl_on_starttls_port(
        dns, config_for, smtp_servers, user=TEST_USER, password=SecretStr(TEST_PASSWORD)
    )
    assert {"tls.mode.ssl_on_starttls_port", "auth.ok"} <= ids(report)
    assert len(server.auth_attempts) == 1


# ------------------------------------------------------------------ DNS and providers


async def test_name_that_does_not_exist(config_for):
    report = await diagnose(CheckRequest(target="nope.example.test:587"), config_for())
    assert ids(report) >= {"dns.host.nxdomain"}
    assert report.verdict == "fail"
    assert report.probes == ()


async def test_name_without_address(dns: DnsServer, config_for):
    dns.zone.add("noaddr.example.test", "TXT", "v=spf1 -all")
    report = await diagnose(CheckRequest(target="noaddr.example.test:587"), config_for())
    assert "dns.host.no_address" in ids(report)


@pytest.mark.slow
async def test_dns_that_never_answers(dns: DnsServer, config_for):
    dns.zone.set("slow.example.test", Behaviour.DROP)
    started = time.monotonic()
    report = await diagnose(CheckRequest(target="slow.example.test:587"), config_for())
    assert "dns.timeout" in ids(report)
    assert time.monotonic() - started < 6


async def test_microsoft_365_found_from_mx(dns: DnsServer, config_for, smtp_servers, cert_factory):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("smtp.office365.com")
    )
    dns.zone.add("contoso.test", "MX", "0 contoso-test.mail.protection.outlook.com.")
    dns.zone.add("contoso.test", "TXT", "v=spf1 include:spf.protection.outlook.com -all")
    dns.zone.add("_dmarc.contoso.test", "TXT", "v=DMARC1; p=reject")
    dns.zone.host("smtp.office365.com", server.host)
    report = await diagnose(
        CheckRequest(target="adele@contoso.test", client="new"),
        config_for(),
        today=dt.date(2026, 11, 26),
    )
    assert report.provider is not None
    assert (report.provider.name, report.provider.source) == ("Microsoft 365", "mx")
    assert report.input.host == "smtp.office365.com" and report.input.port == 587
    assert "provider.detected" in ids(report)
    assert "provider.policy.m365_basic_auth_retirement" in ids(report)
    entered = next(p for p in report.probes if p.role == "entered")
    assert entered.outcome == "ok"


async def test_wrong_host_for_provider_is_compared(dns, config_for, smtp_servers, cert_factory):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("smtp.office365.com")
    )
    dns.zone.host("smtp.office365.com", server.host)
    report = await diagnose(
        CheckRequest(target="smtp.office365.com", port=465, security="ssl"), config_for()
    )
    assert "settings.differ_from_provider" in ids(report)
    assert report.recommended is not None, report.probes
    assert (report.recommended.port, report.recommended.security) == (587, "starttls")


async def test_sender_domain_findings_come_through(dns: DnsServer, config_for, smtp_servers):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.add("twospf.test", "TXT", "v=spf1 -all")
    dns.zone.add("twospf.test", "TXT", "v=spf1 ~all")
    report = await check(
        dns, config_for(), server.host, port=587, security="starttls", email="bob@twospf.test"
    )
    assert {"dns.mx.missing", "dns.spf.multiple", "dns.dmarc.missing"} <= ids(report)


async def test_error_text_is_confirmed_by_the_probes(dns, config_for, smtp_servers):
    _, report = await check_ssl_on_starttls_port(
        dns,
        config_for,
        smtp_servers,
        error_text="Task 'Sending' reported error (0x800CCC0F) : 'The connection to the "
        "server was interrupted.'",
    )
    assert report.error_text_causes
    assert any(cause.confirmed for cause in report.error_text_causes)


# ------------------------------------------------------------------ target policy


@pytest.mark.parametrize("target", ["127.0.0.1", "127.1", "2130706433", "[::1]", "0x7f.1"])
async def test_private_targets_refused_by_default(dns, config_for, target: str):
    with pytest.raises(TargetRefused):
        await diagnose(CheckRequest(target=target), config_for(allow_private=False))


async def test_name_resolving_to_loopback_is_refused_without_connecting(
    dns: DnsServer, config_for, smtp_servers: ServerPool
):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    with pytest.raises(TargetRefused, match="points to a private network") as caught:
        await diagnose(CheckRequest(target=NAME), config_for(allow_private=False))
    assert "loopback" in caught.value.detail  # the address and its kind: for the operator
    assert server.host not in str(caught.value)
    assert server.connections == 0


async def test_allowlisted_cidr_lifts_the_ban(dns: DnsServer, config_for, smtp_servers):
    server = await smtp_servers.start(port=587, mode="starttls")
    config = config_for(allow_private=False, allow_targets="127.77.0.0/16")
    report = await check(dns, config, server.host, port=587, security="starttls")
    assert next(p for p in report.probes if p.role == "entered").outcome == "ok"


async def test_port_outside_the_allowed_list_is_refused(config_for):
    with pytest.raises(TargetRefused, match="8080"):
        await diagnose(CheckRequest(target="mail.example.test:8080"), config_for())


async def test_rebinding_name_is_resolved_once(dns: DnsServer, config_for, smtp_servers):
    """The first answer is pinned; a second, different answer is never asked for or used."""
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    report = await diagnose(CheckRequest(target=NAME, port=587), config_for())
    assert dns.count(NAME, "A") == 1
    assert {p.address for p in report.probes if p.address} == {server.host}


@pytest.mark.slow
async def test_an_address_with_no_server_to_find_is_a_report_not_an_input_error():
    # Valid input with a real problem (issue 15): DNS that never answers still ends in a
    # report, within the budget, saying no outgoing server could be found.
    started = time.perf_counter()
    report = await diagnose(
        CheckRequest(target="x@nonexistent-domain-with-no-servers.test"),
        EngineConfig(nameservers=("127.0.0.1:9",), budget=2, timeouts=Timeouts(dns=0.3)),
    )
    assert report.verdict == "fail" and report.has("settings.no_server_found")
    assert report.probes == ()
    assert time.perf_counter() - started < 4


def test_loopback_addresses_are_distinct():
    assert next_loopback() != next_loopback()


async def test_progress_events_cover_every_step(dns, config_for, smtp_servers):
    server = await smtp_servers.start(port=587, mode="starttls")
    events = []

    async def record(event):
        events.append(event)

    dns.zone.host(NAME, server.host)
    await diagnose(CheckRequest(target=NAME, port=587), config_for(), on_progress=record)
    steps = {e.step for e in events}
    assert {"dns", "587/starttls"} <= steps
    assert any(e.step == "587/starttls" and e.state == "done" for e in events)


async def test_failing_progress_callback_does_not_break_the_diagnosis(
    dns, config_for, smtp_servers
):
    server = await smtp_servers.start(port=587, mode="starttls")

    def explode(event):
        raise RuntimeError("display broke")

    dns.zone.host(NAME, server.host)
    report = await diagnose(CheckRequest(target=NAME, port=587), config_for(), on_progress=explode)
    assert report.verdict in {"pass", "warn"}


async def test_user_side_failure_is_pointed_at_the_path(dns, config_for, smtp_servers):
    """Works from here, fails on the user's computer: the report says where to look."""
    server = await smtp_servers.start(port=587, mode="starttls")
    plain = await check(dns, config_for(), server.host, port=587, security="starttls")
    assert "client.server_ok_from_here" not in ids(plain)
    report = await check(
        dns, config_for(), server.host, port=587, security="starttls", user_reports_failure=True
    )
    finding = report.by_id("client.server_ok_from_here")[0]
    assert finding.fix is not None
