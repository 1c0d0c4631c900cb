"""Sender-domain health: MX, SPF, DMARC, MTA-STS and TLS-RPT, plus the server's reverse DNS.

Outlook's "can't send" is sometimes not the submission server at all: the sender's domain
does not exist, cannot receive replies, or fails SPF/DMARC so receivers refuse the mail.
`check_sender_domain` reads the domain's DNS and returns findings (without fixes; the
engine attaches those). It never connects anywhere but the DNS servers, and does not fetch
the MTA-STS policy over HTTPS (the target policy governs connections; DNS is enough here).

Severities, and why:

* The domain does not exist (``dns.sender.nxdomain``): error; receivers reject such mail.
* No MX: warn when the domain has an address (implicit MX, RFC 5321 section 5.1), error
  when it has neither (nobody can reply; many servers reject mail from such a domain).
  Null MX (RFC 7505): error; the address cannot receive mail and receivers may refuse it.
* SPF missing: warn. Multiple records, invalid syntax, a broken include, too many DNS
  lookups: error, since each makes every SPF check end in a permanent error (RFC 7208).
* DMARC missing or invalid: warn (an invalid record is ignored by receivers, the same as
  none; both cost deliverability with the big mailbox providers but rarely block sending).
* MTA-STS and TLS-RPT concern mail *to* the domain: info, or warn when a record is broken.

Lookups run concurrently and are bounded: SPF follows include/redirect only while the
count is within the limit (at most ~10 TXT fetches), MX hosts are resolved up to
`MAX_MX_HOSTS_CHECKED`, and the DMARC tree walk asks at most 8 names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import dns.asyncresolver
import dns.exception
import dns.name

from diagnostics._dns import (
    DnsError,
    DnsServerFailure,
    HostNotFound,
    MxResult,
    NoAddress,
    forward_addresses,
    lookup_mx,
    lookup_txt,
    resolve_host,
    reverse_names,
)
from diagnostics._errors import InputError
from diagnostics._findings import finding
from diagnostics._models import Finding
from diagnostics._policy import literal_address

T = TypeVar("T")

SPF_LOOKUP_LIMIT = 10  # RFC 7208 section 4.6.4
MAX_DMARC_NAMES = 8
_EVIDENCE_LIST_MAX = 10
# An MX written as an IP address; a zone file turns "192.0.2.25" into 192.0.2.25.<zone>.
_LOOKS_LIKE_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}(?:\.|$)")

# --------------------------------------------------------------------------- SPF parsing


class SpfSyntaxError(ValueError):
    """The SPF record does not follow RFC 7208's grammar (a permerror for receivers)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SpfTerm:
    kind: str  # "mechanism" | "modifier"
    name: str  # lower case: "include", "ip4", "redirect", ...
    value: str | None  # the domain-spec, network or modifier value, as written
    qualifier: str = "+"  # "+", "-", "~", "?" (mechanisms only)

    def __str__(self) -> str:
        if self.kind == "modifier":
            return f"{self.name}={self.value}"
        prefix = "" if self.qualifier == "+" else self.qualifier
        return f"{prefix}{self.name}" + (f":{self.value}" if self.value is not None else "")


_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_QUALIFIER_MEANING = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


