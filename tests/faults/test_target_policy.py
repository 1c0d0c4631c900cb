"""Target policy at the socket level: forbidden targets never produce a connection.

Every row runs diagnose() with allow_private off while
* recording listeners sit on every loopback address and port the spellings could reach
  (127.0.0.1, 127.0.0.2 and ::1 on 25, 465, 587 and 2525), and
* a `sys` audit hook records every TCP connect the process attempts, to any address (and
  refuses those that would leave loopback, so even a policy bug sends nothing out).
The engine must raise TargetRefused with a one-line message, and nothing may connect.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from diagnostics import CheckRequest, EngineConfig, TargetRefused, Timeouts, diagnose
from diagnostics._policy import METADATA_ADDRESSES, TargetPolicy, classify
from tests import factories
from tests.dns_server import DnsServer, PerQuery, Zone
from tests.faults._support import RecordingListener, socket_audit
from tests.servers import SmtpTestServer

PORTS = (25, 465, 587, 2525)
LOOPBACK = ("127.0.0.1", "127.0.0.2", "::1")
# The recording listeners take these well-known ports on the machine's loopback, so this
# module's tests must run one at a time: scripts/test.sh hands pytest-xdist's workers whole
# files (--dist loadfile).
FAST = Timeouts(dns=1.0, connect=1.0, greeting=1.0, command=1.0, tls=1.0)
REFUSAL_WORDS = ("does not probe", "never probes")

# (target as typed, port) -> what the refusal must name
LITERALS = [
    ("127.1", 587, "127.0.0.1"),
    ("2130706433", 587, "127.0.0.1"),
    ("0x7f.1", 587, "127.0.0.1"),
    ("0x7f000001", 465, "127.0.0.1"),
    ("017700000001", 587, "127.0.0.1"),
    ("0177.0.0.1", 25, "127.0.0.1"),
    ("127.000.000.001", 587, "127.0.0.1"),
    ("127.0.0.1.", 587, "127.0.0.1"),
    ("127\u30020\u30020\u30021", 587, "127.0.0.1"),  # ideographic full stops
    ("\u2460\u2461\u2466.0.0.1", 587, "127.0.0.1"),  # circled digits (NFKC: 127)
    ("127.0.0.2", 2525, "127.0.0.2"),
    ("[::ffff:127.0.0.1]", 587, "127.0.0.1"),
    ("::ffff:7f00:1", 587, "127.0.0.1"),
    ("[::127.0.0.1]", 587, "127.0.0.1"),
    ("64:ff9b::7f00:1", 587, "127.0.0.1"),
    ("2002:7f00:1::", 587, "127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", 587, "127.0.0.1"),  # Teredo client 127.0.0.1
    ("[::1]", 587, "::1"),
    ("0:0:0:0:0:0:0:1", 465, "::1"),
    ("169.254.169.254", 587, "169.254.169.254"),
    ("[::ffff:169.254.169.254]", 587, "169.254.169.254"),
    ("0xa9.0xfe.0xa9.0xfe", 587, "169.254.169.254"),
    ("[fd00:ec2::254]", 587, "fd00:ec2::254"),
    ("100.100.100.200", 587, "100.100.100.200"),
    ("fd00::1", 587, "fd00::1"),
    ("fe80::1", 587, "fe80::1"),
    ("0.0.0.0", 587, "0.0.0.0"),
    ("0", 587, "0.0.0.0"),
    ("[::]", 587, "::"),
    ("10.0.0.1", 587, "10.0.0.1"),
    ("172.16.0.1", 587, "172.16.0.1"),
    ("192.168.1.1", 587, "192.168.1.1"),
    ("100.64.0.1", 587, "100.64.0.1"),
    ("224.0.0.1", 587, "224.0.0.1"),
    ("255.255.255.255", 587, "255.255.255.255"),
]

# Names in the test DNS that resolve to forbidden addresses (target, port, named address).
NAMES = [
    ("loop.test", 587, "127.0.0.1"),
    ("loop2.test", 25, "127.0.0.2"),
    ("six.test", 587, "::1"),
    ("mapped.test", 587, "::ffff:7f00:1"),
    ("meta.test", 587, "169.254.169.254"),
    ("meta6.test", 587, "fd00:ec2::254"),
    ("private.test", 465, "10.0.0.1"),
    ("alias.test", 587, "127.0.0.1"),  # CNAME to loop.test
    ("both.test", 587, "127.0.0.1"),  # A 127.0.0.1 and AAAA ::1
    ("rebind-doc.test", 587, "192.0.2.7"),  # first answer documentation space, then 127.0.0.1
    ("smtp.office365.com", 587, "127.0.0.1"),  # a provider's name pointing home
]


def zone() -> Zone:
    apexes = ("test", "in-addr.arpa", "ip6.arpa", "office365.com", "outlook.com")
    z = Zone(apexes=apexes)
    z.host("loop.test", "127.0.0.1")
    z.host("loop2.test", "127.0.0.2")
    z.host("six.test", "::1")
    z.host("mapped.test", "::ffff:127.0.0.1")
    z.host("meta.test", "169.254.169.254")
    z.host("meta6.test", "fd00:ec2::254")
    z.host("private.test", "10.0.0.1", "fd00::1")
    z.set("alias.test", {"CNAME": "loop.test."})
    z.host("both.test", "127.0.0.1", "::1")
    z.set("rebind-doc.test", {"A": PerQuery([["192.0.2.7"], ["127.0.0.1"]])})
    z.host("smtp.office365.com", "127.0.0.1")
    # An email address whose domain has no known provider: the engine guesses smtp.<domain>.
    z.set("home.test", {"MX": ["10 mx.home.test."]})
    z.host("mx.home.test", "127.0.0.1")
    z.host("smtp.home.test", "127.0.0.1")
    return z


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    async with DnsServer(zone()) as server:
        yield server


@pytest.fixture
async def listeners() -> AsyncIterator[list[RecordingListener]]:
    started = [RecordingListener(host, port) for host in LOOPBACK for port in PORTS]
    for listener in started:
        await listener.start()
    bound = [f"{x.host}:{x.port}" for x in started if x.bound]
    unbound = [f"{x.host}:{x.port} ({x.error})" for x in started if not x.bound]
    print(f"\nrecording listeners: {len(bound)} bound; not bound: {unbound or 'none'}")
    # The audit hook still sees any connect; but most listeners must really be there.
    assert len(bound) >= len(started) // 2, unbound
    try:
        yield started
    finally:
        for listener in started:
            await listener.stop()


def config(dns: DnsServer, ca_bundle: Path, **overrides) -> EngineConfig:
    return factories.engine_config(dns, ca_bundle, timeouts=FAST, allow_private=False, **overrides)


def accepted(listeners: list[RecordingListener]) -> list[str]:
    return [f"{x.host}:{x.port} <- {peer}" for x in listeners for peer in x.accepted]


async def refused(
    dns: DnsServer, ca_bundle: Path, listeners: list[RecordingListener], request: CheckRequest
) -> str:
    """Run the diagnosis; return the refusal after checking nothing connected anywhere."""
    with socket_audit() as audit:
        started = time.monotonic()
        with pytest.raises(TargetRefused) as caught:
            await diagnose(request, config(dns, ca_bundle))
        elapsed = time.monotonic() - started
    tcp = [c for c in audit.connects if c[1] != dns.port]  # DNS over TCP to the test server
    assert tcp == [], f"the engine connected: {tcp}"
    assert accepted(listeners) == []
    # Never the system resolver either: every name went to the test DNS server.
    assert [h for h in audit.lookups if not _is_ip(h)] == []
    assert elapsed < 2.0  # refused up front, not after probing
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    assert any(word in message for word in REFUSAL_WORDS), message
    return message, caught.value.detail


_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f:]*:[0-9a-f.]*", re.I)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("target", "port", "named"), LITERALS, ids=[r[0] for r in LITERALS])
async def test_forbidden_literal_never_connects(
    dns, ca_bundle, listeners, target: str, port: int, named: str
) -> None:
    message, _detail = await refused(
        dns, ca_bundle, listeners, CheckRequest(target=target, port=port)
    )
    assert named in message  # the user typed it: naming it again tells them nothing new
    # Refused before any lookup: an IP literal is never sent to DNS.
    assert [q for q in dns.queries if q.rdtype in {"A", "AAAA"}] == []


@pytest.mark.parametrize(("target", "port", "named"), NAMES, ids=[r[0] for r in NAMES])
async def test_name_resolving_to_a_forbidden_address_never_connects(
    dns, ca_bundle, listeners, target: str, port: int, named: str
) -> None:
    message, detail = await refused(
        dns, ca_bundle, listeners, CheckRequest(target=target, port=port)
    )
    assert target.rstrip(".") in message and named in detail
    # Issue 12 item 6: the user learns that the name points to a private network, never
    # which addresses it resolved to (any workspace member could map internal names).
    assert ("private network" in message) or ("metadata" in message), message
    assert not _ADDRESS.search(message), message
    assert dns.count(target, "A") <= 1  # asked once, never again


@pytest.mark.parametrize(
    "fields",
    [
        {"target": "mail.example.test", "connect": "0x7f.1"},  # --connect, odd spelling
        {"target": "mail.example.test", "connect": "[::1]"},
        {"target": "mail.example.test", "connect": "loop.test"},  # --connect to a name
        {"target": "someone@home.test"},  # email: the guessed smtp.home.test is loopback
        {"target": "[::1]:587"},
        {"target": "127.1:465"},
    ],
    ids=["connect-hex", "connect-v6", "connect-name", "email-domain", "v6-port", "short-port"],
)
async def test_other_entry_points_never_connect(dns, ca_bundle, listeners, fields) -> None:
    await refused(dns, ca_bundle, listeners, CheckRequest(**fields))


async def test_localhost_is_not_resolved_by_the_system(dns, ca_bundle, listeners) -> None:
    """`localhost` goes to the configured DNS (which refuses it): a finding, no connection."""
    with socket_audit() as audit:
        report = await diagnose(CheckRequest(target="localhost", port=587), config(dns, ca_bundle))
    assert {"dns.servfail", "dns.timeout", "dns.host.nxdomain"} & set(report.finding_ids)
    assert [c for c in audit.connects if c[1] != dns.port] == []
    assert [h for h in audit.lookups if not _is_ip(h)] == []
    assert accepted(listeners) == []


# --------------------------------------------------------------------------- rebinding


@pytest.mark.parametrize("second", ["127.0.0.1", "169.254.169.254", "::1"])
async def test_rebinding_name_is_resolved_once_and_pinned(
    dns, ca_bundle, listeners, second: str
) -> None:
    """First answer allowed (allow_targets 127.77.0.0/16), later answers forbidden."""
    async with SmtpTestServer(port=587, mode="starttls") as server:
        rdtype = "AAAA" if ":" in second else "A"
        first = {"A": PerQuery([[server.host], [second]])}
        if rdtype == "AAAA":
            first["AAAA"] = PerQuery([[], [second]])
        dns.zone.set("rebind.test", first)
        engine = config(
            dns, ca_bundle, allow_targets=(ipaddress.ip_network("127.77.0.0/16"),), budget=4.0
        )
        with socket_audit() as audit:
            report = await diagnose(
                CheckRequest(target="rebind.test", port=587, security="starttls"), engine
            )
    assert dns.count("rebind.test", "A") == 1, dns.queries
    assert dns.count("rebind.test", "AAAA") <= 1
    tcp = [c for c in audit.connects if c[1] != dns.port]
    assert tcp, "nothing connected at all"
    assert {host for host, _port in tcp} == {server.host}, tcp
    assert audit.blocked == []
    assert accepted(listeners) == []
    assert {p.address for p in report.probes if p.address} == {server.host}
    assert server.connections >= 1
    assert next(p for p in report.probes if p.role == "entered").outcome == "ok"


async def test_mixed_answers_connect_only_to_the_allowed_address(dns, ca_bundle, listeners) -> None:
    async with SmtpTestServer(port=587, mode="starttls") as server:
        dns.zone.host("mixed.test", "127.0.0.1", server.host, "::1")
        engine = config(dns, ca_bundle, allow_targets=(ipaddress.ip_network(f"{server.host}/32"),))
        with socket_audit() as audit:
            report = await diagnose(CheckRequest(target="mixed.test", port=587), engine)
    tcp = [c for c in audit.connects if c[1] != dns.port]
    assert {host for host, _ in tcp} == {server.host}, tcp
    assert accepted(listeners) == []
    assert {p.address for p in report.probes if p.address} == {server.host}


async def test_provider_endpoint_pointing_home_is_not_probed(dns, ca_bundle, listeners) -> None:
    """The MX says Microsoft 365, so smtp.office365.com is probed too: it resolves to
    127.0.0.1 in this DNS, which the policy must refuse although the target was allowed."""
    async with SmtpTestServer(port=587, mode="starttls") as server:
        dns.zone.host("mail.contoso.test", server.host)
        dns.zone.set("contoso.test", {"MX": ["0 contoso-test.mail.protection.outlook.com."]})
        engine = config(dns, ca_bundle, allow_targets=(ipaddress.ip_network(f"{server.host}/32"),))
        with socket_audit() as audit:
            report = await diagnose(
                CheckRequest(target="mail.contoso.test", port=587, email="alice@contoso.test"),
                engine,
            )
    assert report.provider is not None and report.provider.key == "microsoft365"
    assert dns.count("smtp.office365.com", "A") >= 1  # it was considered...
    tcp = [c for c in audit.connects if c[1] != dns.port]
    assert {host for host, _ in tcp} == {server.host}, tcp  # ...and never connected to
    assert accepted(listeners) == []
    assert not [p for p in report.probes if p.host == "smtp.office365.com"]


# --------------------------------------------------------------------------- NAT64 (RFC 6052)

NAT64_PREFIXES = {
    # prefix -> the RFC 6052 prefix lengths a translator may use inside it
    "64:ff9b::": (96,),  # well-known prefix: /96 only
    "64:ff9b:1::": (48, 56, 64, 96),  # RFC 8215 local-use prefix /48 and longer
    "64:ff9b:0:ff00::": (32, 40, 48, 56, 64),  # an operator's own prefix inside 64:ff9b::/32
}


def rfc6052(prefix: str, length: int, v4: str) -> ipaddress.IPv6Address:
    """Embed `v4` in `prefix` as a translator with an RFC 6052 `length`-bit prefix does."""
    out = bytearray(ipaddress.IPv6Address(prefix).packed)
    out[length // 8 :] = bytes(16 - length // 8)
    spots = [i for i in range(length // 8, 16) if i != 8][:4]
    for spot, octet in zip(spots, ipaddress.IPv4Address(v4).packed, strict=True):
        out[spot] = octet
    return ipaddress.IPv6Address(bytes(out))


NAT64_METADATA = [
    (str(rfc6052(prefix, length, v4)), length, v4)
    for prefix, lengths in NAT64_PREFIXES.items()
    for length in lengths
    for v4 in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "168.63.129.16")
]


def test_the_issue_example_is_the_48_form():
    assert str(rfc6052("64:ff9b:1::", 48, "169.254.169.254")) == "64:ff9b:1:a9fe:a9:fe00::"


@pytest.mark.parametrize(("typed", "length", "v4"), NAT64_METADATA)
def test_nat64_metadata_is_refused_at_every_prefix_length(typed: str, length: int, v4: str):
    """Issue 12 item 8: only the last 32 bits were read, so /32../64 forms passed."""
    for policy in (
        TargetPolicy(allow_private=True),
        TargetPolicy(allow_private=True, allow_targets=(ipaddress.ip_network("::/0"),)),
        TargetPolicy(allow_targets=(ipaddress.ip_network("64:ff9b::/32"),)),
    ):
        reason = policy.refusal(typed)
        assert reason is not None and "cloud metadata endpoint" in reason, (typed, reason)
        assert v4 in reason


@given(
    prefix=st.sampled_from(sorted(NAT64_PREFIXES)),
    data=st.data(),
    public=st.ip_addresses(v=4).filter(lambda a: classify(a) is None),
)
@settings(max_examples=300, deadline=None)
def test_nat64_forms_of_a_public_address_pass_with_allow_private(prefix, data, public):
    """The stricter decoding refuses metadata only: a NAT64 route to a public relay works."""
    length = data.draw(st.sampled_from(NAT64_PREFIXES[prefix]))
    address = rfc6052(prefix, length, str(public))
    assume(not _decodes_to_metadata(address))
    assert TargetPolicy(allow_private=True).refusal(address) is None, (address, length)
    if prefix == "64:ff9b::":  # the well-known prefix is judged by what it carries
        assert TargetPolicy().refusal(address) is None


@given(
    prefix=st.sampled_from(sorted(NAT64_PREFIXES)),
    data=st.data(),
    metadata=st.sampled_from(sorted(str(a) for a in METADATA_ADDRESSES if a.version == 4)),
    noise=st.integers(min_value=0, max_value=2**128 - 1),
)
@settings(max_examples=300, deadline=None)
def test_nat64_metadata_with_any_suffix_bits_is_refused(prefix, data, metadata, noise):
    """Whatever sits in the bits a translator ignores (u octet, suffix), metadata is refused."""
    length = data.draw(st.sampled_from(NAT64_PREFIXES[prefix]))
    clean = rfc6052(prefix, length, metadata)
    used = {i for i in range(length // 8, 16) if i != 8}
    used = set(range(length // 8)) | set(sorted(used)[:4])
    mask = int.from_bytes(bytes(0 if i in used else 0xFF for i in range(16)), "big")
    address = ipaddress.IPv6Address(int(clean) | (noise & mask))
    reason = TargetPolicy(allow_private=True).refusal(address)
    assert reason is not None and "cloud metadata endpoint" in reason, address


def _decodes_to_metadata(address: ipaddress.IPv6Address) -> bool:
    octets = address.packed
    for length in (32, 40, 48, 56, 64, 96):
        spots = [i for i in range(length // 8, 16) if i != 8][:4]
        if ipaddress.IPv4Address(bytes(octets[i] for i in spots)) in METADATA_ADDRESSES:
            return True
    return False


# --------------------------------------------------------------------------- Slack (item 6)

INTERNAL = "10.20.30.40"
INTERNAL_2 = "fd00:20:30::41"


async def _bot(tmp_path: Path, dns: DnsServer, ca_bundle: Path):  # -> BotHarness
    from tests.slack_stub import BotHarness, engine_config_for_tests

    engine = engine_config_for_tests(
        ca_bundle,
        allow_private=False,
        allow_targets=(ipaddress.ip_network("127.0.0.0/8"),),  # the test servers live here
        nameservers=(dns.nameserver,),
    )
    harness = BotHarness(tmp_path, engine_config=engine)
    await harness.start()
    return harness


def _slack_text(bot) -> str:
    import json

    return "\n".join(c.raw + json.dumps(c.args) for c in bot.stub.calls)


async def test_slack_never_names_the_internal_addresses_of_a_name(dns, ca_bundle, tmp_path):
    """Issue 12 item 6: a workspace member could map internal names to internal addresses
    through the refusal and the progress note. The addresses now go to the operator's log."""
    from tests.faults._support import all_logs

    dns.zone.host("intranet.test", INTERNAL, INTERNAL_2)
    async with SmtpTestServer(port=587, mode="starttls") as server:
        # Mixed answers: the allowed relay is probed; the other address is never shown.
        dns.zone.host("mixed.test", server.host, INTERNAL)
        with all_logs() as logs:
            bot = await _bot(tmp_path, dns, ca_bundle)
            try:
                await bot.sender.command("intranet.test:587 starttls", user="U0MAPPER")
                [refusal] = await bot.stub.wait_for(
                    "chat.update", lambda c: "private network" in str(c.args), timeout=15
                )
                await bot.sender.command("mixed.test:587 starttls", user="U0MAPPER2")
                await bot.stub.wait_for(
                    "chat.postMessage", lambda c: bool(c.args.get("thread_ts")), timeout=20
                )
            finally:
                await bot.stop()
    shown = _slack_text(bot)
    assert "intranet.test points to a private network" in str(refusal.args)
    for address in (INTERNAL, INTERNAL_2, "10.20.30", "fd00:20:30"):
        assert address not in shown, address
    assert "private address" in shown  # the progress note counts what it does not show
    assert INTERNAL in logs.text  # the operator can still see why


async def test_the_cli_shows_its_operator_the_addresses(dns) -> None:
    """The CLI's user is the operator (their machine, their DNS): the refusal says which
    private addresses the name resolved to, in one line, exit 2."""
    from tests.faults._support import run_cli

    run = await run_cli("check", "private.test:465", "--nameserver", dns.nameserver)
    said = [line for line in run.user_lines if line.strip()]
    assert run.code == 2, run.err
    assert len(said) == 1 and "10.0.0.1 (private)" in said[0], said
