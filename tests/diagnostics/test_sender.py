"""Sender-domain findings, each produced from real DNS answers of the loopback test server."""

from __future__ import annotations

import json
import time

import pytest

from diagnostics._dns import build_resolver, lookup_mx
from diagnostics._models import Finding, Severity
from diagnostics._sender import (
    SPF_LOOKUP_LIMIT,
    SpfSyntaxError,
    analyze_spf,
    check_ptr,
    check_sender_domain,
    is_spf,
    parse_dmarc,
    parse_mta_sts,
    parse_spf,
    parse_tlsrpt,
)
from tests.dns_server import DROP, Delay, dns_server  # noqa: F401 (fixture)

LIFETIME = 0.6  # the impatient resolver's: tests of timeouts wait no longer than this


@pytest.fixture
def resolver(dns_server):  # noqa: F811
    """Answers in time even on a loaded machine (the test server answers in microseconds)."""
    return build_resolver([dns_server.nameserver], timeout=1.0, lifetime=4.0)


@pytest.fixture
def impatient_resolver(dns_server):  # noqa: F811
    """For the tests of a server that never answers: gives up after LIFETIME."""
    return build_resolver([dns_server.nameserver], timeout=0.2, lifetime=LIFETIME)


def by_id(findings: list[Finding]) -> dict[str, Finding]:
    ids = [f.id for f in findings]
    assert len(ids) == len(set(ids)), ids
    return {f.id: f for f in findings}


def assert_well_formed(findings: list[Finding]) -> None:
    for finding in findings:
        assert finding.fix is None  # the engine attaches fixes
        assert finding.title and "\n" not in finding.title
        assert finding.detail
        json.dumps(finding.model_dump(mode="json"))  # evidence is JSON-safe


async def check(resolver, domain) -> dict[str, Finding]:
    findings = await check_sender_domain(resolver, domain)
    assert_well_formed(findings)
    return by_id(findings)


# ----------------------------------------------------------------------------- whole domains


async def test_healthy_domain(resolver):
    found = await check(resolver, "good.test")
    assert set(found) == {
        "dns.mx.ok",
        "dns.spf.ok",
        "dns.dmarc.ok",
        "dns.mta_sts.present",
        "dns.tlsrpt.present",
    }
    assert all(f.severity is Severity.INFO for f in found.values())
    spf = found["dns.spf.ok"].evidence
    assert spf["lookups"] == 2 and spf["all"] == "-all" and spf["followed"] == ["_spf.good.test"]
    dmarc = found["dns.dmarc.ok"].evidence
    assert dmarc["policy"] == "reject" and dmarc["found_at"] == "_dmarc.good.test"
    assert found["dns.mta_sts.present"].evidence["id"] == "20240101T000000"
    assert found["dns.tlsrpt.present"].evidence["rua"] == ["mailto:tlsrpt@good.test"]
    assert [m["host"] for m in found["dns.mx.ok"].evidence["mx"]] == [
        "mx1.good.test",
        "mx2.good.test",
    ]


async def test_domain_that_does_not_exist(resolver):
    found = await check(resolver, "nothing.test")
    assert set(found) == {"dns.sender.nxdomain"}
    assert found["dns.sender.nxdomain"].severity is Severity.ERROR


async def test_reuses_the_engines_mx_lookup(resolver, dns_server):  # noqa: F811
    mx = await lookup_mx(resolver, "good.test")
    dns_server.reset()
    found = by_id(await check_sender_domain(resolver, "GOOD.test.", mx=mx))
    assert "dns.mx.ok" in found
    assert dns_server.count("good.test", "MX") == 0


async def test_checks_run_concurrently(resolver, dns_server):  # noqa: F811
    zone = dns_server.zone
    late = 0.15  # below the resolver's 0.2 s per-try timeout
    zone.set(
        "laggy.test",
        {"MX": Delay(late, ["10 mx1.good.test."]), "TXT": Delay(late, ["v=spf1 -all"])},
    )
    zone.set("_dmarc.laggy.test", {"TXT": Delay(late, ["v=DMARC1; p=none"])})
    zone.set("_mta-sts.laggy.test", {"TXT": Delay(late, [])})
    zone.set("_smtp._tls.laggy.test", {"TXT": Delay(late, [])})
    started = time.monotonic()
    found = await check(resolver, "laggy.test")
    elapsed = time.monotonic() - started
    assert elapsed < 3 * late  # five delayed lookups, not one after another
    assert {"dns.mx.ok", "dns.spf.ok", "dns.dmarc.ok", "dns.tlsrpt.missing"} <= set(found)