@dataclasses.dataclass(frozen=True, slots=True)
class SpfRecord:
    text: str
    terms: tuple[SpfTerm, ...]

    @property
    def mechanisms(self) -> tuple[SpfTerm, ...]:
        return tuple(t for t in self.terms if t.kind == "mechanism")

    def modifier(self, name: str) -> str | None:
        return next((t.value for t in self.terms if t.kind == "modifier" and t.name == name), None)

    @property
    def all_term(self) -> SpfTerm | None:
        return next((t for t in self.mechanisms if t.name == "all"), None)

    @property
    def redirect(self) -> str | None:
        """The redirect target; ignored when the record has an "all" (RFC 7208 section 6.1)."""
        return None if self.all_term is not None else self.modifier("redirect")

    @property
    def lookup_count(self) -> int:
        """DNS-querying terms in this record alone (include, a, mx, ptr, exists, redirect)."""
        count = sum(1 for t in self.mechanisms if t.name in _LOOKUP_MECHANISMS)
        return count + (1 if self.redirect is not None else 0)

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """(kind, domain) of include and redirect targets without macros, in order."""
        found = [("include", t.value) for t in self.mechanisms if t.name == "include"]
        if self.redirect is not None:
            found.append(("redirect", self.redirect))
        return tuple(
            (kind, value.rstrip(".").lower()) for kind, value in found if value and "%" not in value
        )

    @property
    def macro_terms(self) -> tuple[str, ...]:
        return tuple(str(t) for t in self.terms if t.value and "%" in t.value)


_SPF_VERSION = re.compile(r"^v=spf1(?: |$)", re.IGNORECASE)
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.*)$", re.DOTALL)
_MECHANISM = re.compile(r"^([+\-~?]?)([A-Za-z][A-Za-z0-9_.\-]*)(.*)$", re.DOTALL)
_DUAL_CIDR = re.compile(r"(?:/(0|[1-9][0-9]?))?(?://(0|[1-9][0-9]{0,2}))?$")
_TOPLABEL = re.compile(
    r"^(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])$"
)
_MACRO = re.compile(r"%\{([A-Za-z])([0-9]*)(r?)([.\-+,/_=]*)\}", re.IGNORECASE)


def is_spf(text: str) -> bool:
    """True for a TXT record that claims to be SPF version 1 (RFC 7208 section 4.5)."""
    return bool(_SPF_VERSION.match(text))


def _check_macro_string(text: str, *, what: str, letters: str = "slodiphv") -> bool:
    """Validate macro-string syntax; return True if it ends with a macro-expand."""
    i = 0
    ends_with_macro = False
    while i < len(text):
        char = text[i]
        if char == "%":
            match = _MACRO.match(text, i)
            if match:
                if match.group(1).lower() not in letters:
                    raise SpfSyntaxError(f"{what}: macro letter '{match.group(1)}' is not allowed")
                i = match.end()
                ends_with_macro = True
                continue
            if text[i : i + 2] in ("%%", "%_", "%-"):
                i += 2
                ends_with_macro = True
                continue
            raise SpfSyntaxError(f"{what}: '%' must start a macro such as %{{d}} or be '%%'")
        if not 0x21 <= ord(char) <= 0x7E:
            raise SpfSyntaxError(f"{what}: character {char!r} is not allowed")
        ends_with_macro = False
        i += 1
    return ends_with_macro


def _check_domain_spec(value: str | None, *, term: str) -> None:
    if not value:
        raise SpfSyntaxError(f"'{term}' needs a domain after the colon")
    if _check_macro_string(value, what=f"'{term}'"):
        return
    if "%" not in value:
        try:
            dns.name.from_text(value)
        except (dns.exception.DNSException, ValueError) as exc:
            raise SpfSyntaxError(f"'{term}': '{value}' is not a valid domain ({exc})") from None
    tail = value.rsplit("}", 1)[-1]  # the literal part after the last macro
    tail = tail[:-1] if tail.endswith(".") else tail
    if "." not in tail or not _TOPLABEL.match(tail.rsplit(".", 1)[1]):
        hint = ""
        if literal_address(value) is not None:
            hint = " (an IP address goes in ip4: or ip6:, not here)"
        raise SpfSyntaxError(f"'{term}': '{value}' is not a valid domain{hint}")


