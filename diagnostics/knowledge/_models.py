"""Schemas of the knowledge-base YAML files, and the values the knowledge base hands out.

Every data file is validated by these models at load time (``extra="forbid"`` everywhere,
so a misspelt key is an error, not a silently ignored line). Each fact keeps the source IDs
of ``shared/knowledge/outlook-smtp-facts.md`` (``S1`` .. ``S76``) in a ``sources`` list.

Probe labels used in ``probes`` lists (what the engine can run to confirm a cause):
``entered`` (the setting as typed), ``587/starttls``, ``465/ssl``, ``25/starttls``,
``provider`` (the provider's documented endpoint), ``auth`` (a credential test, needs the
password), ``relay`` (MAIL FROM + RCPT TO without login), ``dns`` (the server name lookup),
``sender_dns`` (MX/SPF/DMARC of the sender's domain) and ``client_check`` (the read-only
check the user runs on their own computer, compared with the probes from here).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from diagnostics._models import Endpoint, OutlookClient, Security, Severity
from diagnostics.knowledge._linear import Pattern, UnsafePatternError, compile_linear

SourceId = Annotated[str, StringConstraints(pattern=r"^S\d{1,3}[a-z]?$")]
FindingId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")]
ProbeLabel = Literal[
    "entered", "587/starttls", "465/ssl", "25/starttls", "provider", "auth", "relay", "dns",
    "sender_dns", "client_check",
]  # fmt: skip
Stage = Literal["greeting", "ehlo", "starttls", "auth", "mail", "rcpt"]
ClientKey = Literal["classic", "new", "mac", "ios", "android", "all"]
Status = Literal["verified", "third_party", "unverified"]
# What a pasted error is about (errortexts.yaml `scopes` says each in plain words): only
# "sending" is a problem of the outgoing-server settings or login.
Scope = Literal["sending", "receiving", "delivery", "account_limit", "provider_side",
                "this_computer", "outlook_profile", "unknown"]  # fmt: skip
ALL_CLIENTS: tuple[OutlookClient, ...] = tuple(OutlookClient)
_PARAM = re.compile(r"\{([a-z_]+)\}")


def _linear_safe(pattern: str) -> str:
    """A data regex must compile with RE2 (linear time on any text); else the load fails."""
    try:
        compile_linear(pattern)
    except UnsafePatternError as exc:
        raise ValueError(str(exc)) from None
    return pattern


class _Strict(BaseModel):
    # defer_build: the file schemas are built when a YAML file is validated; a process that
    # constructs the knowledge base from its cache (_cache.py) never builds them (~60 ms).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# --------------------------------------------------------------------------- findings catalog


class FindingCase(_Strict):
    """What changes when a fact holds: the severity, the headline, or both."""

    severity: Severity | None = None
    headline: str | None = None


class FindingSpec(_Strict):
    """One finding ID the engine may emit: its severity, its title and how a report words it.

    The engine passes facts only (``diagnostics._findings.finding``): ``headline`` is the
    title a report shows, with ``{fact}`` placeholders (the title when absent); each entry of
    ``cases`` applies, in order, when the fact it is named after is true.
    """

    id: FindingId
    severity: Severity
    # Severities the finding gets in some cases (from `cases`, reply rules or policies).
    other_severities: tuple[Severity, ...] = ()
    title: str
    headline: str | None = None
    cases: dict[str, FindingCase] = Field(default_factory=dict)
    category: Literal["dns", "sender", "connection", "tls", "auth", "smtp", "settings",
                      "provider", "policy", "probe", "input", "client"]  # fmt: skip
    # True when the fix is about Outlook's outgoing-server (SMTP) fields, so the note
    # "classic Outlook + Microsoft 365 uses no SMTP settings" belongs in front of it.
    smtp_settings: bool = False
    contract: bool = False  # listed in the contract's minimum set
    probes: tuple[ProbeLabel, ...] = ()  # what confirms or rules it out
    sources: tuple[SourceId, ...] = ()

    @model_validator(mode="after")
    def _distinct_severities(self) -> FindingSpec:
        others = self.other_severities
        if self.severity in others or len(set(others)) != len(others):
            raise ValueError("other_severities repeats a severity")
        for fact, case in self.cases.items():
            if case.severity is not None and case.severity not in self.severities:
                raise ValueError(f"case {fact!r}: severity {case.severity.value!r} is not listed")
        return self

    @property
    def severities(self) -> tuple[Severity, ...]:
        """The default severity first, then the others the code may give."""
        return (self.severity, *self.other_severities)


class FindingsFile(_Strict):
    findings: tuple[FindingSpec, ...]


# --------------------------------------------------------------------------- providers


class EndpointSpec(_Strict):
    """A documented submission endpoint; ``{name}`` parts of host come from the detected name."""

    host: str
    port: int = Field(ge=1, le=65535)
    security: Security
    sources: tuple[SourceId, ...] = ()
    note: str = ""

    @field_validator("security")
    @classmethod
    def _concrete(cls, value: Security) -> Security:
        if value is Security.AUTO:
            raise ValueError("a documented endpoint needs a concrete security, not auto")
        return value

    def endpoint(self, params: Mapping[str, str] | None = None) -> Endpoint | None:
        """The concrete endpoint, or None when the host needs a part that is unknown."""
        params = params or {}
        host = self.host
        for name in _PARAM.findall(host):
            if not params.get(name):
                return None
            host = host.replace("{" + name + "}", params[name])
        return Endpoint(host=host, port=self.port, security=self.security)


class AuthSpec(_Strict):
    required: bool = True
    methods: tuple[Literal["oauth2", "password", "app_password", "api_key", "ip_allowlist",
                           "certificate", "bridge_password", "smtp_credentials"], ...]  # fmt: skip
    app_password_required: bool = False  # the normal account password is refused
    oauth: bool = False
    username: str  # what goes in the user name field, in plain words
    password: str  # what goes in the password field, in plain words
    app_password_link: str | None = None
    sources: tuple[SourceId, ...] = ()


class Note(_Strict):
    text: str
    sources: tuple[SourceId, ...] = ()
    status: Status = "verified"


class HostPattern(_Strict):
    """A glob over host names: ``*`` = one or more labels, ``{name}`` = one captured label."""

    pattern: str
    ports: tuple[int, ...] = ()  # only with these ports (e.g. 127.0.0.1 only on 1025)

    @field_validator("pattern")
    @classmethod
    def _lower(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not value or " " in value:
            raise ValueError(f"bad host pattern {value!r}")
        return value

    @property
    def specificity(self) -> int:
        """Literal characters: the longer, the more specific (mxa.eu.mailgun.org beats *.org)."""
        return len(_PARAM.sub("", self.pattern).replace("*", ""))

    def regex(self) -> Pattern:
        out = []
        for part in re.split(r"(\*|\{[a-z_]+\})", self.pattern):
            if part == "*":
                out.append(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*?")
            elif part.startswith("{") and part.endswith("}"):
                out.append(rf"(?P<{part[1:-1]}>[a-z0-9-]+)")
            else:
                out.append(re.escape(part))
        return compile_linear("^" + "".join(out) + "$", ignore_case=False, dot_all=False)


# A step is a template, or a list of alternative templates: the first one whose variables
# are all known is used; "" as the last alternative makes the step optional.
Step = str | tuple[str, ...]


class FixSpec(_Strict):
    summary: Step
    steps: tuple[Step, ...] = ()
    values: dict[str, str] = Field(default_factory=dict)  # label template -> value template
    link: Step | None = None
    applicable: bool = True  # False: "not applicable here, do this instead"
    sources: tuple[SourceId, ...] = ()
    status: Status = "verified"


class Provider(_Strict):
    """A mail provider: documented submission settings and how to recognise it."""

    key: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]
    name: str
    kind: Literal["mailbox", "relay", "bridge", "transactional"]
    submission: tuple[EndpointSpec, ...] = Field(min_length=1)  # first = recommended
    auth: AuthSpec
    mx_patterns: tuple[HostPattern, ...] = ()
    host_patterns: tuple[HostPattern, ...] = ()
    link: str | None = None
    notes: tuple[Note, ...] = ()
    admin_notes: tuple[Note, ...] = ()
    # Shown in front of SMTP-settings fixes for this client (Microsoft 365 + classic Outlook).
    client_notes: dict[Literal["classic", "new", "mac", "ios", "android"], Note] = Field(
        default_factory=dict
    )
    # Outlooks that add this account natively (a sign-in window, no SMTP fields): their
    # fix for any outgoing-settings finding is this one (Outlook.com in new Outlook, ...).
    native_clients: dict[Literal["classic", "new", "mac", "ios", "android"], FixSpec] = Field(
        default_factory=dict
    )
    sources: tuple[SourceId, ...] = ()
    status: Status = "verified"

    def endpoints(self, params: Mapping[str, str] | None = None) -> tuple[Endpoint, ...]:
        """The documented endpoints that can be named (regional ones need the region)."""
        found = (spec.endpoint(params) for spec in self.submission)
        return tuple(e for e in found if e is not None)

    def recommended(self, params: Mapping[str, str] | None = None) -> Endpoint | None:
        endpoints = self.endpoints(params)
        return endpoints[0] if endpoints else None

    def documents(self, host: str, port: int, security: Security) -> bool:
        """Is (host, port, security) one of this provider's documented endpoints?"""
        host = host.lower().rstrip(".")
        for spec in self.submission:
            pattern = _PARAM.sub("*", spec.host.lower())
            if (spec.port, spec.security) == (port, security) and fnmatch.fnmatchcase(
                host, pattern
            ):
                return True
        return False


