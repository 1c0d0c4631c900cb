"""DNS lookups against the loopback test server (tests/dns_server.py); nothing leaves 127/8."""

from __future__ import annotations

import asyncio
import time

import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from diagnostics._dns import (
    MAX_MX_HOSTS_CHECKED,
    DnsError,
    DnsServerFailure,
    DnsTimeout,
    HostNotFound,
    NoAddress,
    build_resolver,
    forward_confirmed,
    lookup_mx,
    lookup_txt,
    parse_nameserver,
    resolve_host,
    reverse_name,
    reverse_names,
)
from diagnostics._errors import ConfigError, InputError, SmtpcheckError
from tests.dns_server import (
    DROP,
    LONG_SPF,
    Delay,
    DnsServer,
    PerQuery,
    Zone,
    default_zone,
    dns_server,  # noqa: F401 (fixture)
)

TIMEOUT = 0.2
LIFETIME = 0.6


@pytest.fixture
def resolver(dns_server):  # noqa: F811
    return build_resolver([dns_server.nameserver], timeout=TIMEOUT, lifetime=LIFETIME)


# ----------------------------------------------------------------------------- build_resolver


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        (" 127.0.0.1:5353 ", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
    ],
)
def test_parse_nameserver(entry, expected):
    assert parse_nameserver(entry) == expected


