"""What the user's computer saw, what to check from it, and the comparison's result."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from diagnostics._models import Endpoint, Finding, Security, normalize_hostname
from diagnostics.sanitize import VisibleModel

Platform = Literal["windows", "mac"]

# The marker lines of the generated scripts; the parser keys on them.
BEGIN_MARKER = "== smtpcheck client check v1 =="
END_MARKER = "== end =="

# Why a port could not be reached, in words the comparison understands.
Reason = Literal["timeout", "refused", "unreachable", "name_unresolved", "failed"]


class _Frozen(VisibleModel):  # what the user's computer saw: hostile text too
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetPort(_Frozen):
    """One port to test from the user's computer, and how to reach TLS on it."""

    port: int = Field(ge=1, le=65535)
    security: Security  # SSL: implicit TLS; STARTTLS: plain first; NONE: TCP and greeting only


class ClientTargets(_Frozen):
    """The server the user named and the candidate ports; the host is always normalized."""

    host: str
    ports: tuple[TargetPort, ...] = Field(min_length=1, max_length=8)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalize_hostname(value)


class CertSeen(_Frozen):
    """A server certificate as the user's computer saw it."""

    issuer: str | None = None
    subject: str | None = None
    not_after: dt.datetime | None = None
    sha256: str | None = None  # upper-case hex, no colons
    sha1: str | None = None  # Windows' "Thumbprint"
    # The user's own system's verdict when the output carries one (Windows' SslPolicyErrors,
    # openssl's verify code); None when it does not say.
    trusted: bool | None = None
    trust_detail: str | None = None


class ClientObservation(_Frozen):
    """Everything the parser could read from a pasted client-check output."""

    platform: Literal["windows", "mac", "unknown"] = "unknown"
    from_script: bool = False  # our own marker lines were present
    host: str | None = None  # the server name the output talks about, when it says
    reachable: dict[int, bool | None] = Field(default_factory=dict)
    reasons: dict[int, Reason] = Field(default_factory=dict)  # for ports that failed
    addresses: dict[int, str] = Field(default_factory=dict)  # the address connected to
    greetings: dict[int, str] = Field(default_factory=dict)
    starttls_offered: dict[int, bool] = Field(default_factory=dict)
    certs: dict[int, CertSeen] = Field(default_factory=dict)
    loose_certs: tuple[CertSeen, ...] = ()  # certificates whose port the output did not say
    tls_errors: dict[int, str] = Field(default_factory=dict)
    name_unresolved: bool = False
    notes: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def empty(self) -> bool:
        """True when nothing usable was read (the paste was not a client-check output)."""
        return not (
            self.reachable
            or self.certs
            or self.loose_certs
            or self.tls_errors
            or self.name_unresolved
            or self.starttls_offered
        )


class ComparisonResult(_Frozen):
    """The verdict of comparing the user's view with the bot's; findings carry no fix yet."""

    findings: tuple[Finding, ...] = ()
    recommended: Endpoint | None = None  # a setting to move to, when the comparison found one
    verdict_text: str
    notes: tuple[str, ...] = ()
