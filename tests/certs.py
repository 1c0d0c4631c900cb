"""Test certificates in every shape a mail server gets wrong, from a trustme CA.

factory = CertFactory()
cert = factory.valid("mail.example.test")      # leaf + intermediate, trusted root
ctx = cert.server_context()                     # for aiosmtpd / loop.create_server
bundle = factory.write_ca_bundle(tmp_path)      # the root only, for --ca-bundle
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import ssl
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = dt.UTC


@dataclasses.dataclass(frozen=True)
class ServerCert:
    """A server certificate chain exactly as the server will send it, and its key."""

    chain_pem: tuple[bytes, ...]  # leaf first
    key_pem: bytes

    @property
    def chain_der(self) -> list[bytes]:
        return [
            x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
            for pem in self.chain_pem
        ]

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.chain_pem[0])

    def server_context(self, *, legacy_only: bool = False) -> ssl.SSLContext:
        """A server-side context presenting this chain; `legacy_only`: TLS 1.0/1.1 at most."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if legacy_only:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1
                context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("ALL:@SECLEVEL=0")
        with tempfile.TemporaryDirectory() as tmp:
            chain_file = Path(tmp, "chain.pem")
            key_file = Path(tmp, "key.pem")
            chain_file.write_bytes(b"".join(self.chain_pem))
            key_file.write_bytes(self.key_pem)
            context.load_cert_chain(chain_file, key_file)
        return context


class CertFactory:
    """A trusted root, an intermediate under it, and server certificates of every shape."""

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="smtpcheck test root")
        self.intermediate = self.ca.create_child_ca()
        self.untrusted_ca = trustme.CA(organization_name="smtpcheck unknown root")

    # ---------------------------------------------------------------- trust

    @property
    def root_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def write_ca_bundle(self, directory: Path) -> Path:
        """A PEM file holding the root only (what an operator passes as --ca-bundle)."""
        path = Path(directory) / "test-root.pem"
        path.write_bytes(self.root_pem)
        return path

    # ---------------------------------------------------------------- shapes

    def valid(self, *names: str) -> ServerCert:
        """Issued by the intermediate, sent with it (the root is not sent, as usual)."""
        return _served(self.intermediate.issue_cert(*names))

    def direct(self, *names: str) -> ServerCert:
        """Issued by the root itself (chain of one)."""
        return _served(self.ca.issue_cert(*names))

    def expired(self, *names: str) -> ServerCert:
        now = dt.datetime.now(UTC)
        return _served(
            self.intermediate.issue_cert(
                *names,
                not_before=now - dt.timedelta(days=400),
                not_after=now - dt.timedelta(days=2),
            )
        )

    def not_yet_valid(self, *names: str) -> ServerCert:
        now = dt.datetime.now(UTC)
        return _served(
            self.intermediate.issue_cert(
                *names, not_before=now + dt.timedelta(days=3), not_after=now + dt.timedelta(days=90)
            )
        )

    def wrong_name(self, *names: str) -> ServerCert:
        """Valid and trusted, but for other names than the one the client asks for."""
        return self.valid(*(names or ("other.example.net",)))

    def missing_intermediate(self, *names: str) -> ServerCert:
        """Issued by the intermediate, but the server sends the leaf alone."""
        full = _served(self.intermediate.issue_cert(*names))
        return dataclasses.replace(full, chain_pem=full.chain_pem[:1])

    def unknown_root(self, *names: str) -> ServerCert:
        """Issued by a root nobody trusts, which the server sends along."""
        leaf = self.untrusted_ca.issue_cert(*names)
        served = _served(leaf)
        return dataclasses.replace(
            served, chain_pem=(*served.chain_pem, self.untrusted_ca.cert_pem.bytes())
        )

    def self_signed(self, *names: str, not_after: dt.datetime | None = None) -> ServerCert:
        """A leaf that signed itself (Postfix's snakeoil, Proton Bridge, appliances)."""
        now = dt.datetime.now(UTC)
        return issue(
            _common_name(names[0]),
            not_before=now - dt.timedelta(days=30),
            not_after=not_after or now + dt.timedelta(days=365),
            extensions=(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            ),
        )

    def common_name_only(self, common_name: str) -> ServerCert:
        """A leaf with a CN and no SAN (old appliances), issued by the root."""
        now = dt.datetime.now(UTC)
        issuer = x509.load_pem_x509_certificate(self.root_pem)
        ca_key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), None)
        return issue(
            _common_name(common_name),
            issuer=issuer.subject,
            issuer_key=ca_key,  # type: ignore[arg-type]
            not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=90),
        )


def issue(
    subject: x509.Name,
    *,
    issuer: x509.Name | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    extensions: Sequence[x509.ExtensionType] = (),
) -> ServerCert:
    """A certificate for a new key, built by hand where trustme has no knob for the oddity;
    signed by `issuer_key` under `issuer`'s name, or by itself when no issuer is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return ServerCert(
        chain_pem=(cert.public_bytes(serialization.Encoding.PEM),),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _common_name(value: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)])


@functools.cache
def default_factory() -> CertFactory:
    """The factory shared by the test servers and the fixtures (one root per test run)."""
    return CertFactory()


def _served(leaf: trustme.LeafCert) -> ServerCert:
    return ServerCert(
        chain_pem=tuple(blob.bytes() for blob in leaf.cert_chain_pems),
        key_pem=leaf.private_key_pem.bytes(),
    )