def parse_spf(text: str) -> SpfRecord:
    """Parse one SPF record; raise SpfSyntaxError saying what is wrong."""
    if not is_spf(text):
        raise SpfSyntaxError("the record does not start with v=spf1")
    terms: list[SpfTerm] = []
    seen_modifiers: set[str] = set()
    for raw in text.split(" ")[1:]:
        if not raw:
            continue  # several spaces between terms are allowed
        modifier = _MODIFIER.match(raw)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in ("redirect", "exp"):
                if name in seen_modifiers:
                    raise SpfSyntaxError(f"'{name}=' appears more than once")
                _check_domain_spec(value, term=raw)
            else:
                _check_macro_string(value, what=f"'{raw}'")
            seen_modifiers.add(name)
            terms.append(SpfTerm("modifier", name, value))
            continue
        mechanism = _MECHANISM.match(raw)
        if not mechanism:
            raise SpfSyntaxError(f"'{raw}' is not an SPF mechanism or modifier")
        qualifier = mechanism.group(1) or "+"
        name, rest = mechanism.group(2).lower(), mechanism.group(3)
        terms.append(SpfTerm("mechanism", name, _parse_mechanism(name, rest, raw), qualifier))
    return SpfRecord(text=text, terms=tuple(terms))


def _parse_mechanism(name: str, rest: str, raw: str) -> str | None:
    """Validate the part after the mechanism name; return its value (None when absent)."""
    if name == "all":
        if rest:
            raise SpfSyntaxError(f"'{raw}': 'all' takes no argument")
        return None
    if name in ("include", "exists"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"'{raw}': '{name}' needs ':domain'")
        _check_domain_spec(rest[1:], term=raw)
        return rest[1:]
    if name in ("a", "mx"):
        cidr = _DUAL_CIDR.search(rest)
        spec = rest[: cidr.start()] if cidr else rest
        if cidr and cidr.group(1) and int(cidr.group(1)) > 32:
            raise SpfSyntaxError(f"'{raw}': IPv4 prefix length above 32")
        if cidr and cidr.group(2) and int(cidr.group(2)) > 128:
            raise SpfSyntaxError(f"'{raw}': IPv6 prefix length above 128")
        if not spec:
            return None
        if not spec.startswith(":"):
            raise SpfSyntaxError(f"'{raw}' is not valid ('{name}:domain' or '{name}/prefix')")
        _check_domain_spec(spec[1:], term=raw)
        return spec[1:]
    if name == "ptr":
        if not rest:
            return None
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"'{raw}' is not valid")
        _check_domain_spec(rest[1:], term=raw)
        return rest[1:]
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"'{raw}': '{name}' needs ':address'")
        value = rest[1:]
        address, _, prefix = value.partition("/")
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise SpfSyntaxError(f"'{raw}': '{address}' is not an IP address") from None
        if parsed.version != int(name[-1]):
            raise SpfSyntaxError(f"'{raw}': '{address}' is not an IPv{name[-1]} address")
        if prefix and (
            not re.fullmatch(r"0|[1-9][0-9]{0,2}", prefix) or int(prefix) > parsed.max_prefixlen
        ):
            raise SpfSyntaxError(f"'{raw}': '/{prefix}' is not a valid prefix length")
        return value
    raise SpfSyntaxError(f"'{raw}': unknown mechanism '{name}'")


# --------------------------------------------------------------------------- SPF analysis


@dataclasses.dataclass
class SpfAnalysis:
    domain: str
    txt: list[str] = dataclasses.field(default_factory=list)
    records: list[str] = dataclasses.field(default_factory=list)  # the v=spf1 ones
    record: SpfRecord | None = None
    syntax_error: str | None = None
    lookups: int = 0
    complete: bool = True  # False when counting stopped at the limit or a failed fetch
    loop: tuple[str, ...] | None = None
    problems: list[dict[str, str]] = dataclasses.field(default_factory=list)
    visited: list[str] = dataclasses.field(default_factory=list)
    failed: list[DnsError] = dataclasses.field(default_factory=list)

    @property
    def exceeded(self) -> bool:
        return self.loop is not None or self.lookups > SPF_LOOKUP_LIMIT


