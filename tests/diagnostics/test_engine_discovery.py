"""Email address only: the engine finds the settings (ISPDB, autoconfig, SRV, Microsoft 365,
guesses), probes them, and says where they came from; real DNS, SMTP and HTTPS servers on
loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from diagnostics import CheckRequest, EngineConfig, Timeouts, diagnose
from diagnostics._models import Report
from diagnostics.recommend import Advice, settings_advice
from tests.certs import CertFactory
from tests.dns_server import DnsServer, Zone
from tests.https_server import XML_BOMB, HttpsServer
from tests.servers import TEST_PASSWORD, TEST_USER

FAST = Timeouts(dns=1.0, connect=1.0, greeting=1.5, command=1.5, tls=1.5)
APEXES = ("test", "in-addr.arpa", "ip6.arpa", "web.de", "office365.com")
PATH = "/mail/config-v1.1.xml"


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    async with DnsServer(Zone(apexes=APEXES)) as server:
        yield server


@pytest.fixture
async def https(cert_factory: CertFactory) -> AsyncIterator[HttpsServer]:
    async with HttpsServer(cert_factory, "autoconfig.ac.test", "autoconfig.bomb.test") as s:
        yield s


@pytest.fixture
def config_for(dns: DnsServer, ca_bundle: Path, https: HttpsServer):
    def make(**overrides) -> EngineConfig:
        values = dict(
            nameservers=(dns.nameserver,), ca_bundle=ca_bundle, allow_private=True,
            budget=8.0, timeouts=FAST, https_port=https.port,
        )  # fmt: skip
        values.update(overrides)
        return EngineConfig(**values)

    return make


def by_id(report: Report, finding_id: str):
    found = report.by_id(finding_id)
    assert found, f"{finding_id} not in {report.finding_ids}"
    return found[0]


def config_xml(host: str, port: int, socket: str) -> bytes:
    return (
        '<clientConfig version="1.1"><emailProvider id="ac.test">'
        f'<outgoingServer type="smtp"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket}</socketType></outgoingServer></emailProvider></clientConfig>"
    ).encode()


async def test_ispdb_by_domain_documented_and_confirmed(
    dns, config_for, smtp_servers, cert_factory
):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("smtp.web.de")
    )
    dns.zone.host("smtp.web.de", server.host)
    report = await diagnose(CheckRequest(target="someone@web.de"), config_for())
    assert (report.input.host, report.input.port) == ("smtp.web.de", 465)  # ISPDB's first
    found = by_id(report, "settings.discovered")
    assert "documented by the provider (ISPDB)" in found.title
    servers = {(s.host, s.port): s for s in report.discovery.servers}
    assert servers[("smtp.web.de", 587)].confirmed is True
    assert servers[("smtp.web.de", 465)].confirmed is False  # nothing listens on 465
    assert servers[("smtp.web.de", 465)].sources == ("ispdb",)
    states = {s.source: s.state for s in report.discovery.sources}
    assert states["ispdb"] == "found" and states["autoconfig"] == "skipped"
    # The documented 587 works while 465 does not: the recommendation says so.
    assert report.recommended is not None and report.recommended.port == 587
    assert "provider.unknown" not in report.finding_ids  # nothing was guessed


async def test_ispdb_by_mx_host(dns, config_for, smtp_servers, cert_factory):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("smtp.web.de")
    )
    dns.zone.host("smtp.web.de", server.host)
    dns.zone.set("contoso.test", {"MX": ["10 mx01.web.de."]})
    dns.zone.host("mx01.web.de", "127.0.0.1")
    report = await diagnose(CheckRequest(target="someone@contoso.test"), config_for())
    assert report.input.host == "smtp.web.de"
    ispdb = next(s for s in report.discovery.sources if s.source == "ispdb")
    assert ispdb.state == "found" and "MX host (web.de)" in ispdb.detail


async def test_srv_published_by_the_domain_and_confirmed(
    dns, config_for, smtp_servers, cert_factory
):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("submit.srv.test")
    )
    dns.zone.host("submit.srv.test", server.host)
    dns.zone.set("_submission._tcp.srv.test", {"SRV": ["0 1 587 submit.srv.test."]})
    dns.zone.set("srv.test", {"TXT": ["v=spf1 -all"]})
    report = await diagnose(CheckRequest(target="someone@srv.test"), config_for())
    assert report.input.host == "submit.srv.test"
    found = by_id(report, "settings.discovered")
    assert "published by the domain (SRV)" in found.title and found.evidence["confirmed"] is True
    assert report.discovery.servers[0].confirmed is True


async def test_autoconfig_found_and_disagreeing_with_srv(
    dns, config_for, https, smtp_servers, cert_factory
):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("good.ac.test")
    )
    dns.zone.host("autoconfig.ac.test", "127.0.0.1")
    dns.zone.host("dead.ac.test", "127.0.0.1")  # nothing listens there on 465
    dns.zone.host("good.ac.test", server.host)
    dns.zone.set("_submission._tcp.ac.test", {"SRV": ["0 1 587 good.ac.test."]})
    https.route("autoconfig.ac.test", PATH, body=config_xml("dead.ac.test", 465, "SSL"))
    report = await diagnose(CheckRequest(target="someone@ac.test"), config_for())
    assert report.input.host == "dead.ac.test"  # autoconfig comes before SRV
    assert "published by the domain (autoconfig)" in by_id(report, "settings.discovered").title
    disagree = by_id(report, "settings.sources_disagree")
    assert "good.ac.test port 587 works" in disagree.title
    assert report.recommended is not None and report.recommended.host == "good.ac.test"


async def test_autoconfig_xml_bomb_is_a_finding_not_a_stall(
    dns, config_for, https, smtp_servers, cert_factory
):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("smtp.bomb.test")
    )
    dns.zone.host("autoconfig.bomb.test", "127.0.0.1")
    dns.zone.host("smtp.bomb.test", server.host)
    https.route("autoconfig.bomb.test", PATH, body=XML_BOMB)
    report = await diagnose(CheckRequest(target="someone@bomb.test"), config_for())
    unusable = by_id(report, "settings.autoconfig.unusable")
    assert "entities" in unusable.detail and unusable.fix is not None
    # Then the guess, probed and said to be one.
    assert report.input.host == "smtp.bomb.test"
    assert by_id(report, "settings.discovered").evidence["from"] == "guessed"
    assert "provider.unknown" in report.finding_ids


async def test_microsoft365_from_mx(dns, config_for, smtp_servers, cert_factory):
    server = await smtp_servers.start(
        port=587, mode="starttls", cert=cert_factory.valid("smtp.office365.com")
    )
    dns.zone.host("smtp.office365.com", server.host)
    dns.zone.set("m365.test", {"MX": ["0 m365-test.j-v1.mx.microsoft."]})
    report = await diagnose(CheckRequest(target="someone@m365.test"), config_for())
    assert (report.input.host, report.input.port) == ("smtp.office365.com", 587)
    assert report.provider is not None and report.provider.key == "microsoft365"
    assert "provider.microsoft365.classic_uses_exchange" in report.finding_ids
    sources = by_id(report, "settings.discovered").evidence["sources"]
    assert sources[0] == "provider" and "microsoft365" in sources


async def test_broken_dns_still_gets_a_report(dns, config_for):
    dns.zone.set("broken.test", {"TXT": ["v=spf1 -all", "v=spf1 include:x.test -all"]})
    report = await diagnose(CheckRequest(target="someone@broken.test"), config_for())
    assert report.verdict == "fail"
    assert {"dns.spf.multiple", "dns.mx.missing", "settings.no_server_found"} <= set(
        report.finding_ids
    )
    missing = by_id(report, "settings.no_server_found")
    assert missing.severity == "error" and "broken.test" in missing.fix.summary
    assert report.probes == () and report.input.host is None and report.input.port is None
    assert settings_advice(report) is Advice.NOT_FOUND  # not "none of the settings worked"


@pytest.mark.slow
async def test_cli_exits_1_for_a_domain_with_no_mx_and_two_spf(dns, ca_bundle):
    dns.zone.set("twospf.test", {"TXT": ["v=spf1 -all", "v=spf1 ~all"]})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "diagnostics.cli", "check", "someone@twospf.test", "--json",
        "--nameserver", dns.nameserver, "--allow-private", "--timeout", "6",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1, err.decode()
    ids = {f["id"] for f in json.loads(out)["findings"]}
    assert {"dns.spf.multiple", "dns.mx.missing", "settings.no_server_found"} <= ids


async def test_no_encryption_with_a_password_is_not_tried_in_clear(dns, config_for, smtp_servers):
    server = await smtp_servers.start(port=587, mode="plain", auth="always")
    dns.zone.host("plain.test", server.host)
    request = CheckRequest(
        target="plain.test", port=587, security="none", user=TEST_USER,
        password=SecretStr(TEST_PASSWORD),
    )  # fmt: skip
    report = await diagnose(request, config_for())
    assert "auth.offered_before_tls" in report.finding_ids
    assert "auth.not_tried_cleartext" in report.finding_ids
    assert server.auth_attempts == []  # the password never left
    allowed = await diagnose(request, config_for(allow_cleartext_login=True))
    assert "auth.tried_cleartext" in allowed.finding_ids and "auth.ok" in allowed.finding_ids
    assert len(server.auth_attempts) == 1


@pytest.mark.slow
async def test_no_server_found_with_a_client_check_still_reports(dns, ca_bundle):
    # The report stands; only the script for the user's computer cannot be made (no server).
    dns.zone.set("twospf.test", {"TXT": ["v=spf1 -all", "v=spf1 ~all"]})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "diagnostics.cli", "check", "someone@twospf.test",
        "--print-client-check", "windows",
        "--nameserver", dns.nameserver, "--allow-private", "--timeout", "6",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "100"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1, err.decode()
    assert "twospf.test" in out.decode()
    assert err.decode().strip().splitlines() == [
        "smtpcheck: no check for the user's computer: "
        "the report names no server to test from the user's computer"
    ]
