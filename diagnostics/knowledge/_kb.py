"""The loaded knowledge base: providers, fixes, reply meanings, error texts, policies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from diagnostics._errors import KnowledgeError
from diagnostics._models import Endpoint, Finding, Fix, OutlookClient
from diagnostics.knowledge._errortext import ErrorTextParser
from diagnostics.knowledge._linear import Pattern, compile_linear
from diagnostics.knowledge._models import (
    ClientMap,
    ClientSpec,
    ErrorTextMatch,
    ErrorTextsFile,
    FindingSpec,
    FixContext,
    FixEntry,
    FixSpec,
    HostPattern,
    MxGateway,
    Policy,
    Provider,
    RepliesFile,
    ReplyMeaning,
    Scope,
    ScopeText,
    Stage,
)
from diagnostics.knowledge._policy import dated_variables, policy_findings
from diagnostics.knowledge._render import client_variables, context_variables, render_fix
from diagnostics.knowledge._replies import ReplyClassifier, enhanced_code

_Compiled = tuple[Provider, Pattern, tuple[int, ...]]


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderMatch:
    """A provider recognised from a host name, and the part of the name that identified it."""

    provider: Provider
    source: str  # "mx" or "host"
    matched: str  # the host name that matched
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # {"region": "eu-west-1"}

    @property
    def region(self) -> str | None:
        return self.params.get("region")

    def endpoints(self) -> tuple[Endpoint, ...]:
        """The provider's documented endpoints, regional parts filled from the match."""
        return self.provider.endpoints(self.params)