async def analyze_spf(resolver: dns.asyncresolver.Resolver, domain: str) -> SpfAnalysis:
    """Fetch and parse `domain`'s SPF record and count its DNS lookups through includes.

    Raises DnsError when the domain's own TXT lookup fails.
    """
    domain = domain.rstrip(".").lower()
    result = SpfAnalysis(domain=domain)
    result.txt = await lookup_txt(resolver, domain)
    result.records = [t for t in result.txt if is_spf(t)]
    if len(result.records) != 1:
        return result
    try:
        result.record = parse_spf(result.records[0])
    except SpfSyntaxError as exc:
        result.syntax_error = str(exc)
        return result
    result.lookups = result.record.lookup_count
    frontier = [(kind, target, (domain,)) for kind, target in result.record.targets]
    while frontier:
        if result.lookups > SPF_LOOKUP_LIMIT:
            result.complete = False  # already over: no need to fetch further
            break
        fetch: list[tuple[str, str, tuple[str, ...]]] = []
        for kind, target, path in frontier:
            if target in path:
                result.loop = (*path, target)
                result.complete = False
            else:
                fetch.append((kind, target, path))
        if result.loop is not None:
            break
        answers = await asyncio.gather(
            *(lookup_txt(resolver, target) for _k, target, _p in fetch), return_exceptions=True
        )
        frontier = []
        for (kind, target, path), answer in zip(fetch, answers, strict=True):
            result.visited.append(target)
            if isinstance(answer, DnsError):
                result.failed.append(answer)
                result.complete = False
                continue
            where = f"{kind}:{target}" if kind == "include" else f"redirect={target}"
            if isinstance(answer, InputError):  # a name DNS cannot even ask for
                result.problems.append({"domain": target, "error": f"{where}: {answer}"})
                continue
            if isinstance(answer, BaseException):
                raise answer
            child = [t for t in answer if is_spf(t)]
            if not child:
                result.problems.append(
                    {"domain": target, "error": f"{where} points at a domain with no SPF record"}
                )
                continue
            if len(child) > 1:
                result.problems.append(
                    {"domain": target, "error": f"{where} has {len(child)} SPF records"}
                )
                continue
            try:
                record = parse_spf(child[0])
            except SpfSyntaxError as exc:
                result.problems.append({"domain": target, "error": f"{where}: {exc}"})
                continue
            result.lookups += record.lookup_count
            frontier += [(k, t, (*path, target)) for k, t in record.targets]
    return result


