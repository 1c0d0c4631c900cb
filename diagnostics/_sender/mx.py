"""The sender domain's MX records: can anyone reply to the address?"""

from __future__ import annotations

import re
from collections.abc import Sequence

import dns.asyncresolver

from diagnostics._dns import (
    DnsError,
    DnsServerFailure,
    HostNotFound,
    MxHost,
    MxResult,
    NoAddress,
    resolve_host,
)
from diagnostics._findings import finding
from diagnostics._models import Finding
from diagnostics._sender._common import EVIDENCE_LIST_MAX

# An MX written as an IP address; a zone file turns "192.0.2.25" into 192.0.2.25.<zone>.
_LOOKS_LIKE_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}(?:\.|$)")


async def mx_findings(
    resolver: dns.asyncresolver.Resolver, mx: MxResult
) -> tuple[list[Finding], list[DnsError]]:
    """What the MX records mean for replies to the sender, and the MX hosts that could not
    be checked (DNS errors, said once by the caller)."""
    if mx.null_mx:
        return [_null_mx(mx)], []
    if mx.no_records:
        try:
            addresses = await resolve_host(resolver, mx.domain)
        except (HostNotFound, NoAddress):
            addresses = ()
        except DnsError as exc:
            return [], [exc]
        return [_no_mx(mx.domain, addresses)], []
    findings = [_mx_alias(mx.domain, record) for record in mx.records if record.is_cname]
    broken = [r for r in mx.records if r.problem in ("nxdomain", "no_address")]
    unknown = [r for r in mx.records if r.problem in ("timeout", "servfail")]
    usable = [r for r in mx.records if r.resolves or r.problem == "not_checked"]
    if broken:
        findings.append(_unresolvable(mx.domain, broken, undeliverable=not usable and not unknown))
    if not findings and usable:
        findings.append(
            finding(
                "dns.mx.ok",
                detail="MX records: "
                + ", ".join(r.rstrip(".") for r in mx.raw[:EVIDENCE_LIST_MAX])
                + ".",
                evidence={"domain": mx.domain, "mx": [r.as_evidence() for r in mx.records]},
                first=usable[0].name,
                several=len(mx.records) > 1,
                others=len(mx.records) - 1,
            )
        )
    errors: list[DnsError] = [
        DnsServerFailure(f"MX host {r.name}: {r.problem}", name=r.name, reason=r.problem or "")
        for r in unknown
    ]
    return findings, errors


def _null_mx(mx: MxResult) -> Finding:
    domain = mx.domain
    others = [r for r in mx.raw if not r.rstrip().endswith(" .")]
    return finding(
        "dns.mx.null",
        detail=(
            f"{domain} publishes the null MX record '0 .' (RFC 7505): nobody can reply"
            " to an address there, and receivers may refuse mail from it with"
            " 550 5.7.27. Check the email address, or publish the real MX records."
            + (" It also lists other MX records, which RFC 7505 forbids." if others else "")
        ),
        evidence={"domain": domain, "mx": list(mx.raw)},
    )


def _no_mx(domain: str, addresses: Sequence[str]) -> Finding:
    if addresses:
        return finding(
            "dns.mx.missing",
            detail=(
                f"Replies to addresses at {domain} go to the domain's own address"
                f" ({addresses[0]}) instead (implicit MX, RFC 5321 section 5.1), which"
                " rarely runs a mail server. Publish MX records for your mail provider."
            ),
            evidence={"domain": domain, "implicit_mx": list(addresses)},
        )
    return finding(
        "dns.mx.missing",
        detail=(
            f"Nobody can reply to an address at {domain}, and many receiving servers"
            " refuse mail from a domain that cannot receive any. Publish MX records"
            " for your mail provider, or check the email address."
        ),
        evidence={"domain": domain, "implicit_mx": []},
        no_address=True,
    )


def _mx_alias(domain: str, record: MxHost) -> Finding:
    return finding(
        "dns.mx.cname",
        detail=(
            "An MX record must name a host directly, not an alias (RFC 2181"
            " section 10.3, RFC 5321 section 5.1). Most servers cope, some refuse"
            f" or misroute mail. Point the MX record at {record.cname} instead."
        ),
        evidence={"domain": domain, **record.as_evidence()},
    )


def _unresolvable(domain: str, broken: Sequence[MxHost], *, undeliverable: bool) -> Finding:
    names = ", ".join(r.name for r in broken)
    one = len(broken) == 1
    detail = (
        f"{names} {'does' if one else 'do'} not resolve to an address, so mail to the domain"
        f" cannot use {'it' if one else 'them'}."
    )
    if any(_LOOKS_LIKE_IP.match(r.name) for r in broken):
        detail += " An MX record must name a host, not an IP address."
    if undeliverable:
        detail += f" No MX host of {domain} works: replies to your address cannot arrive."
    return finding(
        "dns.mx.unresolvable",
        detail=detail,
        evidence={"domain": domain, "hosts": [r.as_evidence() for r in broken]},
        names=names,
        several=not one,
        undeliverable=undeliverable,
    )
