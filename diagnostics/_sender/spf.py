"""SPF (RFC 7208): parse a record, follow its includes counting DNS lookups, and say what
that means for the sender's mail."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re

import dns.asyncresolver
import dns.exception
import dns.name

from diagnostics._dns import (
    DnsError,
    lookup_txt,
)
from diagnostics._errors import InputError
from diagnostics._findings import finding
from diagnostics._models import Finding
from diagnostics._policy import literal_address
from diagnostics._sender._common import EVIDENCE_LIST_MAX

SPF_LOOKUP_LIMIT = 10  # RFC 7208 section 4.6.4


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


def _optional_domain(spec: str, raw: str, invalid: str) -> str | None:
    """An optional ':domain' argument: None when absent, else its checked domain."""
    if not spec:
        return None
    if not spec.startswith(":"):
        raise SpfSyntaxError(invalid)
    _check_domain_spec(spec[1:], term=raw)
    return spec[1:]


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
        return _optional_domain(
            spec, raw, f"'{raw}' is not valid ('{name}:domain' or '{name}/prefix')"
        )
    if name == "ptr":
        return _optional_domain(rest, raw, f"'{raw}' is not valid")
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
    frontier: list[tuple[str, str, tuple[str, ...]]] = [
        (kind, target, (domain,)) for kind, target in result.record.targets
    ]
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


def spf_findings(spf: SpfAnalysis) -> list[Finding]:
    """What the SPF analysis means: one record problem, or what is wrong with the record,
    or that it is fine."""
    if not spf.records:
        return [_spf_missing(spf)]
    if len(spf.records) > 1:
        return [_spf_multiple(spf)]
    record = spf.record
    if record is None:
        return [_spf_invalid(spf)]
    findings: list[Finding] = []
    if spf.problems:
        findings.append(_spf_broken_include(spf, record))
    if spf.exceeded:
        findings.append(_spf_too_many_lookups(spf, record))
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
                evidence={"domain": spf.domain, "record": record.text},
            )
        )
    return findings or [_spf_ok(spf, record)]


def _spf_missing(spf: SpfAnalysis) -> Finding:
    domain = spf.domain
    return finding(
        "dns.spf.missing",
        detail=(
            f"No TXT record at {domain} starts with v=spf1, so receiving servers cannot"
            " tell which servers may send mail for the domain. Mail from it is more"
            " likely to be rejected or filed as spam: Gmail, Yahoo and Outlook.com"
            " require SPF or DKIM. Publish one TXT record, e.g."
            " 'v=spf1 include:<your provider> -all'."
        ),
        evidence={"domain": domain, "txt_records": spf.txt[:EVIDENCE_LIST_MAX]},
    )


def _spf_multiple(spf: SpfAnalysis) -> Finding:
    return finding(
        "dns.spf.multiple",
        detail=(
            "With more than one v=spf1 TXT record every SPF check of your mail ends in"
            " a permanent error (RFC 7208 section 4.5), so receivers treat it as"
            " unauthenticated. Merge them into a single record."
        ),
        evidence={"domain": spf.domain, "records": spf.records[:EVIDENCE_LIST_MAX]},
        count=len(spf.records),
    )


def _spf_invalid(spf: SpfAnalysis) -> Finding:
    return finding(
        "dns.spf.invalid",
        detail=(
            f"{spf.syntax_error}. Receivers get a permanent error (permerror) when they"
            " check SPF for your mail, the same as having no valid SPF."
        ),
        evidence={"domain": spf.domain, "record": spf.records[0], "error": spf.syntax_error},
    )


def _spf_broken_include(spf: SpfAnalysis, record: SpfRecord) -> Finding:
    more = len(spf.problems) - 1
    return finding(
        "dns.spf.invalid",
        detail=(
            spf.problems[0]["error"]
            + (f" (and {more} more problem(s))" if more else "")
            + ". An include or redirect that has no single valid SPF record makes"
            " every SPF check of your mail end in a permanent error (RFC 7208 section 5.2)."
        ),
        evidence={"domain": spf.domain, "record": record.text, "problems": spf.problems},
        broken_include=True,
    )


def _spf_too_many_lookups(spf: SpfAnalysis, record: SpfRecord) -> Finding:
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
    return finding(
        "dns.spf.too_many_lookups",
        detail=(
            f"{how} SPF allows at most 10 (RFC 7208 section 4.6.4); receivers stop with a"
            " permanent error and treat your mail as unauthenticated. Replace includes"
            " you do not need, or a/mx terms, with ip4:/ip6: ranges."
        ),
        evidence={
            "domain": spf.domain,
            "record": record.text,
            "lookups": spf.lookups,
            "limit": SPF_LOOKUP_LIMIT,
            "counted_completely": spf.complete,
            "loop": list(spf.loop) if spf.loop else None,
            "followed": spf.visited[:EVIDENCE_LIST_MAX],
        },
        count=count,
    )


def _spf_ok(spf: SpfAnalysis, record: SpfRecord) -> Finding:
    all_term = record.all_term
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
    return finding(
        "dns.spf.ok",
        detail=detail,
        evidence={
            "domain": spf.domain,
            "record": record.text,
            "lookups": spf.lookups,
            "counted_completely": spf.complete,
            "all": str(all_term) if all_term else None,
            "followed": spf.visited[:EVIDENCE_LIST_MAX],
        },
    )
