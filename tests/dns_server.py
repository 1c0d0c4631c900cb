"""An authoritative DNS server on loopback for the tests, serving zones written as Python data.

    zone = default_zone()
    zone.host("smtp.acme.test", "127.0.5.1", ptr=True)
    with DnsServer(zone) as server:          # or: async with DnsServer(zone) as server:
        resolver = build_resolver([server.nameserver], timeout=0.5, lifetime=1.0)

A zone maps names to entries. An entry is a dict of record type -> values (rdata in
zone-file text, e.g. ``"MX": ["10 mx1.good.test."]``; TXT values are plain Python strings,
split into 255-byte character-strings automatically, or tuples of explicit
character-strings) or a behaviour for the whole name (`SERVFAIL`, `REFUSED`, `DROP`).
A value list may also be a behaviour, a `Delay`, or a `PerQuery` (the n-th query of that
name and type gets the n-th answer; the last repeats), for example::

    zone.set("rebind.test", {"A": PerQuery([["198.51.100.7"], ["127.0.0.1"]])})

Names that are not in the zone but lie under a served apex get NXDOMAIN; a name that
exists (has records or names below it) but lacks the type asked gets NOERROR with no
answer (NODATA). Names outside the apexes are REFUSED, so nothing leaks to the real DNS.

The server runs in its own thread with its own event loop, so it also serves code that
runs `asyncio.run` itself (the CLI under test). UDP and TCP share one ephemeral port; UDP
answers too big for the client's buffer are truncated (TC) so clients retry over TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import ipaddress
import socket
import struct
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
import pytest

__all__ = [
    "DROP",
    "LONG_SPF",
    "REFUSED",
    "SERVFAIL",
    "Behaviour",
    "Delay",
    "DnsServer",
    "PerQuery",
    "QueryLog",
    "Zone",
    "default_zone",
    "dns_server",
    "running",
]


class Behaviour(enum.Enum):
    """What the server does instead of answering from data."""

    SERVFAIL = "SERVFAIL"
    REFUSED = "REFUSED"
    DROP = "DROP"  # never answer (the client times out)


SERVFAIL = Behaviour.SERVFAIL
REFUSED = Behaviour.REFUSED
DROP = Behaviour.DROP


@dataclasses.dataclass(frozen=True)
class Delay:
    """Answer with `values` after `seconds`."""

    seconds: float
    values: Any


@dataclasses.dataclass(frozen=True)
class PerQuery:
    """The n-th query (1-based) of this name and type gets answers[n-1]; the last repeats."""

    answers: Sequence[Any]

    def pick(self, number: int) -> Any:
        return self.answers[min(number, len(self.answers)) - 1]


@dataclasses.dataclass(frozen=True)
class QueryLog:
    name: str  # lower case, no trailing dot
    rdtype: str  # "A", "MX", ...
    transport: str  # "udp" | "tcp"


def _key(name: str | dns.name.Name) -> str:
    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.rstrip(".").lower()


class Zone:
    """Test DNS data: name -> {type: values} or a Behaviour. Mutable while serving."""

    def __init__(
        self,
        entries: Mapping[str, Mapping[str, Any] | Behaviour] | None = None,
        *,
        apexes: Sequence[str] = ("test", "in-addr.arpa", "ip6.arpa"),
        ttl: int = 60,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any] | Behaviour] = {}
        self.apexes = tuple(_key(a) for a in apexes)
        self.ttl = ttl
        for name, entry in (entries or {}).items():
            self.set(name, entry)

    def copy(self) -> Zone:
        clone = Zone(apexes=self.apexes, ttl=self.ttl)
        with self._lock:
            for name, entry in self._entries.items():
                clone._entries[name] = entry if isinstance(entry, Behaviour) else dict(entry)
        return clone

    def set(self, name: str, entry: Mapping[str, Any] | Behaviour) -> Zone:
        """Replace everything at `name`."""
        with self._lock:
            if isinstance(entry, Behaviour):
                self._entries[_key(name)] = entry
            else:
                self._entries[_key(name)] = {t.upper(): v for t, v in entry.items()}
        return self

    def add(self, name: str, rdtype: str, *values: Any) -> Zone:
        """Append records of one type at `name`."""
        with self._lock:
            entry = self._entries.setdefault(_key(name), {})
            if isinstance(entry, Behaviour):
                raise ValueError(f"{name} is set to {entry.name}; use set() to replace it")
            current = entry.get(rdtype.upper(), [])
            if not isinstance(current, list):
                raise ValueError(f"{name} {rdtype} is special; use set() to replace it")
            entry[rdtype.upper()] = [*current, *values]
        return self

    def host(self, name: str, *addresses: str, ptr: bool = False) -> Zone:
        """Add A/AAAA records for `name` (and matching PTR records when `ptr`)."""
        for address in addresses:
            parsed = ipaddress.ip_address(address)
            self.add(name, "A" if parsed.version == 4 else "AAAA", str(parsed))
            if ptr:
                self.add(dns.reversename.from_address(str(parsed)).to_text(), "PTR", f"{name}.")
        return self

    def remove(self, name: str) -> Zone:
        with self._lock:
            self._entries.pop(_key(name), None)
        return self

    def entry(self, name: str) -> dict[str, Any] | Behaviour | None:
        with self._lock:
            return self._entries.get(_key(name))

    def exists(self, name: str) -> bool:
        """True if `name` has an entry or is an ancestor of one (an empty non-terminal)."""
        key = _key(name)
        with self._lock:
            return key in self._entries or any(n.endswith("." + key) for n in self._entries)

    def apex_of(self, name: str) -> str | None:
        key = _key(name)
        for apex in sorted(self.apexes, key=len, reverse=True):
            if key == apex or key.endswith("." + apex):
                return apex
        return None


def _txt_rdata_text(value: str | tuple[str, ...] | list[str]) -> str:
    if isinstance(value, str):
        raw = value.encode()
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    else:
        chunks = [part.encode() for part in value]
    return " ".join(
        '"' + c.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks
    )


class _Drop(Exception):
    """Internal: do not answer this query."""


class DnsServer:
    """The server: `with DnsServer(zone) as s:` or `async with`; `s.nameserver` is IP:PORT."""

    def __init__(self, zone: Zone | None = None, *, host: str = "127.0.0.1") -> None:
        self.zone = zone if zone is not None else default_zone()
        self.host = host
        self.port = 0
        self.queries: list[QueryLog] = []
        self.drop_all = False  # when True the server answers nothing at all
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def nameserver(self) -> str:
        """The form `build_resolver` and `--nameserver` take."""
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def start(self) -> DnsServer:
        self._thread = threading.Thread(target=self._run, name="test-dns", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the test DNS server did not start")
        if self._error is not None:
            raise RuntimeError(f"the test DNS server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(5)
        self._thread = None

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> DnsServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------------ bookkeeping

    def count(self, name: str, rdtype: str | None = None) -> int:
        """How many queries for `name` (of `rdtype`, or of any type) arrived so far."""
        key = _key(name)
        with self._lock:
            if rdtype is not None:
                return self._counts[(key, rdtype.upper())]
            return sum(n for (k, _t), n in self._counts.items() if k == key)

    def reset(self) -> None:
        """Forget the query log and the per-name counters (PerQuery starts again)."""
        with self._lock:
            self._counts.clear()
            self.queries.clear()

    # ------------------------------------------------------------------ serving

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        udp_transport, tcp_server = None, None
        for _attempt in range(20):  # TCP must get the port UDP got
            udp_transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, 0), family=family
            )
            port = udp_transport.get_extra_info("sockname")[1]
            try:
                tcp_server = await loop.create_server(
                    lambda: _TcpProtocol(self), self.host, port, family=family
                )
            except OSError:
                udp_transport.close()
                continue
            self.port = port
            break
        else:
            raise RuntimeError("no free port for both UDP and TCP")
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            udp_transport.close()
            tcp_server.close()
            await tcp_server.wait_closed()

    def _handle(self, wire: bytes, transport: str, send: Callable[[bytes], None]) -> None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return
        if not query.question or query.opcode() != dns.opcode.QUERY:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.NOTIMP)
            send(response.to_wire())
            return
        question = query.question[0]
        name = _key(question.name)
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self._counts[(name, rdtype)] += 1
            number = self._counts[(name, rdtype)]
            self.queries.append(QueryLog(name, rdtype, transport))
        if self.drop_all:
            return
        if transport == "udp":
            limit = max(512, query.payload) if query.edns >= 0 else 512
        else:
            limit = 65535
        try:
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            delay = self._fill(response, question.name, question.rdtype, number)
            try:
                data = response.to_wire(max_size=limit)
            except dns.exception.TooBig:
                response.answer.clear()
                response.authority.clear()
                response.additional.clear()
                response.flags |= dns.flags.TC
                data = response.to_wire()
        except _Drop:
            return
        except Exception:
            # A broken test zone: answer SERVFAIL (and say why on stderr) rather than hang.
            traceback.print_exc()
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            data, delay = response.to_wire(), 0.0
        if delay > 0:
            assert self._loop is not None
            self._loop.call_later(delay, send, data)
        else:
            send(data)

    def _fill(
        self, response: dns.message.Message, qname: dns.name.Name, qtype: int, number: int
    ) -> float:
        """Put the answer in `response`; return a delay in seconds; raise _Drop to stay silent."""
        delay = 0.0
        name = qname
        for _hop in range(9):  # CNAME chains within the zone
            key = _key(name)
            apex = self.zone.apex_of(key)
            if apex is None:
                if name == qname:
                    response.set_rcode(dns.rcode.REFUSED)
                    response.flags &= ~dns.flags.AA
                return delay
            entry = self.zone.entry(key)
            if isinstance(entry, Behaviour):
                return self._behave(response, entry)
            if entry is None:
                if not self.zone.exists(key):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(response, apex)
                return delay
            cname = entry.get("CNAME")
            if cname is not None and qtype != dns.rdatatype.CNAME:
                target = cname[0] if isinstance(cname, list) else cname
                target_name = dns.name.from_text(target)
                response.answer.append(self._rrset(name, "CNAME", [target_name.to_text()]))
                name = target_name
                continue
            values = entry.get(dns.rdatatype.to_text(qtype))
            if isinstance(values, PerQuery):
                values = values.pick(number)
            if isinstance(values, Delay):
                delay, values = values.seconds, values.values
            if isinstance(values, PerQuery):
                values = values.pick(number)
            if isinstance(values, Behaviour):
                return self._behave(response, values)
            if values:
                rdtype = dns.rdatatype.to_text(qtype)
                if isinstance(values, str | tuple):
                    values = [values]
                response.answer.append(self._rrset(name, rdtype, values))
            else:
                self._add_soa(response, apex)
            return delay
        return delay

    def _behave(self, response: dns.message.Message, behaviour: Behaviour) -> float:
        if behaviour is DROP:
            raise _Drop
        response.answer.clear()
        response.flags &= ~dns.flags.AA
        response.set_rcode(dns.rcode.SERVFAIL if behaviour is SERVFAIL else dns.rcode.REFUSED)
        return 0.0

    def _rrset(self, name: dns.name.Name, rdtype: str, values: list[Any]) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        rrset.update_ttl(self.zone.ttl)
        for value in values:
            text = _txt_rdata_text(value) if rdtype in ("TXT", "SPF") else str(value)
            rrset.add(
                dns.rdata.from_text(
                    dns.rdataclass.IN, rrset.rdtype, text, origin=dns.name.root, relativize=False
                )
            )
        return rrset

    def _add_soa(self, response: dns.message.Message, apex: str) -> None:
        soa = f"ns.{apex}. hostmaster.{apex}. 1 3600 600 86400 {self.zone.ttl}"
        response.authority.append(self._rrset(dns.name.from_text(apex), "SOA", [soa]))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        def send(reply: bytes) -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(reply, addr)

        self.server._handle(data, "udp", send)


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            (length,) = struct.unpack("!H", self.buffer[:2])
            if len(self.buffer) < 2 + length:
                return
            message, self.buffer = self.buffer[2 : 2 + length], self.buffer[2 + length :]
            self.server._handle(message, "tcp", self._send)

    def _send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack("!H", len(reply)) + reply)


# --------------------------------------------------------------------------- test data

# A long but valid SPF record: forces the answer past 512 bytes (TCP fallback).
LONG_SPF = "v=spf1 " + " ".join(f"ip4:198.51.100.{i}" for i in range(1, 40)) + " -all"


def default_zone() -> Zone:
    """A fresh copy of the shared test zones (mutate it freely in a test)."""
    zone = Zone()
    # good.test: everything a healthy sending domain publishes.
    zone.set(
        "good.test",
        {
            "MX": ["10 mx1.good.test.", "20 mx2.good.test."],
            "TXT": [
                "v=spf1 ip4:192.0.2.0/24 include:_spf.good.test mx -all",
                "some-verification=1",
            ],
            "A": ["127.0.1.1"],
        },
    )
    zone.host("mx1.good.test", "127.0.1.1")
    zone.host("mx2.good.test", "127.0.1.2", "::1")
    zone.set("_spf.good.test", {"TXT": ["v=spf1 ip4:198.51.100.0/24 ip6:2001:db8::/32 ~all"]})
    zone.set("_dmarc.good.test", {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@good.test"]})
    zone.set("_mta-sts.good.test", {"TXT": ["v=STSv1; id=20240101T000000;"]})
    zone.set("_smtp._tls.good.test", {"TXT": ["v=TLSRPTv1; rua=mailto:tlsrpt@good.test"]})
    # A submission host with forward-confirmed reverse DNS, and one without.
    zone.host("smtp.good.test", "127.0.1.10", ptr=True)
    zone.add("11.1.0.127.in-addr.arpa", "PTR", "wrong.good.test.")  # PTR -> name -> other addr
    zone.host("wrong.good.test", "127.0.1.99")
    zone.host("noptr.good.test", "127.0.1.12")  # no PTR at all
    zone.host("dualstack.good.test", "127.0.1.20", "::1")
    zone.set("alias.good.test", {"CNAME": "smtp.good.test."})
    zone.set("sub.good.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 -all"]})

    # MX problems.
    zone.set("nomx.test", {"A": ["127.0.2.1"], "TXT": ["v=spf1 a -all"]})
    zone.set("_dmarc.nomx.test", {"TXT": ["v=DMARC1; p=none"]})
    zone.set("nomail.test", {"TXT": ["v=spf1 -all"]})  # no MX and no address
    zone.set("nullmx.test", {"MX": ["0 ."], "TXT": ["v=spf1 -all"]})
    zone.set("_dmarc.nullmx.test", {"TXT": ["v=DMARC1; p=reject"]})
    zone.set("mx-cname.test", {"MX": ["10 alias.mx-cname.test."], "TXT": ["v=spf1 mx -all"]})
    zone.set("alias.mx-cname.test", {"CNAME": "real.mx-cname.test."})
    zone.host("real.mx-cname.test", "127.0.3.1")
    zone.set(
        "mx-missing.test",
        {"MX": ["10 gone.mx-missing.test.", "20 noaddr.mx-missing.test."], "TXT": ["v=spf1 -all"]},
    )
    zone.set("noaddr.mx-missing.test", {"TXT": ["exists but has no address"]})
    zone.set(
        "mx-partial.test", {"MX": ["10 gone.mx-partial.test.", "20 mx1.good.test."]}
    )  # one of two MX hosts missing

    # SPF problems.
    zone.set(
        "twospf.test",
        {
            "MX": ["10 mx1.good.test."],
            "TXT": ["v=spf1 mx -all", "v=spf1 include:_spf.good.test ~all"],
        },
    )
    zone.set(
        "spf-loop.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 include:loop-a.test -all"]}
    )
    zone.set("loop-a.test", {"TXT": ["v=spf1 include:loop-b.test ~all"]})
    zone.set("loop-b.test", {"TXT": ["v=spf1 include:loop-a.test ~all"]})
    # 4 + 4 + 4 = 12 DNS-querying terms through two levels of include.
    zone.set(
        "too-many-lookups.test",
        {
            "MX": ["10 mx1.good.test."],
            "TXT": ["v=spf1 a mx include:a.many.test include:b.many.test -all"],
        },
    )
    zone.set(
        "a.many.test", {"TXT": ["v=spf1 a mx exists:%{i}.a.many.test include:c.many.test ~all"]}
    )
    zone.set("b.many.test", {"TXT": ["v=spf1 a mx ptr include:c.many.test ~all"]})
    zone.set("c.many.test", {"TXT": ["v=spf1 a ip4:192.0.2.1 ~all"]})
    zone.set(
        "badspf.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 ip4:192.0.2.300 foo:bar -all"]}
    )
    zone.set(
        "spf-include-none.test",
        {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 include:nothing-here.test -all"]},
    )
    zone.set(
        "spf-redirect.test",
        {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 redirect=_spf.good.test"]},
    )
    zone.set("passall.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 +all"]})
    zone.set("longspf.test", {"MX": ["10 mx1.good.test."], "TXT": [LONG_SPF]})

    # DMARC problems.
    zone.set("brokendmarc.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 mx -all"]})
    zone.set("_dmarc.brokendmarc.test", {"TXT": ["v=DMARC1; p=block; pct=150"]})
    zone.set("twodmarc.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 mx -all"]})
    zone.set("_dmarc.twodmarc.test", {"TXT": ["v=DMARC1; p=none", "v=DMARC1; p=reject"]})
    zone.set("lowerdmarc.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 mx -all"]})
    zone.set("_dmarc.lowerdmarc.test", {"TXT": ["v=dmarc1; p=quarantine"]})
    zone.set("nodmarc.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 mx -all"]})

    # MTA-STS / TLS-RPT problems.
    zone.set("badsts.test", {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 mx -all"]})
    zone.set("_mta-sts.badsts.test", {"TXT": ["v=STSv1; id=not-alnum!"]})
    zone.set("_smtp._tls.badsts.test", {"TXT": ["v=TLSRPTv1"]})

    # Lookup outcomes.
    zone.set("noaddress.test", {"TXT": ["a name with no A or AAAA"]})
    zone.set("servfail.test", SERVFAIL)
    zone.set("refused.test", REFUSED)
    zone.set("slow.test", DROP)
    zone.set("slowspf.test", {"MX": ["10 mx1.good.test."], "TXT": DROP})
    zone.set("v6only.test", {"AAAA": ["::1"]})
    zone.set("v4slow6.test", {"A": ["127.0.4.1"], "AAAA": DROP})
    return zone


@contextlib.contextmanager
def running(zone: Zone | None = None) -> Iterator[DnsServer]:
    with DnsServer(zone if zone is not None else default_zone()) as server:
        yield server


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A running server with a fresh `default_zone()`; change `dns_server.zone` in the test."""
    with running() as server:
        yield server
