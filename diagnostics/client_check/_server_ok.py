"""The server works from here, yet the user's Outlook cannot connect: say so plainly."""

from __future__ import annotations

from diagnostics._findings import finding
from diagnostics._models import Finding, Report, Security, Severity

SERVER_OK_FROM_HERE = "client.server_ok_from_here"

# Findings that explain a connection or certificate failure from the server's side.
_SERVER_SIDE = (
    "tcp.",
    "dns.host.",
    "dns.timeout",
    "smtp.banner.",
    "smtp.connection.",
    "smtp.ehlo.",
    "tls.",
)
# Outlook errors that mean "could not connect", "connection broken" or "certificate/TLS".
_CONNECTION_CODES = frozenset(
    {
        "0x800CCC0D",
        "0x800CCC0E",
        "0x800CCC0F",
        "0x800CCC13",
        "0x800CCC19",
        "0x800CCC1A",
        "0x800CCC7F",
        "0x80042109",
        "0x8004210B",
    }
)
_CAUSE_WORDS = (
    "connect",
    "certificate",
    "timed out",
    "timeout",
    "encrypt",
    "interrupted",
    "terminated",
    "tls",
    "ssl",
    "reach",
)


def _connection_related(code: str | None, cause: str, finding_ids: tuple[str, ...]) -> bool:
    if code and code.upper().replace("0X", "0x") in _CONNECTION_CODES:
        return True
    if any(fid.startswith(_SERVER_SIDE) for fid in finding_ids):
        return True
    lowered = cause.lower()
    return any(word in lowered for word in _CAUSE_WORDS)


def server_ok_but_user_fails(
    report: Report, *, user_reports_failure: bool = False
) -> Finding | None:
    """A finding when the server works from here but the user reports a connection error.

    The user's side comes from the pasted Outlook error (report.error_text_causes) or from
    `user_reports_failure` (they said so in the form). None when the server side already
    explains the failure, or nothing says the user fails.
    """
    probes = [p for p in report.probes if p.role != "provider"]
    working = [p for p in probes if p.outcome == "ok"]
    if report.input.port is not None:
        working = [p for p in working if p.port == report.input.port] or []
    if not working:
        return None
    if any(f.severity is Severity.ERROR and f.id.startswith(_SERVER_SIDE) for f in report.findings):
        return None
    causes = [
        c
        for c in report.error_text_causes
        if c.confirmed is not True and _connection_related(c.code, c.cause, c.finding_ids)
    ]
    if not causes and not user_reports_failure:
        return None
    host = report.input.host or (report.recommended.host if report.recommended else "the server")
    seen = ", ".join(
        f"port {p.port} with {'STARTTLS' if p.security is Security.STARTTLS else 'SSL/TLS'}"
        if p.security in (Security.STARTTLS, Security.SSL)
        else f"port {p.port}"
        for p in working[:3]
    )
    cert_ok = not any(f.id.startswith("tls.cert.") for f in report.findings)
    said = (
        f"Outlook on your computer reports: {causes[0].cause.rstrip('.')}"
        + (f" ({causes[0].code})" if causes[0].code else "")
        + "."
        if causes
        else "Outlook on your computer still cannot connect."
    )
    return finding(
        SERVER_OK_FROM_HERE,
        detail=(
            f"From here {host} answers on {seen}"
            + (" and its certificate is valid" if cert_ok else "")
            + f". {said} The problem lies between your computer and the server: a firewall, "
            "your internet provider, a VPN, or security software that scans mail. Run the "
            "client check on your computer to find out which."
        ),
        evidence={
            "working": [{"port": p.port, "security": str(p.security)} for p in working],
            "error_codes": [c.code for c in causes if c.code],
            "causes": [c.cause for c in causes],
            "user_reported": user_reports_failure,
        },
    )
