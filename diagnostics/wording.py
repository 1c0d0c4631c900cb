"""Plain words for the report's facts, shared by every front end (terminal, Slack).

A user reads "port closed", never `refused`; "the other encryption mode", never `mode_check`;
"37 ms", never "0.0 s". The JSON report keeps the machine names; these are for people.
"""

from __future__ import annotations

import re

from diagnostics._models import ProbeSummary

# ProbeOutcome values -> what happened, in a few words a user understands.
OUTCOME_WORDS = {
    "ok": "works",
    "refused": "port closed",
    "connect_timeout": "no answer",
    "unreachable": "unreachable",
    "banner_timeout": "no greeting",
    "banner_rejected": "refused at the greeting",
    "ehlo_timeout": "no reply to hello",
    "ehlo_rejected": "hello refused",
    "reply_too_long": "oversized reply",
    "dropped": "hung up",
    "starttls_not_offered": "no STARTTLS",
    "starttls_rejected": "STARTTLS refused",
    "tls_failed": "encryption failed",
    "tls_timeout": "encryption timed out",
    "plaintext_on_tls": "answered unencrypted",
    "budget_exhausted": "out of time",
    "error": "check failed",
}

# ProbePlan roles -> why this setting was tried.
ROLE_WORDS = {
    "entered": "as entered",
    "mode_check": "other mode",
    "alternative": "alternative",
    "provider": "provider's",
    "credentials": "login test",
}

CERT_PROBLEM_WORDS = {
    "expired": "certificate expired",
    "not_yet_valid": "certificate not valid yet",
    "hostname_mismatch": "name not on certificate",
    "self_signed": "self-signed certificate",
    "untrusted": "untrusted certificate",
    "chain_incomplete": "incomplete chain",
}
LEGACY_TLS_VERSIONS = frozenset({"TLSv1", "TLSv1.1", "SSLv3"})
# Outlook's numeric codes and SMTP replies are worth showing; the knowledge base's labels
# for matched sentences ("encryption-type-not-supported") are not.
_REAL_CODE = re.compile(r"^(0x[0-9A-Fa-f]{8}|[245]\d\d\b)")


def duration_text(ms: float | None) -> str:
    """Milliseconds below one second ("37 ms"), seconds above ("1.4 s")."""
    if ms is None or ms < 0:
        return "?"
    if ms < 1:
        return "<1 ms"
    if ms < 999.5:
        return f"{ms:.0f} ms"
    if ms < 59_950:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s"


def outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome, "check failed")


def tls_words(version: str | None) -> str:
    """ "TLSv1.3" -> "TLS 1.3"."""
    if not version:
        return ""
    return version.replace("TLSv", "TLS ").replace("SSLv", "SSL ")


def probe_result_words(probe: ProbeSummary, *, requires_auth: bool = True) -> str:
    """How one probe ended, as a user would say it: the connection and what spoils it."""
    if probe.outcome != "ok":
        return outcome_words(probe.outcome)
    problems = (probe.certificate or {}).get("problems") or []
    if problems:
        return CERT_PROBLEM_WORDS.get(str(problems[0]), "certificate problem")
    if probe.tls_version in LEGACY_TLS_VERSIONS:
        return "outdated TLS only"
    if probe.tls_version is None:
        return "works, unencrypted"
    if requires_auth and not probe.auth_after_tls:
        return "no login offered"
    return "works"


def shown_code(code: str | None) -> str | None:
    """An error code worth showing a user (0x800CCC0E, 535 5.7.8), else None."""
    return code if code and _REAL_CODE.match(code) else None
