"""Discovery sources against a real DNS server and HTTPS server on loopback.

Each source ends found, not_found, no_service, refused, invalid or failed; these tests show
each state for the source that can reach it.
"""

from __future__ import annotations

import ipaddress

import pytest

from diagnostics import _discovery
from diagnostics._discovery import Inputs, discover
from diagnostics._dns import build_resolver, lookup_srv
from diagnostics._fetch import MAX_BYTES, Fetcher
from diagnostics._models import Endpoint, Security
from diagnostics._policy import TargetPolicy
from tests.dns_server import DnsServer, Zone
from tests.https_server import XML_BOMB, HttpsServer

PATH = "/mail/config-v1.1.xml"
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"


def config_xml(host: str, port: int = 587, socket: str = "STARTTLS") -> bytes:
    return (
        f'<clientConfig version="1.1"><emailProvider id="x"><displayName>X</displayName>'
        f'<outgoingServer type="smtp"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket}</socketType></outgoingServer></emailProvider></clientConfig>"
    ).encode()


@pytest.fixture
def zone() -> Zone:
    zone = Zone()
    for domain in ("ac.test", "bomb.test", "big.test", "cert.test", "hop.test", "srv.test"):
        zone.set(domain, {"MX": [f"10 mx.{domain}."]})
        zone.host(f"autoconfig.{domain}", "127.0.0.1")
        zone.host(domain, "127.0.0.1")
    zone.host("internal.test", "10.9.9.9")
    zone.set("_submission._tcp.srv.test", {"SRV": [
        "10 1 587 low-weight.srv.test.", "10 60 587 heavy.srv.test.", "5 0 2525 first.srv.test.",
    ]})  # fmt: skip
    zone.set("_submissions._tcp.srv.test", {"SRV": ["0 0 465 tls.srv.test."]})
    zone.set("_submissions._tcp.none.test", {"SRV": ["0 0 0 ."]})
    zone.set("_submission._tcp.none.test", {"SRV": ["0 0 0 ."]})
    zone.set("autodiscover.m365.test", {"CNAME": "autodiscover.outlook.com."})
    return zone


@pytest.fixture
async def https(cert_factory):
    names = ["autoconfig.ac.test", "ac.test", "autoconfig.bomb.test", "autoconfig.big.test",
             "autoconfig.hop.test", "hop.test", "bomb.test", "big.test"]  # fmt: skip
    async with HttpsServer(cert_factory, *names) as server:
        yield server


@pytest.fixture
def env(zone, https, ca_bundle):
    with DnsServer(zone) as dns:
        resolver = build_resolver([dns.nameserver], timeout=0.5, lifetime=1.0)
        policy = TargetPolicy(allow_targets=(ipaddress.ip_network("127.0.0.0/8"),))
        fetcher = Fetcher(resolver, policy, ca_bundle=ca_bundle, https_port=https.port)
        yield resolver, fetcher


async def run(env, domain: str, **kwargs) -> _discovery.Discovery:
    resolver, fetcher = env
    inputs = Inputs(domain=domain, email=f"someone@{domain}", **kwargs)
    return await discover(inputs, resolver=resolver, fetcher=fetcher, budget=4)


def states(found: _discovery.Discovery) -> dict[str, str]:
    return {o.source: o.state for o in found.outcomes}


# --------------------------------------------------------------------------- ISPDB


async def test_ispdb_by_domain_is_documented_and_autoconfig_not_fetched(env, https):
    found = await run(env, "gmail.com")
    assert states(found)["ispdb"] == "found" and states(found)["autoconfig"] == "skipped"
    first = found.candidates[0]
    assert (first.host, first.port, first.sources) == ("smtp.gmail.com", 465, ("ispdb",))
    assert "documented by the provider (ISPDB)" in first.words
    assert https.requests == []


async def test_ispdb_by_mx_host(env):
    found = await run(env, "contoso.test", mx_hosts=("contoso-test.mail.eo.outlook.com",))
    assert found.ispdb is not None and found.ispdb.source == "mx"
    assert found.ispdb.matched == "outlook.com"
    assert found.candidates[0].host == "smtp-mail.outlook.com"


async def test_provider_notes_and_ispdb_agreeing_are_one_candidate_with_both_sources(env):
    office = Endpoint(host="smtp.office365.com", port=587, security=Security.STARTTLS)
    found = await run(
        env, "office365.com", provider_key="microsoft365", provider_name="Microsoft 365",
        provider_endpoints=(office,),
    )  # fmt: skip
    assert found.candidates[0].sources == ("provider", "ispdb", "microsoft365")
    assert found.microsoft365 == "mx"


# --------------------------------------------------------------------------- autoconfig


