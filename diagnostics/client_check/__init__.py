"""The user's computer as a second vantage point: a read-only check, its parser, the comparison.

    script = client_check_script(report, "windows")      # show it to the user
    observation = parse_client_output(pasted_text)       # what they pasted back
    result = compare(report, observation)                # findings + a setting to move to

Never imports Slack; the CLI and the bot call these functions.
"""

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
from diagnostics.client_check._script import client_check_script, safe_host, targets_for

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "CertSeen",
    "ClientObservation",
    "ClientTargets",
    "ComparisonResult",
    "Platform",
    "TargetPort",
    "client_check_script",
    "safe_host",
    "targets_for",
]
