"""Words for enum values as Outlook and help desks say them."""

from __future__ import annotations

from diagnostics import OutlookClient, Security, Severity, Verdict

SECURITY_LABEL = {
    Security.NONE: "None",
    Security.SSL: "SSL/TLS",
    Security.STARTTLS: "STARTTLS",
    Security.AUTO: "Auto",
}
CLIENT_LABEL = {
    OutlookClient.CLASSIC: "classic Outlook for Windows",
    OutlookClient.NEW: "new Outlook for Windows",
    OutlookClient.MAC: "Outlook for Mac",
    OutlookClient.IOS: "Outlook for iOS",
    OutlookClient.ANDROID: "Outlook for Android",
}
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


def security_label(value: Security | str | None) -> str:
    if value is None:
        return "not given"
    try:
        return SECURITY_LABEL[Security(value)]
    except ValueError:
        return str(value)


def client_label(value: OutlookClient | str | None) -> str:
    try:
        return CLIENT_LABEL[OutlookClient(value or "classic")]
    except ValueError:
        return str(value)