async def test_autoconfig_valid_is_published_by_the_domain(env, https):
    https.route("autoconfig.ac.test", PATH, body=config_xml("smtp.ac.test", 465, "SSL"))
    found = await run(env, "ac.test")
    assert states(found)["autoconfig"] == "found"
    assert found.candidates[0].endpoint == Endpoint(
        host="smtp.ac.test", port=465, security=Security.SSL
    )
    assert found.candidates[0].words == "published by the domain (autoconfig)"
    asked = next(r for r in https.requests if r.host == "autoconfig.ac.test")
    assert asked.path_qs == f"{PATH}?emailaddress=someone@ac.test"


async def test_autoconfig_well_known_url_is_used_too(env, https):
    https.route("ac.test", WELL_KNOWN, body=config_xml("wk.ac.test"))
    found = await run(env, "ac.test")
    assert [c.host for c in found.candidates] == ["wk.ac.test"]


async def test_autoconfig_xml_bomb_is_reported_invalid(env, https):
    https.route("autoconfig.bomb.test", PATH, body=XML_BOMB)
    found = await run(env, "bomb.test")
    outcome = found.outcome("autoconfig")
    assert outcome.state == "invalid" and "entities" in outcome.detail
    assert found.candidates == ()


async def test_autoconfig_oversized_is_reported_invalid(env, https):
    https.route("autoconfig.big.test", PATH, stream=1 << 30)
    found = await run(env, "big.test")
    outcome = found.outcome("autoconfig")
    assert outcome.state == "invalid" and str(MAX_BYTES) in outcome.detail


async def test_autoconfig_redirect_to_private_address_is_refused(env, https):
    https.route("autoconfig.hop.test", PATH, status=302,
                headers={"Location": "https://internal.test/mail/config-v1.1.xml"})  # fmt: skip
    found = await run(env, "hop.test")
    outcome = found.outcome("autoconfig")
    assert outcome.state == "refused" and "private" in outcome.detail
    assert not any(r.host == "internal.test" for r in https.requests)


async def test_autoconfig_wrong_certificate_is_refused(env, https, cert_factory):
    https.certificate("autoconfig.cert.test", cert_factory.wrong_name("elsewhere.test"))
    https.route("autoconfig.cert.test", PATH, body=config_xml("smtp.cert.test"))
    found = await run(env, "cert.test")
    outcome = found.outcome("autoconfig")
    assert outcome.state == "refused" and "certificate" in outcome.detail
    assert found.candidates == ()


async def test_autoconfig_absent_is_not_found(env):
    found = await run(env, "nothing.test")
    assert states(found)["autoconfig"] == "not_found"
    assert states(found)["srv"] == "not_found"


# --------------------------------------------------------------------------- SRV


async def test_srv_lookup_orders_by_priority_then_weight(env):
    resolver, _ = env
    result = await lookup_srv(resolver, "_submission._tcp.srv.test")
    assert [r.target for r in result.records] == [
        "first.srv.test", "heavy.srv.test", "low-weight.srv.test",
    ]  # fmt: skip
    # The evidence a finding carries: every field of the record, the target without its dot.
    assert result.records[0].as_evidence() == {
        "priority": 5, "weight": 0, "port": 2525, "target": "first.srv.test",
    }  # fmt: skip
    assert (await lookup_srv(resolver, "_submission._tcp.missing.test")).records == ()


async def test_srv_submissions_first_as_implicit_tls_then_starttls(env):
    found = await run(env, "srv.test")
    assert states(found)["srv"] == "found"
    assert [(c.host, c.port, c.security) for c in found.candidates] == [
        ("tls.srv.test", 465, Security.SSL),
        ("first.srv.test", 2525, Security.STARTTLS),
        ("heavy.srv.test", 587, Security.STARTTLS),
        ("low-weight.srv.test", 587, Security.STARTTLS),
    ]
    assert found.candidates[0].words == "published by the domain (SRV)"


async def test_srv_dot_means_no_service(env):
    found = await run(env, "none.test")
    outcome = found.outcome("srv")
    assert outcome.state == "no_service" and found.candidates == ()


# --------------------------------------------------------------------------- Microsoft 365


async def test_microsoft365_from_the_autodiscover_alias(env):
    found = await run(env, "m365.test")
    assert found.microsoft365 == "autodiscover"
    assert found.candidates[0].endpoint == _discovery.MICROSOFT365
    assert found.candidates[0].sources == ("microsoft365",)


# --------------------------------------------------------------------------- guesses


async def test_guesses_are_names_that_resolve_and_are_marked(env, zone):
    resolver, _ = env
    zone.host("mail.guess.test", "127.0.0.1")
    guessed = await _discovery.guesses("guess.test", ["mx.guess.test"], resolver)
    assert [(c.host, c.guessed, c.words) for c in guessed] == [("mail.guess.test", True, "guessed")]