# ----------------------------------------------------------------------------- MX


async def test_mx_missing_with_implicit_mx_is_a_warning(resolver):
    finding = (await check(resolver, "nomx.test"))["dns.mx.missing"]
    assert finding.severity is Severity.WARN
    assert finding.evidence["implicit_mx"] == ["127.0.2.1"]


async def test_mx_missing_and_no_address_is_an_error(resolver):
    finding = (await check(resolver, "nomail.test"))["dns.mx.missing"]
    assert finding.severity is Severity.ERROR
    assert "cannot receive mail" in finding.title


async def test_null_mx(resolver):
    found = await check(resolver, "nullmx.test")
    assert found["dns.mx.null"].severity is Severity.ERROR
    assert "dns.mx.missing" not in found and "dns.mx.ok" not in found


async def test_mx_pointing_at_a_cname(resolver):
    finding = (await check(resolver, "mx-cname.test"))["dns.mx.cname"]
    assert finding.severity is Severity.WARN
    assert finding.evidence["host"] == "alias.mx-cname.test"
    assert finding.evidence["cname"] == "real.mx-cname.test"
    assert "RFC 2181" in finding.detail


async def test_mx_pointing_at_missing_names(resolver):
    finding = (await check(resolver, "mx-missing.test"))["dns.mx.unresolvable"]
    assert finding.severity is Severity.ERROR  # no MX host works at all
    problems = {h["host"]: h["problem"] for h in finding.evidence["hosts"]}
    assert problems == {"gone.mx-missing.test": "nxdomain", "noaddr.mx-missing.test": "no_address"}


async def test_one_broken_mx_among_working_ones_is_a_warning(resolver):
    found = await check(resolver, "mx-partial.test")
    assert found["dns.mx.unresolvable"].severity is Severity.WARN
    assert "dns.mx.ok" not in found


async def test_mx_given_as_an_ip_address(resolver, dns_server):  # noqa: F811
    # "192.0.2.25" without a final dot in a zone file becomes 192.0.2.25.<zone>.
    dns_server.zone.set("mx-ip.test", {"MX": ["10 192.0.2.25.mx-ip.test."]})
    finding = (await check(resolver, "mx-ip.test"))["dns.mx.unresolvable"]
    assert "must name a host, not an IP address" in finding.detail


# ----------------------------------------------------------------------------- SPF


async def test_spf_missing(resolver):
    finding = (await check(resolver, "mx-partial.test"))["dns.spf.missing"]
    assert finding.severity is Severity.WARN


async def test_spf_multiple(resolver):
    finding = (await check(resolver, "twospf.test"))["dns.spf.multiple"]
    assert finding.severity is Severity.ERROR
    assert len(finding.evidence["records"]) == 2


async def test_spf_loop(resolver, dns_server):  # noqa: F811
    finding = (await check(resolver, "spf-loop.test"))["dns.spf.too_many_lookups"]
    assert finding.severity is Severity.ERROR
    assert finding.evidence["loop"] == [
        "spf-loop.test",
        "loop-a.test",
        "loop-b.test",
        "loop-a.test",
    ]
    assert "loop" in finding.title
    assert dns_server.count("loop-a.test", "TXT") == 1  # detected, not chased round and round


async def test_spf_too_many_lookups_through_includes(resolver):
    finding = (await check(resolver, "too-many-lookups.test"))["dns.spf.too_many_lookups"]
    assert finding.evidence["lookups"] > SPF_LOOKUP_LIMIT
    assert finding.evidence["loop"] is None