def _spf_findings(spf: SpfAnalysis) -> list[Finding]:
    domain = spf.domain
    if not spf.records:
        others = spf.txt[:_EVIDENCE_LIST_MAX]
        return [
            finding(
                "dns.spf.missing",
                detail=(
                    f"No TXT record at {domain} starts with v=spf1, so receiving servers cannot"
                    " tell which servers may send mail for the domain. Mail from it is more"
                    " likely to be rejected or filed as spam: Gmail, Yahoo and Outlook.com"
                    " require SPF or DKIM. Publish one TXT record, e.g."
                    " 'v=spf1 include:<your provider> -all'."
                ),
                evidence={"domain": domain, "txt_records": others},
            )
        ]
    if len(spf.records) > 1:
        return [
            finding(
                "dns.spf.multiple",
                detail=(
                    "With more than one v=spf1 TXT record every SPF check of your mail ends in"
                    " a permanent error (RFC 7208 section 4.5), so receivers treat it as"
                    " unauthenticated. Merge them into a single record."
                ),
                evidence={"domain": domain, "records": spf.records[:_EVIDENCE_LIST_MAX]},
                count=len(spf.records),
            )
        ]
    if spf.record is None:
        return [
            finding(
                "dns.spf.invalid",
                detail=(
                    f"{spf.syntax_error}. Receivers get a permanent error (permerror) when they"
                    " check SPF for your mail, the same as having no valid SPF."
                ),
                evidence={"domain": domain, "record": spf.records[0], "error": spf.syntax_error},
            )
        ]
    findings: list[Finding] = []
    record = spf.record
    if spf.problems:
        first = spf.problems[0]["error"]
        findings.append(
            finding(
                "dns.spf.invalid",
                detail=(
                    f"{first}"
                    + (
                        f" (and {len(spf.problems) - 1} more problem(s))"
                        if len(spf.problems) > 1
                        else ""
                    )
                    + ". An include or redirect that has no single valid SPF record makes"
                    " every SPF check of your mail end in a permanent error (RFC 7208 section 5.2)."
                ),
                evidence={"domain": domain, "record": record.text, "problems": spf.problems},
                broken_include=True,
            )
        )
    if spf.exceeded:
        count = f"{spf.lookups}" if spf.complete else f"at least {spf.lookups}"
        if spf.loop is not None:
            how = (
                f"The includes form a loop ({' -> '.join(spf.loop)}), so evaluating it never"
                " ends before the 10-lookup limit."
            )
        else:
            how = (
                f"Counted through every include, the record needs {count} DNS-querying terms"
                " (include, a, mx, ptr, exists, redirect)."
            )
        findings.append(
            finding(
                "dns.spf.too_many_lookups",
                detail=(
                    f"{how} SPF allows at most 10 (RFC 7208 section 4.6.4); receivers stop with a"
                    " permanent error and treat your mail as unauthenticated. Replace includes"
                    " you do not need, or a/mx terms, with ip4:/ip6: ranges."
                ),
                evidence={
                    "domain": domain,
                    "record": record.text,
                    "lookups": spf.lookups,
                    "limit": SPF_LOOKUP_LIMIT,
                    "counted_completely": spf.complete,
                    "loop": list(spf.loop) if spf.loop else None,
                    "followed": spf.visited[:_EVIDENCE_LIST_MAX],
                },
                count=count,
            )
        )
    all_term = record.all_term
    if all_term is not None and all_term.qualifier == "+":
        findings.append(
            finding(
                "dns.spf.all_pass",
                detail=(
                    "It ends with '+all' (or a bare 'all'), which passes mail from every server"
                    " on the internet; spammers can use your domain and receivers learn to distrust"
                    " it. End the record with -all or ~all after listing your real servers."
                ),
                evidence={"domain": domain, "record": record.text},
            )
        )
    if not findings:
        if all_term is not None:
            ending = (
                f"ends with {all_term} ({_QUALIFIER_MEANING[all_term.qualifier]} for other servers)"
            )
        elif record.redirect is not None:
            ending = f"uses the policy of {record.redirect}"
        else:
            ending = "has no 'all' term (other servers get a neutral result)"
        detail = f"The record {ending} and uses {spf.lookups} of 10 DNS lookups."
        if record.macro_terms:
            detail += " Terms with macros were not expanded: " + ", ".join(record.macro_terms) + "."
        findings.append(
            finding(
                "dns.spf.ok",
                detail=detail,
                evidence={
                    "domain": domain,
                    "record": record.text,
                    "lookups": spf.lookups,
                    "counted_completely": spf.complete,
                    "all": str(all_term) if all_term else None,
                    "followed": spf.visited[:_EVIDENCE_LIST_MAX],
                },
            )
        )
    return findings


# --------------------------------------------------------------------------- DMARC

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


