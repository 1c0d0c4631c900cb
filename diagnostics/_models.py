"""The data a diagnosis takes and returns.

`CheckRequest` is what the user typed into Outlook (validated); `Report` is the frozen
result whose JSON form is the contract's `smtpcheck.report/1`. The intermediate results of
the probes (`ProbeResult`, `TlsInfo`, ...) are plain frozen dataclasses: they never leave
the engine except through the report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import ipaddress
import re
from importlib import metadata
from typing import Any, Literal

import idna
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from diagnostics.sanitize import VisibleModel, hidden, visible

REPORT_SCHEMA = "smtpcheck.report/1"


class Security(enum.StrEnum):
    """Outlook's "Use the following type of encrypted connection" choice."""

    STARTTLS = "starttls"  # Outlook "STARTTLS" (older builds: "TLS")
    SSL = "ssl"  # implicit TLS; Outlook "SSL/TLS" (older builds: "SSL")
    NONE = "none"
    AUTO = "auto"


class OutlookClient(enum.StrEnum):
    """Which Outlook the fix steps are written for."""

    CLASSIC = "classic"  # classic Outlook for Windows
    NEW = "new"  # new Outlook for Windows
    MAC = "mac"
    IOS = "ios"
    ANDROID = "android"


class Severity(enum.StrEnum):
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


# Most severe first: how findings are listed everywhere.
SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARN: 1, Severity.INFO: 2}


class Verdict(enum.StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    WARN = "warn"
    FAIL = "fail"


def ms(seconds: float) -> float:
    """A duration as the report gives it: milliseconds, one decimal, never negative."""
    return round(max(seconds, 0.0) * 1000, 1)


@functools.cache
def tool_version() -> str | None:
    """The installed smtpcheck's version (None when run from a source tree not installed)."""
    try:
        return metadata.version("smtpcheck")
    except metadata.PackageNotFoundError:
        return None


# Ports Outlook users actually type, and the mode each one implies when none is given.
DEFAULT_SECURITY_FOR_PORT = {465: Security.SSL, 587: Security.STARTTLS, 25: Security.STARTTLS}

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")


def reject_control_chars(value: str, what: str) -> str:
    """Refuse CR, LF and other control characters (SMTP command injection, log forging),
    and invisible or text-direction characters (U+202E, zero-width spaces, the BOM ...):
    pasted into an address they make it look like another one, in Slack and in the report."""
    if _CONTROL_CHARS.search(value):
        raise ValueError(f"{what} contains a line break or control character")
    for char in value:
        if hidden(char):
            raise ValueError(
                f"{what} contains an invisible or text-direction character"
                f" (U+{ord(char):04X}); type it again instead of pasting it"
            )
    return value


def normalize_hostname(value: str) -> str:
    """Return the ASCII (IDNA) form of a host name or IP literal, or raise ValueError."""
    value = reject_control_chars(value.strip(), "the server name")
    if not value:
        raise ValueError("the server name is empty")
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if "%" in bare:  # an IPv6 zone id names a local interface, never a mail server
        raise ValueError(f"'{value}' has an IPv6 zone id (%...), which smtpcheck does not accept")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    name = bare.rstrip(".").lower()
    if len(name) > 253 or " " in name:
        raise ValueError(f"'{value}' is not a valid server name")
    labels = name.split(".")
    if name.isascii() and all(_LABEL.match(label) and label[2:4] != "--" for label in labels):
        return name  # what IDNA returns for it, without loading its large mapping table
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"'{value}' is not a valid server name ({exc})") from None
    labels = ascii_name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"'{value}' is not a valid server name")
    return ascii_name


def normalize_email(value: str) -> str:
    """Return the address with its domain in IDNA form, or raise ValueError."""
    value = reject_control_chars(value.strip(), "the email address")
    if not _EMAIL.match(value):
        raise ValueError(f"'{value}' is not an email address (expected name@domain)")
    local, _, domain = value.rpartition("@")
    return f"{local}@{normalize_hostname(domain)}"