class Knowledge:
    """Read-only access to the validated knowledge base; build it with `load_knowledge()`."""

    def __init__(
        self,
        *,
        findings: Sequence[FindingSpec],
        providers: Sequence[Provider],
        gateways: Sequence[MxGateway],
        clients: Sequence[ClientSpec],
        fixes: Sequence[FixEntry] | Mapping[str, FixEntry],
        replies: RepliesFile,
        error_texts: ErrorTextsFile,
        policies: Sequence[Policy],
    ) -> None:
        self._findings = {f.id: f for f in findings}
        self._providers = {p.key: p for p in providers}
        self._gateways = tuple(gateways)
        self._clients = {OutlookClient(c.key): c for c in clients}
        # The cache hands over the fixes as a mapping that builds an entry when first asked
        # for (`_cache.Indexed`): a diagnosis needs the fixes of its few findings only.
        self._fixes: Mapping[str, FixEntry] = (
            fixes if isinstance(fixes, Mapping) else {f.finding: f for f in fixes}
        )
        self._policies = tuple(policies)
        self._scopes = dict(error_texts.scopes)
        self._replies_data = replies
        self._error_texts = error_texts

        # Most specific pattern first, so mxa.eu.mailgun.org is Mailgun EU, not Mailgun US.
        def ordered(pairs: list[tuple[Provider, HostPattern]]) -> list[_Compiled]:
            pairs.sort(key=lambda pair: -pair[1].specificity)
            return [(p, pat.regex(), pat.ports) for p, pat in pairs]

        self._mx = ordered([(p, pat) for p in providers for pat in p.mx_patterns])
        self._hosts = ordered([(p, pat) for p in providers for pat in p.host_patterns])

    # Their patterns are compiled when first used (~5 ms): a diagnosis whose server refused
    # nothing classifies no reply, and only a pasted error text needs the parser.
    @functools.cached_property
    def _replies(self) -> ReplyClassifier:
        return ReplyClassifier(self._replies_data)

    @functools.cached_property
    def _errors(self) -> ErrorTextParser:
        return ErrorTextParser(
            self._error_texts,
            classify=lambda code, message, stage: self._replies.classify(
                code, message, stage=stage
            ),
            findings=self._findings,
        )

    # ----------------------------------------------------------------- catalog

    @property
    def findings(self) -> tuple[FindingSpec, ...]:
        """Every finding ID the engine may emit, with default severity and title."""
        return tuple(self._findings.values())

    @property
    def finding_ids(self) -> tuple[str, ...]:
        return tuple(self._findings)

    def finding(self, finding_id: str) -> FindingSpec:
        try:
            return self._findings[finding_id]
        except KeyError:
            raise KeyError(f"unknown finding ID {finding_id!r}") from None

    def client(self, client: OutlookClient | str) -> ClientSpec:
        return self._clients[OutlookClient(client)]

    # ----------------------------------------------------------------- providers

    @property
    def providers(self) -> tuple[Provider, ...]:
        return tuple(self._providers.values())

    @property
    def provider_keys(self) -> frozenset[str]:
        return frozenset(self._providers)

    @property
    def scopes(self) -> dict[Scope, ScopeText]:
        """How to say what a pasted error is about (errortexts.yaml `scopes`)."""
        return self._scopes

    def provider(self, key: str) -> Provider:
        try:
            return self._providers[key]
        except KeyError:
            raise KeyError(f"unknown provider {key!r}") from None

    def match_mx(self, mx_hosts: Sequence[str]) -> ProviderMatch | None:
        """The provider of the first MX host (by preference) that matches a known pattern."""
        for host in mx_hosts:
            name = _norm(host)
            for provider, regex, _ports in self._mx:
                found = regex.match(name)
                if found:
                    return ProviderMatch(provider, "mx", name, _params(found))
        return None

    def provider_by_mx(self, mx_hosts: Sequence[str]) -> Provider | None:
        match = self.match_mx(mx_hosts)
        return match.provider if match else None

    def match_host(self, host: str, *, port: int | None = None) -> ProviderMatch | None:
        """The provider whose submission host this is (port-bound patterns need the port)."""
        name = _norm(host)
        for provider, regex, ports in self._hosts:
            if ports and port not in ports:
                continue
            found = regex.match(name)
            if found:
                return ProviderMatch(provider, "host", name, _params(found))
        return None

    def provider_by_host(self, host: str, *, port: int | None = None) -> Provider | None:
        match = self.match_host(host, port=port)
        return match.provider if match else None

    # ----------------------------------------------------------------- replies

    def classify_reply(
        self, code: int, message: str, *, stage: Stage, provider_key: str | None = None
    ) -> ReplyMeaning | None:
        """What a 4xx/5xx reply means (None for 2xx/3xx); unknown ones decoded from RFC 3463."""
        return self._replies.classify(code, message, stage=stage, provider_key=provider_key)

    # ----------------------------------------------------------------- fixes

    def fix_entry(self, finding_id: str) -> FixEntry | None:
        return self._fixes.get(finding_id)

    def fix_spec(
        self,
        finding_id: str,
        client: OutlookClient,
        *,
        provider_key: str | None = None,
        variant: str | None = None,
    ) -> FixSpec | None:
        """The most specific spec: reply variant, then provider, then the client's own."""
        entry = self._fixes.get(finding_id)
        if entry is None:
            return None
        layers: list[ClientMap] = []
        if variant and variant in entry.variants:
            layers.append(entry.variants[variant])
        if provider_key and provider_key in entry.providers:
            layers.append(entry.providers[provider_key])
        layers.append(entry.clients)
        for layer in layers:
            spec = layer.get(client.value) or layer.get("all")
            if spec is not None:
                return spec
        return None

    def fix_for(
        self, finding_id: str, client: OutlookClient | str, ctx: FixContext | None = None
    ) -> Fix | None:
        """The filled-in fix for one finding and one Outlook; None for an unknown finding ID."""
        client = OutlookClient(client)
        ctx = ctx or FixContext()
        provider = ctx.provider
        spec = self.fix_spec(
            finding_id,
            client,
            provider_key=provider.key if provider else None,
            variant=ctx.variant,
        )
        if spec is None:
            return None
        client_spec = self._clients[client]
        finding = self._findings.get(finding_id)
        native = provider.native_clients.get(client.value) if provider else None
        if native is not None and finding is not None and finding.smtp_settings:
            spec = native  # this Outlook adds the account natively: no SMTP fields to change
        variables = {
            **client_variables(client_spec),
            **context_variables(ctx, client_spec),
            **dated_variables(self._policies, ctx.today or dt.date.today()),
        }
        lead: tuple[str, ...] = ()
        extra: tuple[str, ...] = ()
        note = provider.client_notes.get(client.value) if provider else None
        if note and finding and finding.smtp_settings and spec is not native:
            lead, extra = (note.text,), note.sources
        fix = render_fix(spec, client=client, variables=variables, lead_steps=lead,
                         extra_sources=extra)  # fmt: skip
        if _unverified(spec, client_spec):
            said = UNVERIFIED_NOTE if spec.applicable else UNVERIFIED_CLAIM
            fix = fix.model_copy(
                update={"steps": (*fix.steps, said.format(client_name=client_spec.name))}
            )
        return fix

    def with_fix(self, finding: Finding, client: OutlookClient | str, ctx: FixContext) -> Finding:
        """The finding with its fix attached, filled from `ctx` plus the finding's evidence."""
        variant = ctx.variant or _text(finding.evidence.get("variant"))
        filled = ctx.model_copy(update={"evidence": dict(finding.evidence), "variant": variant})
        return finding.model_copy(update={"fix": self.fix_for(finding.id, client, filled)})

    def refine(self, finding: Finding, *, provider_key: str | None = None) -> Finding:
        """Turn a generic reply finding (auth.failed, smtp.relay.refused) into its precise one.

        Uses evidence["reply"] ("535 5.7.139 ...") and evidence["stage"]; returns the finding
        unchanged when there is nothing to classify. A reply to AUTH leaves with its codes
        only ("535 5.7.139"): a hostile server can repeat the password in its words, in any
        encoding, so the words are used for the meaning and then dropped (issue 12).
        """
        reply = _text(finding.evidence.get("reply"))
        stage = finding.evidence.get("stage")
        parsed = _REPLY.match(reply or "")
        if not parsed or stage not in _STAGES:
            return _without_auth_words(finding, parsed) if stage == "auth" else finding
        meaning = self.classify_reply(
            int(parsed.group(1)), parsed.group(2), stage=stage, provider_key=provider_key
        )
        if stage == "auth":
            finding = _without_auth_words(finding, parsed)
            reply = _text(finding.evidence.get("reply"))
        if meaning is None:
            return finding
        spec = self._findings.get(meaning.finding_id)
        said = f"The server answered {reply}." if stage == "auth" else f"The server said: {reply}"
        detail = " ".join(part for part in (meaning.meaning, meaning.variant_detail, said) if part)
        evidence = {
            **finding.evidence,
            "meaning": meaning.meaning,
            "variant": meaning.variant,
            "enhanced": meaning.enhanced,
            "rule": meaning.rule,
            "sources": list(meaning.sources),
        }
        return finding.model_copy(
            update={
                "id": meaning.finding_id,
                "severity": meaning.severity,
                "title": spec.title if spec else finding.title,
                "detail": detail,
                "evidence": {k: v for k, v in evidence.items() if v is not None},
            }
        )

    # ----------------------------------------------------------------- error texts, policies

    def parse_error_text(self, text: str) -> list[ErrorTextMatch]:
        """What a pasted Outlook error says: codes, quoted server replies, known sentences."""
        return self._errors.parse(text)

    @property
    def policies(self) -> tuple[Policy, ...]:
        return self._policies

    def policy_findings(
        self, provider_key: str | None, *, today: dt.date, uses_password: bool
    ) -> list[Finding]:
        """Dated policy notes for this provider, worded against `today` (fix=None)."""
        if provider_key is None or provider_key not in self._providers:
            return []
        return policy_findings(
            self._policies,
            self._providers[provider_key],
            today=today,
            uses_password=uses_password,
        )


