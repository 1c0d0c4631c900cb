"""The one way the engine makes a finding: it passes facts, the catalog says the rest.

    >>> finding("dns.spf.missing", detail="...", evidence={"domain": "contoso.com"})

Severity and headline come from ``knowledge/data/findings.yaml``; the fix is attached later,
from the same knowledge base (``Knowledge.with_fix``). The headline's ``{placeholders}`` are
filled from the evidence and the extra facts (facts win); a fact named by one of the entry's
``cases`` switches that case's severity or headline on when it is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diagnostics._models import Finding
from diagnostics.knowledge import load_knowledge


def finding(
    finding_id: str,
    *,
    detail: str = "",
    evidence: Mapping[str, Any] | None = None,
    **facts: object,
) -> Finding:
    """The finding `finding_id` for these facts; KeyError when the catalog lacks the ID."""
    spec = load_knowledge().finding(finding_id)
    values = {**(evidence or {}), **facts}
    severity, headline = spec.severity, spec.headline or spec.title
    for fact, case in spec.cases.items():
        if values.get(fact):
            severity = case.severity or severity
            headline = case.headline or headline
    return Finding(
        id=finding_id,
        severity=severity,
        title=headline.format_map(_Filled(values)),
        detail=detail,
        evidence=dict(evidence or {}),
    )


class _Filled(dict[str, object]):
    """Template values: None reads as nothing, a fact the engine did not pass as "?"."""

    def __getitem__(self, key: str) -> object:
        value = super().get(key, "?")
        return "" if value is None else value