@pytest.mark.parametrize(
    ("extra", "expected"), [(0, "dns.spf.ok"), (1, "dns.spf.too_many_lookups")]
)
async def test_spf_lookup_limit_boundary(resolver, dns_server, extra, expected):  # noqa: F811
    # 6 terms at the top + 4 in the include = 10; one more crosses the limit.
    terms = " ".join(f"a:h{i}.limit.test" for i in range(5 + extra))
    dns_server.zone.set("limit.test", {"TXT": [f"v=spf1 {terms} include:inc.limit.test -all"]})
    dns_server.zone.set(
        "inc.limit.test", {"TXT": ["v=spf1 a mx ptr exists:%{i}.x.limit.test ~all"]}
    )
    found = await check(resolver, "limit.test")
    assert expected in found
    assert found[expected].evidence["lookups"] == 10 + extra
    assert found[expected].evidence["counted_completely"] is True


async def test_spf_walk_is_bounded(resolver, dns_server):  # noqa: F811
    zone = dns_server.zone
    wide = " ".join(f"include:w{i}.wide.test" for i in range(10))
    zone.set("wide.test", {"TXT": [f"v=spf1 {wide} -all"]})
    for i in range(10):
        deeper = " ".join(f"include:d{i}-{j}.wide.test" for j in range(10))
        zone.set(f"w{i}.wide.test", {"TXT": [f"v=spf1 {deeper} ~all"]})
    finding = (await check(resolver, "wide.test"))["dns.spf.too_many_lookups"]
    assert finding.evidence["counted_completely"] is False
    txt_queries = [
        q for q in dns_server.queries if q.rdtype == "TXT" and q.name.endswith("wide.test")
    ]
    txt_queries = [q for q in txt_queries if not q.name.startswith("_")]  # not DMARC & co
    assert len(txt_queries) <= 1 + SPF_LOOKUP_LIMIT


async def test_spf_syntax_error(resolver):
    finding = (await check(resolver, "badspf.test"))["dns.spf.invalid"]
    assert finding.severity is Severity.ERROR
    assert "192.0.2.300" in finding.evidence["error"]


async def test_spf_include_without_a_record(resolver):
    finding = (await check(resolver, "spf-include-none.test"))["dns.spf.invalid"]
    assert finding.evidence["problems"] == [
        {
            "domain": "nothing-here.test",
            "error": "include:nothing-here.test points at a domain with no SPF record",
        }
    ]


async def test_spf_plus_all(resolver):
    found = await check(resolver, "passall.test")
    assert found["dns.spf.all_pass"].severity is Severity.WARN
    assert "dns.spf.ok" not in found


async def test_spf_redirect_is_followed(resolver):
    finding = (await check(resolver, "spf-redirect.test"))["dns.spf.ok"]
    assert finding.evidence["followed"] == ["_spf.good.test"]
    assert "_spf.good.test" in finding.detail


async def test_spf_long_record_over_tcp(resolver):
    assert (await check(resolver, "longspf.test"))["dns.spf.ok"].evidence["lookups"] == 0


async def test_spf_lookup_timeout_is_reported(impatient_resolver):
    started = time.monotonic()
    found = await check(impatient_resolver, "slowspf.test")
    assert time.monotonic() - started < LIFETIME + 2.0  # its lifetime, not dnspython's 5 s
    failed = found["dns.lookup_failed"]
    assert failed.severity is Severity.WARN
    assert failed.evidence["checks"] == [
        {"check": "spf", "name": "slowspf.test", "error": "timeout"}
    ]
    assert "dns.spf.missing" not in found  # unknown is not missing
    assert "dns.mx.ok" in found


async def test_spf_include_timeout(impatient_resolver, dns_server):  # noqa: F811
    dns_server.zone.set("inc-slow.test", {"TXT": ["v=spf1 include:slowspf.test -all"]})
    spf = await analyze_spf(impatient_resolver, "inc-slow.test")
    assert not spf.complete and spf.failed and spf.failed[0].name == "slowspf.test"


# ----------------------------------------------------------------------------- DMARC


async def test_dmarc_missing(resolver):
    finding = (await check(resolver, "nodmarc.test"))["dns.dmarc.missing"]
    assert finding.severity is Severity.WARN
    assert finding.evidence["queried"] == ["_dmarc.nodmarc.test"]


@pytest.mark.parametrize(
    ("domain", "error"),
    [
        ("brokendmarc.test", "p=block is not a valid value"),
        ("twodmarc.test", "2 DMARC records"),
        ("lowerdmarc.test", "exactly 'v=DMARC1'"),
    ],
)
async def test_dmarc_invalid(resolver, domain, error):
    finding = (await check(resolver, domain))["dns.dmarc.invalid"]
    assert finding.severity is Severity.WARN
    assert any(error in e for e in finding.evidence["errors"])


