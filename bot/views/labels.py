"""Slack's words for the engine's values: the icons and verdict lines a message shows.

Outlook's own words (encryption choices, which Outlook) are `diagnostics.labels`, shared by
every front end.
"""

from __future__ import annotations

from diagnostics import Severity, Verdict

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
NOTHING_CHECKED_LINE = ":x: No outgoing mail server was found for this address"
VERDICT_WORD = {Verdict.PASS: "PASS", Verdict.WARN: "WARN", Verdict.FAIL: "FAIL"}
