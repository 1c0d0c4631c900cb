"""Step 1 of a diagnosis: from the request to the one server it talks to, resolved once.

`work_out_target` decides host, port and encryption (the request's, else the provider's
documented ones, else a guessed name); `pin_address` resolves the name once under the target
policy. The result is a frozen `Target` every later step reads and none changes.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal

import dns.asyncresolver

from diagnostics import _dns
from diagnostics._errors import InputError
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
        """The provider's documented endpoints (regional hosts filled from the match)."""
        return self.match.endpoints() if self.match is not None else ()


async def work_out_target(
    request: CheckRequest, kb: Knowledge, resolver: dns.asyncresolver.Resolver
) -> tuple[Target, list[Finding]]:
    """Host, port and encryption for `request` (not yet resolved), and what was guessed."""
    domain = request.sender_domain
    mx = await _lookup_mx(resolver, domain) if domain else None
    match = kb.match_host(request.host, port=request.port) if request.host else None
    if match is None and mx is not None and mx.hosts:
        match = kb.match_mx(mx.hosts)
    documented = match.endpoints() if match is not None else ()
    findings: list[Finding] = []
    host = request.host or (documented[0].host if documented else "")
    if not host:
        host, guessed = await _guess_host(resolver, domain or "", mx)
        findings.append(guessed)
    port = request.port or (documented[0].port if documented else 587)
    target = Target(
        host=host,
        port=port,
        security=entered_security(request.security, port, documented),
        connect=request.connect or host,
        match=match,
        mx=mx,
    )
    return target, findings


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


async def _guess_host(
    resolver: dns.asyncresolver.Resolver, domain: str, mx: _dns.MxResult | None
) -> tuple[str, Finding]:
    """No known provider: try the names hosting companies use for submission."""
    candidates = [f"smtp.{domain}", f"mail.{domain}"]
    if mx is not None:
        candidates += list(mx.hosts[:1])
    for name in candidates:
        try:
            await _dns.resolve_host(resolver, name)
        except _dns.DnsError:
            continue
        return name, finding(
            "provider.unknown",
            detail=(
                f"The mail provider of {domain} is not one smtpcheck knows, so it "
                f"checked {name}, the usual name for an outgoing server. Ask the "
                "provider for its documented SMTP settings if this is not it."
            ),
            evidence={"domain": domain, "candidates": candidates, "checked": name},
        )
    raise InputError(
        f"could not find an outgoing server for {domain}: give the server name "
        f"(e.g. smtp.{domain}:587)"
    )