async def test_dmarc_inherited_from_the_parent_domain(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("_dmarc.org.test", {"TXT": ["v=DMARC1; p=reject; sp=quarantine"]})
    dns_server.zone.set("deep.mail.org.test", {"MX": ["10 mx1.good.test."]})
    finding = (await check(resolver, "deep.mail.org.test"))["dns.dmarc.ok"]
    assert finding.evidence["found_at"] == "_dmarc.org.test"
    assert finding.evidence["effective_policy"] == "quarantine"
    assert "inherited" in finding.detail


async def test_dmarc_without_version_but_policy_like(resolver, dns_server):  # noqa: F811
    dns_server.zone.set("nov.test", {"MX": ["10 mx1.good.test."]})
    dns_server.zone.set(
        "_dmarc.nov.test", {"TXT": ["p=reject; rua=mailto:d@nov.test", "unrelated"]}
    )
    finding = (await check(resolver, "nov.test"))["dns.dmarc.invalid"]
    assert finding.evidence["errors"][0] == "the record must start with 'v=DMARC1'"


# ----------------------------------------------------------------------------- MTA-STS, TLS-RPT


async def test_mta_sts_and_tlsrpt_invalid(resolver):
    found = await check(resolver, "badsts.test")
    assert found["dns.mta_sts.invalid"].severity is Severity.WARN
    assert found["dns.tlsrpt.invalid"].severity is Severity.WARN


async def test_tlsrpt_missing_is_info(resolver):
    found = await check(resolver, "nomx.test")
    assert found["dns.tlsrpt.missing"].severity is Severity.INFO
    assert not any(k.startswith("dns.mta_sts") for k in found)  # absent MTA-STS is normal


# ----------------------------------------------------------------------------- PTR


async def test_ptr_ok(resolver):
    (finding,) = await check_ptr(resolver, "127.0.1.10", host="smtp.good.test")
    assert finding.id == "dns.ptr.ok" and finding.evidence["matches_host"] is True
    (other,) = await check_ptr(resolver, "127.0.1.10", host="alias.good.test")
    assert other.id == "dns.ptr.ok" and other.evidence["matches_host"] is False


async def test_ptr_mismatch(resolver):
    (finding,) = await check_ptr(resolver, "127.0.1.11", host="smtp.good.test")
    assert finding.id == "dns.ptr.mismatch"
    assert finding.evidence["ptr"] == ["wrong.good.test"]
    assert finding.evidence["forward"] == {"wrong.good.test": ["127.0.1.99"]}


async def test_ptr_missing(resolver):
    (finding,) = await check_ptr(resolver, "127.0.1.12", host="noptr.good.test")
    assert finding.id == "dns.ptr.missing" and finding.severity is Severity.INFO


async def test_ptr_timeout(impatient_resolver, dns_server):  # noqa: F811
    dns_server.zone.set("13.1.0.127.in-addr.arpa", DROP)
    (finding,) = await check_ptr(impatient_resolver, "127.0.1.13", host="x.good.test")
    assert finding.id == "dns.lookup_failed" and finding.severity is Severity.INFO
    assert finding.evidence["checks"][0]["check"] == "ptr"


# ----------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 -all",
        "v=spf1",
        "V=SPF1 MX -ALL",
        "v=spf1  ip4:192.0.2.0/24   ip6:2001:db8::/32 ~all",
        "v=spf1 a a:mail.example.com/24 a/24//64 mx:example.com//64 ?all",
        "v=spf1 ptr ptr:example.com exists:%{ir}.%{l1r+-}._spf.%{d} -all",
        "v=spf1 include:_spf.google.com include:spf.protection.outlook.com -all",
        "v=spf1 redirect=_spf.example.com",
        "v=spf1 mx exp=explain._spf.%{d} -all",
        "v=spf1 include:%{d2}.example.com unknown-mod=anything%% -all",
        "v=spf1 include:example.com. -all",
    ],
)
def test_parse_spf_accepts_valid_records(record):
    parsed = parse_spf(record)
    assert is_spf(record)
    assert parsed.text == record


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("v=spf1 ip4:192.0.2.300", "not an IP address"),
        ("v=spf1 ip4:2001:db8::1", "not an IPv4 address"),
        ("v=spf1 ip6:192.0.2.1", "not an IPv6 address"),
        ("v=spf1 ip4:192.0.2.0/33", "prefix length"),
        ("v=spf1 a/33", "above 32"),
        ("v=spf1 include", "needs ':domain'"),
        ("v=spf1 include:192.0.2.1", "ip4: or ip6:"),
        ("v=spf1 include:localhost", "not a valid domain"),
        ("v=spf1 foo:bar -all", "unknown mechanism 'foo'"),
        ("v=spf1 all:example.com", "takes no argument"),
        ("v=spf1 redirect=a.example.com redirect=b.example.com", "more than once"),
        ("v=spf1 exists:%{x}.example.com", "macro letter 'x'"),
        ("v=spf1 include:%example.com", "'%' must start a macro"),
        ("v=spf1 ~~all", "not an SPF mechanism"),
        ("v=spf1 a:exa\u00e9mple.com", "not allowed"),
        ("v=spf1 include:a..b.example", "label is empty"),
        ("v=spf1 include:" + "a" * 64 + ".example", "63 octets"),
    ],
)
def test_parse_spf_rejects_invalid_records(record, message):
    with pytest.raises(SpfSyntaxError, match=message):
        parse_spf(record)


