"""The autoconfig fetcher against a real HTTPS server and DNS server on loopback."""

from __future__ import annotations

import ipaddress
import time

import pytest

from diagnostics._dns import build_resolver
from diagnostics._fetch import MAX_BYTES, Fetcher, FetchFailed
from diagnostics._policy import TargetPolicy
from tests.dns_server import DnsServer, Zone
from tests.https_server import HttpsServer

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
PATH = "/mail/config-v1.1.xml"


@pytest.fixture
def zone() -> Zone:
    zone = Zone()
    for name in ("autoconfig.a.test", "a.test", "b.test", "wrong.test", "hop.test"):
        zone.host(name, "127.0.0.1")
    zone.host("internal.test", "10.1.2.3")  # a private address the policy refuses
    zone.host("meta.test", "169.254.169.254")
    return zone


@pytest.fixture
async def https(cert_factory):
    async with HttpsServer(cert_factory, "autoconfig.a.test", "a.test", "b.test", "hop.test",
                           "internal.test") as server:  # fmt: skip
        yield server


@pytest.fixture
def fetcher(zone, https, ca_bundle):
    with DnsServer(zone) as dns:
        resolver = build_resolver([dns.nameserver], timeout=0.5, lifetime=1.0)
        yield Fetcher(
            resolver,
            TargetPolicy(allow_targets=LOOPBACK),
            ca_bundle=ca_bundle,
            https_port=https.port,
        )


async def test_fetches_over_verified_https_pinned_with_sni_and_host(fetcher, https):
    https.route("autoconfig.a.test", PATH, body=b"<clientConfig/>")
    got = await fetcher.get(f"https://autoconfig.a.test{PATH}?emailaddress=u@a.test", budget=3)
    assert got.body == b"<clientConfig/>"
    assert got.address == "127.0.0.1"
    seen = https.requests[-1]
    assert (seen.host, seen.sni) == ("autoconfig.a.test", "autoconfig.a.test")
    assert seen.path_qs == f"{PATH}?emailaddress=u@a.test"


async def test_a_missing_document_is_not_found(fetcher):
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(f"https://a.test{PATH}", budget=3)
    assert caught.value.reason == "not_found"


async def test_a_name_without_address_is_not_found(fetcher):
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(f"https://autoconfig.nothing.test{PATH}", budget=3)
    assert caught.value.reason == "not_found"


@pytest.mark.parametrize(
    "host, make_cert",
    [
        ("wrong.test", lambda certs: certs.wrong_name("other.example.net")),
        ("b.test", lambda certs: certs.unknown_root("b.test")),
    ],
    ids=["wrong-name", "untrusted-root"],
)
async def test_a_certificate_that_fails_verification_is_refused(
    fetcher, https, cert_factory, host, make_cert
):
    https.certificate(host, make_cert(cert_factory))
    https.route(host, PATH, body=b"<clientConfig/>")
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(f"https://{host}{PATH}", budget=3)
    assert caught.value.reason == "tls"
    assert host in str(caught.value)
    assert not any(r.host == host for r in https.requests)  # nothing was sent


@pytest.mark.parametrize("target", ["internal.test", "meta.test", "10.0.0.1", "[::1]:443"])
async def test_a_redirect_to_a_private_address_is_refused(fetcher, https, target):
    https.route("a.test", PATH, status=302, headers={"Location": f"https://{target}/x"})
    https.route("internal.test", "/x", body=b"secret")
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(f"https://a.test{PATH}", budget=3)
    assert caught.value.reason == "refused"
    assert not any(r.host == "internal.test" for r in https.requests)


@pytest.mark.parametrize(
    "location", ["http://b.test/x", "https://b.test:8443/x", "https://user:pw@b.test/x"]
)
async def test_a_redirect_off_https_443_is_refused(fetcher, https, location):
    https.route("a.test", PATH, status=301, headers={"Location": location})
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(f"https://a.test{PATH}", budget=3)
    assert caught.value.reason == "refused"


async def test_redirects_are_followed_and_rechecked_at_most_three(fetcher, https):
    https.route("a.test", PATH, status=302, headers={"Location": "https://b.test/1"})
    https.route("b.test", "/1", status=307, headers={"Location": "/2"})
    https.route("b.test", "/2", status=308, headers={"Location": "https://hop.test/3"})
    https.route("hop.test", "/3", body=b"<clientConfig/>")
    got = await fetcher.get(f"https://a.test{PATH}", budget=3)
    assert got.body == b"<clientConfig/>"
    assert got.redirects == ("https://b.test/1", "https://b.test/2", "https://hop.test/3")
    https.route("hop.test", "/3", status=302, headers={"Location": "https://a.test/4"})
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(f"https://a.test{PATH}", budget=3)
    assert caught.value.reason == "redirects"


async def test_an_oversized_body_is_cut_off(fetcher, https):
    https.route("a.test", "/big", body=b"x" * (MAX_BYTES + 1))
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get("https://a.test/big", budget=3)
    assert caught.value.reason == "too_large"
    https.route("a.test", "/fits", body=b"x" * MAX_BYTES)
    assert len((await fetcher.get("https://a.test/fits", budget=3)).body) == MAX_BYTES


async def test_a_1gb_body_without_length_stops_at_the_cap_quickly(fetcher, https):
    https.route("a.test", "/huge", stream=1 << 30)
    started = time.perf_counter()
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get("https://a.test/huge", budget=5)
    assert caught.value.reason == "too_large"
    assert time.perf_counter() - started < 3


async def test_a_compressed_body_is_refused_not_inflated(fetcher, https):
    https.route(
        "a.test", "/gz", body=b"\x1f\x8b" + b"\0" * 20, headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get("https://a.test/gz", budget=3)
    assert caught.value.reason == "http_status"


async def test_the_timeout_bounds_a_stalled_server(fetcher, https, zone):
    import asyncio

    async def silent(reader, writer):  # accepts, never speaks TLS
        await asyncio.sleep(10)

    server = await asyncio.start_server(silent, "127.0.0.2", https.port)
    zone.host("stall.test", "127.0.0.2")
    try:
        started = time.perf_counter()
        with pytest.raises(FetchFailed) as caught:
            await fetcher.get("https://stall.test/x", budget=0.5)
        assert caught.value.reason == "timeout"
        assert time.perf_counter() - started < 1.5
    finally:
        server.close()
