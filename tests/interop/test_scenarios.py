"""Each Postfix scenario, diagnosed by the real engine: the contract's finding IDs and the
`recommended` setting, over IPv4 (127.0.20.x) and IPv6 (::1, the good scenario).
"""

from __future__ import annotations

import json

import pytest

from diagnostics import Severity
from tests.interop.conftest import SCENARIO_ADDRESSES, Diagnose, Peers
from tests.interop.helpers import entered_probe as _entered
from tests.interop.helpers import error_ids as _errors
from tests.interop.helpers import explain as _explain
from tests.interop.helpers import recommended as _recommended

pytestmark = pytest.mark.interop

CERT_IDS = {
    "tls.cert.expired",
    "tls.cert.not_yet_valid",
    "tls.cert.hostname_mismatch",
    "tls.cert.self_signed",
    "tls.cert.untrusted",
    "tls.cert.chain_incomplete",
}

# The good scenario exists on both address families; everything else is IPv4 only.
GOOD_HOSTS = [
    pytest.param("smtp.good.test", id="ipv4"),
    pytest.param("smtp6.good.test", id="ipv6"),
]


# ------------------------------------------------------------------ settings that work


@pytest.mark.parametrize("host", GOOD_HOSTS)
@pytest.mark.parametrize(("port", "security"), [(587, "starttls"), (465, "ssl")])
async def test_good_settings_pass(check: Diagnose, host: str, port: int, security: str) -> None:
    report = await check(target=f"{host}:{port}", security=security)
    assert _errors(report) == [], _explain(report)
    assert str(report.verdict) == "pass", _explain(report)
    assert report.recommended is None
    entered = _entered(report)
    assert entered.address == SCENARIO_ADDRESSES[host]
    assert entered.outcome == "ok"
    assert entered.tls_version == "TLSv1.3"
    assert "PLAIN" in entered.auth_after_tls
    assert not report.has("auth.offered_before_tls")
    assert entered.certificate is not None and entered.certificate["problems"] == []


@pytest.mark.parametrize(
    ("target", "security", "address"),
    [
        ("127.0.20.1:587", "starttls", "127.0.20.1"),
        ("[::1]:465", "ssl", "::1"),
    ],
)
async def test_ip_literal_targets_match_the_certificates_ip_names(
    check: Diagnose, target: str, security: str, address: str
) -> None:
    report = await check(target=target, security=security)
    assert _errors(report) == [], _explain(report)
    assert _entered(report).address == address


@pytest.mark.parametrize("host", GOOD_HOSTS)
async def test_correct_password_is_accepted(check: Diagnose, peers: Peers, host: str) -> None:
    report = await check(
        target=f"{host}:587", security="starttls", user=peers.user, password=peers.password
    )
    assert report.has("auth.ok"), _explain(report)
    assert _errors(report) == [], _explain(report)
    assert peers.password not in report.to_json()


async def test_correct_password_over_implicit_tls(check: Diagnose, peers: Peers) -> None:
    report = await check(
        target="smtp.good.test:465", security="ssl", user=peers.user, password=peers.password
    )
    assert report.has("auth.ok"), _explain(report)


@pytest.mark.parametrize("host", GOOD_HOSTS)
async def test_wrong_password_is_a_credentials_failure(
    check: Diagnose, peers: Peers, host: str
) -> None:
    canary = "Wrong-Canary-Password-93"
    report = await check(
        target=f"{host}:587", security="starttls", user=peers.user, password=canary
    )
    assert report.has("auth.failed.credentials"), _explain(report)
    assert not report.has("auth.ok")
    assert str(report.verdict) == "fail"
    (finding,) = report.by_id("auth.failed.credentials")
    assert "535" in json.dumps(finding.evidence)
    assert canary not in report.to_json()
    # The server works; only the password is wrong: nothing else to recommend.
    assert report.recommended is None


# ------------------------------------------------------------------ Outlook's mode traps


@pytest.mark.parametrize("host", GOOD_HOSTS)
async def test_starttls_chosen_on_the_implicit_tls_port(check: Diagnose, host: str) -> None:
    report = await check(target=f"{host}:465", security="starttls")
    assert report.has("tls.mode.starttls_on_ssl_port"), _explain(report)
    assert str(report.verdict) == "fail"
    # Both 465 with SSL/TLS and 587 with STARTTLS work on this server.
    assert _recommended(report) in {(host, 465, "ssl"), (host, 587, "starttls")}, _explain(report)


async def test_starttls_chosen_where_only_implicit_tls_exists(check: Diagnose) -> None:
    report = await check(target="sslonly.good.test:465", security="starttls")
    assert report.has("tls.mode.starttls_on_ssl_port"), _explain(report)
    assert _recommended(report) == ("sslonly.good.test", 465, "ssl"), _explain(report)


@pytest.mark.parametrize("host", GOOD_HOSTS)
async def test_ssl_chosen_on_the_starttls_port(check: Diagnose, host: str) -> None:
    report = await check(target=f"{host}:587", security="ssl")
    assert report.has("tls.mode.ssl_on_starttls_port"), _explain(report)
    assert str(report.verdict) == "fail"
    assert _recommended(report) == (host, 587, "starttls"), _explain(report)


