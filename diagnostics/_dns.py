"""DNS lookups for a diagnosis (dnspython, async): addresses, MX, TXT, PTR.

What DNS says is a result, not an input error: lookups that end without a usable answer
raise a `DnsError` subclass whose `finding_id` names the finding the engine reports::

    DnsError(SmtpcheckError)
    ├── HostNotFound        dns.host.nxdomain    the name does not exist (NXDOMAIN)
    ├── NoAddress           dns.host.no_address  the name exists, but has no A/AAAA
    └── DnsTimeout          dns.timeout          no answer within the lifetime
        └── DnsServerFailure dns.servfail        the servers answered SERVFAIL/REFUSED

SERVFAIL and REFUSED are a subclass of `DnsTimeout` on purpose: for the user both mean
"the DNS servers gave no usable answer", so code that only knows `DnsTimeout` handles them
correctly, while the engine can still tell a broken zone (DNSSEC failure, lame delegation:
the domain owner's problem) from a resolver that is unreachable (the network's problem).

Every lookup is bounded by the resolver's lifetime, enforced here as well, because
dnspython's retry back-off may sleep past it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
from collections.abc import Sequence
from typing import ClassVar

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.reversename

from diagnostics._errors import ConfigError, InputError, SmtpcheckError
from diagnostics._models import Security

MAX_MX_HOSTS_CHECKED = 10  # a hostile domain may list hundreds
MAX_PTR_NAMES_CHECKED = 5
_LIFETIME_SLACK = 0.05
AAAA_GRACE = 0.3  # seconds to wait for AAAA once A has answered


class DnsError(SmtpcheckError):
    """A lookup ended without a usable answer; `finding_id` is the finding it becomes."""

    finding_id: ClassVar[str] = "dns.timeout"

    def __init__(
        self, message: str, *, name: str, rdtype: str | None = None, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.name = name  # the name asked about, lower case, no trailing dot
        self.rdtype = rdtype  # "A", "MX", ... when one query type failed
        self.reason = reason or self.finding_id.rpartition(".")[2]  # "timeout", "servfail", ...


class HostNotFound(DnsError):
    """NXDOMAIN: the name does not exist."""

    finding_id = "dns.host.nxdomain"


class NoAddress(DnsError):
    """The name exists but has no A or AAAA record."""

    finding_id = "dns.host.no_address"


class DnsTimeout(DnsError):
    """The DNS servers did not answer within the lifetime."""

    finding_id = "dns.timeout"


class DnsServerFailure(DnsTimeout):
    """Every server answered SERVFAIL or REFUSED (or another error code)."""

    finding_id = "dns.servfail"


# --------------------------------------------------------------------------- resolver

_NAMESERVER = re.compile(
    r"^\[(?P<v6>[^\]]+)\](?::(?P<v6port>[^:]*))?$|^(?P<v4>[^:]+)(?::(?P<port>.*))?$"
)


def parse_nameserver(entry: str) -> tuple[str, int]:
    """Split ``IP``, ``IP:PORT``, ``v6``, ``[v6]`` or ``[v6]:PORT`` into (address, port)."""
    text = entry.strip()
    port_text: str | None = None
    if text.count(":") > 1 and not text.startswith("["):
        host = text  # a bare IPv6 address: no port possible
    else:
        match = _NAMESERVER.match(text)
        if not match:
            raise InputError(f"nameserver '{entry}' is not IP, IP:PORT or [IPv6]:PORT")
        host = match.group("v6") or match.group("v4") or ""
        port_text = match.group("v6port") if match.group("v6") else match.group("port")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"nameserver '{entry}' is not an IP address") from None
    port = 53
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise InputError(f"nameserver '{entry}': port '{port_text}' is not 1-65535")
        port = int(port_text)
    return str(address), port


def build_resolver(
    nameservers: Sequence[str], *, timeout: float, lifetime: float
) -> dns.asyncresolver.Resolver:
    """Return a resolver asking `nameservers` (``IP[:PORT]``), or the system's when empty."""
    if timeout <= 0 or lifetime <= 0:
        raise InputError("DNS timeout and lifetime must be positive")
    if nameservers:
        servers = [parse_nameserver(entry) for entry in nameservers]
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(a, port=p) for a, p in servers]
    else:
        try:
            resolver = dns.asyncresolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as exc:
            raise ConfigError(
                f"no DNS servers configured on this system ({exc}); set SMTPCHECK_NAMESERVERS"
            ) from None
        # The machine's search domains must not turn "mail" into an internal name.
        resolver.search = []
        resolver.use_search_by_default = False
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    resolver.cache = None  # one diagnosis resolves once; a cache would hide DNS changes
    return resolver


