"""The parser's edges: garbage, size bounds, partial pastes, DN and date spellings."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics.client_check import (
    BEGIN_MARKER,
    INTERCEPTORS,
    MAX_INPUT_CHARS,
    identify,
    parse_client_output,
)
from diagnostics.client_check._dn import dn_display, dn_key, parse_date

UTC = dt.UTC

_FRAGMENTS = st.sampled_from(
    [
        BEGIN_MARKER,
        "== end ==",
        "PORT 587 TCP OK",
        "PORT 0 TCP FAIL",
        "PORT 99999 TCP OK",
        "CERT 587 issuer=",
        "CERT 587 issuer= /",
        "CERT 465 notAfter=Feb 30 25:61:61 2026 GMT",
        "CERT 1 sha256=zz",
        "TcpTestSucceeded : True",
        "RemotePort : 70000",
        "RemoteAddress :",
        "WARNUNG: TCP connect to ( : ) failed",
        "issuer=,,,==,",
        "subject=/=/=/",
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
        "AAAA",
        "nc: connectx to  port  (tcp) failed: ",
        "Connection to x port 1 [tcp/*] succeeded!",
        "openssl s_client -connect [::1]:465",
        " 0 s:",
        "i:",
        "NotAfter : 99.99.9999",
        "Verify return code: 99 (x)",
        "SMTP 587 starttls=",
        "TLS 465 FAIL",
        "\x00",
        "\ufeff",
        "Test-NetConnection -Port",
        "True",
        "False",
        "&amp;&lt;&gt;",
        "```",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=80)), max_size=40))
def test_never_raises_on_garbage(lines: list[str]) -> None:
    obs = parse_client_output("\n".join(lines))
    assert all(1 <= p <= 65535 for p in obs.reachable)
    assert all(1 <= p <= 65535 for p in obs.certs)
    obs.model_dump_json()  # always serialisable (the bot stores it)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_never_raises_on_bytes(data: bytes) -> None:
    parse_client_output(data)


def test_oversized_input_is_cut_with_a_clear_note() -> None:
    head = "PORT 587 TCP OK\nPORT 465 TCP FAIL timeout\n"
    tail = "PORT 2525 TCP OK\n"
    text = head + "x" * (MAX_INPUT_CHARS + 10) + "\n" + tail
    start = time.perf_counter()
    obs = parse_client_output(text)
    assert time.perf_counter() - start < 5
    assert obs.truncated
    assert obs.reachable == {587: True, 465: False}  # the part read; 2525 was past the limit
    assert "only the first 200 KB were read" in obs.notes[0]


def test_many_lines_parse_quickly() -> None:
    text = "TcpTestSucceeded : True\nRemotePort : 587\n" * 5000
    start = time.perf_counter()
    parse_client_output(text)
    assert time.perf_counter() - start < 5


def test_garbage_is_empty_with_a_note() -> None:
    obs = parse_client_output("Outlook still says 0x800CCC0E, please help!!")
    assert obs.empty
    assert "Nothing in the text looks like" in obs.notes[-1]
    assert parse_client_output("").empty


def test_partial_script_output_without_markers() -> None:
    obs = parse_client_output(
        "PORT 465 TCP OK 192.0.2.1:465\nCERT 465 issuer=CN=R11, O=Let's Encrypt, C=US"
    )
    assert obs.reachable == {465: True}
    assert obs.certs[465].issuer == "CN=R11, O=Let's Encrypt, C=US"
    assert not obs.from_script


def test_tcp_result_without_a_port_is_noted_not_guessed() -> None:
    obs = parse_client_output("ComputerName : smtp.example.com\nTcpTestSucceeded : False\n")
    assert obs.reachable == {}
    assert any("not which port" in n for n in obs.notes)


def test_unreadable_date_is_noted() -> None:
    obs = parse_client_output(
        "CERT 465 issuer=CN=x\nCERT 465 notafter=Donnerstag, 31. Dezember 2026\n"
    )
    assert obs.certs[465].not_after is None
    assert any("Could not read the date" in n for n in obs.notes)


def test_certificate_without_issuer_is_left_out() -> None:
    obs = parse_client_output("CERT 465 subject=CN=x\n")
    assert obs.certs == {}
    assert any("without its issuer" in n for n in obs.notes)


def test_wrapped_line_outside_our_block_is_not_joined() -> None:
    obs = parse_client_output("CERT 587 issuer=CN=Example CA\nanning\n")
    assert obs.certs[587].issuer == "CN=Example CA"


# --------------------------------------------------------------------------- DN spellings


@pytest.mark.parametrize(
    "spelling",
    [
        "CN=R11, O=Let's Encrypt, C=US",  # Windows
        "C = US, O = Let's Encrypt, CN = R11",  # OpenSSL 1.1 / 3
        "/C=US/O=Let's Encrypt/CN=R11",  # LibreSSL
        " /C=US/O=Let's Encrypt/CN=R11",  # LibreSSL x509 ("issuer= /C=...")
        "CN=R11,O=Let's Encrypt,C=US",  # RFC 4514
        "commonName=R11, organizationName=Let's Encrypt, countryName=US",
    ],
)
def test_dn_spellings_compare_equal(spelling: str) -> None:
    assert dn_key(spelling) == dn_key("CN=R11, O=Let's Encrypt, C=US")
    assert dn_display(spelling) == "CN=R11, O=Let's Encrypt, C=US"


def test_dn_values_with_commas_and_slashes() -> None:
    quoted = 'CN=ESET SSL Filter CA, O="ESET, spol. s r. o.", C=SK'
    escaped = r"CN=ESET SSL Filter CA,O=ESET\, spol. s r. o.,C=SK"
    openssl = 'C = SK, O = "ESET, spol. s r. o.", CN = ESET SSL Filter CA'
    assert dn_key(quoted) == dn_key(escaped) == dn_key(openssl)
    libre = (
        "/CN=Avast Web/Mail Shield Root/O=Avast Web/Mail Shield"
        "/OU=generated by Avast Antivirus for SSL/TLS scanning"
    )
    assert dict(sorted(dn_key(libre))) == {
        "CN": "avast web/mail shield root",
        "O": "avast web/mail shield",
        "OU": "generated by avast antivirus for ssl/tls scanning",
    }
    assert dn_key("CN=a") != dn_key("CN=b")
    assert dn_key("") == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dec 31 23:59:59 2026 GMT", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("Mar  3 08:36:10 2027 GMT", dt.datetime(2027, 3, 3, 8, 36, 10, tzinfo=UTC)),
        ("2026-12-31T23:59:59Z", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("31.12.2026 23:59:59", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),  # de
        ("31/12/2026 23:59:59", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),  # fr, es
        ("05/04/2026 10:00:00", dt.datetime(2026, 4, 5, 10, 0, tzinfo=UTC)),  # fr: day first
        ("5/4/2026 10:00:00 PM", dt.datetime(2026, 5, 4, 22, 0, tzinfo=UTC)),  # en-US
        ("12/31/2026 12:15:00 AM", dt.datetime(2026, 12, 31, 0, 15, tzinfo=UTC)),
        ("2026/12/31 23:59:59", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),  # ja
        ("31-12-2026 23:59:59", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),  # nl
        ("31.12.2026", dt.datetime(2026, 12, 31, tzinfo=UTC)),
        ("31. 12. 2026 23:59:59", dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),  # cs, sk
        ("Feb 30 10:00:00 2026 GMT", None),
        ("sometime next year", None),
        ("", None),
    ],
)
def test_dates(text: str, expected: dt.datetime | None) -> None:
    assert parse_date(text) == expected


# --------------------------------------------------------------------------- products


@pytest.mark.parametrize(
    ("issuer", "name"),
    [
        ("CN=Avast Web/Mail Shield Root, O=Avast Web/Mail Shield", "Avast"),
        ("CN=AVG Web/Mail Shield Root, O=AVG Web/Mail Shield", "AVG"),
        ("CN=Norton Web/Mail Shield Root, O=Norton Web/Mail Shield", "Norton"),
        ("CN=ESET SSL Filter CA, O=ESET spol. s r. o., C=SK", "ESET"),
        ("CN=Kaspersky Anti-Virus Personal Root Certificate, O=AO Kaspersky Lab", "Kaspersky"),
        ("CN=Bitdefender Personal CA.Net-Defender, OU=IDS, O=Bitdefender", "Bitdefender"),
        ("CN=Zscaler Intermediate Root CA (zscaler.net) (t), O=Zscaler Inc.", "Zscaler"),
        ("CN=FortiGate CA, O=Fortinet, C=US", "Fortinet FortiGate"),
        ("CN=Cisco Umbrella Secondary SubCA ams-SG, O=Cisco", "Cisco Umbrella"),
        ("CN=ca.acme.goskope.com, O=Netskope Inc", "Netskope"),
        ("CN=Sophos SSL CA_C4B8A2, O=Sophos", "Sophos"),
        ("CN=Palo Alto Networks Forward Trust CA", "Palo Alto Networks"),
        ("CN=Trend Micro Deep Discovery", "Trend Micro"),
        ("CN=Gateway CA - Cloudflare Managed G1, O=Cloudflare, Inc.", "Cloudflare Gateway"),
    ],
)
def test_products_are_named(issuer: str, name: str) -> None:
    found = identify(issuer)
    assert found is not None and found.name == name


@pytest.mark.parametrize(
    "issuer",
    [
        "CN=R11, O=Let's Encrypt, C=US",
        "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US",
        "CN=WR2, O=Google Trust Services, C=US",
        "CN=Sectigo RSA Domain Validation Secure Server CA, O=Sectigo Limited",
        "CN=GlobalSign GCC R3 DV TLS CA 2020, O=GlobalSign nv-sa, C=BE",
        "CN=Microsoft Azure RSA TLS Issuing CA 04, O=Microsoft Corporation, C=US",
        "CN=Amazon RSA 2048 M02, O=Amazon, C=US",
        "CN=Reset Networks CA",  # "ESET" inside a word is not ESET
    ],
)
def test_public_cas_are_not_interceptors(issuer: str) -> None:
    assert identify(issuer) is None


def test_every_product_has_a_hint_and_kind() -> None:
    names = [p.name for p in INTERCEPTORS]
    assert len(names) == len(set(names))
    assert all(p.hint and p.kind in ("antivirus", "network") for p in INTERCEPTORS)
