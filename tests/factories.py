"""Reports and probe summaries built by hand, for tests of what reads a report (the client
check, the fixes, the views) without running a diagnosis. Defaults are a plain, passing check;
a test names only what it is about. Also the engine's configuration (and the CLI's flags for
it) pointed at a test DNS server, as the engine tests and the fault suite run it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from diagnostics._config import EngineConfig, Timeouts
from diagnostics._models import (
    DiscoveredServer,
    DiscoverySummary,
    ErrorTextCause,
    OutlookClient,
    ProbeSummary,
    Report,
    ReportInput,
    Security,
    Verdict,
)

if TYPE_CHECKING:
    from tests.dns_server import DnsServer

HOST = "mail.contoso-mail.de"


def probe(
    port: int = 587,
    outcome: str = "ok",
    *,
    security: Security | None = None,
    address: str = "192.0.2.10",
    cert: dict[str, Any] | None = None,
    **fields: Any,
) -> ProbeSummary:
    """One probe's summary; SSL/TLS on 465, STARTTLS elsewhere unless `security` says."""
    security = security or (Security.SSL if port == 465 else Security.STARTTLS)
    return ProbeSummary(
        port=port, security=security, address=address, outcome=outcome, certificate=cert, **fields
    )


def report(
    host: str | None = HOST,
    port: int | None = 587,
    *,
    target: str | None = None,
    security: Security | None = None,
    client: OutlookClient | str = OutlookClient.CLASSIC,
    email: str | None = None,
    user: str | None = None,
    error_text: str | None = None,
    verdict: Verdict = Verdict.PASS,
    **fields: Any,
) -> Report:
    """A report for these settings; `fields` are the Report's own (probes, findings, ...)."""
    return Report(
        input=ReportInput(
            target=target or host or "user@example.com",
            host=host,
            port=port,
            security=security,
            email=email,
            user=user,
            client=OutlookClient(client),
            error_text=error_text,
        ),
        verdict=verdict,
        **fields,
    )


def address_discovery(host: str = HOST) -> DiscoverySummary:
    """Only an address was given: the domain's SRV record named HOST, 587, STARTTLS."""
    server = DiscoveredServer(
        host=host,
        port=587,
        security=Security.STARTTLS,
        sources=("srv",),
        words="published by the domain (SRV)",
        confirmed=True,
    )
    return DiscoverySummary(domain="contoso.test", servers=(server,))


def starttls_report(host: str = "mail.example-corp.com", **fields: Any) -> Report:
    """From here, 587 offers STARTTLS and 465 answers: what a stripped STARTTLS on the user's
    side is compared with."""
    probes = (probe(587, starttls_offered=True, greeting=f"220 {host}"), probe(465))
    return report(host, 587, probes=probes, **fields)


def unconfirmed_cause(code: str | None, cause: str, *finding_ids: str) -> ErrorTextCause:
    """What a pasted Outlook error suggests, which the probes did not confirm."""
    return ErrorTextCause(code=code, cause=cause, confirmed=False, finding_ids=finding_ids)


def engine_config(
    dns: DnsServer, ca_bundle: Path, *, timeouts: Timeouts, **overrides: Any
) -> EngineConfig:
    """The engine on the test resolver and CA, loopback allowed, a 4 s budget, no .env file;
    `overrides` are EngineConfig's own fields."""
    values: dict[str, Any] = {
        "nameservers": (dns.nameserver,),
        "ca_bundle": ca_bundle,
        "allow_private": True,
        "budget": 4.0,
        "timeouts": timeouts,
    }
    values.update(overrides)
    return EngineConfig(_env_file=None, **values)


def engine_flags(dns: DnsServer, ca_bundle: Path, *, timeout: float) -> list[str]:
    """The same settings as `smtpcheck check` options (per-step timeouts come from the
    environment: SMTPCHECK_TIMEOUTS)."""
    return [
        "--nameserver",
        dns.nameserver,
        "--ca-bundle",
        str(ca_bundle),
        "--allow-private",
        "--timeout",
        f"{timeout:g}",
    ]
