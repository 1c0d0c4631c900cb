"""The user's computer as a second vantage point: a read-only check, its parser, the comparison.

    script = client_check_script(report, "windows")      # show it to the user
    observation = parse_client_output(pasted_text)       # what they pasted back
    result = compare(report, observation)                # findings + a setting to move to

Never imports Slack; the CLI and the bot call these functions.
"""

from diagnostics.client_check._compare import FINDING_IDS, compare
from diagnostics.client_check._fixes import attach_fixes, with_fixes
from diagnostics.client_check._model import (
    BEGIN_MARKER,
    END_MARKER,
    CertSeen,
    ClientObservation,
    ClientTargets,
    ComparisonResult,
    Platform,
    TargetPort,
)
from diagnostics.client_check._parse import MAX_INPUT_CHARS, decode_output, parse_client_output
from diagnostics.client_check._products import INTERCEPTORS, Interceptor, identify
from diagnostics.client_check._report_io import load_report_json, render_comparison_text
from diagnostics.client_check._script import client_check_script, safe_host, targets_for
from diagnostics.client_check._server_ok import server_ok_but_user_fails

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "FINDING_IDS",
    "INTERCEPTORS",
    "MAX_INPUT_CHARS",
    "CertSeen",
    "ClientObservation",
    "ClientTargets",
    "ComparisonResult",
    "Interceptor",
    "Platform",
    "TargetPort",
    "attach_fixes",
    "client_check_script",
    "compare",
    "decode_output",
    "identify",
    "load_report_json",
    "parse_client_output",
    "render_comparison_text",
    "safe_host",
    "server_ok_but_user_fails",
    "targets_for",
    "with_fixes",
]