def test_is_spf_needs_the_exact_version():
    assert not is_spf("v=spf10 -all")
    assert not is_spf("spf1 -all")
    assert not is_spf(" v=spf1 -all")


def test_spf_lookup_count_and_redirect():
    record = parse_spf("v=spf1 a mx ptr exists:%{i}.x.example include:a.example ip4:192.0.2.1 -all")
    assert record.lookup_count == 5
    assert record.targets == (("include", "a.example"),)  # the macro one is not followed
    # redirect is ignored when there is an "all" (RFC 7208 section 6.1)
    assert parse_spf("v=spf1 redirect=x.example -all").lookup_count == 0
    assert parse_spf("v=spf1 redirect=x.example").targets == (("redirect", "x.example"),)


def test_parse_dmarc():
    tags, errors = parse_dmarc(
        "v=DMARC1; p=quarantine; sp=none; pct=50; rua=mailto:a@b.example!10m;"
    )
    assert errors == [] and tags["p"] == "quarantine" and tags["pct"] == "50"
    _, errors = parse_dmarc("v=DMARC1; rua=mailto:a@b.example")
    assert errors == ["the policy tag p= (none, quarantine or reject) is missing"]
    _, errors = parse_dmarc("v=DMARC1; p=none; p=reject; adkim=x; rua=a@b.example")
    assert "the tag 'p' appears more than once" in errors
    assert "adkim=x is not a valid value" in errors
    assert "rua=a@b.example is not a valid value" in errors
    assert parse_dmarc("v=DMARC1;p=reject;fo=1:d:s;future=tag")[1] == []


def test_parse_mta_sts_and_tlsrpt():
    assert parse_mta_sts("v=STSv1; id=20160831085700Z;") == ("20160831085700Z", [])
    assert parse_mta_sts("v=STSv1;") == (None, ["the id= field is missing"])
    assert parse_mta_sts("v=STSv1; id=" + "a" * 33)[1] == [
        "id=" + "a" * 33 + " must be 1-32 letters and digits"
    ]
    assert parse_tlsrpt("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example/x") == (
        ["mailto:tls@example.com", "https://r.example/x"],
        [],
    )
    assert parse_tlsrpt("v=TLSRPTv1; rua=ftp://x")[1]


async def test_names_too_long_to_prefix_do_not_break_the_other_checks(resolver, dns_server):  # noqa: F811
    domain = ".".join(["a" * 60] * 4)[:240].rstrip(".") + ".long.test"  # 250 characters
    dns_server.zone.set(domain, {"MX": ["10 mx1.good.test."], "TXT": ["v=spf1 -all"]})
    found = await check(resolver, domain)
    assert {"dns.mx.ok", "dns.spf.ok"} <= set(found)  # _dmarc.<domain> cannot be asked
