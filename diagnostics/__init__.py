"""smtpcheck's diagnosis engine: why can't Outlook send, and what would work.

    >>> report = await diagnose(CheckRequest(target="smtp.office365.com:587", security="starttls"))

Never imports Slack: the CLI and the bot are front ends on this package.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diagnostics._config import EngineConfig, Timeouts
    from diagnostics._engine import diagnose
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
    from diagnostics.knowledge._explain import ExplainedCause as ExplainedCause
    from diagnostics.knowledge._explain import Explanation as Explanation
    from diagnostics.knowledge._explain import explain_text as explain

# Every public name is loaded on first use, so that importing a submodule (the CLI's
# --help, `diagnostics.cli`) does not import pydantic and the models (issue 16).
_RENAMED = {"explain": "explain_text"}
_LAZY: dict[str, str] = {  # name -> the module that defines it
    "EngineConfig": "diagnostics._config",
    "Timeouts": "diagnostics._config",
    "diagnose": "diagnostics._engine",
    "explain": "diagnostics.knowledge._explain",
    "Explanation": "diagnostics.knowledge._explain",
    "ExplainedCause": "diagnostics.knowledge._explain",
    **dict.fromkeys(
        ["ConfigError", "InputError", "KnowledgeError", "SmtpcheckError", "TargetRefused"],
        "diagnostics._errors",
    ),
    **dict.fromkeys(
        "REPORT_SCHEMA SEVERITY_ORDER CheckRequest Endpoint Finding Fix OutlookClient Report"
        " Security Severity Verdict".split(),
        "diagnostics._models",
    ),
}


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'diagnostics' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # once: later reads do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
