"""Which addresses and ports the engine may probe: the bot is a network client strangers aim.

Two halves. `literal_address` recognises an IP literal in every spelling a resolver or
socket library might accept (``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
``[::ffff:127.0.0.1]``, ``64:ff9b::7f00:1`` ...), so a host name field can never smuggle an
internal address past the check. `TargetPolicy` then decides, per address, whether it may
be probed; the engine asks it about literals before connecting and about every address DNS
returned (then connects to the address it checked, never re-resolving).

Decisions:

* Loopback, private, link-local, CGNAT, benchmarking, documentation, multicast, reserved and
  similar ranges are refused unless the operator sets ``allow_private`` or lists a CIDR in
  ``allow_targets`` that contains the address.
* Cloud metadata endpoints stay refused even with ``allow_private`` and even inside a broad
  ``allow_targets`` entry: they hand out instance credentials, and ``allow_private`` or a
  CIDR like 169.254.0.0/16 is written to reach an internal relay, not the credential
  service. Only an entry naming the address exactly (a /32 or /128) allows one.
* Addresses that wrap an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT, 6to4, Teredo,
  NAT64) are judged by the IPv4 address inside as well as by themselves.
* NAT64 (RFC 6052): the well-known prefix 64:ff9b::/96 carries the IPv4 address in its last
  32 bits. Elsewhere in 64:ff9b::/32 (the RFC 8215 local-use prefix 64:ff9b:1::/48, or an
  operator's own /32../64 prefix there) the translator's prefix length decides where the
  IPv4 address sits, and smtpcheck cannot know it: such an address is judged by the IPv4
  address every RFC 6052 prefix length (32, 40, 48, 56, 64, 96) would decode. A decoding in
  0.0.0.0/8 is what the zero bits of another layout look like, so it is not counted.
* The tables below are written out rather than taken from `ipaddress.is_private`, whose
  answers changed between Python releases.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import unicodedata
from collections.abc import Iterable

from diagnostics._config import DEFAULT_ALLOWED_PORTS, EngineConfig, IPNetwork
from diagnostics._errors import InputError, TargetRefused

log = logging.getLogger("smtpcheck.policy")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA = "cloud metadata endpoint"

_N4 = ipaddress.IPv4Network
_N6 = ipaddress.IPv6Network

# Instance metadata / credential services. Most sit in link-local space, but not all:
# Alibaba's is in CGNAT space and Azure's WireServer in public space.
METADATA_ADDRESSES: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "AWS, GCP, Azure, OpenStack and others",
    ipaddress.ip_address("169.254.170.2"): "AWS ECS task metadata",
    ipaddress.ip_address("169.254.170.23"): "AWS EKS pod identity",
    ipaddress.ip_address("169.254.0.23"): "Tencent Cloud",
    ipaddress.ip_address("100.100.100.200"): "Alibaba Cloud",
    ipaddress.ip_address("168.63.129.16"): "Azure WireServer",
    ipaddress.ip_address("192.0.0.192"): "Oracle Cloud",
    ipaddress.ip_address("fd00:ec2::254"): "AWS (IPv6)",
    ipaddress.ip_address("fd00:ec2::23"): "AWS EKS pod identity (IPv6)",
    ipaddress.ip_address("fd20:ce::254"): "Google Cloud (IPv6)",
}

# (network, category, note). The first match wins, so narrower entries come first.
_V4_RANGES: tuple[tuple[_N4, str, str], ...] = (
    (_N4("0.0.0.0/32"), "unspecified", ""),
    (_N4("0.0.0.0/8"), "this-network", "RFC 791"),
    (_N4("10.0.0.0/8"), "private", "RFC 1918"),
    (_N4("100.64.0.0/10"), "shared (carrier-grade NAT)", "RFC 6598"),
    (_N4("127.0.0.0/8"), "loopback", ""),
    (_N4("169.254.0.0/16"), "link-local", "RFC 3927"),
    (_N4("172.16.0.0/12"), "private", "RFC 1918"),
    (_N4("192.0.0.0/24"), "reserved (IETF protocol assignments)", "RFC 6890"),
    (_N4("192.0.2.0/24"), "documentation", "RFC 5737"),
    (_N4("192.168.0.0/16"), "private", "RFC 1918"),
    (_N4("198.18.0.0/15"), "benchmarking", "RFC 2544"),
    (_N4("198.51.100.0/24"), "documentation", "RFC 5737"),
    (_N4("203.0.113.0/24"), "documentation", "RFC 5737"),
    (_N4("224.0.0.0/4"), "multicast", ""),
    (_N4("255.255.255.255/32"), "broadcast", ""),
    (_N4("240.0.0.0/4"), "reserved", "RFC 1112"),
)

_V6_RANGES: tuple[tuple[_N6, str, str], ...] = (
    (_N6("::/128"), "unspecified", ""),
    (_N6("::1/128"), "loopback", ""),
    (_N6("64:ff9b:1::/48"), "private (local-use NAT64)", "RFC 8215"),
    (_N6("100::/64"), "reserved (discard-only)", "RFC 6666"),
    (_N6("2001:2::/48"), "benchmarking", "RFC 5180"),
    (_N6("2001:10::/28"), "reserved (ORCHID)", "RFC 4843"),
    (_N6("2001:20::/28"), "reserved (ORCHIDv2)", "RFC 7343"),
    (_N6("2001:db8::/32"), "documentation", "RFC 3849"),
    (_N6("3fff::/20"), "documentation", "RFC 9637"),
    (_N6("fc00::/7"), "private (unique local)", "RFC 4193"),
    (_N6("fe80::/10"), "link-local", ""),
    (_N6("fec0::/10"), "private (site-local)", "RFC 3879"),
    (_N6("ff00::/8"), "multicast", ""),
)
# Everything outside 2000::/3 is unassigned or special: refuse what is not global unicast.
_V6_GLOBAL_UNICAST = _N6("2000::/3")
_NAT64_WKP = _N6("64:ff9b::/96")
_NAT64_BLOCK = _N6("64:ff9b::/32")  # holds the well-known /96 and the local-use /48
# RFC 6052 section 2.2: the prefix lengths a translator may use; bits 64-71 are never used.
_RFC6052_LENGTHS = (32, 40, 48, 56, 64, 96)
_THIS_NETWORK = _N4("0.0.0.0/8")
_V4_MAPPED = _N6("::ffff:0:0/96")
_V4_TRANSLATED = _N6("::ffff:0:0:0/96")
_V4_COMPATIBLE = _N6("::/96")

_UNICODE_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_C_SPACE = " \t\n\v\f\r"
_SMTP_V6_LITERAL = re.compile(r"^ipv6:", re.IGNORECASE)


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """Parse like glibc ``inet_aton``: 1-4 parts, each decimal, 0-octal or 0x-hex."""
    parts: list[int] = []
    i, n = 0, len(text)
    while True:
        if i >= n or not "0" <= text[i] <= "9":
            return None
        start = i
        if text[i] == "0" and i + 1 < n and text[i + 1] in "xX":
            i += 2
            digits_start = i
            while i < n and text[i] in "0123456789abcdefABCDEF":
                i += 1
            if i == digits_start:  # "0x" with no hex digit: strtoul stops at the x
                return None
            value = int(text[digits_start:i], 16)
        elif text[i] == "0":
            while i < n and "0" <= text[i] <= "9":
                i += 1
            digits = text[start:i]
            if any(c in "89" for c in digits):
                return None
            value = int(digits, 8)
        else:
            while i < n and "0" <= text[i] <= "9":
                i += 1
            value = int(text[start:i])
        if value > 0xFFFFFFFF:
            return None
        if i < n and text[i] == ".":
            if len(parts) >= 3 or value > 0xFF:
                return None
            parts.append(value)
            i += 1
            continue
        break
    # inet_aton (unlike inet_pton) ignores whatever follows a space.
    if i < n and text[i] not in _C_SPACE:
        return None
    limit = (0xFFFFFFFF, 0xFFFFFF, 0xFFFF, 0xFF)[len(parts)]
    if value > limit:
        return None
    number = 0
    for index, part in enumerate(parts):
        number |= part << (24 - 8 * index)
    return ipaddress.IPv4Address(number | value)


def literal_address(host: str) -> IPAddress | None:
    """Return the address if `host` is an IP literal in any accepted spelling, else None."""
    text = unicodedata.normalize("NFKC", host).translate(_UNICODE_DOTS).strip()
    if text.startswith("[") and text.endswith("]"):
        text = _SMTP_V6_LITERAL.sub("", text[1:-1].strip())  # SMTP's [IPv6:...] form
    # A resolver treats "127.0.0.1." like "127.0.0.1"; so do we.
    text = text.rstrip(".") or text
    if not text:
        return None
    if ":" in text:
        if "%25" in text:  # a URL-encoded zone id ("fe80::1%25eth0")
            text = text.replace("%25", "%", 1)
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return _inet_aton(text)


def _unscoped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return ipaddress.IPv6Address(int(address))
    return address


def embedded_ipv4(address: IPAddress) -> list[tuple[ipaddress.IPv4Address, str]]:
    """Return the IPv4 addresses an IPv6 address carries, with the name of the wrapping."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    address = ipaddress.IPv6Address(int(address))  # without a scope id
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _V4_MAPPED:
        return [(low32, "IPv4-mapped")]
    if address in _V4_TRANSLATED:
        return [(low32, "IPv4-translated")]
    if address in _V4_COMPATIBLE and int(address) > 1:
        return [(low32, "IPv4-compatible")]
    if address in _NAT64_WKP:
        return [(low32, "NAT64")]
    if address in _NAT64_BLOCK:
        return _nat64_decodings(address)
    if address.sixtofour is not None:
        return [(address.sixtofour, "6to4")]
    if address.teredo is not None:
        server, client = address.teredo
        return [(server, "Teredo server"), (client, "Teredo client")]
    return []