def split_target(target: str) -> tuple[str | None, str | None, int | None]:
    """Split TARGET into (email, host, port); see the contract for the accepted forms."""
    target = reject_control_chars(target.strip(), "the target")
    if not target:
        raise ValueError("no server or email address given")
    if "@" in target:
        return normalize_email(target), None, None
    port: int | None = None
    host = target
    if target.startswith("["):
        end = target.find("]")
        if end < 0:
            raise ValueError(f"'{target}': missing ']' after the IPv6 address")
        host, rest = target[: end + 1], target[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"'{visible(target, limit=80)}': expected [address]:port")
            port = parse_port(rest[1:])
    elif target.count(":") == 1:
        host, _, port_text = target.partition(":")
        port = parse_port(port_text)
    return None, normalize_hostname(host), port


def parse_port(value: str | int) -> int:
    """Return a TCP port number, or raise ValueError with a plain message."""
    text = str(value).strip()
    # ASCII digits only: int() also takes '１', '1_0' and '+1', which no one means as a port.
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"port '{visible(text, limit=20)}' is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1-65535)")
    return port


class CheckRequest(BaseModel):
    """The outgoing-mail settings as entered in Outlook, validated."""

    # Validation errors must never echo the input: it may hold the password.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    target: str = Field(description="host, host:port, [v6]:port or an email address")
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    email: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    requires_auth: bool = True
    client: OutlookClient = OutlookClient.CLASSIC
    error_text: str | None = Field(default=None, max_length=20_000)
    connect: str | None = Field(default=None, description="connect here instead of resolving")
    user_reports_failure: bool = Field(
        default=False, description="the user says it fails on their computer (Slack form box)"
    )

    # Derived by the validator below; never supplied by callers.
    host: str | None = None
    target_email: str | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = reject_control_chars(value.strip(), "the user name")
        if len(value) > 320:
            raise ValueError("the user name is longer than 320 characters")
        return value or None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalize_email(value) if value else None

    @field_validator("connect")
    @classmethod
    def _connect(cls, value: str | None) -> str | None:
        return normalize_hostname(value) if value else None

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        if "\r" in value.get_secret_value() or "\n" in value.get_secret_value():
            raise ValueError("the password contains a line break")
        return value

    @model_validator(mode="after")
    def _split(self) -> CheckRequest:
        email, host, port = split_target(self.target)
        object.__setattr__(self, "target_email", email)
        object.__setattr__(self, "host", host)
        if port is not None:
            if self.port is not None and self.port != port:
                raise ValueError(f"two ports given: {port} in the target and {self.port}")
            object.__setattr__(self, "port", port)
        if email and not self.email:
            object.__setattr__(self, "email", email)
        return self

    @property
    def sender_domain(self) -> str | None:
        address = self.email or self.target_email
        return address.rpartition("@")[2] if address else None


# --------------------------------------------------------------------------- report


