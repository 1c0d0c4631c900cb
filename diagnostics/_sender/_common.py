"""What the sender-domain checks share."""

from __future__ import annotations

from diagnostics._dns import DnsError
from diagnostics._findings import finding
from diagnostics._models import Finding

EVIDENCE_LIST_MAX = 10  # at most this many records or names in a finding's evidence


def lookup_failed(
    domain: str, failed: list[tuple[str, DnsError]], *, reverse_dns: bool = False
) -> Finding:
    checks = [{"check": check, "name": e.name, "error": e.reason} for check, e in failed]
    what = ", ".join(dict.fromkeys(check for check, _e in failed))
    return finding(
        "dns.lookup_failed",
        detail=(
            "The DNS servers did not answer, or answered with an error, for "
            + ", ".join(dict.fromkeys(e.name for _c, e in failed))
            + ". Receiving servers may have the same trouble and defer or refuse mail."
        ),
        evidence={"domain": domain, "checks": checks},
        what=what,
        reverse_dns=reverse_dns,
    )
