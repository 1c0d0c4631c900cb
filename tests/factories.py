"""Reports and probe summaries built by hand, for tests of what reads a report (the client
check, the fixes, the views) without running a diagnosis. Defaults are a plain, passing check;
a test names only what it is about."""

from __future__ import annotations

from typing import Any

from diagnostics._models import OutlookClient, ProbeSummary, Report, ReportInput, Security, Verdict

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
