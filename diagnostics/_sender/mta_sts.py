"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) records: they concern mail *to* the domain."""

from __future__ import annotations

import re

import dns.asyncresolver

from diagnostics._dns import (
    lookup_txt,
)
from diagnostics._findings import finding
from diagnostics._models import Finding

_STS_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_STS_EXT = re.compile(r"^[A-Za-z0-9_.\-]{1,32}=[\x21-\x3a\x3c\x3e-\x7e]+$")


def _fields(text: str) -> list[str]:
    return [f.strip(" \t") for f in text.split(";") if f.strip(" \t")]


def parse_mta_sts(text: str) -> tuple[str | None, list[str]]:
    """Return (id, errors) for an _mta-sts TXT record (RFC 8461 section 3.1)."""
    fields = _fields(text)
    errors: list[str] = []
    if not fields or fields[0] != "v=STSv1":
        errors.append("the record must start with 'v=STSv1'")
    sts_id = None
    for field in fields[1:]:
        if field.startswith("id="):
            if sts_id is not None:
                errors.append("id= appears more than once")
            sts_id = field[3:]
            if not _STS_ID.match(sts_id):
                errors.append(f"id={sts_id} must be 1-32 letters and digits")
        elif not _STS_EXT.match(field):
            errors.append(f"'{field}' is not a valid field")
    if sts_id is None:
        errors.append("the id= field is missing")
    return sts_id, errors


def parse_tlsrpt(text: str) -> tuple[list[str], list[str]]:
    """Return (report URIs, errors) for an _smtp._tls TXT record (RFC 8460 section 3)."""
    fields = _fields(text)
    errors: list[str] = []
    if not fields or fields[0] != "v=TLSRPTv1":
        errors.append("the record must start with 'v=TLSRPTv1'")
    uris: list[str] = []
    for field in fields[1:]:
        if field.startswith("rua="):
            uris = [u.strip() for u in field[4:].split(",") if u.strip()]
            bad = [u for u in uris if not re.match(r"^(mailto:[^\s@]+@[^\s@]+|https://\S+)$", u)]
            if bad or not uris:
                errors.append(f"rua={field[4:]} must list mailto: or https: addresses")
    if "rua=" not in text:
        errors.append("the rua= field (where reports go) is missing")
    return uris, errors


async def mta_sts_findings(resolver: dns.asyncresolver.Resolver, domain: str) -> list[Finding]:
    name = f"_mta-sts.{domain}"
    txt = await lookup_txt(resolver, name)
    candidates = [t for t in txt if t.lower().startswith("v=stsv1")]
    if not candidates:
        return []
    errors = (
        [f"{len(candidates)} MTA-STS records; senders ignore them all"]
        if len(candidates) > 1
        else []
    )
    sts_id = None
    if not errors:
        sts_id, errors = parse_mta_sts(candidates[0])
    if errors:
        return [
            finding(
                "dns.mta_sts.invalid",
                detail=(
                    f"The TXT record at {name}: {'; '.join(errors)}. Servers sending to"
                    f" {domain} ignore its MTA-STS policy until this is fixed."
                ),
                evidence={"domain": domain, "name": name, "records": candidates, "errors": errors},
            )
        ]
    return [
        finding(
            "dns.mta_sts.present",
            detail=(
                f"Servers sending mail to {domain} will require TLS as the policy at"
                f" https://mta-sts.{domain}/.well-known/mta-sts.txt says (the policy itself"
                " was not fetched). This concerns mail to the domain, not Outlook's sending."
            ),
            evidence={"domain": domain, "name": name, "record": candidates[0], "id": sts_id},
        )
    ]


async def tlsrpt_findings(resolver: dns.asyncresolver.Resolver, domain: str) -> list[Finding]:
    name = f"_smtp._tls.{domain}"
    txt = await lookup_txt(resolver, name)
    candidates = [t for t in txt if t.lower().startswith("v=tlsrptv1")]
    if not candidates:
        return [
            finding(
                "dns.tlsrpt.missing",
                detail=(
                    f"Optional: a TXT record at {name} (v=TLSRPTv1; rua=mailto:...) asks other"
                    " servers to report TLS problems delivering mail to the domain."
                ),
                evidence={"domain": domain, "name": name},
            )
        ]
    if len(candidates) > 1:
        uris: list[str] = []
        errors = [f"{len(candidates)} TLS-RPT records; senders ignore them all"]
    else:
        uris, errors = parse_tlsrpt(candidates[0])
    if errors:
        return [
            finding(
                "dns.tlsrpt.invalid",
                detail=f"The TXT record at {name}: {'; '.join(errors)}.",
                evidence={"domain": domain, "name": name, "records": candidates, "errors": errors},
            )
        ]
    return [
        finding(
            "dns.tlsrpt.present",
            detail=f"Reports about TLS problems delivering to {domain} go to {', '.join(uris)}.",
            evidence={"domain": domain, "name": name, "record": candidates[0], "rua": uris},
        )
    ]
