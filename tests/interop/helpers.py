"""Reading reports in the interop tests."""

from __future__ import annotations

import json

from diagnostics import Report, Severity
from diagnostics._models import ProbeSummary


def entered_probe(report: Report) -> ProbeSummary:
    """The probe of the setting as entered."""
    probes = [p for p in report.probes if p.role == "entered"]
    assert len(probes) == 1, report.probes
    return probes[0]


def error_ids(report: Report) -> list[str]:
    """IDs of the error-severity findings."""
    return [f.id for f in report.findings if f.severity is Severity.ERROR]


def recommended(report: Report) -> tuple[str, int, str] | None:
    """`recommended` as (host, port, security), or None."""
    r = report.recommended
    return None if r is None else (r.host, r.port, str(r.security))


def explain(report: Report) -> str:
    """A compact account of a report for assertion messages."""
    return json.dumps(
        {
            "findings": [(f.id, str(f.severity), f.title) for f in report.findings],
            "recommended": recommended(report),
            "probes": [
                (p.port, str(p.security), p.role, p.address, p.outcome, p.tls_version)
                for p in report.probes
            ],
        },
        indent=1,
    )