@pytest.mark.parametrize(
    "entry",
    ["dns.google", "127.1", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:dns", "[::1", "[::1]x", ""],
)
def test_parse_nameserver_rejects_malformed_entries(entry):
    with pytest.raises(InputError, match="nameserver"):
        parse_nameserver(entry)


def test_build_resolver_uses_only_the_given_servers():
    resolver = build_resolver(["127.0.0.1:5353", "[::1]:53"], timeout=1.5, lifetime=4)
    servers = [(ns.address, ns.port) for ns in resolver.nameservers]
    assert servers == [("127.0.0.1", 5353), ("::1", 53)]
    assert resolver.timeout == 1.5
    assert resolver.lifetime == 4
    assert resolver.cache is None
    assert not resolver.search


def test_build_resolver_rejects_bad_input():
    with pytest.raises(InputError):
        build_resolver(["not-an-ip"], timeout=1, lifetime=1)
    with pytest.raises(InputError):
        build_resolver(["127.0.0.1"], timeout=0, lifetime=1)


def test_build_resolver_reads_the_system_configuration(tmp_path, monkeypatch):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nsearch corp.example\n")
    original = dns.resolver.BaseResolver.read_resolv_conf
    monkeypatch.setattr(
        dns.resolver.BaseResolver,
        "read_resolv_conf",
        lambda self, f=None: original(self, str(conf)),
    )
    resolver = build_resolver([], timeout=1, lifetime=2)
    assert [getattr(ns, "address", ns) for ns in resolver.nameservers] == ["127.0.0.53"]
    assert not resolver.search  # the bot's search domains never apply
    assert not resolver.use_search_by_default


def test_build_resolver_without_system_configuration(monkeypatch):
    def fail(self, f=None):
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.setattr(dns.resolver.BaseResolver, "read_resolv_conf", fail)
    with pytest.raises(ConfigError, match="SMTPCHECK_NAMESERVERS"):
        build_resolver([], timeout=1, lifetime=2)


# ----------------------------------------------------------------------------- resolve_host


async def test_resolve_host_a(resolver):
    assert await resolve_host(resolver, "smtp.good.test") == ("127.0.1.10",)


async def test_resolve_host_ipv4_first(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("mixed.test", {"AAAA": ["::1", "::2"], "A": ["127.0.9.1", "127.0.9.2"]})
    addresses = await resolve_host(resolver, "mixed.test.")
    assert addresses[:2] in {("127.0.9.1", "127.0.9.2"), ("127.0.9.2", "127.0.9.1")}
    assert set(addresses[2:]) == {"::1", "::2"}
    assert len(addresses) == len(set(addresses))


async def test_resolve_host_follows_cnames(resolver):
    assert await resolve_host(resolver, "alias.good.test") == ("127.0.1.10",)


async def test_resolve_host_ipv6_only(resolver):
    assert await resolve_host(resolver, "v6only.test") == ("::1",)


async def test_resolve_host_nxdomain(resolver):
    with pytest.raises(HostNotFound, match=r"nothing\.test does not exist") as info:
        await resolve_host(resolver, "nothing.test")
    assert info.value.finding_id == "dns.host.nxdomain"
    assert info.value.name == "nothing.test"
    assert isinstance(info.value, SmtpcheckError) and not isinstance(info.value, InputError)


async def test_resolve_host_cname_to_nothing(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("dangling.test", {"CNAME": "gone.test."})
    with pytest.raises(HostNotFound, match=r"an alias of gone\.test"):
        await resolve_host(resolver, "dangling.test")


async def test_resolve_host_no_address(resolver):
    with pytest.raises(NoAddress) as info:
        await resolve_host(resolver, "noaddress.test")
    assert info.value.finding_id == "dns.host.no_address"


@pytest.mark.parametrize(
    ("name", "reason"), [("servfail.test", "servfail"), ("refused.test", "refused")]
)
async def test_resolve_host_server_failure(resolver, name, reason):
    started = time.monotonic()
    with pytest.raises(DnsServerFailure) as info:
        await resolve_host(resolver, name)
    assert isinstance(info.value, DnsTimeout)  # callers that know only DnsTimeout still cope
    assert info.value.finding_id == "dns.servfail"
    assert info.value.reason == reason
    assert time.monotonic() - started < LIFETIME  # a failure answer ends the lookup early


async def test_names_outside_the_test_zones_are_refused_not_forwarded(resolver, dns_server):  # noqa: F811
    with pytest.raises(DnsServerFailure):
        await resolve_host(resolver, "example.com")
    assert dns_server.count("example.com", "A") == 1


async def test_resolve_host_timeout_is_bounded(resolver):
    started = time.monotonic()
    with pytest.raises(DnsTimeout) as info:
        await resolve_host(resolver, "slow.test")
    elapsed = time.monotonic() - started
    assert elapsed < LIFETIME + 0.5
    assert elapsed >= TIMEOUT  # it did wait for an answer
    assert info.value.finding_id == "dns.timeout"
    assert type(info.value) is DnsTimeout


async def test_a_silent_server_ends_within_the_lifetime():
    async with DnsServer(default_zone()) as server:
        server.drop_all = True
        lifetime = 0.8
        resolver = build_resolver([server.nameserver], timeout=0.3, lifetime=lifetime)
        started = time.monotonic()
        results = await asyncio.gather(
            resolve_host(resolver, "smtp.good.test"),
            lookup_mx(resolver, "good.test"),
            lookup_txt(resolver, "good.test"),
            reverse_name(resolver, "127.0.1.10"),
            return_exceptions=True,
        )
        assert time.monotonic() - started < lifetime + 0.5
        assert all(type(r) is DnsTimeout for r in results), results
        assert len(server.queries) >= 5  # retried within the lifetime


async def test_a_closed_port_ends_within_the_lifetime():
    async with DnsServer() as server:
        port = server.nameserver
    # The server is gone: nothing answers on its port (ICMP unreachable, or silence).
    resolver = build_resolver([port], timeout=0.2, lifetime=0.6)
    started = time.monotonic()
    with pytest.raises(DnsTimeout):
        await resolve_host(resolver, "smtp.good.test")
    assert time.monotonic() - started < 0.6 + 0.5


async def test_ipv4_answer_does_not_wait_for_a_silent_aaaa(resolver):
    started = time.monotonic()
    assert await resolve_host(resolver, "v4slow6.test") == ("127.0.4.1",)
    assert time.monotonic() - started < LIFETIME  # the AAAA grace, not the whole lifetime


async def test_per_query_answers_support_rebinding_tests(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("rebind.test", {"A": PerQuery([["198.51.100.7"], ["127.0.0.1"]])})
    assert await resolve_host(resolver, "rebind.test") == ("198.51.100.7",)
    assert await resolve_host(resolver, "rebind.test") == ("127.0.0.1",)
    assert await resolve_host(resolver, "rebind.test") == ("127.0.0.1",)  # the last repeats
    assert dns_server.count("rebind.test", "A") == 3
    assert dns_server.count("rebind.test") == 6  # A and AAAA each time
    dns_server.reset()
    assert await resolve_host(resolver, "rebind.test") == ("198.51.100.7",)


async def test_delayed_answers(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("late.test", {"A": Delay(0.1, ["127.0.9.9"])})
    started = time.monotonic()
    assert await resolve_host(resolver, "late.test") == ("127.0.9.9",)
    assert time.monotonic() - started >= 0.1


async def test_invalid_name_is_an_input_error(resolver):
    with pytest.raises(InputError):
        await resolve_host(resolver, "a" * 64 + ".test")


# ----------------------------------------------------------------------------- MX


async def test_lookup_mx_orders_by_preference_and_resolves(resolver):
    mx = await lookup_mx(resolver, "good.test")
    assert mx.hosts == ("mx1.good.test", "mx2.good.test")
    assert mx.raw == ("10 mx1.good.test.", "20 mx2.good.test.")
    assert [r.preference for r in mx.records] == [10, 20]
    assert mx.records[1].addresses == ("127.0.1.2", "::1")
    assert all(r.resolves and not r.is_cname for r in mx.records)
    assert not (mx.null_mx or mx.nxdomain or mx.no_records)


async def test_lookup_mx_cname(resolver):
    mx = await lookup_mx(resolver, "mx-cname.test")
    (record,) = mx.records
    assert record.is_cname and record.cname == "real.mx-cname.test"
    assert record.addresses == ("127.0.3.1",)


async def test_lookup_mx_missing_hosts(resolver):
    mx = await lookup_mx(resolver, "mx-missing.test")
    assert [(r.name, r.problem, r.resolves) for r in mx.records] == [
        ("gone.mx-missing.test", "nxdomain", False),
        ("noaddr.mx-missing.test", "no_address", False),
    ]


async def test_lookup_mx_null_none_and_nxdomain(resolver):
    null = await lookup_mx(resolver, "nullmx.test")
    assert null.null_mx and null.hosts == () and null.raw == ("0 .",)
    none = await lookup_mx(resolver, "nomx.test")
    assert none.no_records and not none.nxdomain and none.hosts == ()
    missing = await lookup_mx(resolver, "nothing.test")
    assert missing.nxdomain and not missing.no_records


async def test_lookup_mx_failures_raise(resolver):
    with pytest.raises(DnsTimeout):
        await lookup_mx(resolver, "slow.test")
    with pytest.raises(DnsServerFailure):
        await lookup_mx(resolver, "servfail.test")


async def test_lookup_mx_host_timeouts_are_recorded(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("mxslow.test", {"MX": ["10 slow.test."]})
    mx = await lookup_mx(resolver, "mxslow.test")
    assert mx.records[0].problem == "timeout"


async def test_lookup_mx_resolves_a_bounded_number_of_hosts(resolver, dns_server):  # noqa: F811
    hosts = [f"{i} mx{i:02d}.many-mx.test." for i in range(MAX_MX_HOSTS_CHECKED + 5)]
    dns_server.zone.set("many-mx.test", {"MX": hosts})
    for i in range(MAX_MX_HOSTS_CHECKED + 5):
        dns_server.zone.host(f"mx{i:02d}.many-mx.test", f"127.0.8.{i + 1}")
    mx = await lookup_mx(resolver, "many-mx.test")
    assert len(mx.records) == MAX_MX_HOSTS_CHECKED + 5
    assert all(r.resolves for r in mx.records[:MAX_MX_HOSTS_CHECKED])
    assert all(r.problem == "not_checked" for r in mx.records[MAX_MX_HOSTS_CHECKED:])
    asked = {q.name for q in dns_server.queries if q.rdtype == "A"}
    assert len(asked) == MAX_MX_HOSTS_CHECKED


async def test_lookup_mx_without_resolving(resolver, dns_server):  # noqa: F811
    mx = await lookup_mx(resolver, "good.test", resolve=False)
    assert mx.hosts == ("mx1.good.test", "mx2.good.test")
    assert {q.rdtype for q in dns_server.queries} == {"MX"}


# ----------------------------------------------------------------------------- TXT


async def test_lookup_txt_joins_character_strings(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("split.test", {"TXT": [("v=spf1 ip4:192.0.2.1", " -all"), "other"]})
    assert sorted(await lookup_txt(resolver, "split.test")) == [
        "other",
        "v=spf1 ip4:192.0.2.1 -all",
    ]


async def test_lookup_txt_large_answer_falls_back_to_tcp(resolver, dns_server):  # noqa: F811
    assert await lookup_txt(resolver, "longspf.test") == [LONG_SPF]
    transports = [q.transport for q in dns_server.queries if q.name == "longspf.test"]
    assert transports == ["udp", "tcp"]


async def test_lookup_txt_absent(resolver):
    assert await lookup_txt(resolver, "nothing.test") == []  # NXDOMAIN
    assert await lookup_txt(resolver, "smtp.good.test") == []  # NODATA


async def test_lookup_txt_timeout(resolver):
    with pytest.raises(DnsTimeout):
        await lookup_txt(resolver, "slowspf.test")


# ----------------------------------------------------------------------------- PTR


async def test_reverse_name_and_fcrdns(resolver):
    assert await reverse_name(resolver, "127.0.1.10") == "smtp.good.test"
    assert await forward_confirmed(resolver, "127.0.1.10")
    assert await reverse_name(resolver, "127.0.1.11") == "wrong.good.test"
    assert not await forward_confirmed(resolver, "127.0.1.11")
    assert await reverse_name(resolver, "127.0.1.12") is None
    assert not await forward_confirmed(resolver, "127.0.1.12")


async def test_reverse_ipv6(resolver, dns_server):  # noqa: F811
    dns_server.zone.host("v6host.test", "2001:db8::25", ptr=True)
    assert await reverse_names(resolver, "2001:db8::25") == ("v6host.test",)
    assert await forward_confirmed(resolver, "2001:db8:0::25")


async def test_reverse_multiple_ptr(resolver, dns_server):  # noqa: F811
    dns_server.zone.add("5.9.0.127.in-addr.arpa", "PTR", "one.test.", "two.test.")
    dns_server.zone.host("two.test", "127.0.9.5")
    assert set(await reverse_names(resolver, "127.0.9.5")) == {"one.test", "two.test"}
    assert await forward_confirmed(resolver, "127.0.9.5")  # any name may confirm


async def test_reverse_timeout(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("7.9.0.127.in-addr.arpa", DROP)
    with pytest.raises(DnsTimeout):
        await reverse_name(resolver, "127.0.9.7")


async def test_reverse_rejects_a_non_address(resolver):
    with pytest.raises(InputError):
        await reverse_name(resolver, "smtp.good.test")


# ----------------------------------------------------------------------------- the test server


def test_server_works_from_synchronous_code():
    zone = Zone({"sync.test": {"A": ["127.0.7.1"], "TXT": ["hello"]}, "parent.test": {}})
    zone.set("leaf.child.parent2.test", {"A": ["127.0.7.2"]})
    with DnsServer(zone) as server:

        def ask(name, rdtype):
            query = dns.message.make_query(name, rdtype)
            return dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)

        answer = ask("sync.test", "A")
        assert answer.rcode() == dns.rcode.NOERROR
        assert answer.answer[0][0].address == "127.0.7.1"
        nodata = ask("sync.test", "MX")
        assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer
        assert nodata.authority  # SOA for negative caching
        empty_non_terminal = ask("child.parent2.test", "A")
        assert empty_non_terminal.rcode() == dns.rcode.NOERROR
        assert ask("absent.test", "A").rcode() == dns.rcode.NXDOMAIN
        assert ask("example.org", "A").rcode() == dns.rcode.REFUSED
        assert [q.name for q in server.queries][:1] == ["sync.test"]


async def test_server_serves_concurrent_clients(dns_server):  # noqa: F811
    resolvers = [
        build_resolver([dns_server.nameserver], timeout=0.5, lifetime=1.0) for _ in range(4)
    ]
    results = await asyncio.gather(
        *(resolve_host(r, "smtp.good.test") for r in resolvers for _ in range(10))
    )
    assert set(results) == {("127.0.1.10",)}


def test_dns_errors_are_smtpcheck_errors():
    for cls in (HostNotFound, NoAddress, DnsTimeout, DnsServerFailure):
        assert issubclass(cls, DnsError) and issubclass(cls, SmtpcheckError)
        assert not issubclass(cls, InputError)
    error = DnsTimeout("x", name="a.test", rdtype="A")
    assert (error.name, error.rdtype, error.reason) == ("a.test", "A", "timeout")


def test_zone_helpers():
    zone = Zone({"a.test": {"a": ["127.0.6.1"]}})
    clone = zone.copy()
    clone.add("a.test", "A", "127.0.6.2")
    assert zone.entry("a.test") == {"A": ["127.0.6.1"]}
    assert clone.entry("A.TEST.") == {"A": ["127.0.6.1", "127.0.6.2"]}
    zone.host("h.test", "127.0.6.3", "::1", ptr=True)
    assert zone.entry("3.6.0.127.in-addr.arpa") == {"PTR": ["h.test."]}
    assert zone.exists("in-addr.arpa") and zone.exists("6.0.127.in-addr.arpa")
    assert not zone.exists("b.test")
    zone.set("s.test", DROP)
    with pytest.raises(ValueError, match="DROP"):
        zone.add("s.test", "A", "127.0.6.4")
    assert zone.apex_of("x.y.test") == "test" and zone.apex_of("example.com") is None
    zone.remove("s.test")
    assert zone.entry("s.test") is None


async def test_server_on_ipv6_loopback():
    try:
        server = DnsServer(default_zone(), host="::1").start()
    except RuntimeError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert server.nameserver.startswith("[::1]:")
        resolver = build_resolver([server.nameserver], timeout=0.5, lifetime=1)
        assert await resolve_host(resolver, "smtp.good.test") == ("127.0.1.10",)
    finally:
        server.stop()