class _Frozen(VisibleModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReportInput(_Frozen):
    target: str
    host: str | None
    port: int | None
    security: Security | None
    email: str | None
    user: str | None
    client: OutlookClient
    requires_auth: bool = True
    error_text: str | None = None
    connect: str | None = None


class Fix(_Frozen):
    """One renderer-neutral fix: what to do, step by step, for one Outlook client."""

    summary: str
    steps: tuple[str, ...] = ()
    values: dict[str, str] = Field(default_factory=dict)  # field label -> value to enter
    link: str | None = None
    client: OutlookClient | None = None
    sources: tuple[str, ...] = ()


class Finding(_Frozen):
    id: str
    severity: Severity
    title: str
    detail: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    fix: Fix | None = None


class ProviderRef(_Frozen):
    name: str
    source: Literal["mx", "host"]
    key: str | None = None  # the knowledge base's identifier


class Endpoint(_Frozen):
    host: str
    port: int
    security: Security


class ProbeSummary(_Frozen):
    port: int
    security: Security
    address: str | None
    outcome: str
    tls_version: str | None = None
    elapsed_ms: float = 0.0
    # Extensions beyond the contract's minimum.
    role: str = "entered"  # entered | alternative | mode_check
    tls_cipher: str | None = None
    auth_before_tls: tuple[str, ...] = ()
    auth_after_tls: tuple[str, ...] = ()
    starttls_offered: bool | None = None
    greeting: str | None = None
    certificate: dict[str, Any] | None = None
    steps_ms: dict[str, float] = Field(default_factory=dict)
    host: str | None = None  # set when the probe went to another host (provider's endpoint)


class TranscriptLine(_Frozen):
    """A line sent (">") or received ("<"); inside a probe, "*" marks an event (TLS up,
    timeout, ...), which a report keeps apart in `events` (the contract: "<" or ">" only)."""

    t_ms: float
    dir: Literal["<", ">", "*"]
    line: str
    probe: str | None = None  # e.g. "587/starttls"


class ReportEvent(_Frozen):
    """Something that happened during a probe without being sent or received: "connected
    to ...", "TLS established ...", a timeout."""

    t_ms: float
    line: str
    probe: str | None = None


def split_events(
    lines: Any,
) -> tuple[tuple[TranscriptLine, ...], tuple[ReportEvent, ...]]:
    """(what was sent and received, the events) from probe lines, each in time order."""
    exchanged: list[TranscriptLine] = []
    events: list[ReportEvent] = []
    for line in sorted(lines, key=lambda x: x.t_ms):
        if line.dir == "*":
            events.append(ReportEvent(t_ms=line.t_ms, line=line.line, probe=line.probe))
        else:
            exchanged.append(line)
    return tuple(exchanged), tuple(events)


class ErrorTextCause(_Frozen):
    """A cause suggested by the pasted Outlook error, and whether the probes confirmed it."""

    code: str | None
    cause: str
    confirmed: bool | None = None  # None: the probes could not tell
    finding_ids: tuple[str, ...] = ()
    # Why the probes could not tell, in words ("login not tested": no password was given).
    note: str | None = None


class DiscoveredSource(_Frozen):
    """What one discovery source said (issue 15): found, not_found, no_service, refused,
    invalid, failed or skipped."""

    source: str  # provider | ispdb | autoconfig | srv | microsoft365 | guess
    state: str
    words: str  # "documented by the provider (ISPDB)", "published by the domain (SRV)" ...
    detail: str = ""


class DiscoveredServer(_Frozen):
    """An outgoing server a source named, and whether the probes confirmed it."""

    host: str
    port: int
    security: Security
    sources: tuple[str, ...]
    words: str
    confirmed: bool | None = None  # None: not probed


class DiscoverySummary(_Frozen):
    domain: str
    sources: tuple[DiscoveredSource, ...] = ()
    servers: tuple[DiscoveredServer, ...] = ()


class Report(_Frozen):
    schema_: str = Field(default=REPORT_SCHEMA, alias="schema", serialization_alias="schema")
    input: ReportInput
    verdict: Verdict
    provider: ProviderRef | None = None
    recommended: Endpoint | None = None
    # Extension: other settings seen to work, after `recommended` (closest to the input first).
    alternatives: tuple[Endpoint, ...] = ()
    findings: tuple[Finding, ...] = ()
    probes: tuple[ProbeSummary, ...] = ()
    transcript: tuple[TranscriptLine, ...] = ()  # "<" and ">" only (the contract)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    # Extensions.
    events: tuple[ReportEvent, ...] = ()
    discovery: DiscoverySummary | None = None  # where the settings came from (email only)
    started_at: dt.datetime | None = None
    error_text_causes: tuple[ErrorTextCause, ...] = ()
    tool_version: str | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _events_apart(cls, data: Any) -> Any:
        """Reports stored before `events` existed carry "*" lines in the transcript."""
        if not isinstance(data, dict):
            return data
        lines = data.get("transcript") or ()
        if not any(_direction(line) == "*" for line in lines):
            return data
        events = [*data.get("events", ())]
        kept = []
        for line in lines:
            if _direction(line) == "*":
                line = dict(line) if isinstance(line, dict) else line.model_dump()
                events.append({k: v for k, v in line.items() if k != "dir"})
            else:
                kept.append(line)
        return {**data, "transcript": kept, "events": events}

    def exchange(self) -> list[tuple[float, str | None, str, str]]:
        """(t_ms, probe, "<" | ">" | "*", line): the transcript and the events in time order,
        as the CLI's --transcript and the bot's technical details show them."""
        rows = [(t.t_ms, t.probe, t.dir, t.line) for t in self.transcript]
        rows += [(e.t_ms, e.probe, "*", e.line) for e in self.events]
        return sorted(rows, key=lambda row: row[0])

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)

    def by_id(self, finding_id: str) -> list[Finding]:
        return [f for f in self.findings if f.id == finding_id]

    def has(self, finding_id: str) -> bool:
        return any(f.id == finding_id for f in self.findings)

    @property
    def finding_ids(self) -> list[str]:
        return [f.id for f in self.findings]


