"""Certificate analysis: every chain shape gives exactly its problems; names; the peer chain."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from diagnostics._errors import ConfigError
from diagnostics._models import CertInfo, CertProblem
from diagnostics._tls import (
    TrustStore,
    analyze_chain,
    hostname_matches,
    peer_chain,
    probe_context,
)
from diagnostics.sanitize import visible
from tests.certs import CertFactory, issue

NAME = "mail.example.test"
P = CertProblem


@pytest.fixture(scope="module")
def factory() -> CertFactory:
    return CertFactory()


@pytest.fixture(scope="module")
def trust(factory: CertFactory) -> TrustStore:
    return TrustStore.from_pem(factory.root_pem)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("shape", "names", "expected"),
    [
        ("valid", (NAME,), ()),
        ("direct", (NAME,), ()),  # root not sent, but it is the trusted root: fine
        ("expired", (NAME,), (P.EXPIRED,)),
        ("not_yet_valid", (NAME,), (P.NOT_YET_VALID,)),
        ("wrong_name", ("other.example.net",), (P.HOSTNAME_MISMATCH,)),
        ("missing_intermediate", (NAME,), (P.CHAIN_INCOMPLETE,)),
        ("unknown_root", (NAME,), (P.UNTRUSTED,)),
        ("self_signed", (NAME,), (P.SELF_SIGNED,)),
        ("valid", ("*.example.test",), ()),
        ("wrong_name", ("*.other.test", "other.example.test"), (P.HOSTNAME_MISMATCH,)),
    ],
)
def test_each_shape_has_exactly_its_problems(factory, trust, shape, names, expected):
    cert = getattr(factory, shape)(*names)
    info = analyze_chain(cert.chain_der, NAME, trust, now=now())
    assert info.problems == expected
    assert info.trusted is (not expected)
    assert info.chain_length == len(cert.chain_pem)


def test_problems_combine_in_a_stable_order(factory, trust):
    cert = factory.expired("other.example.net")
    info = analyze_chain(cert.chain_der, NAME, trust, now=now())
    assert info.problems == (P.EXPIRED, P.HOSTNAME_MISMATCH)

    leaf_only = factory.self_signed("other.example.net", not_after=now() - dt.timedelta(days=1))
    info = analyze_chain(leaf_only.chain_der, NAME, trust, now=now())
    assert info.problems == (P.EXPIRED, P.HOSTNAME_MISMATCH, P.SELF_SIGNED)


def test_expiry_is_judged_against_the_given_time(factory, trust):
    cert = factory.valid(NAME)
    info = analyze_chain(cert.chain_der, NAME, trust, now=now())
    assert info.problems == ()
    later = dt.datetime(3001, 1, 1, tzinfo=dt.UTC)  # trustme leaves expire in 3000
    assert analyze_chain(cert.chain_der, NAME, trust, now=later).problems == (P.EXPIRED,)


def test_the_system_store_does_not_know_the_test_root(factory):
    system = TrustStore.load()
    # Leaf + intermediate, the root neither sent nor trusted: the path stops early.
    info = analyze_chain(factory.valid(NAME).chain_der, NAME, system, now=now())
    assert info.problems == (P.CHAIN_INCOMPLETE,)
    assert info.verify_error


def test_the_ca_bundle_adds_to_the_system_roots(factory, tmp_path):
    bundle = factory.write_ca_bundle(tmp_path)
    store = TrustStore.load(bundle)
    assert len(store) == len(TrustStore.load()) + 1  # the system roots and the test root
    info = analyze_chain(factory.valid(NAME).chain_der, NAME, store, now=now())
    assert info.problems == ()
    assert info.verify_error is None
    # Loaded once: the same object for the same file.
    assert TrustStore.load(bundle) is store


def test_system_roots_are_each_read_once_and_none_is_lost(factory, tmp_path, monkeypatch):
    # As on Debian: OpenSSL's default file links to the bundle, and the CA directory holds
    # the bundle's certificates again under hashed names (plus one found only there).
    from diagnostics import _tls

    a, b, c = (factory.self_signed(f"{n}.example.test").chain_pem[0] for n in "abc")
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_bytes(b"# comment\n" + a + b)
    (tmp_path / "cert.pem").symlink_to(bundle)
    capath = tmp_path / "certs"
    capath.mkdir()
    (capath / "0a0a0a0a.0").write_bytes(a)
    (capath / "0c0c0c0c.0").write_bytes(c)
    (capath / "README").write_bytes(factory.self_signed("d.example.test").chain_pem[0])
    paths = ssl.DefaultVerifyPaths(str(bundle), str(capath), "", str(tmp_path / "cert.pem"),
                                   "", str(capath))  # fmt: skip
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    pems = [cert.public_bytes(serialization.Encoding.PEM) for cert in _tls._system_roots()]
    assert pems == [a, b, c]  # the README is not a hashed name: not a root


def test_system_roots_are_the_certificates_of_every_default_path():
    # The deduplicated read gives the same anchors as parsing every file in full.
    from diagnostics import _tls

    paths = ssl.get_default_verify_paths()
    files = [f for f in {paths.cafile, paths.openssl_cafile} if f and Path(f).is_file()]
    capath = paths.capath or paths.openssl_capath
    if capath and Path(capath).is_dir():
        files += [p for p in Path(capath).iterdir() if _tls._HASHED_NAME.match(p.name)]
    every = [cert for f in files for cert in _tls._parse_pem(Path(f).read_bytes())]
    fingerprints = [cert.fingerprint(hashes.SHA256()) for cert in _tls._system_roots()]
    assert len(fingerprints) == len(set(fingerprints))
    assert set(fingerprints) == {cert.fingerprint(hashes.SHA256()) for cert in every}


def test_a_bundle_without_certificates_is_a_config_error(tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="no PEM certificate"):
        TrustStore.load(empty)


def test_a_trusted_self_signed_certificate_is_fine(factory):
    cert = factory.self_signed(NAME)
    store = TrustStore.from_pem(cert.chain_pem[0])
    assert analyze_chain(cert.chain_der, NAME, store, now=now()).problems == ()


def test_certificate_facts(factory, trust):
    cert = factory.valid(NAME, "smtp.example.test", "192.0.2.7")
    info = analyze_chain(cert.chain_der, NAME, trust, now=now())
    leaf = cert.leaf
    assert info.names == (NAME, "smtp.example.test", "192.0.2.7")
    assert info.subject == leaf.subject.rfc4514_string()
    assert info.issuer == leaf.issuer.rfc4514_string()
    assert info.sha256 == hashlib.sha256(cert.chain_der[0]).hexdigest()
    assert int(info.serial, 16) == leaf.serial_number
    assert info.not_after == leaf.not_valid_after_utc and info.not_after.tzinfo is not None
    assert info.key == "EC secp256r1"
    assert len(info.chain_subjects) == 2
    assert info.chain_subjects[1] == leaf.issuer.rfc4514_string()
    assert info.as_evidence()["problems"] == []


def test_mismatch_lists_the_names_the_certificate_holds(factory, trust):
    cert = factory.wrong_name("a.example.net", "b.example.net")
    info = analyze_chain(cert.chain_der, NAME, trust, now=now())
    assert info.problems == (P.HOSTNAME_MISMATCH,)
    assert info.names == ("a.example.net", "b.example.net")


def test_common_name_counts_only_without_san(factory, trust):
    cert = factory.common_name_only(NAME)
    info = analyze_chain(cert.chain_der, NAME, trust, now=now())
    assert info.names == (NAME,)
    assert info.problems == ()
    other = analyze_chain(cert.chain_der, "smtp.example.test", trust, now=now())
    assert other.problems == (P.HOSTNAME_MISMATCH,)


def test_ip_addresses_match_ip_sans_only(factory, trust):
    cert = factory.valid("127.0.0.1", "::1")
    assert analyze_chain(cert.chain_der, "127.0.0.1", trust, now=now()).problems == ()
    assert analyze_chain(cert.chain_der, "::1", trust, now=now()).problems == ()
    assert analyze_chain(cert.chain_der, "127.0.0.2", trust, now=now()).problems == (
        P.HOSTNAME_MISMATCH,
    )


def test_idna_names_match_in_either_form(factory, trust):
    cert = factory.valid("bücher.example.test")
    info = analyze_chain(cert.chain_der, "xn--bcher-kva.example.test", trust, now=now())
    assert info.problems == ()
    assert info.names == ("xn--bcher-kva.example.test",)


@pytest.mark.parametrize(
    ("host", "pattern", "matches"),
    [
        ("mail.example.test", "mail.example.test", True),
        ("MAIL.Example.Test", "mail.example.test", True),
        ("mail.example.test.", "mail.example.test", True),
        ("mail.example.test", "*.example.test", True),
        ("example.test", "*.example.test", False),
        ("a.mail.example.test", "*.example.test", False),
        ("mail.example.test", "*.test", False),  # a wildcard never covers most of a name
        ("mail.example.test", "m*.example.test", False),  # partial wildcards are refused
        ("mail.example.test", "mail.*.test", False),
        ("xn--bcher-kva.example.test", "*.example.test", True),
        ("bücher.example.test", "xn--bcher-kva.example.test", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "*.0.0.1", False),
        ("::1", "0:0:0:0:0:0:0:1", True),
        ("mail.example.test", "127.0.0.1", False),
    ],
)
def test_hostname_matching(host, pattern, matches):
    assert hostname_matches(host, pattern) is matches


def test_an_unreadable_certificate_is_reported_not_raised(trust):
    info = analyze_chain([b"\x30\x03garbage"], NAME, trust, now=now())
    assert info.problems == (P.UNTRUSTED,)
    assert "could not be parsed" in (info.verify_error or "")


def test_probe_context_is_permissive_and_shared():
    context = probe_context()
    assert context is probe_context()
    assert context.verify_mode is ssl.CERT_NONE
    assert context.check_hostname is False
    assert context.minimum_version <= ssl.TLSVersion.TLSv1


async def test_peer_chain_is_what_the_server_sent(factory):
    cert = factory.valid(NAME)
    server_context = cert.server_context()

    async def handle(reader, writer):
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        _reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=probe_context(), server_hostname=NAME
        )
        chain = peer_chain(writer.transport.get_extra_info("ssl_object"))
        writer.close()
    finally:
        server.close()
    assert chain == cert.chain_der
    assert peer_chain(None) == []


def _issued_under(trust: TrustStore, *attributes: tuple[x509.ObjectIdentifier, str]) -> CertInfo:
    """A certificate whose issuer is made of `attributes` (self-signed: issuer = subject)."""
    cert = issue(
        # Unvalidated: a hostile issuer's name is longer than RFC 5280's upper bounds.
        x509.Name([x509.NameAttribute(oid, value, _validate=False) for oid, value in attributes]),
        not_before=now() - dt.timedelta(days=1),
        not_after=now() + dt.timedelta(days=30),
    )
    return analyze_chain(cert.chain_der, NAME, trust, now=now())


@pytest.mark.parametrize(
    ("attributes", "readable"),
    [
        (
            ((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Let's Encrypt"),
             (NameOID.COMMON_NAME, "R11")),
            "Let's Encrypt (R11)",
        ),
        (((NameOID.COMMON_NAME, "Contoso Issuing CA"),), "Contoso Issuing CA"),
        (
            ((NameOID.ORGANIZATION_NAME, "Contoso"), (NameOID.COMMON_NAME, "contoso")),
            "Contoso",
        ),
        (
            ((NameOID.ORGANIZATION_NAME, "trustme"),
             (NameOID.ORGANIZATIONAL_UNIT_NAME, "Testing CA")),
            "trustme (Testing CA)",
        ),
        (((NameOID.COUNTRY_NAME, "US"), (NameOID.LOCALITY_NAME, "Here")), "L=Here,C=US"),
    ],
)  # fmt: skip
def test_the_issuer_reads_as_its_organisation_and_name(trust, attributes, readable):
    info = _issued_under(trust, *attributes)
    assert info.issuer_name == readable
    raw = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    assert info.issuer == raw.rfc4514_string()  # the raw name is kept as it was
    assert info.as_evidence()["issuer"] == info.issuer
    assert info.as_evidence()["issuer_name"] == readable


@pytest.mark.filterwarnings("ignore:Attribute's length must be")  # the long name, on purpose
def test_a_hostile_issuer_name_is_sanitised(trust):
    info = _issued_under(
        trust,
        (NameOID.ORGANIZATION_NAME, "Evil\u202eCorp\x1b[2J"),
        (NameOID.COMMON_NAME, "x" * 500),
    )
    assert "\u202e" not in info.issuer_name and "\x1b" not in info.issuer_name
    assert info.issuer_name.startswith(visible("Evil\u202eCorp\x1b[2J") + " (xxx")
    assert len(info.issuer_name) <= 200
