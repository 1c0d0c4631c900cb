"""Step 1 of a diagnosis: from the request to the one server it talks to, resolved once.

`work_out_target` decides host, port and encryption (the request's, else what discovery
found for the email address: the provider's documented settings, the domain's own, else a
guessed name; nothing at all leaves the host empty, and the report says so); `pin_address`
resolves the name once under the target policy. The result is a frozen `Target` every
later step reads and none changes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import dns.asyncresolver

from diagnostics import _discovery, _dns
from diagnostics._findings import finding
from diagnostics._models import (
    DEFAULT_SECURITY_FOR_PORT,
    CheckRequest,
    Endpoint,
    Finding,
    ProviderRef,
    Security,
)
from diagnostics._policy import TargetPolicy
from diagnostics.knowledge import Knowledge, Provider, ProviderMatch

log = logging.getLogger("smtpcheck.engine")

Discover = Callable[[_discovery.Inputs], Awaitable[_discovery.Discovery]]


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """The server a diagnosis checks, as worked out from the request."""

    host: str
    port: int
    security: Security  # as entered (AUTO stays AUTO: the report says what the user chose)
    connect: str  # the name or address connected to (request.connect, else host)
    match: ProviderMatch | None = None  # the provider and the parts of the name it matched
    mx: _dns.MxResult | None = None  # the sender domain's MX, when there is an email address
    address: str | None = None  # pinned by `pin_address`; every probe connects to it
    addresses: tuple[str, ...] = ()
    # Where the settings came from, when only an email address was given (issue 15).
    discovery: _discovery.Discovery | None = None

    @property
    def found(self) -> bool:
        """False when no outgoing server could be found for the address (host is "")."""
        return bool(self.host)

    @property
    def provider(self) -> Provider | None:
        return self.match.provider if self.match is not None else None

    @property
    def provider_ref(self) -> ProviderRef | None:
        if self.match is None:
            return None
        provider = self.match.provider
        source: Literal["mx", "host"] = "mx" if self.match.source == "mx" else "host"
        return ProviderRef(name=provider.name, source=source, key=provider.key)

    @property
    def documented(self) -> tuple[Endpoint, ...]:
        """The documented or published endpoints: discovery's (never a guess), else the
        provider's (regional hosts filled from the match)."""
        if self.discovery is not None:
            return tuple(c.endpoint for c in self.discovery.documented)
        return self.match.endpoints() if self.match is not None else ()


async def work_out_target(
    request: CheckRequest,
    kb: Knowledge,
    resolver: dns.asyncresolver.Resolver,
    *,
    discover: Discover | None = None,
) -> tuple[Target, list[Finding]]:
    """Host, port and encryption for `request` (not yet resolved), and what was guessed.

    With only an email address, `discover` finds the candidates (see `_discovery`); when
    neither it nor a guess names a server, the target's host is "" (`found` is False)."""
    domain = request.sender_domain
    mx = await _lookup_mx(resolver, domain) if domain else None
    match = kb.match_host(request.host, port=request.port) if request.host else None
    if match is None and mx is not None and mx.hosts:
        match = kb.match_mx(mx.hosts)
    discovery = None
    if not request.host and domain and discover is not None:
        discovery = await discover(_inputs(request, domain, mx, match))
    target = Target(
        host=request.host or "", port=0, security=Security.STARTTLS, connect="",
        match=match, mx=mx, discovery=discovery,
    )  # fmt: skip
    findings: list[Finding] = []
    documented = target.documented
    host = target.host or (documented[0].host if documented else "")
    if not host and domain:
        host, discovery, guessed = await _guess(resolver, domain, mx, discovery)
        findings += guessed
    port = request.port or (documented[0].port if documented else 587)
    target = dataclasses.replace(
        target,
        host=host,
        port=port,
        security=entered_security(request.security, port, documented),
        connect=request.connect or host,
        discovery=discovery,
    )
    return target, findings


def _inputs(
    request: CheckRequest, domain: str, mx: _dns.MxResult | None, match: ProviderMatch | None
) -> _discovery.Inputs:
    return _discovery.Inputs(
        domain=domain,
        email=request.email or request.target_email,
        mx_hosts=mx.hosts if mx is not None else (),
        provider_name=match.provider.name if match is not None else None,
        provider_key=match.provider.key if match is not None else None,
        provider_endpoints=match.endpoints() if match is not None else (),
    )


async def pin_address(
    target: Target, policy: TargetPolicy, resolver: dns.asyncresolver.Resolver
) -> Target:
    """`target` with its address, the one every probe uses; raises DnsError, TargetRefused."""
    literal = policy.literal_target(target.connect)
    if literal is not None:
        addresses: tuple[str, ...] = (literal,)
    else:
        addresses = await _dns.resolve_host(resolver, target.connect)
    address = policy.pick_address(target.connect, addresses)
    return dataclasses.replace(target, address=address, addresses=addresses)


def entered_security(
    security: Security | None, port: int, documented: tuple[Endpoint, ...]
) -> Security:
    """The encryption entered, else the provider's for this port, else the port's usual one."""
    if security is not None:
        return security
    for endpoint in documented:
        if endpoint.port == port:
            return endpoint.security
    return DEFAULT_SECURITY_FOR_PORT.get(port, Security.STARTTLS)


async def _lookup_mx(resolver: dns.asyncresolver.Resolver, domain: str) -> _dns.MxResult | None:
    try:
        return await _dns.lookup_mx(resolver, domain)
    except _dns.DnsError as exc:
        log.info("MX lookup for %s failed: %s", domain, exc)
        return None


async def _guess(
    resolver: dns.asyncresolver.Resolver,
    domain: str,
    mx: _dns.MxResult | None,
    discovery: _discovery.Discovery | None,
) -> tuple[str, _discovery.Discovery | None, list[Finding]]:
    """No source named a server: the first of the usual names that resolves, said to be a
    guess (host "" when none does)."""
    mx_hosts = mx.hosts if mx is not None else ()
    guessed = await _discovery.guesses(domain, mx_hosts, resolver)
    if not guessed:
        return "", discovery, []
    name = guessed[0].host
    if discovery is not None:
        discovery = dataclasses.replace(discovery, candidates=(*discovery.candidates, guessed[0]))
    candidates = [f"smtp.{domain}", f"mail.{domain}", *mx_hosts[:1]]
    return (
        name,
        discovery,
        [
            finding(
                "provider.unknown",
                detail=(
                    f"No source documents the outgoing server of {domain} (the ISP database, the "
                    f"domain's autoconfig file and SRV records were asked), so smtpcheck guessed "
                    f"{name}, the usual name for an outgoing server. Ask the provider for its "
                    "documented SMTP settings if this is not it."
                ),
                evidence={"domain": domain, "candidates": candidates, "checked": name},
            )
        ],
    )