def _direction(line: Any) -> Any:
    return line.get("dir") if isinstance(line, dict) else getattr(line, "dir", None)


def verdict_for(findings: tuple[Finding, ...] | list[Finding]) -> Verdict:
    severities = {f.severity for f in findings}
    if Severity.ERROR in severities:
        return Verdict.FAIL
    if Severity.WARN in severities:
        return Verdict.WARN
    return Verdict.PASS


# --------------------------------------------------------------------------- probe results


class ProbeOutcome(enum.StrEnum):
    """How one probe of one (port, security) pair ended."""

    OK = "ok"  # reached the end: EHLO after TLS (or plain EHLO for security none)
    REFUSED = "refused"  # TCP RST
    CONNECT_TIMEOUT = "connect_timeout"  # SYN unanswered
    UNREACHABLE = "unreachable"  # network/host unreachable and the like
    BANNER_TIMEOUT = "banner_timeout"
    BANNER_REJECTED = "banner_rejected"  # 4xx/5xx greeting
    EHLO_TIMEOUT = "ehlo_timeout"
    EHLO_REJECTED = "ehlo_rejected"
    REPLY_TOO_LONG = "reply_too_long"
    DROPPED = "dropped"  # the server closed mid-dialogue
    STARTTLS_NOT_OFFERED = "starttls_not_offered"
    STARTTLS_REJECTED = "starttls_rejected"  # STARTTLS answered with non-220
    TLS_FAILED = "tls_failed"  # handshake failed
    TLS_TIMEOUT = "tls_timeout"
    PLAINTEXT_ON_TLS = "plaintext_on_tls"  # implicit TLS attempted; server spoke plain SMTP
    BUDGET_EXHAUSTED = "budget_exhausted"
    ERROR = "error"


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    code: int
    message: str

    @property
    def enhanced(self) -> str | None:
        match = re.match(r"^([245]\.\d{1,3}\.\d{1,3})\b", self.message)
        return match.group(1) if match else None

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


class CertProblem(enum.StrEnum):
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    SELF_SIGNED = "self_signed"
    UNTRUSTED = "untrusted"
    CHAIN_INCOMPLETE = "chain_incomplete"