class MxGateway(_Strict):
    """A filtering gateway in front of the real mailbox host (Proofpoint, Mimecast ...)."""

    name: str
    mx_patterns: tuple[HostPattern, ...]
    sources: tuple[SourceId, ...] = ()


class ProvidersFile(_Strict):
    providers: tuple[Provider, ...]
    gateways: tuple[MxGateway, ...] = ()


# --------------------------------------------------------------------------- clients


class ClientSpec(_Strict):
    """Where one Outlook keeps its outgoing-server fields, and what it calls them.

    ``vars`` become template variables (``{open_smtp}``, ``{f_port}`` ...); a null value
    means this Outlook does not expose that field, so fixes must not rely on it.
    """

    key: Literal["classic", "new", "mac", "ios", "android"]
    name: str
    security_labels: dict[Security, str]
    vars: dict[str, str | None]
    link: str  # the vendor's help page for this Outlook
    sources: tuple[SourceId, ...] = ()
    status: Status = "verified"

    @field_validator("security_labels")
    @classmethod
    def _all_modes(cls, value: dict[Security, str]) -> dict[Security, str]:
        missing = set(Security) - set(value)
        if missing:
            raise ValueError(f"security_labels lacks {sorted(m.value for m in missing)}")
        return value


class ClientsFile(_Strict):
    clients: tuple[ClientSpec, ...]