async def _dmarc_findings(
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
                        "records": (candidates + near)[:_EVIDENCE_LIST_MAX],
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


# --------------------------------------------------------------------------- MTA-STS, TLS-RPT

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


async def _mta_sts_findings(resolver: dns.asyncresolver.Resolver, domain: str) -> list[Finding]:
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


async def _tlsrpt_findings(resolver: dns.asyncresolver.Resolver, domain: str) -> list[Finding]:
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
        uris, errors = [], [f"{len(candidates)} TLS-RPT records; senders ignore them all"]
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


# --------------------------------------------------------------------------- MX


async def _mx_findings(
    resolver: dns.asyncresolver.Resolver, mx: MxResult
) -> tuple[list[Finding], list[DnsError]]:
    domain = mx.domain
    if mx.null_mx:
        others = [r for r in mx.raw if not r.rstrip().endswith(" .")]
        return [
            finding(
                "dns.mx.null",
                detail=(
                    f"{domain} publishes the null MX record '0 .' (RFC 7505): nobody can reply"
                    " to an address there, and receivers may refuse mail from it with"
                    " 550 5.7.27. Check the email address, or publish the real MX records."
                    + (" It also lists other MX records, which RFC 7505 forbids." if others else "")
                ),
                evidence={"domain": domain, "mx": list(mx.raw)},
            )
        ], []
    if mx.no_records:
        try:
            addresses = await resolve_host(resolver, domain)
        except (HostNotFound, NoAddress):
            addresses = ()
        except DnsError as exc:
            return [], [exc]
        if addresses:
            return [
                finding(
                    "dns.mx.missing",
                    detail=(
                        f"Replies to addresses at {domain} go to the domain's own address"
                        f" ({addresses[0]}) instead (implicit MX, RFC 5321 section 5.1), which"
                        " rarely runs a mail server. Publish MX records for your mail provider."
                    ),
                    evidence={"domain": domain, "implicit_mx": list(addresses)},
                )
            ], []
        return [
            finding(
                "dns.mx.missing",
                detail=(
                    f"Nobody can reply to an address at {domain}, and many receiving servers"
                    " refuse mail from a domain that cannot receive any. Publish MX records"
                    " for your mail provider, or check the email address."
                ),
                evidence={"domain": domain, "implicit_mx": []},
                no_address=True,
            )
        ], []
    findings: list[Finding] = []
    for record in mx.records:
        if record.is_cname:
            findings.append(
                finding(
                    "dns.mx.cname",
                    detail=(
                        "An MX record must name a host directly, not an alias (RFC 2181"
                        " section 10.3, RFC 5321 section 5.1). Most servers cope, some refuse"
                        f" or misroute mail. Point the MX record at {record.cname} instead."
                    ),
                    evidence={"domain": domain, **record.as_evidence()},
                )
            )
    broken = [r for r in mx.records if r.problem in ("nxdomain", "no_address")]
    unknown = [r for r in mx.records if r.problem in ("timeout", "servfail")]
    usable = [r for r in mx.records if r.resolves or r.problem == "not_checked"]
    if broken:
        names = ", ".join(r.name for r in broken)
        literal = [r.name for r in broken if _LOOKS_LIKE_IP.match(r.name)]
        detail = (
            f"{names} "
            + ("does" if len(broken) == 1 else "do")
            + " not resolve to an address, so mail to the domain cannot use "
            + ("it." if len(broken) == 1 else "them.")
        )
        if literal:
            detail += " An MX record must name a host, not an IP address."
        if not usable and not unknown:
            detail += f" No MX host of {domain} works: replies to your address cannot arrive."
        findings.append(
            finding(
                "dns.mx.unresolvable",
                detail=detail,
                evidence={"domain": domain, "hosts": [r.as_evidence() for r in broken]},
                names=names,
                several=len(broken) > 1,
                undeliverable=not usable and not unknown,
            )
        )
    if not findings and usable:
        findings.append(
            finding(
                "dns.mx.ok",
                detail="MX records: "
                + ", ".join(r.rstrip(".") for r in mx.raw[:_EVIDENCE_LIST_MAX])
                + ".",
                evidence={"domain": domain, "mx": [r.as_evidence() for r in mx.records]},
                first=usable[0].name,
                several=len(mx.records) > 1,
                others=len(mx.records) - 1,
            )
        )
    errors = [
        DnsServerFailure(f"MX host {r.name}: {r.problem}", name=r.name, reason=r.problem or "")
        for r in unknown
    ]
    return findings, errors


# --------------------------------------------------------------------------- entry points


def _lookup_failed(
    domain: str, failed: list[tuple[str, DnsError]], *, reverse_dns: bool = False
) -> Finding:
    checks = [{"check": check, "name": e.name, "error": e.reason} for check, e in failed]
    what = ", ".join(dict.fromkeys(check for check, _e in failed))
    return finding(
        "dns.lookup_failed",
        detail=(
            "The DNS servers did not answer, or answered with an error, for "
            + ", ".join(dict.fromkeys(e.name for _c, e in failed))
            + ". Receiving servers may have the same trouble and defer or refuse mail."
        ),
        evidence={"domain": domain, "checks": checks},
        what=what,
        reverse_dns=reverse_dns,
    )


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
        _guard("dmarc", failed, _dmarc_findings(resolver, domain)),
        _guard("mta_sts", failed, _mta_sts_findings(resolver, domain)),
        _guard("tlsrpt", failed, _tlsrpt_findings(resolver, domain)),
        return_exceptions=True,  # let every lookup finish, then report the first bug
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    mx_result, spf, dmarc, sts, rpt = results
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
        mx_findings, mx_errors = await _mx_findings(resolver, mx_result)
        findings += mx_findings
        failed += [("mx", e) for e in mx_errors]
    if spf is not None:
        findings += _spf_findings(spf)
        failed += [("spf", e) for e in spf.failed]
    if dmarc is not None:
        findings += dmarc[0]
        failed += [("dmarc", e) for e in dmarc[1]]
    findings += sts or []
    findings += rpt or []
    if failed:
        order = ["mx", "spf", "dmarc", "mta_sts", "tlsrpt"]
        failed.sort(key=lambda item: order.index(item[0]))  # completion order varies
        findings.append(_lookup_failed(domain, failed))
    return findings


async def _done(value: T) -> T:
    return value


async def check_ptr(
    resolver: dns.asyncresolver.Resolver, address: str, *, host: str
) -> list[Finding]:
    """Return findings about the reverse DNS of the server `host` at `address`.

    Info only: Outlook does not care about the submission server's PTR, but the server's
    own outgoing mail does (receivers such as Gmail require forward-confirmed reverse DNS).
    """
    host = host.rstrip(".").lower()
    try:
        names = await reverse_names(resolver, address)
    except DnsError as exc:
        return [_lookup_failed(host, [("ptr", exc)], reverse_dns=True)]
    if not names:
        return [
            finding(
                "dns.ptr.missing",
                detail=(
                    "There is no PTR record for the server's address. Outlook does not need one,"
                    " but if this server also sends mail to other domains, receivers such as"
                    " Gmail reject or junk mail from addresses without reverse DNS."
                ),
                evidence={"address": address, "host": host, "ptr": []},
            )
        ]
    forward = await forward_addresses(resolver, names)
    target = ipaddress.ip_address(address)
    confirmed = [
        name
        for name, addresses in forward.items()
        if target in {ipaddress.ip_address(a) for a in addresses}
    ]
    evidence: dict[str, Any] = {
        "address": address,
        "host": host,
        "ptr": list(names),
        "forward": {name: list(addresses) for name, addresses in forward.items()},
    }
    if not confirmed:
        return [
            finding(
                "dns.ptr.mismatch",
                detail=(
                    f"{address} has the reverse DNS name {names[0]}, but that name does not"
                    f" resolve to {address}. Outlook does not need it to, but receivers that"
                    " check forward-confirmed reverse DNS may distrust mail sent by this server."
                ),
                evidence=evidence,
            )
        ]
    evidence["matches_host"] = host in confirmed
    return [
        finding(
            "dns.ptr.ok",
            detail=(
                f"The PTR name {confirmed[0]} resolves back to {address}"
                + (
                    "."
                    if host in confirmed
                    else f" (it is not the name entered, {host}; that is normal)."
                )
            ),
            evidence=evidence,
            name=confirmed[0],
        )
    ]
