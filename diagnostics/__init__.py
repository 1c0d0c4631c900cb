"""smtpcheck's diagnosis engine: why can't Outlook send, and what would work.

    >>> report = await diagnose(CheckRequest(target="smtp.office365.com:587", security="starttls"))

Never imports Slack: the CLI and the bot are front ends on this package.
"""

from typing import Any

from diagnostics._config import EngineConfig, Timeouts
from diagnostics._errors import (
    ConfigError,
    InputError,
    KnowledgeError,
    SmtpcheckError,
    TargetRefused,
)
from diagnostics._models import (
    REPORT_SCHEMA,
    SEVERITY_ORDER,
    CheckRequest,
    Endpoint,
    Finding,
    Fix,
    OutlookClient,
    Report,
    Security,
    Severity,
    Verdict,
)


def __getattr__(name: str) -> Any:
    # Lazy, so that `import diagnostics` (and the CLI's --help) stays fast.
    if name == "diagnose":
        from diagnostics._engine import diagnose

        return diagnose
    if name == "explain":
        from diagnostics.knowledge._explain import explain_text

        return explain_text
    if name in ("Explanation", "ExplainedCause"):
        from diagnostics.knowledge import _explain

        return getattr(_explain, name)
    raise AttributeError(f"module 'diagnostics' has no attribute {name!r}")


__all__ = [
    "REPORT_SCHEMA",
    "SEVERITY_ORDER",
    "CheckRequest",
    "ConfigError",
    "Endpoint",
    "EngineConfig",
    "Finding",
    "Fix",
    "InputError",
    "KnowledgeError",
    "OutlookClient",
    "Report",
    "Security",
    "Severity",
    "SmtpcheckError",
    "TargetRefused",
    "Timeouts",
    "Verdict",
    "diagnose",
    "explain",
]