def _rfc6052_ipv4(address: ipaddress.IPv6Address, length: int) -> ipaddress.IPv4Address:
    """The IPv4 address a translator using an RFC 6052 prefix of `length` bits reads."""
    octets = address.packed
    positions = [i for i in range(length // 8, 16) if i != 8][:4]  # octet 8 is the "u" octet
    return ipaddress.IPv4Address(bytes(octets[i] for i in positions))


def _nat64_decodings(address: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """Every IPv4 address a NAT64 translator could read from `address` (module docstring)."""
    found: dict[ipaddress.IPv4Address, str] = {}
    for length in _RFC6052_LENGTHS:
        candidate = _rfc6052_ipv4(address, length)
        if candidate not in _THIS_NETWORK:
            found.setdefault(candidate, f"NAT64 (/{length} prefix)")
    return list(found.items())


def _is_wrapper(address: IPAddress) -> bool:
    """True for IPv6 forms that only transport an IPv4 address (judged by what they carry)."""
    return isinstance(address, ipaddress.IPv6Address) and any(
        address in net for net in (_V4_MAPPED, _V4_TRANSLATED, _V4_COMPATIBLE, _NAT64_WKP)
    )


def classify(address: IPAddress) -> tuple[str, str] | None:
    """Return (category, note) for a special-purpose address, None for a public one."""
    address = _unscoped(address)
    if address in METADATA_ADDRESSES:
        return METADATA, METADATA_ADDRESSES[address]
    if isinstance(address, ipaddress.IPv4Address):
        for network, category, note in _V4_RANGES:
            if address in network:
                return category, note
        return None
    for network6, category, note in _V6_RANGES:
        if address in network6:
            return category, note
    if _is_wrapper(address):
        return None
    if address not in _V6_GLOBAL_UNICAST:
        return "reserved", "outside IPv6 global unicast space 2000::/3"
    return None


def _article(word: str) -> str:
    return "an" if word[:1].lower() in ("a", "e", "i", "o", "u") else "a"


@dataclasses.dataclass(frozen=True, slots=True)
class TargetPolicy:
    """The operator's rules for which addresses and ports a diagnosis may connect to."""

    allow_private: bool = False
    allow_targets: tuple[IPNetwork, ...] = ()
    allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS

    @classmethod
    def from_config(cls, config: EngineConfig) -> TargetPolicy:
        return cls(
            allow_private=config.allow_private,
            allow_targets=tuple(config.allow_targets),
            allowed_ports=frozenset(config.allowed_ports),
        )

    def check_port(self, port: int) -> None:
        """Raise TargetRefused unless `port` is one the operator allows."""
        if port not in self.allowed_ports:
            allowed = ", ".join(str(p) for p in sorted(self.allowed_ports))
            raise TargetRefused(
                f"port {port} is not an allowed SMTP port (allowed: {allowed or 'none'})"
            )

    def refusal(self, address: str | IPAddress) -> str | None:
        """Return why `address` may not be probed (one line), or None when it may."""
        parsed = _parse(address)
        found = self._refused_part(parsed)
        if found is None:
            return None
        candidate, how, category, note = found
        # Show the canonical form next to an odd spelling ("0x7f.1 (127.0.0.1)").
        shown = str(address) if str(address) == str(parsed) else f"{address} ({parsed})"
        via = (
            f"{shown} is {_article(how)} {how} address for {candidate}, " if how else f"{shown} is "
        )
        if category == METADATA:
            return f"{via}a cloud metadata endpoint ({note}); smtpcheck never probes it"
        what = f"{_article(category)} {category} address" + (f" ({note})" if note else "")
        return (
            f"{via}{what}; smtpcheck does not probe private networks unless the operator allows it"
        )

    def check_address(self, address: str | IPAddress) -> None:
        """Raise TargetRefused (one plain line) if `address` may not be probed."""
        reason = self.refusal(address)
        if reason is not None:
            raise TargetRefused(reason)

    def filter_addresses(self, addresses: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Split resolved addresses into (allowed, one refusal reason per refused address)."""
        allowed: list[str] = []
        refused: list[str] = []
        for address in addresses:
            reason = self.refusal(address)
            if reason is None:
                allowed.append(address)
            else:
                refused.append(reason)
        return tuple(allowed), tuple(refused)

    def pick_address(self, host: str, addresses: Iterable[str]) -> str:
        """Return the first allowed address `host` resolved to; raise TargetRefused if none."""
        addresses = list(addresses)
        for address in addresses:
            if self.refusal(address) is None:
                return address
        if not addresses:
            raise TargetRefused(f"{host} did not resolve to any address")
        listed, categories = [], set()
        for address in addresses[:5]:
            found = self._refused_part(_parse(address))
            categories.add(found[2] if found else "refused")
            listed.append(f"{address} ({found[2] if found else 'refused'})")
        more = f" and {len(addresses) - 5} more" if len(addresses) > 5 else ""
        detail = (
            f"{host} resolves only to addresses smtpcheck does not probe: "
            f"{', '.join(listed)}{more}; private networks need the operator's permission"
            " and cloud metadata endpoints are never probed"
        )
        log.info("target refused: %s", detail)  # the addresses: for the operator only
        if categories == {METADATA}:
            public = f"{host} points to a cloud metadata endpoint; smtpcheck never probes it"
        else:
            public = (
                f"{host} points to a private network; smtpcheck does not probe private"
                " networks unless the operator allows it"
            )
        raise TargetRefused(public, detail=detail)

    def shown_addresses(self, addresses: Iterable[str], *, limit: int = 4) -> str:
        """What a user may see of a name's addresses: the public ones, and a count of the
        rest ("192.0.2.7 and 2 private addresses"): internal addresses are never named."""
        public: list[str] = []
        private = 0
        for address in addresses:
            parsed = literal_address(address)
            if parsed is not None and classify(parsed) is None and not embedded_ipv4(parsed):
                public.append(address)
            else:
                private += 1
        parts = public[:limit]
        more = len(public) - len(parts)
        if more:
            parts.append(f"{more} more")
        if private:
            parts.append(f"{private} private address" + ("es" if private > 1 else ""))
        return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)

    def literal_target(self, host: str) -> str | None:
        """If `host` is an IP literal in any spelling, check it and return its canonical form.

        Returns None for a name (resolve it, then `pick_address`). The engine should connect
        to the returned string, never to `host` as typed.
        """
        address = literal_address(host)
        if address is None:
            return None
        self.check_address(address)
        return str(address)

    def _refused_part(self, address: IPAddress) -> tuple[IPAddress, str | None, str, str] | None:
        """Return (address judged, wrapping or None, category, note) for the refusing part."""
        candidates: list[tuple[IPAddress, str | None]] = [(_unscoped(address), None)]
        candidates += embedded_ipv4(address)
        refused = []
        for candidate, how in candidates:
            found = classify(candidate)
            if found is not None and not self._allowed(candidate, found[0]):
                refused.append((candidate, how, found[0], found[1]))
        # A metadata endpoint is named first, whichever part of the address carries it.
        refused.sort(key=lambda part: part[2] != METADATA)
        return refused[0] if refused else None

    def _allowed(self, address: IPAddress, category: str) -> bool:
        if category == METADATA:
            # Only an entry naming this very address lets it through (see module docstring).
            return any(
                net.num_addresses == 1 and net.network_address == address
                for net in self.allow_targets
                if net.version == address.version
            )
        if self.allow_private:
            return True
        return any(address in net for net in self.allow_targets if net.version == address.version)


def _parse(address: str | IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return address
    parsed = literal_address(address)
    if parsed is None:
        raise InputError(f"'{address}' is not an IP address")
    return parsed
