"""DMARC (RFC 7489): find the policy (the domain, else its parents) and say what it does."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import dns.asyncresolver

from diagnostics._dns import (
    DnsError,
    lookup_txt,
)
from diagnostics._findings import finding
from diagnostics._models import Finding
from diagnostics._sender._common import EVIDENCE_LIST_MAX

MAX_DMARC_NAMES = 8


_DMARC_VERSION = re.compile(r"^\s*v\s*=\s*DMARC1\s*(?:;|$)", re.IGNORECASE)
_DMARC_EXACT = re.compile(r"^\s*[vV]\s*=\s*DMARC1\s*(?:;|$)")
_DMARC_LIKE = re.compile(r"(?:^|;)\s*(?:v\s*=\s*dmarc|p\s*=\s*(?:none|quarantine|reject))", re.I)
_TAG = re.compile(r"^([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*)$", re.DOTALL)
_POLICIES = ("none", "quarantine", "reject")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s!,]+(?:![0-9]+[kmgtKMGT]?)?$")


def parse_dmarc(text: str) -> tuple[dict[str, str], list[str]]:
    """Return (tags, errors) for a DMARC record; errors is empty for a valid record."""
    errors: list[str] = []
    if not _DMARC_EXACT.match(text):
        if _DMARC_VERSION.match(text):
            errors.append("the version must be written exactly 'v=DMARC1'")
        else:
            errors.append("the record must start with 'v=DMARC1'")
    tags: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        match = _TAG.match(part)
        if not match:
            errors.append(f"'{part}' is not a tag=value pair")
            continue
        name, value = match.group(1).lower(), match.group(2).strip()
        if name in tags:
            errors.append(f"the tag '{name}' appears more than once")
        tags[name] = value
    checks: dict[str, Callable[[str], bool]] = {
        "p": lambda v: v.lower() in _POLICIES,
        "sp": lambda v: v.lower() in _POLICIES,
        "np": lambda v: v.lower() in _POLICIES,
        "adkim": lambda v: v.lower() in ("r", "s"),
        "aspf": lambda v: v.lower() in ("r", "s"),
        "pct": lambda v: v.isdigit() and 0 <= int(v) <= 100,
        "ri": lambda v: v.isdigit(),
        "fo": lambda v: bool(re.fullmatch(r"[01ds](?:\s*:\s*[01ds])*", v, re.I)),
        "rf": lambda v: bool(re.fullmatch(r"[A-Za-z0-9-]+(?:\s*:\s*[A-Za-z0-9-]+)*", v)),
        "psd": lambda v: v.lower() in ("y", "n", "u"),
        "t": lambda v: v.lower() in ("y", "n"),
        "rua": lambda v: all(_URI.match(u.strip()) for u in v.split(",")),
        "ruf": lambda v: all(_URI.match(u.strip()) for u in v.split(",")),
    }
    for name, valid in checks.items():
        if name in tags and not valid(tags[name]):
            errors.append(f"{name}={tags[name]} is not a valid value")
    if "p" not in tags:
        errors.append("the policy tag p= (none, quarantine or reject) is missing")
    return tags, errors


def _dmarc_names(domain: str) -> list[str]:
    """The DMARC tree walk: the domain, then its parents down to two labels (at most 8)."""
    labels = domain.split(".")
    names = [domain]
    start = min(len(labels) - 1, MAX_DMARC_NAMES - 1)
    for count in range(start, 1, -1):
        names.append(".".join(labels[-count:]))
    return names[:MAX_DMARC_NAMES]


async def dmarc_findings(
    resolver: dns.asyncresolver.Resolver, domain: str
) -> tuple[list[Finding], list[DnsError]]:
    names = _dmarc_names(domain)
    answers = await asyncio.gather(
        *(lookup_txt(resolver, f"_dmarc.{name}") for name in names), return_exceptions=True
    )
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, DnsError):
            return [], [answer]
        if isinstance(answer, BaseException):
            raise answer
        candidates = [t for t in answer if _DMARC_VERSION.match(t)]
        near = [t for t in answer if not _DMARC_VERSION.match(t) and _DMARC_LIKE.search(t)]
        if not candidates and not near:
            continue
        where = f"_dmarc.{name}"
        if len(candidates) > 1:
            errors = [f"{len(candidates)} DMARC records; receivers ignore them all"]
        else:
            _tags, errors = parse_dmarc((candidates or near)[0])
        if errors:
            return [
                finding(
                    "dns.dmarc.invalid",
                    detail=(
                        f"The TXT record at {where}: {'; '.join(errors)}. Receivers ignore an"
                        " invalid DMARC record, as if there were none."
                    ),
                    evidence={
                        "domain": domain,
                        "name": where,
                        "records": (candidates + near)[:EVIDENCE_LIST_MAX],
                        "errors": errors,
                    },
                )
            ], []
        tags, _ = parse_dmarc(candidates[0])
        inherited = name != domain
        policy = tags["p"].lower()
        effective = tags.get("sp", tags["p"]).lower() if inherited else policy
        detail = f"Policy {effective}" + (
            f", inherited from {name} (no record at _dmarc.{domain})" if inherited else ""
        )
        detail += {
            "none": ": monitoring only, receivers take no action on failing mail.",
            "quarantine": ": failing mail goes to spam.",
            "reject": ": failing mail is refused.",
        }[effective]
        if "pct" in tags and tags["pct"] != "100":
            detail += f" Applied to {tags['pct']} % of failing mail."
        return [
            finding(
                "dns.dmarc.ok",
                detail=detail,
                evidence={
                    "domain": domain,
                    "found_at": where,
                    "record": candidates[0],
                    "policy": policy,
                    "subdomain_policy": tags.get("sp"),
                    "effective_policy": effective,
                    "pct": int(tags["pct"]) if "pct" in tags else 100,
                    "rua": tags.get("rua"),
                },
            )
        ], []
    return [
        finding(
            "dns.dmarc.missing",
            detail=(
                f"There is no TXT record at _dmarc.{domain}"
                + (" or at a parent domain" if len(names) > 1 else "")
                + ". Gmail, Yahoo and Outlook.com require DMARC from bulk senders and treat"
                " unauthenticated mail with more suspicion. Start with 'v=DMARC1; p=none;"
                " rua=mailto:<a mailbox you read>'."
            ),
            evidence={"domain": domain, "queried": [f"_dmarc.{n}" for n in names]},
        )
    ], []
