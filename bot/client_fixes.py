"""Fix steps for the client-check comparison's findings, for the user's Outlook."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from diagnostics import Endpoint, Finding, OutlookClient, Report
from diagnostics.client_check import ComparisonResult
from diagnostics.knowledge import FixContext, Knowledge, load_knowledge

log = logging.getLogger("smtpcheck.bot")

# While the knowledge base has no entry of its own for a client-side finding, the entry of
# the server-side finding with the same remedy is used: a port blocked on the way gets the
# steps of tcp.timeout ("port N gets no answer, use port M"), filled with the blocked port
# and the port the user's computer can reach. The knowledge base's own entry wins once added.
FALLBACK_FIX = {
    "client.port_blocked": "tcp.timeout",
    "client.port25_blocked": "tcp.timeout",
}


def attach_fixes(result: ComparisonResult, report: Report) -> ComparisonResult:
    """The comparison with each finding's fix for the Outlook named in the report."""
    findings = with_fixes(result.findings, report, recommended=result.recommended)
    return result.model_copy(update={"findings": findings})


def with_fixes(
    findings: Iterable[Finding], report: Report, *, recommended: Endpoint | None = None
) -> tuple[Finding, ...]:
    """Findings the engine did not make, with their fixes as the engine would attach them."""
    kb = load_knowledge()
    provider = None
    if report.provider is not None and report.provider.key:
        try:
            provider = kb.provider(report.provider.key)
        except KeyError:
            provider = None
    recommended = recommended or report.recommended
    context = FixContext(
        host=report.input.host or (recommended.host if recommended else None),
        port=report.input.port,
        security=report.input.security,
        recommended=recommended,
        provider=provider,
        user=report.input.user,
        email=report.input.email,
    )
    client = report.input.client
    return tuple(_with_fix(kb, f, client, context) for f in findings)


def _with_fix(
    kb: Knowledge, finding: Finding, client: OutlookClient, context: FixContext
) -> Finding:
    port = finding.evidence.get("port")
    if isinstance(port, int) and not isinstance(port, bool):
        context = context.model_copy(update={"port": port})  # the blocked port, not the entered
    try:
        fixed = kb.with_fix(finding, client, context)
        substitute = FALLBACK_FIX.get(finding.id)
        if fixed.fix is None and substitute and kb.fix_entry(finding.id) is None:
            borrowed = kb.with_fix(finding.model_copy(update={"id": substitute}), client, context)
            fixed = finding.model_copy(update={"fix": borrowed.fix})
        return fixed
    except Exception:  # a gap in the knowledge base must not cost the user the verdict
        log.exception("no fix for %s", finding.id)
        return finding
