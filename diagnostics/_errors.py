"""Exceptions raised by the engine.

A finding is not an exception: a server that is down, slow or wrong is a *result*, and
ends up in the report. Exceptions are for input the engine will not act on, and for its own
failures::

    SmtpcheckError
    ├── InputError(SmtpcheckError, ValueError)        bad settings; CLI exit 2
    │   └── TargetRefused(InputError)                 the target policy forbids it
    ├── ConfigError(SmtpcheckError, ValueError)       bad operator configuration
    └── KnowledgeError(SmtpcheckError, RuntimeError)  the knowledge base failed validation
"""

from __future__ import annotations


class SmtpcheckError(Exception):
    """Base class of every exception smtpcheck raises on purpose."""


class InputError(SmtpcheckError, ValueError):
    """The settings given cannot be checked as they are; the message says why, in one line."""


class TargetRefused(InputError):
    """The target resolves to an address or port the bot's policy forbids.

    The message is safe to show whoever aimed the bot: for a name it says that the name
    points to a private network, never which addresses (anyone could map internal names to
    internal addresses). `detail` lists them, for the operator's log and the CLI.
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


class ConfigError(SmtpcheckError, ValueError):
    """The operator's configuration (environment, .env) is missing or malformed."""


class KnowledgeError(SmtpcheckError, RuntimeError):
    """The bundled knowledge base does not match its schema."""
