"""`check_sender_domain`: every sender-domain check at once, each lookup failure said once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import dns.asyncresolver

from diagnostics._dns import (
    DnsError,
    MxResult,
    lookup_mx,
)
from diagnostics._errors import InputError
from diagnostics._findings import finding
from diagnostics._models import Finding
from diagnostics._sender._common import lookup_failed
from diagnostics._sender.dmarc import dmarc_findings
from diagnostics._sender.mta_sts import mta_sts_findings, tlsrpt_findings
from diagnostics._sender.mx import mx_findings
from diagnostics._sender.spf import analyze_spf, spf_findings

T = TypeVar("T")


async def _guard(check: str, failed: list[tuple[str, DnsError]], work: Awaitable[T]) -> T | None:
    try:
        return await work
    except DnsError as exc:
        failed.append((check, exc))
        return None
    except InputError:
        return None  # e.g. "_dmarc." + a 250-character domain is too long to ask for


async def check_sender_domain(
    resolver: dns.asyncresolver.Resolver, domain: str, *, mx: MxResult | None = None
) -> list[Finding]:
    """Return findings about `domain`'s MX, SPF, DMARC, MTA-STS and TLS-RPT records.

    `mx`, when the engine already looked it up (provider detection), is reused.
    """
    domain = domain.rstrip(".").lower()
    failed: list[tuple[str, DnsError]] = []
    results = await asyncio.gather(
        _guard("mx", failed, lookup_mx(resolver, domain)) if mx is None else _done(mx),
        _guard("spf", failed, analyze_spf(resolver, domain)),
        _guard("dmarc", failed, dmarc_findings(resolver, domain)),
        _guard("mta_sts", failed, mta_sts_findings(resolver, domain)),
        _guard("tlsrpt", failed, tlsrpt_findings(resolver, domain)),
        return_exceptions=True,  # let every lookup finish, then report the first bug
    )
    mx_result, spf, dmarc = _raised(results[0]), _raised(results[1]), _raised(results[2])
    sts, rpt = _raised(results[3]), _raised(results[4])
    if mx_result is not None and mx_result.nxdomain:
        return [
            finding(
                "dns.sender.nxdomain",
                detail=(
                    f"The email address is at {domain}, but DNS says that domain does not exist"
                    " (NXDOMAIN). Receiving servers refuse mail from domains that do not exist;"
                    " check the spelling of the address in Outlook's account settings."
                ),
                evidence={"domain": domain},
            )
        ]
    findings: list[Finding] = []
    if mx_result is not None:
        about_mx, mx_errors = await mx_findings(resolver, mx_result)
        findings += about_mx
        failed += [("mx", e) for e in mx_errors]
    if spf is not None:
        findings += spf_findings(spf)
        failed += [("spf", e) for e in spf.failed]
    if dmarc is not None:
        findings += dmarc[0]
        failed += [("dmarc", e) for e in dmarc[1]]
    findings += sts or []
    findings += rpt or []
    if failed:
        order = ["mx", "spf", "dmarc", "mta_sts", "tlsrpt"]
        failed.sort(key=lambda item: order.index(item[0]))  # completion order varies
        findings.append(lookup_failed(domain, failed))
    return findings


def _raised(result: T | BaseException) -> T:
    """A gathered result, or the bug it hit raised here."""
    if isinstance(result, BaseException):
        raise result
    return result


async def _done(value: T) -> T:
    return value