def _absolute(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(name.rstrip(".") + ".")
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise InputError(f"'{name}' is not a valid DNS name ({exc})") from None


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _failure_kind(errors: Sequence[object]) -> str:
    """Summarise dnspython's per-server errors as 'servfail', 'refused', ... for evidence."""
    texts = {str(e[3]) if isinstance(e, tuple) and len(e) > 3 else str(e) for e in errors}
    for code in ("SERVFAIL", "REFUSED", "NOTIMP", "FORMERR"):
        if code in texts:
            return code.lower()
    return "failure"


async def _query(
    resolver: dns.asyncresolver.Resolver, name: str | dns.name.Name, rdtype: str
) -> dns.resolver.Answer:
    """One lookup, NODATA as an empty answer; DNS failures as DnsError (NXDOMAIN re-raised)."""
    qname = name if isinstance(name, dns.name.Name) else _absolute(name)
    shown = _text(qname)
    lifetime = float(resolver.lifetime or 5.0)
    try:
        async with asyncio.timeout(lifetime + _LIFETIME_SLACK):
            return await resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        raise
    except (TimeoutError, dns.exception.Timeout):
        raise DnsTimeout(
            f"the DNS servers did not answer for {shown} ({rdtype}) within {lifetime:g} s",
            name=shown,
            rdtype=rdtype,
        ) from None
    except dns.resolver.NoNameservers as exc:
        kind = _failure_kind(exc.kwargs.get("errors", []))
        raise DnsServerFailure(
            f"the DNS servers failed to answer for {shown} ({rdtype}): {kind.upper()}",
            name=shown,
            rdtype=rdtype,
            reason=kind,
        ) from None
    except dns.resolver.YXDOMAIN:
        raise DnsServerFailure(
            f"the DNS answer for {shown} is malformed (YXDOMAIN)",
            name=shown,
            rdtype=rdtype,
            reason="yxdomain",
        ) from None
    except dns.exception.DNSException as exc:
        raise DnsServerFailure(
            f"the DNS lookup of {shown} ({rdtype}) failed: {exc}",
            name=shown,
            rdtype=rdtype,
            reason="failure",
        ) from None


# --------------------------------------------------------------------------- addresses


@dataclasses.dataclass(frozen=True, slots=True)
class _Addresses:
    addresses: tuple[str, ...]
    canonical: str | None  # the name at the end of the CNAME chain, when there was one
    problem: str | None  # None, "nxdomain", "no_address", "timeout", "servfail"
    error: DnsError | None = None


def _has_records(task: asyncio.Future[dns.resolver.Answer]) -> bool:
    return not task.cancelled() and task.exception() is None and bool(task.result().rrset)


def _outcome(task: asyncio.Future[dns.resolver.Answer]) -> object:
    if task.cancelled():
        return None  # AAAA still pending after the grace period: ignored
    return task.exception() or task.result()


async def _lookup_addresses(resolver: dns.asyncresolver.Resolver, name: str) -> _Addresses:
    """A and AAAA concurrently; never raises for DNS outcomes."""
    qname = _absolute(name)
    a_task = asyncio.ensure_future(_query(resolver, qname, "A"))
    aaaa_task = asyncio.ensure_future(_query(resolver, qname, "AAAA"))
    try:
        await asyncio.wait([a_task])
        if _has_records(a_task):
            # IPv4 is enough to go on: give AAAA a short grace, not the whole lifetime
            # (some DNS servers silently drop AAAA queries).
            await asyncio.wait([aaaa_task], timeout=AAAA_GRACE)
        else:
            await asyncio.wait([aaaa_task])
    finally:
        for task in (a_task, aaaa_task):
            if not task.done():
                task.cancel()
        await asyncio.gather(a_task, aaaa_task, return_exceptions=True)
    results = [_outcome(a_task), _outcome(aaaa_task)]
    addresses: list[str] = []
    canonical: str | None = None
    nxdomain = 0
    failures: list[DnsError] = []
    for result in results:
        if isinstance(result, dns.resolver.NXDOMAIN):
            nxdomain += 1
            with_cname = result.canonical_name
            if with_cname != qname:
                canonical = _text(with_cname)
        elif isinstance(result, DnsError):
            failures.append(result)
        elif isinstance(result, BaseException):
            raise result
        elif isinstance(result, dns.resolver.Answer):
            if result.canonical_name != qname:
                canonical = _text(result.canonical_name)
            for rdata in result.rrset or ():
                text = str(ipaddress.ip_address(rdata.address))
                if text not in addresses:
                    addresses.append(text)
    if addresses:
        return _Addresses(tuple(addresses), canonical, None)
    if failures:
        plain = [f for f in failures if not isinstance(f, DnsServerFailure)]
        worst = plain[0] if plain else failures[0]
        problem = "timeout" if plain else "servfail"
        return _Addresses((), canonical, problem, worst)
    if nxdomain:
        return _Addresses((), canonical, "nxdomain")
    return _Addresses((), canonical, "no_address")


async def resolve_host(resolver: dns.asyncresolver.Resolver, host: str) -> tuple[str, ...]:
    """Return `host`'s addresses, IPv4 first, without duplicates; follows CNAMEs.

    Raises HostNotFound, NoAddress, DnsTimeout (or its subclass DnsServerFailure).
    """
    result = await _lookup_addresses(resolver, host)
    if result.addresses:
        return result.addresses
    name = host.rstrip(".").lower()
    if result.error is not None:
        raise result.error
    via = f" (an alias of {result.canonical})" if result.canonical else ""
    if result.problem == "nxdomain":
        raise HostNotFound(f"{name}{via} does not exist in DNS (NXDOMAIN)", name=name)
    raise NoAddress(f"{name}{via} exists in DNS but has no IPv4 or IPv6 address", name=name)


# --------------------------------------------------------------------------- MX


@dataclasses.dataclass(frozen=True, slots=True)
class MxHost:
    """One MX record and what its exchange name resolves to."""

    preference: int
    name: str  # lower case, no trailing dot
    cname: str | None = None  # set when the exchange is an alias (RFC 2181 10.3 forbids it)
    addresses: tuple[str, ...] = ()
    problem: str | None = None  # None, "nxdomain", "no_address", "timeout", "servfail",
    # "not_checked" (past MAX_MX_HOSTS_CHECKED, or resolve=False)

    @property
    def resolves(self) -> bool:
        return bool(self.addresses)

    @property
    def is_cname(self) -> bool:
        return self.cname is not None

    def as_evidence(self) -> dict[str, object]:
        return {
            "preference": self.preference,
            "host": self.name,
            "cname": self.cname,
            "addresses": list(self.addresses),
            "problem": self.problem,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class MxResult:
    """A domain's MX records, ordered by preference (null MX excluded from `records`)."""

    domain: str
    records: tuple[MxHost, ...] = ()
    raw: tuple[str, ...] = ()  # as received, e.g. "10 mx1.example.com."
    null_mx: bool = False  # RFC 7505 "0 .": the domain accepts no mail
    nxdomain: bool = False  # the domain does not exist
    no_records: bool = False  # the domain exists but publishes no MX

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(record.name for record in self.records)


async def lookup_mx(
    resolver: dns.asyncresolver.Resolver, domain: str, *, resolve: bool = True
) -> MxResult:
    """Return the MX records of `domain` and (when `resolve`) what each exchange resolves to.

    Raises DnsTimeout (or DnsServerFailure) when the MX query itself gets no answer.
    """
    shown = domain.rstrip(".").lower()
    try:
        answer = await _query(resolver, shown, "MX")
    except dns.resolver.NXDOMAIN:
        return MxResult(domain=shown, nxdomain=True)
    rdatas = sorted(answer.rrset or (), key=lambda r: (r.preference, _text(r.exchange)))
    raw = tuple(rdata.to_text() for rdata in rdatas)
    null_mx = any(rdata.exchange == dns.name.root for rdata in rdatas)
    wanted = [r for r in rdatas if r.exchange != dns.name.root]
    if not rdatas:
        return MxResult(domain=shown, no_records=True)
    records: list[MxHost] = []
    to_check = wanted[:MAX_MX_HOSTS_CHECKED] if resolve else []
    checked = await asyncio.gather(
        *(_lookup_addresses(resolver, _text(r.exchange)) for r in to_check)
    )
    for index, rdata in enumerate(wanted):
        name = _text(rdata.exchange)
        if index < len(checked):
            found = checked[index]
            records.append(
                MxHost(rdata.preference, name, found.canonical, found.addresses, found.problem)
            )
        else:
            records.append(MxHost(rdata.preference, name, problem="not_checked"))
    return MxResult(domain=shown, records=tuple(records), raw=raw, null_mx=null_mx)


# --------------------------------------------------------------------------- TXT


async def lookup_txt(resolver: dns.asyncresolver.Resolver, name: str) -> list[str]:
    """Return the TXT records at `name`, each record's character-strings joined (RFC 7208 3.3).

    NXDOMAIN and NODATA give []; raises DnsTimeout (or DnsServerFailure).
    """
    try:
        answer = await _query(resolver, name, "TXT")
    except dns.resolver.NXDOMAIN:
        return []
    return [
        b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer.rrset or ()
    ]


# --------------------------------------------------------------------------- PTR


def _reverse(address: str) -> dns.name.Name:
    try:
        return dns.reversename.from_address(str(ipaddress.ip_address(address)))
    except ValueError:
        raise InputError(f"'{address}' is not an IP address") from None


async def reverse_names(resolver: dns.asyncresolver.Resolver, address: str) -> tuple[str, ...]:
    """Return every PTR name of `address` (lower case, no trailing dot); () when none."""
    try:
        answer = await _query(resolver, _reverse(address), "PTR")
    except dns.resolver.NXDOMAIN:
        return ()
    names: list[str] = []
    for rdata in answer.rrset or ():
        name = _text(rdata.target)
        if name not in names:
            names.append(name)
    return tuple(names)


async def reverse_name(resolver: dns.asyncresolver.Resolver, address: str) -> str | None:
    """Return the (first) PTR name of `address`, or None; raises DnsTimeout."""
    names = await reverse_names(resolver, address)
    return names[0] if names else None


async def forward_addresses(
    resolver: dns.asyncresolver.Resolver, names: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """Resolve each of `names` (at most MAX_PTR_NAMES_CHECKED); failures map to ()."""
    picked = list(names)[:MAX_PTR_NAMES_CHECKED]
    results = await asyncio.gather(*(_lookup_addresses(resolver, n) for n in picked))
    return {name: result.addresses for name, result in zip(picked, results, strict=True)}


async def forward_confirmed(resolver: dns.asyncresolver.Resolver, address: str) -> bool:
    """True if a PTR name of `address` resolves back to `address` (FCrDNS)."""
    names = await reverse_names(resolver, address)
    if not names:
        return False
    target = ipaddress.ip_address(address)
    forward = await forward_addresses(resolver, names)
    return any(target in {ipaddress.ip_address(a) for a in addrs} for addrs in forward.values())


# --------------------------------------------------------------------------- SRV

MAX_SRV_RECORDS = 10  # a hostile domain may publish hundreds
SUBMISSION_SRV = (
    # RFC 8314 section 5.1 prefers implicit TLS; RFC 6186 section 3.1 defines STARTTLS's.
    ("_submissions._tcp", Security.SSL),
    ("_submission._tcp", Security.STARTTLS),
)


@dataclasses.dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str  # lower case, no trailing dot

    def as_evidence(self) -> dict[str, object]:
        return dataclasses.asdict(self)  # every field, as it is: all plain values


@dataclasses.dataclass(frozen=True, slots=True)
class SrvResult:
    """The SRV records at one name, in the order a client tries them (RFC 2782)."""

    name: str
    records: tuple[SrvRecord, ...] = ()
    no_service: bool = False  # a single record with target "." (RFC 2782, RFC 6186 3.4)
    raw: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.records)


async def lookup_srv(resolver: dns.asyncresolver.Resolver, name: str) -> SrvResult:
    """Return the SRV records at `name`, lowest priority first, then heaviest weight.

    RFC 2782 picks randomly by weight within a priority; a diagnosis wants the same order
    every run, so the heaviest (most likely) record comes first. NXDOMAIN and NODATA give
    an empty result; raises DnsTimeout (or DnsServerFailure).
    """
    shown = name.rstrip(".").lower()
    try:
        answer = await _query(resolver, shown, "SRV")
    except dns.resolver.NXDOMAIN:
        return SrvResult(name=shown)
    rdatas = list(answer.rrset or ())
    raw = tuple(rdata.to_text() for rdata in rdatas[:MAX_SRV_RECORDS])
    if len(rdatas) == 1 and rdatas[0].target == dns.name.root:
        return SrvResult(name=shown, no_service=True, raw=raw)
    records = sorted(
        (
            SrvRecord(r.priority, r.weight, r.port, _text(r.target))
            for r in rdatas
            if r.target != dns.name.root and r.port > 0
        ),
        key=lambda r: (r.priority, -r.weight, r.target, r.port),
    )
    return SrvResult(name=shown, records=tuple(records[:MAX_SRV_RECORDS]), raw=raw)


async def lookup_cname(resolver: dns.asyncresolver.Resolver, name: str) -> str | None:
    """The alias target of `name` (lower case, no trailing dot), or None when not an alias.

    Raises DnsTimeout (or DnsServerFailure).
    """
    try:
        answer = await _query(resolver, name, "CNAME")
    except dns.resolver.NXDOMAIN:
        return None
    for rdata in answer.rrset or ():
        return _text(rdata.target)
    return None