@dataclasses.dataclass(frozen=True, slots=True)
class CertInfo:
    """What the server's certificate chain says, and what is wrong with it."""

    subject: str
    issuer: str
    names: tuple[str, ...]  # DNS names and IP addresses it is valid for
    not_before: dt.datetime
    not_after: dt.datetime
    serial: str
    sha256: str
    chain_length: int  # certificates the server sent
    chain_subjects: tuple[str, ...]
    problems: tuple[CertProblem, ...]
    verify_error: str | None  # the verifier's own words, when it refused
    key: str | None = None  # e.g. "RSA 2048", "EC secp256r1"
    # How many names the certificate holds; `names` keeps only the first ones and those
    # that match the host entered (a certificate can hold thousands).
    names_total: int = 0
    # The issuer as a person reads it ("Let's Encrypt (R11)"); `issuer` is the raw name.
    issuer_name: str = ""

    @property
    def issuer_shown(self) -> str:
        """The issuer as findings name it: readable when it could be made so, else raw."""
        return self.issuer_name or self.issuer

    @property
    def trusted(self) -> bool:
        return not self.problems

    @property
    def names_text(self) -> str:
        """ "a, b, c and 11997 more", or "no names"."""
        more = max(0, self.names_total - len(self.names))
        text = ", ".join(self.names) or "no names"
        return f"{text} and {more} more" if more else text

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def as_evidence(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "issuer_name": self.issuer_shown,
            "names": list(self.names),
            "names_total": max(self.names_total, len(self.names)),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "serial": self.serial,
            "sha256": self.sha256,
            "chain_length": self.chain_length,
            "chain_subjects": list(self.chain_subjects),
            "problems": [str(p) for p in self.problems],
            "verify_error": self.verify_error,
            "key": self.key,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class TlsInfo:
    version: str | None
    cipher: str | None
    cert: CertInfo | None


@dataclasses.dataclass(frozen=True, slots=True)
class AuthAttempt:
    mechanism: str
    ok: bool
    reply: Reply | None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password for the one AUTH attempt; the repr never shows the password."""

    user: str
    password: SecretStr


@dataclasses.dataclass(frozen=True, slots=True)
class ProbePlan:
    """One (port, security) pair to probe, and why."""

    port: int
    security: Security  # never AUTO here
    role: Literal["entered", "alternative", "mode_check", "provider", "credentials"] = "entered"
    host: str | None = None  # None: the host entered; else e.g. the provider's documented host

    @property
    def label(self) -> str:
        prefix = f"{self.host}:" if self.host else ""
        suffix = " login" if self.role == "credentials" else ""
        return f"{prefix}{self.port}/{self.security}{suffix}"


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    plan: ProbePlan
    address: str | None
    outcome: ProbeOutcome
    elapsed_ms: float
    greeting: Reply | None = None
    ehlo_before: Reply | None = None  # EHLO reply on the plain connection
    ehlo_after: Reply | None = None  # EHLO reply after TLS
    extensions_before: tuple[str, ...] = ()  # upper-case keywords, e.g. ("STARTTLS", "AUTH")
    extensions_after: tuple[str, ...] = ()
    auth_before_tls: tuple[str, ...] = ()  # AUTH mechanisms offered in plaintext
    auth_after_tls: tuple[str, ...] = ()
    starttls_offered: bool | None = None
    tls: TlsInfo | None = None
    failed_reply: Reply | None = None  # the reply that ended the probe, when one did
    error: str | None = None  # the exception text (already free of secrets)
    auth: AuthAttempt | None = None
    # Relay test (MAIL FROM + RCPT TO, then RSET; never DATA): the RCPT (or MAIL) reply.
    relay_reply: Reply | None = None
    transcript: tuple[TranscriptLine, ...] = ()
    steps_ms: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def reached_tls(self) -> bool:
        return self.tls is not None

    @property
    def works(self) -> bool:
        """Usable for submission as Outlook would use it: TLS up (or plain by choice)."""
        return self.outcome is ProbeOutcome.OK


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """A step of a running diagnosis, for front ends that show progress (Slack, the CLI)."""

    step: str  # "dns", "sender", or a probe label such as "587/starttls"
    label: str  # human words: "Looking up smtp.example.com"
    state: Literal["running", "done", "failed", "skipped"]
    elapsed_ms: float = 0.0  # since the diagnosis started
    note: str = ""  # short outcome in plain words: "TLS 1.3, login PLAIN", "port closed"
    # Probes: why this setting is tried (ProbePlan.role); only "entered" is the user's own.
    role: str | None = None
    duration_ms: float | None = None  # how long the step took, once it ended

    def __post_init__(self) -> None:
        # Labels and notes name hosts and quote servers: shown as they are, never raw.
        object.__setattr__(self, "label", visible(self.label, limit=500))
        object.__setattr__(self, "note", visible(self.note, limit=500))
