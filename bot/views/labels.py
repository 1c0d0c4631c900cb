"""Words for enum values as Outlook and help desks say them."""

from __future__ import annotations

from diagnostics import Severity, Verdict
from diagnostics.labels import CLIENT_LABEL, SECURITY_LABEL, client_label, security_label

SEVERITY_ICON = {
    Severity.ERROR: ":red_circle:",
    Severity.WARN: ":large_orange_circle:",
    Severity.INFO: ":information_source:",
}
SEVERITY_WORD = {Severity.ERROR: "Problems", Severity.WARN: "Warnings", Severity.INFO: "Notes"}
VERDICT_LINE = {
    Verdict.PASS: ":white_check_mark: Sending should work with these settings",
    Verdict.WARN: ":large_orange_circle: Sending works, with warnings",
    Verdict.FAIL: ":x: Outlook cannot send with these settings",
}
VERDICT_WORD = {Verdict.PASS: "PASS", Verdict.WARN: "WARN", Verdict.FAIL: "FAIL"}

__all__ = [
    "CLIENT_LABEL",
    "SECURITY_LABEL",
    "SEVERITY_ICON",
    "SEVERITY_WORD",
    "VERDICT_LINE",
    "VERDICT_WORD",
    "client_label",
    "security_label",
]
