"""Named report scenarios, each a real diagnosis of loopback aiosmtpd servers.

Every scenario names the servers to start on one loopback address (which the test DNS
server calls mail.example.test) and the settings the user entered. `run_scenario` runs the
engine against them and returns the report and the progress events, made stable for a
snapshot: durations fixed, loopback addresses and certificate dates replaced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from diagnostics import CheckRequest, EngineConfig, Timeouts, diagnose
from diagnostics._models import ProbePlan, ProbeSummary, Progress, Report
from tests import factories
from tests.certs import CertFactory
from tests.dns_server import DnsServer
from tests.servers import TEST_PASSWORD, TEST_USER, ServerPool, next_loopback

NAME = "mail.example.test"
FAST = Timeouts(dns=1.0, connect=1.0, greeting=1.5, command=1.5, tls=1.5)
# What a stable snapshot shows instead of this run's facts.
TOTAL_MS = 412.0
DNS_MS = 3.0
PROBE_MS = (38.0, 21.0, 24.0, 19.0, 27.0, 22.0)
SHOWN_ADDRESS = "192.0.2.25"
SHOWN_TODAY = dt.date(2026, 6, 15)
_LOOPBACK = re.compile(r"\b127\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TRUSTME_CA = re.compile(r"(Testing CA) #[\w-]+")  # trustme names each CA at random


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str  # file name of its snapshot
    title: str  # what happened, for docs/report.md
    servers: tuple[dict[str, Any], ...]  # SmtpTestServer keywords; cert: a CertFactory shape
    request: dict[str, Any]  # CheckRequest fields besides the target
    target: str = NAME  # what the user typed: the server's name, or only an email address
    zone: tuple[tuple[str, dict[str, Any]], ...] = ()  # DNS records besides NAME's address


def _ok_pair(**extra: Any) -> tuple[dict[str, Any], ...]:
    return ({"port": 587, "mode": "starttls", **extra}, {"port": 465, "mode": "ssl", **extra})


LOGIN = {"user": TEST_USER, "password": TEST_PASSWORD}
# What Postfix with Dovecot SASL answers a wrong password (tests.servers' own is Gmail's).
REPLY_POSTFIX_AUTH_FAILED = "535 5.7.8 Error: authentication failed: authentication failure"

SCENARIOS = (
    Scenario(
        "pass",
        "Everything works (587, STARTTLS, the password accepted)",
        _ok_pair(),
        {"port": 587, "security": "starttls", **LOGIN},
    ),
    Scenario(
        "warn",
        "Works, with a warning (the server offers the login before encryption)",
        _ok_pair(auth="always"),
        {"port": 587, "security": "starttls"},
    ),
    Scenario(
        "ssl_on_starttls_port",
        "SSL/TLS chosen on port 587, which expects STARTTLS",
        _ok_pair(),
        {"port": 587, "security": "ssl"},
    ),
    Scenario(
        "starttls_on_ssl_port",
        "STARTTLS chosen on port 465, which expects SSL/TLS",
        _ok_pair(),
        {"port": 465, "security": "starttls"},
    ),
    Scenario(
        "port_25",
        "Port 25 entered for a mail client (587 works)",
        ({"port": 25, "mode": "starttls"}, {"port": 587, "mode": "starttls"}),
        {"port": 25, "security": "starttls"},
    ),
    Scenario(
        "expired_certificate",
        "The server's certificate has expired",
        _ok_pair(cert="expired"),
        {"port": 587, "security": "starttls"},
    ),
    Scenario(
        "wrong_password",
        "The settings are right, the password is wrong",
        _ok_pair(auth_reply=REPLY_POSTFIX_AUTH_FAILED),
        {"port": 587, "security": "starttls", "user": TEST_USER, "password": "not-the-password"},
    ),
    Scenario(
        "basic_auth_disabled",
        "Microsoft 365 refuses the password (SMTP AUTH disabled for the tenant)",
        _ok_pair(behaviour="auth_basic_disabled"),
        {"port": 587, "security": "starttls", **LOGIN},
    ),
    Scenario(
        "server_ok_user_fails",
        "The server works from here, the user says it fails on their computer",
        _ok_pair(),
        {"port": 587, "security": "starttls", "user_reports_failure": True},
    ),
    Scenario(
        "nothing_reachable",
        "Nothing answers on any port",
        (),
        {"port": 587, "security": "starttls"},
    ),
    Scenario(
        "address_only",
        "Only an email address given: the domain's SRV record names the server, which works",
        _ok_pair(),
        {},
        target="adele@contoso.test",
        zone=(
            ("contoso.test", {"MX": [f"10 {NAME}."], "TXT": ["v=spf1 mx -all"]}),
            ("_dmarc.contoso.test", {"TXT": ["v=DMARC1; p=quarantine"]}),
            ("_submission._tcp.contoso.test", {"SRV": [f"0 1 587 {NAME}."]}),
        ),
    ),
    Scenario(
        "no_server_found",
        "Only an email address given, and no outgoing server can be found for its domain",
        (),
        {},
        target="adele@fabrikam.test",
        zone=(
            ("fabrikam.test", {"TXT": ["v=spf1 -all"]}),
            ("_dmarc.fabrikam.test", {"TXT": ["v=DMARC1; p=reject"]}),
        ),
    ),
)
BY_NAME = {s.name: s for s in SCENARIOS}


def engine_config(dns: DnsServer, ca_bundle: Path) -> EngineConfig:
    return factories.engine_config(dns, ca_bundle, timeouts=FAST, budget=6.0)


async def run_scenario(
    scenario: Scenario,
    *,
    dns: DnsServer,
    ca_bundle: Path,
    certs: CertFactory,
    stable: bool = True,
) -> tuple[Report, list[Progress]]:
    """Start the scenario's servers, diagnose, and return the report and the progress
    events: stable for a snapshot (see stable_report), or as they came when not `stable`."""
    events: list[Progress] = []
    async with ServerPool() as pool:
        host = next_loopback()
        for spec in scenario.servers:
            spec = dict(spec)
            if "cert" in spec:
                spec["cert"] = getattr(certs, spec["cert"])(NAME)
            server = await pool.start(host=host, **spec)
            host = server.host
        dns.zone.host(NAME, host, ptr=True)
        for name, records in scenario.zone:
            dns.zone.set(name, records)
        fields = dict(scenario.request)
        if "password" in fields:
            fields["password"] = SecretStr(fields["password"])
        report = await diagnose(
            CheckRequest(target=scenario.target, **fields),
            engine_config(dns, ca_bundle),
            on_progress=events.append,
        )
    if not stable:
        return report, events
    fixed = stable_report(report)
    durations = {_step(p): p.elapsed_ms for p in fixed.probes}
    return fixed, [stable_event(e, durations) for e in events]


def stable_report(report: Report) -> Report:
    """The report with this run's durations replaced by fixed ones."""
    probes = tuple(
        p.model_copy(update={"elapsed_ms": PROBE_MS[i % len(PROBE_MS)], "steps_ms": {}})
        for i, p in enumerate(report.probes)
    )
    timings = {"total": TOTAL_MS, "dns": DNS_MS}
    timings.update({p: PROBE_MS[0] for p in report.timings_ms if p.startswith("probe ")})
    return report.model_copy(
        update={
            "probes": probes,
            "timings_ms": timings,
            "started_at": dt.datetime(2026, 6, 15, 9, 30, tzinfo=dt.UTC),
            "tool_version": None,
        }
    )


