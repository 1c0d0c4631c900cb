"""From an email address to candidate outgoing servers, the way mail clients find them.

Sources, in the order their answers are preferred (issue 15):

1. ``provider``      smtpcheck's own provider notes (providers.yaml: Outlook-specific notes,
                     dated policies), recognised by the engine from the MX or host name;
2. ``ispdb``         the Thunderbird ISP database, by the address's domain or its MX host;
3. ``autoconfig``    the domain's own clientConfig document, fetched over HTTPS (`_fetch`);
4. ``srv``           RFC 6186 / RFC 8314 SRV records (``_submissions._tcp`` implicit TLS,
                     ``_submission._tcp`` STARTTLS);
5. ``microsoft365``  Microsoft 365 recognised from MX or from the autodiscover alias;
6. ``guess``         smtp.<domain>, mail.<domain>, the first MX host: only when 1-5 gave
                     nothing, and always said to be guesses.

Every source runs within one timeout taken from the diagnosis budget; the local ones
(ISPDB) first, the network ones (autoconfig, SRV, autodiscover) concurrently. Each source
ends in a `SourceOutcome` the report shows: found, not_found, no_service, refused,
invalid, failed or skipped. The probes that confirm a candidate are the engine's business.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from diagnostics import _dns
from diagnostics._errors import InputError
from diagnostics._models import Endpoint, Security

if TYPE_CHECKING:
    # aiohttp is imported only when a fetch is about to happen; the ISP database and the
    # XML parser (~10 ms) when an address is looked up: checking a server needs neither.
    from diagnostics import _autoconfig, _ispdb
    from diagnostics._fetch import Fetcher

log = logging.getLogger("smtpcheck.discovery")

Source = Literal["provider", "ispdb", "autoconfig", "srv", "microsoft365", "guess"]
State = Literal["found", "not_found", "no_service", "refused", "invalid", "failed", "skipped"]
SOURCES: tuple[Source, ...] = ("provider", "ispdb", "autoconfig", "srv", "microsoft365", "guess")
SOURCE_WORDS: dict[str, str] = {
    "provider": "documented by the provider (smtpcheck's provider notes)",
    "ispdb": "documented by the provider (ISPDB)",
    "autoconfig": "published by the domain (autoconfig)",
    "srv": "published by the domain (SRV)",
    "microsoft365": "Microsoft 365's documented setting (the domain's mail is at Microsoft)",
    "guess": "guessed",
}
SOURCE_NAMES: dict[str, str] = {
    "provider": "smtpcheck's provider notes",
    "ispdb": "ISP database",
    "autoconfig": "autoconfig",
    "srv": "SRV",
    "microsoft365": "Microsoft 365",
    "guess": "guess",
}
MICROSOFT365 = Endpoint(host="smtp.office365.com", port=587, security=Security.STARTTLS)
_AUTODISCOVER_TARGETS = ("autodiscover.outlook.com", "autod.ha-autod.office.com")
MAX_CANDIDATES = 6


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """One outgoing server a source named; `sources` are every source that named it."""

    host: str
    port: int
    security: Security
    sources: tuple[Source, ...]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(host=self.host, port=self.port, security=self.security)

    @property
    def guessed(self) -> bool:
        return self.sources == ("guess",)

    @property
    def words(self) -> str:
        return " and ".join(SOURCE_WORDS[s] for s in self.sources)

    def as_evidence(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "security": str(self.security),
            "sources": list(self.sources),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class SourceOutcome:
    source: Source
    state: State
    detail: str = ""
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_evidence(self) -> dict[str, Any]:
        return {"source": self.source, "state": self.state, "detail": self.detail, **self.evidence}


@dataclasses.dataclass(frozen=True, slots=True)
class Discovery:
    domain: str
    candidates: tuple[Candidate, ...] = ()
    outcomes: tuple[SourceOutcome, ...] = ()
    ispdb: _ispdb.IspdbMatch | None = None
    microsoft365: str | None = None  # "mx" or "autodiscover" when recognised

    @property
    def documented(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if not c.guessed)

    def outcome(self, source: Source) -> SourceOutcome | None:
        return next((o for o in self.outcomes if o.source == source), None)


@dataclasses.dataclass(frozen=True, slots=True)
class Inputs:
    """What the engine already knows when discovery starts."""

    domain: str
    email: str | None = None
    mx_hosts: tuple[str, ...] = ()
    provider_name: str | None = None  # providers.yaml match, if any
    provider_key: str | None = None
    provider_endpoints: tuple[Endpoint, ...] = ()


async def discover(inputs: Inputs, *, resolver: Any, fetcher: Fetcher, budget: float) -> Discovery:
    """Ask every source (see the module docstring) within `budget` seconds; never raises
    for what a source answers."""
    outcomes: dict[Source, SourceOutcome] = {}
    named: dict[Source, list[Endpoint]] = {s: [] for s in SOURCES}
    if inputs.provider_endpoints:
        named["provider"] = list(inputs.provider_endpoints)
        outcomes["provider"] = SourceOutcome(
            "provider", "found", f"{inputs.provider_name} (smtpcheck's provider notes)"
        )
    else:
        outcomes["provider"] = SourceOutcome("provider", "not_found")
    ispdb = await _ispdb_source(inputs, outcomes, named)
    jobs: dict[Source, asyncio.Task[tuple[SourceOutcome, list[Endpoint]]]] = {
        "srv": asyncio.create_task(_srv_source(inputs.domain, resolver)),
        "microsoft365": asyncio.create_task(_m365_source(inputs, resolver)),
    }
    if ispdb is None or ispdb.source != "domain":
        jobs["autoconfig"] = asyncio.create_task(_autoconfig_source(inputs, fetcher, budget))
    else:
        outcomes["autoconfig"] = SourceOutcome(
            "autoconfig", "skipped", "the ISP database documents this domain"
        )
    _done, pending = await asyncio.wait(jobs.values(), timeout=max(0.05, budget))
    for source, task in jobs.items():
        if task in pending:
            task.cancel()
            outcomes[source] = SourceOutcome(source, "failed", "no answer within the budget")
            continue
        exc = task.exception()
        if exc is not None:
            log.error("discovery source %s crashed", source, exc_info=exc)
            outcomes[source] = SourceOutcome(source, "failed", type(exc).__name__)
            continue
        outcomes[source], named[source] = task.result()
    await asyncio.gather(*pending, return_exceptions=True)
    m365 = outcomes["microsoft365"]
    return Discovery(
        domain=inputs.domain,
        candidates=merge(named),
        outcomes=tuple(outcomes[s] for s in SOURCES if s in outcomes),
        ispdb=ispdb,
        microsoft365=m365.evidence.get("by") if m365.state == "found" else None,
    )


def merge(named: dict[Source, list[Endpoint]]) -> tuple[Candidate, ...]:
    """One candidate per (host, port, security), in source order, naming every source."""
    merged: dict[tuple[str, int, Security], list[Source]] = {}
    for source in SOURCES:
        for endpoint in named.get(source, ()):
            key = (endpoint.host.lower(), endpoint.port, endpoint.security)
            sources = merged.setdefault(key, [])
            if source not in sources:
                sources.append(source)
    return tuple(
        Candidate(host, port, security, tuple(sources))
        for (host, port, security), sources in list(merged.items())[:MAX_CANDIDATES]
    )


# --------------------------------------------------------------------------- sources


async def _ispdb_source(
    inputs: Inputs, outcomes: dict[Source, SourceOutcome], named: dict[Source, list[Endpoint]]
) -> _ispdb.IspdbMatch | None:
    from diagnostics import _ispdb

    match = await _ispdb.find(inputs.domain, inputs.mx_hosts, email=inputs.email)
    if match is None:
        outcomes["ispdb"] = SourceOutcome("ispdb", "not_found")
        return None
    how = "the address's domain" if match.source == "domain" else f"the MX host ({match.matched})"
    named["ispdb"] = [s.endpoint for s in match.config.outgoing]
    outcomes["ispdb"] = SourceOutcome(
        "ispdb",
        "found" if match.config.outgoing else "invalid",
        f"{match.config.display_name}, recognised by {how}",
        match.as_evidence(),
    )
    return match


async def _srv_source(domain: str, resolver: Any) -> tuple[SourceOutcome, list[Endpoint]]:
    names = [f"{prefix}.{domain}" for prefix, _ in _dns.SUBMISSION_SRV]
    results = await asyncio.gather(
        *(_dns.lookup_srv(resolver, name) for name in names), return_exceptions=True
    )
    endpoints: list[Endpoint] = []
    evidence: dict[str, Any] = {}
    failures: list[str] = []
    no_service: list[str] = []
    for (_, security), name, result in zip(_dns.SUBMISSION_SRV, names, results, strict=True):
        if isinstance(result, _dns.DnsError):
            failures.append(str(result))
            continue
        if isinstance(result, BaseException):
            raise result
        evidence[name] = [r.as_evidence() for r in result.records] or list(result.raw)
        if result.no_service:
            no_service.append(name)
        endpoints += [
            Endpoint(host=r.target, port=r.port, security=security) for r in result.records
        ]
    if endpoints:
        state: State = "found"
        detail = "; ".join(f"{e.host} port {e.port}" for e in endpoints[:4])
    elif no_service:
        state, detail = "no_service", f'{" and ".join(no_service)}: "." (no submission service)'
    elif failures:
        state, detail = "failed", failures[0]
    else:
        state, detail = "not_found", "no _submissions._tcp or _submission._tcp records"
    return SourceOutcome("srv", state, detail, {"records": evidence}), endpoints


async def _m365_source(inputs: Inputs, resolver: Any) -> tuple[SourceOutcome, list[Endpoint]]:
    if inputs.provider_key == "microsoft365":
        return SourceOutcome("microsoft365", "found", "recognised from MX", {"by": "mx"}), [
            MICROSOFT365
        ]
    name = f"autodiscover.{inputs.domain}"
    try:
        target = await _dns.lookup_cname(resolver, name)
    except _dns.DnsError as exc:
        return SourceOutcome("microsoft365", "failed", str(exc)), []
    if target in _AUTODISCOVER_TARGETS:
        return (
            SourceOutcome(
                "microsoft365",
                "found",
                f"{name} is an alias of {target}",
                {"by": "autodiscover", "autodiscover": target},
            ),
            [MICROSOFT365],
        )
    return SourceOutcome("microsoft365", "not_found"), []


def autoconfig_urls(domain: str, email: str | None) -> list[str]:
    query = f"?emailaddress={quote(email, safe='@')}" if email else ""
    return [
        f"https://autoconfig.{domain}/mail/config-v1.1.xml{query}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
    ]


async def _autoconfig_source(
    inputs: Inputs, fetcher: Fetcher, budget: float
) -> tuple[SourceOutcome, list[Endpoint]]:
    urls = autoconfig_urls(inputs.domain, inputs.email)
    results = await asyncio.gather(
        *(_fetch_config(url, inputs.email, fetcher, budget) for url in urls)
    )
    tried = [{"url": _shown(url), "state": state, "detail": detail} for url, (state, detail, _) in
             zip(urls, results, strict=True)]  # fmt: skip
    for url, (_state, detail, config) in zip(urls, results, strict=True):
        if config is not None and config.outgoing:
            endpoints = [s.endpoint for s in config.outgoing]
            return SourceOutcome(
                "autoconfig", "found", f"{_shown(url)}: {detail}", {"urls": tried}
            ), endpoints
    # Nothing usable: the most telling failure is the one the report shows.
    order = ("refused", "invalid", "failed", "not_found")
    state, detail, _ = min(results, key=lambda r: order.index(r[0]))
    url = urls[[r[0] for r in results].index(state)]
    return SourceOutcome("autoconfig", state, f"{_shown(url)}: {detail}", {"urls": tried}), []


async def _fetch_config(
    url: str, email: str | None, fetcher: Fetcher, budget: float
) -> tuple[State, str, _autoconfig.ClientConfig | None]:
    from diagnostics import _autoconfig
    from diagnostics._fetch import FetchFailed

    try:
        fetched = await fetcher.get(url, budget=budget)
    except FetchFailed as exc:
        state: State = {
            "not_found": "not_found",
            "refused": "refused",
            "tls": "refused",
            "too_large": "invalid",
            "redirects": "refused",
        }.get(exc.reason, "failed")  # type: ignore[assignment]
        return state, str(exc), None
    try:
        config = await asyncio.to_thread(_autoconfig.parse, fetched.body, email=email)
    except _autoconfig.AutoconfigInvalid as exc:
        return "invalid", str(exc), None
    if not config.outgoing:
        why = "; ".join(config.skipped[:2]) or "no outgoing server"
        return "invalid", f"the document names no usable outgoing server ({why})", None
    names = ", ".join(f"{s.host} port {s.port}" for s in config.outgoing[:3])
    return "found", names, config


def _shown(url: str) -> str:
    """The URL without its query (the address is the user's; the report need not repeat it)."""
    return url.split("?", 1)[0]


# --------------------------------------------------------------------------- guesses


async def guesses(domain: str, mx_hosts: Sequence[str], resolver: Any) -> list[Candidate]:
    """The names hosting companies use for submission, those that resolve, port 587."""
    names = [f"smtp.{domain}", f"mail.{domain}", *mx_hosts[:1]]
    results = await asyncio.gather(
        *(_dns.resolve_host(resolver, n) for n in names), return_exceptions=True
    )
    found: list[Candidate] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, _dns.DnsError | InputError):
            continue
        if isinstance(result, BaseException):
            raise result
        found.append(Candidate(name, 587, Security.STARTTLS, ("guess",)))
    return found