@pytest.mark.parametrize("host", GOOD_HOSTS)
async def test_port_25_relays_nothing_without_auth(check: Diagnose, host: str) -> None:
    # "Requires authentication" ticked: the refusal without a login is what the server should
    # do, so only the missing AUTH is said (issue 17: no "turn on the login" to a user who has).
    report = await check(target=f"{host}:25", security="starttls", email="alice@good.test")
    assert report.has("auth.not_offered"), _explain(report)
    assert not report.has("smtp.relay.denied"), _explain(report)
    assert _recommended(report) == (host, 587, "starttls"), _explain(report)
    # Not ticked: the relay refusal is the user's problem, with the server's own reply.
    report = await check(
        target=f"{host}:25", security="starttls", email="alice@good.test", requires_auth=False
    )
    assert report.has("smtp.relay.denied"), _explain(report)
    (relay,) = report.by_id("smtp.relay.denied")
    assert "554 5.7.1" in json.dumps(relay.evidence)
    assert _recommended(report) == (host, 587, "starttls"), _explain(report)


# ------------------------------------------------------------------ misconfigured servers


def _cert_case(host: str, port: int, security: str, finding_id: str) -> tuple:
    """A certificate scenario: its own problem, and none of the other certificate problems."""
    return (host, port, security, {finding_id}, CERT_IDS - {finding_id})


BROKEN = [
    # host, port, security, IDs that must appear, IDs that must not
    ("nostarttls.good.test", 587, "starttls", {"tls.starttls.not_offered"}, CERT_IDS),
    _cert_case("expired.good.test", 587, "starttls", "tls.cert.expired"),
    _cert_case("expired.good.test", 465, "ssl", "tls.cert.expired"),
    _cert_case("wrongname.good.test", 587, "starttls", "tls.cert.hostname_mismatch"),
    _cert_case("wrongname.good.test", 465, "ssl", "tls.cert.hostname_mismatch"),
    _cert_case("selfsigned.good.test", 587, "starttls", "tls.cert.self_signed"),
    _cert_case("selfsigned.good.test", 465, "ssl", "tls.cert.self_signed"),
    _cert_case("nochain.good.test", 587, "starttls", "tls.cert.chain_incomplete"),
    _cert_case("nochain.good.test", 465, "ssl", "tls.cert.chain_incomplete"),
    ("legacytls.good.test", 587, "starttls", {"tls.version.legacy"}, CERT_IDS),
    ("legacytls.good.test", 465, "ssl", {"tls.version.legacy"}, CERT_IDS),
    ("authbeforetls.good.test", 587, "starttls", {"auth.offered_before_tls"}, CERT_IDS),
    ("noauth.good.test", 587, "starttls", {"auth.not_offered"}, CERT_IDS),
    ("ptrmismatch.good.test", 587, "starttls", {"dns.ptr.mismatch"}, CERT_IDS),
]


@pytest.mark.parametrize(
    ("host", "port", "security", "expected", "absent"),
    [pytest.param(*case, id=f"{case[0].split('.')[0]}-{case[1]}") for case in BROKEN],
)
async def test_misconfigured_scenario_yields_its_finding(
    check: Diagnose, host: str, port: int, security: str, expected: set[str], absent: set[str]
) -> None:
    report = await check(target=f"{host}:{port}", security=security)
    ids = set(report.finding_ids)
    assert expected <= ids, _explain(report)
    assert not (ids & absent), _explain(report)
    assert _entered(report).address == SCENARIO_ADDRESSES[host]
    # Every scenario address carries its one defect on every port it has: nothing to
    # recommend on the same server.
    assert report.recommended is None, _explain(report)


async def test_hostname_mismatch_names_what_the_certificate_holds(check: Diagnose) -> None:
    report = await check(target="wrongname.good.test:587", security="starttls")
    (finding,) = report.by_id("tls.cert.hostname_mismatch")
    assert "mail.other.test" in finding.title + finding.detail
    assert finding.evidence["certificate"]["names"] == ["mail.other.test"]


async def test_legacy_tls_reports_the_old_protocol(check: Diagnose) -> None:
    report = await check(target="legacytls.good.test:587", security="starttls")
    assert _entered(report).tls_version in {"TLSv1", "TLSv1.1"}, _explain(report)
    assert str(report.verdict) == "fail"


async def test_auth_before_tls_is_a_warning_not_a_failure(check: Diagnose) -> None:
    report = await check(target="authbeforetls.good.test:587", security="starttls")
    (finding,) = report.by_id("auth.offered_before_tls")
    assert finding.severity is Severity.WARN
    assert _errors(report) == [], _explain(report)
    assert "PLAIN" in _entered(report).auth_before_tls


async def test_matching_ptr_is_not_reported(check: Diagnose) -> None:
    report = await check(target="smtp.good.test:587", security="starttls")
    assert not report.has("dns.ptr.mismatch")
    assert not report.has("dns.ptr.missing")
