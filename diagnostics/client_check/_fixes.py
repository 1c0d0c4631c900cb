"""Fix steps for the comparison's findings, for the Outlook named in the report.

The engine attaches fixes to its own findings; the comparison runs later (the user pastes
what their computer saw), so its findings get theirs here, from the same knowledge base and
with the same context the engine would have used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from diagnostics._models import Endpoint, Finding, OutlookClient, Report
from diagnostics.client_check._model import ComparisonResult
from diagnostics.knowledge import FixContext, Knowledge, load_knowledge

log = logging.getLogger("smtpcheck.client_check")


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
    return tuple(_with_fix(kb, f, report.input.client, context) for f in findings)


def _with_fix(
    kb: Knowledge, finding: Finding, client: OutlookClient, context: FixContext
) -> Finding:
    port = finding.evidence.get("port")
    if isinstance(port, int) and not isinstance(port, bool):
        context = context.model_copy(update={"port": port})  # the blocked port, not the entered
    try:
        return kb.with_fix(finding, client, context)
    except Exception:  # a gap in the knowledge base must not cost the user the verdict
        log.exception("no fix for %s", finding.id)
        return finding