_REPLY = compile_linear(r"^\s*([245]\d\d)(?:[ -](.*))?$")


def _without_auth_words(finding: Finding, parsed: Any) -> Finding:
    """The finding with its AUTH reply reduced to the reply code and enhanced status code."""
    codes = None
    if parsed is not None:
        enhanced = enhanced_code(parsed.group(2) or "")
        codes = " ".join(part for part in (parsed.group(1), enhanced) if part)
    return finding.model_copy(update={"evidence": {**finding.evidence, "reply": codes}})


_STAGES = frozenset(("greeting", "ehlo", "starttls", "auth", "mail", "rcpt"))


# Said after steps whose menu names are not confirmed by a source (status unverified), and
# after an explanation that is not (UNVERIFIED_CLAIM, when there is nothing to click).
UNVERIFIED_NOTE = (
    "Menu names may differ in your version of {client_name}: these steps are not yet "
    "confirmed against Microsoft's documentation."
)
UNVERIFIED_CLAIM = "This is not yet confirmed against Microsoft's documentation."


def _unverified(spec: FixSpec, client: ClientSpec) -> bool:
    """The steps' own status, or the client's when the steps walk through its menus."""
    if spec.status == "unverified":
        return True
    return client.status == "unverified" and spec.applicable and bool(spec.steps)


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _params(found: Any) -> dict[str, str]:
    return {k: v for k, v in found.groupdict().items() if v}


def _norm(host: str) -> str:
    return host.strip().lower().rstrip(".")


__all__ = ["UNVERIFIED_CLAIM", "UNVERIFIED_NOTE", "Knowledge", "KnowledgeError", "ProviderMatch"]