# --------------------------------------------------------------------------- fixes

ClientMap = dict[ClientKey, FixSpec]


class FixEntry(_Strict):
    """The fix for one finding: per client, optionally per provider and per reply variant."""

    finding: FindingId
    clients: ClientMap
    providers: dict[str, ClientMap] = Field(default_factory=dict)
    variants: dict[str, ClientMap] = Field(default_factory=dict)

    @field_validator("clients")
    @classmethod
    def _every_client(cls, value: ClientMap) -> ClientMap:
        if "all" not in value:
            missing = [c.value for c in ALL_CLIENTS if c.value not in value]
            if missing:
                raise ValueError(f"no fix for client(s) {missing} and no 'all' entry")
        return value


class FixesFile(_Strict):
    fixes: tuple[FixEntry, ...]


# --------------------------------------------------------------------------- replies


class ReplyRule(_Strict):
    """One known server reply: matched on basic code, enhanced code and text."""

    id: str
    codes: tuple[int, ...] = ()  # basic reply codes; empty = any
    enhanced: str | None = None  # e.g. "5.7.139"; also matches 4.7.139 when class "x"
    pattern: str | None = None  # regex, case-insensitive, searched in the message
    stages: tuple[Stage, ...] = ()  # empty = any stage
    providers: tuple[str, ...] = ()  # empty = any; else only these (or provider unknown)
    priority: int = 0  # added to the specificity score, for codes more telling than any text
    finding_id: FindingId
    severity: Severity = Severity.ERROR
    meaning: str
    variant: str | None = None
    variant_detail: str | None = None
    scope: Scope = "sending"
    sources: tuple[SourceId, ...] = ()
    status: Status = "verified"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else _linear_safe(value)

    @field_validator("enhanced")
    @classmethod
    def _enhanced(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[245x]\.\d{1,3}\.\d{1,3}", value):
            raise ValueError(f"bad enhanced status code {value!r}")
        return value


class StatusText(_Strict):
    meaning: str
    sources: tuple[SourceId, ...] = ()


class RepliesFile(_Strict):
    rules: tuple[ReplyRule, ...]
    # RFC 5321 basic codes and RFC 3463 classes / subjects / details, for anything unknown.
    basic: dict[int, StatusText]
    classes: dict[int, StatusText]
    subjects: dict[int, StatusText]
    details: dict[str, StatusText]  # "7.8" -> meaning (subject.detail)
    # The finding an unrecognised failure maps to, per stage.
    stage_findings: dict[Stage, FindingId]
    # ... and when the stage is unknown (a pasted reply): a neutral finding, never a guess.
    unrecognised_finding: FindingId


# --------------------------------------------------------------------------- error texts


class OutlookCode(_Strict):
    """An Outlook error number (0x800CCCxx, 0x8004xxxx)."""

    code: Annotated[str, StringConstraints(pattern=r"^0x[0-9A-F]{8}$")]
    name: str | None = None
    text: str | None = None  # Outlook's wording, paraphrased
    cause: str
    finding_ids: tuple[FindingId, ...] = ()
    probes: tuple[ProbeLabel, ...] = ()
    smtp_code: int | None = None  # the server reply Outlook is wrapping (0x800CCC6x)
    receive_side: bool = False  # about the incoming (POP/IMAP) server, not sending
    scope: Scope | None = None  # default: "receiving" when receive_side, else "sending"
    sources: tuple[SourceId, ...] = ()
    status: Status = "verified"

    @property
    def about(self) -> Scope:
        return self.scope or ("receiving" if self.receive_side else "sending")


class MessagePattern(_Strict):
    """A sentence Outlook (or Windows) shows without a code, e.g. the encryption-type dialog."""

    id: str
    label: str  # short name used as the match's code
    pattern: str  # regex, case-insensitive
    cause: str
    finding_ids: tuple[FindingId, ...] = ()
    probes: tuple[ProbeLabel, ...] = ()
    scope: Scope = "sending"
    # True for sentences that only say the connection failed: silent when the paste also
    # quotes a server reply (the server answered, so it was reachable).
    connection_only: bool = False
    # True for a sentence that only introduces a more specific one (Outlook's "certificate
    # that could not be verified" before the reason): silent when such a reason matched.
    generic: bool = False
    sources: tuple[SourceId, ...] = ()
    status: Status = "verified"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _linear_safe(value)


class ScopeText(_Strict):
    """How to say what an error is about; `outgoing_settings` False = say it is not."""

    title: str
    text: str
    outgoing_settings: bool


class ErrorTextsFile(_Strict):
    scopes: dict[Scope, ScopeText]
    codes: tuple[OutlookCode, ...]
    messages: tuple[MessagePattern, ...]

    @field_validator("scopes")
    @classmethod
    def _every_scope(cls, value: dict[Scope, ScopeText]) -> dict[Scope, ScopeText]:
        missing = set(get_args(Scope)) - set(value)
        if missing:
            raise ValueError(f"no wording for scope(s) {sorted(missing)}")
        return value


# --------------------------------------------------------------------------- policies


class PolicyPhase(_Strict):
    severity: Severity
    title: str
    detail: str


class DatedPhrase(_Strict):
    """One sentence in three tenses; "after" says "began" where the vendor rolls out in stages."""

    variable: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+$")]
    before: str
    on_the_day: str
    after: str


class Policy(_Strict):
    """A dated provider rule; the finding's wording depends on whether the date has passed."""

    id: FindingId
    providers: tuple[str, ...]
    effective: dt.date | None = None  # None: has always applied (only `after` is used)
    effective_text: str = ""  # how people say the date ("the end of December 2026")
    password_users_only: bool = True
    before: PolicyPhase | None = None
    on_the_day: PolicyPhase | None = None  # the day itself (default: the `after` wording)
    after: PolicyPhase
    # A sentence fix templates use as {<variable>}, worded for today: before / on / after.
    phrase: DatedPhrase | None = None
    sources: tuple[SourceId, ...] = ()

    @model_validator(mode="after")
    def _dated(self) -> Policy:
        if self.effective is not None and (self.before is None or not self.effective_text):
            raise ValueError("a dated policy needs effective_text and a 'before' wording")
        return self


class PoliciesFile(_Strict):
    policies: tuple[Policy, ...]


# --------------------------------------------------------------------------- results


class ReplyMeaning(_Strict):
    """What a server reply means for the user, and which finding it is."""

    # Made while diagnosing: built now, never on a bot's event loop at first use.
    model_config = ConfigDict(defer_build=False)

    finding_id: FindingId
    severity: Severity
    meaning: str
    code: int
    enhanced: str | None = None
    variant: str | None = None  # e.g. "tenant_disabled" for 535 5.7.139
    variant_detail: str | None = None
    transient: bool = False  # 4xx: trying again later may work
    rule: str | None = None  # the data rule that matched; None = decoded from structure
    scope: Scope = "sending"
    sources: tuple[SourceId, ...] = ()


class ErrorTextMatch(_Strict):
    """One thing recognised in a pasted Outlook error, and how the probes can confirm it."""

    # Made while diagnosing: built now, never on a bot's event loop at first use.
    model_config = ConfigDict(defer_build=False)

    code: str | None  # "0x800CCC0E", "535 5.7.139", or a short label for a sentence
    kind: Literal["outlook_code", "smtp_reply", "message"]
    cause: str
    finding_ids: tuple[FindingId, ...] = ()
    probes_to_confirm: tuple[ProbeLabel, ...] = ()
    matched: str = ""  # the part of the text that was recognised
    receive_side: bool = False
    reply: ReplyMeaning | None = None
    scope: Scope = "sending"
    status: Status = "verified"
    sources: tuple[SourceId, ...] = ()


class FixContext(BaseModel):
    """What the fix templates are filled with: the settings entered and what would work."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    host: str | None = None
    port: int | None = None
    security: Security | None = None
    recommended: Endpoint | None = None
    provider: Provider | None = None
    # Parts of the provider's host names taken from the detected name ({"region": ...}).
    provider_params: dict[str, str] = Field(default_factory=dict)
    user: str | None = None
    email: str | None = None
    variant: str | None = None  # a ReplyMeaning.variant, for the precise fix
    evidence: dict[str, object] = Field(default_factory=dict)  # the finding's evidence
    today: dt.date | None = None  # dated sentences are worded against it (default: today)