def stable_event(event: Progress, durations: dict[str, float]) -> Progress:
    """The event with the stable report's durations (DNS_MS for the lookups)."""
    duration = None
    if event.duration_ms is not None:
        duration = durations.get(event.step, DNS_MS)
    return dataclasses.replace(event, elapsed_ms=PROBE_MS[0], duration_ms=duration)


def _step(probe: ProbeSummary) -> str:
    """The progress step of a probe (ProbePlan.label)."""
    plan = ProbePlan(probe.port, probe.security, probe.role, probe.host)  # type: ignore[arg-type]
    return plan.label


def stable_text(text: str) -> str:
    """Loopback addresses and dates of this run replaced; no trailing blanks."""
    text = _LOOPBACK.sub(SHOWN_ADDRESS, text)
    text = _DATE.sub(_shift_date, text)
    text = _TRUSTME_CA.sub(lambda m: m[1] + " #" + "0" * (len(m[0]) - len(m[1]) - 2), text)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def _shift_date(match: re.Match[str]) -> str:
    """A date near today (a certificate made for the test) becomes the same distance from
    SHOWN_TODAY; fixed dates (trustme's year 3000) stay."""
    try:
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return match[0]
    offset = day - dt.datetime.now(dt.UTC).date()
    if abs(offset.days) > 3 * 366:
        return match[0]
    return (SHOWN_TODAY + offset).isoformat()
