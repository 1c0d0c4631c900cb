"""TLS for the probes: the permissive client context, the peer chain, certificate analysis.

Handshakes never verify (a broken chain must still be read); what is wrong with the chain
is decided afterwards by `analyze_chain`, against a `TrustStore` loaded once.
"""

from __future__ import annotations

import _ssl
import asyncio
import contextvars
import dataclasses
import datetime as dt
import functools
import hashlib
import ipaddress
import os
import re
import ssl
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from diagnostics._errors import ConfigError
from diagnostics._models import CertInfo, CertProblem
from diagnostics.sanitize import visible

__all__ = [
    "HandshakeFacts",
    "TimedSSLObject",
    "TrustStore",
    "analyze_chain",
    "handshake_sink",
    "load_trust_store",
    "peer_chain",
    "probe_context",
]

_MAX_PATH = 10  # certificates followed from the leaf before giving up (loops, junk)
_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----.+?"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.DOTALL,
)
# The usual block (base64 only between the lines) found ~10x faster than by _PEM_BLOCK.
_PLAIN_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")
_HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.\d+$")  # OpenSSL c_rehash names in a CA directory
_SHA256 = hashes.SHA256()
_ANY_EKU = x509.ObjectIdentifier("2.5.29.37.0")
_ENCOUNTERED = re.compile(r"\s*\(encountered processing <Certificate.*\)$", re.DOTALL)
_UTC = dt.UTC
# A certificate may hold thousands of names: keep the first ones and those matching the
# host entered, and count the rest (issue 12: 12,000 names made a 1.3 MB report).
MAX_CERT_NAMES = 25
MAX_MATCHING_NAMES = 5
_NAME_CHARS = 255  # a DNS name is at most 253 characters
_DN_CHARS = 1000
_READABLE_CHARS = 200  # an issuer's name in a sentence


class TimedSSLObject(ssl.SSLObject):
    """An SSLObject that notes its handshake's times and results for the probe that ran it.

    The probe cannot reach the SSL object while aiosmtplib is still inside `connect()`
    (implicit TLS), so a completed handshake reports itself to the running probe through
    `handshake_sink`; the probe then knows the TLS facts even if the greeting never comes.
    """

    handshake_started: float | None = None  # time.monotonic()
    handshake_done: float | None = None
    handshake_error: ssl.SSLError | None = None  # asyncio may report only "connection reset"
    facts: HandshakeFacts | None = None

    def do_handshake(self) -> None:
        if self.handshake_started is None:
            self.handshake_started = time.monotonic()
            sink = handshake_sink.get()
            if sink is not None:
                sink.append(self)
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self.handshake_error = exc
            raise
        self.handshake_done = time.monotonic()
        try:
            cipher = self.cipher()
            self.facts = HandshakeFacts(
                version=self.version(),
                cipher=cipher[0] if cipher else None,
                chain=tuple(peer_chain(self)),
            )
        except Exception:  # noqa: S110 - noting facts must never break a handshake
            pass


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakeFacts:
    """What a completed handshake established, read while the connection was up."""

    version: str | None  # "TLSv1.3"
    cipher: str | None
    chain: tuple[bytes, ...]


# Set by a probe to a list that collects the SSL objects of its own handshakes; callbacks
# run in a copy of the probe task's context, so concurrent probes never see each other's.
handshake_sink: contextvars.ContextVar[list[TimedSSLObject] | None] = contextvars.ContextVar(
    "handshake_sink", default=None
)


@functools.cache
def probe_context() -> ssl.SSLContext:
    """The client context of every handshake: no verification, TLS 1.0 and up, any cipher."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # TLS 1.0/1.1-only servers must still handshake so that we can name the problem.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:!aNULL:!eNULL:@SECLEVEL=0")
    context.sslobject_class = TimedSSLObject
    return context


def peer_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> list[bytes]:
    """The DER certificates exactly as the server sent them, leaf first."""
    if ssl_object is None:
        return []
    getter = getattr(ssl_object, "get_unverified_chain", None)  # public from 3.13
    if getter is None:
        inner = getattr(ssl_object, "_sslobj", None)  # 3.11/3.12: private, same object
        getter = getattr(inner, "get_unverified_chain", None)
    chain: list[bytes] = []
    if getter is not None:
        try:
            for cert in getter() or ():
                chain.append(cert if isinstance(cert, bytes) else _cert_der(cert))
        except (ValueError, ssl.SSLError, AttributeError):
            chain = []
    if not chain:
        try:
            leaf = ssl_object.getpeercert(binary_form=True)
        except ValueError:  # no handshake yet
            leaf = None
        if leaf:
            chain = [leaf]
    return chain


def _cert_der(cert: object) -> bytes:
    """DER of the private `_ssl.Certificate` objects that 3.11/3.12 return."""
    der: bytes = cert.public_bytes(_ssl.ENCODING_DER)  # type: ignore[attr-defined]
    return der


# --------------------------------------------------------------------------- trust store


class TrustStore:
    """Trust anchors: the system's roots plus an optional extra CA bundle."""

    def __init__(self, anchors: Iterable[x509.Certificate]) -> None:
        unique: dict[bytes, x509.Certificate] = {}
        for cert in anchors:
            unique.setdefault(cert.fingerprint(_SHA256), cert)
        self.anchors: tuple[x509.Certificate, ...] = tuple(unique.values())
        self._fingerprints = frozenset(unique)
        self._by_subject: dict[bytes, list[x509.Certificate]] = {}
        for cert in self.anchors:
            self._by_subject.setdefault(cert.subject.public_bytes(), []).append(cert)
        self._store: Store | None = None
        # analyze_chain's answers: (chain, server name, time) -> CertInfo
        self._analyses: dict[tuple[tuple[bytes, ...], str, dt.datetime], CertInfo] = {}

    @classmethod
    def load(cls, ca_bundle: Path | str | None = None, *, system: bool = True) -> TrustStore:
        """The store for this bundle (cached: loaded once per bundle file and its version)."""
        return _load_cached(_bundle_key(ca_bundle), system)

    @classmethod
    def from_pem(cls, pem: bytes) -> TrustStore:
        """A store holding only these PEM certificates (tests, embedded CAs)."""
        return cls(_parse_pem(pem))

    def __len__(self) -> int:
        return len(self.anchors)

    def contains(self, cert: x509.Certificate) -> bool:
        """Is this certificate itself an anchor (same bytes, or same name and key)?"""
        if cert.fingerprint(_SHA256) in self._fingerprints:
            return True
        key = _spki(cert)
        return any(_spki(a) == key for a in self._by_subject.get(cert.subject.public_bytes(), ()))

    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """Anchors that signed this certificate."""
        candidates = self._by_subject.get(cert.issuer.public_bytes(), ())
        return [a for a in candidates if _issued_by(cert, a)]

    @property
    def verification_store(self) -> Store | None:
        """The anchors as a `cryptography` verification store (built on first use)."""
        if self._store is None and self.anchors:
            self._store = Store(list(self.anchors))
        return self._store


async def load_trust_store(ca_bundle: Path | str | None = None) -> TrustStore:
    """`TrustStore.load` for the event loop: a load that parses runs in a worker thread."""
    key = _bundle_key(ca_bundle)
    cached = _STORES.get((key, True))
    if cached is not None:
        return cached
    return await asyncio.to_thread(_load_cached, key, True)


def _bundle_key(ca_bundle: Path | str | None) -> tuple[str, int, int] | None:
    if ca_bundle is None:
        return None
    path = Path(ca_bundle)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"CA bundle {path} cannot be read ({exc.strerror})") from None
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


_StoreKey = tuple[tuple[str, int, int] | None, bool]
_STORES: dict[_StoreKey, TrustStore] = {}
_STORES_MAX = 8
_STORES_LOCK = threading.Lock()  # one parse per key, also when two threads ask at once


def _load_cached(bundle_key: tuple[str, int, int] | None, system: bool) -> TrustStore:
    with _STORES_LOCK:
        store = _STORES.get((bundle_key, system))
        if store is None:
            store = _load(bundle_key, system)
            if len(_STORES) >= _STORES_MAX:
                del _STORES[next(iter(_STORES))]
            _STORES[(bundle_key, system)] = store
        return store


def _load(bundle_key: tuple[str, int, int] | None, system: bool) -> TrustStore:
    anchors: list[x509.Certificate] = []
    if system:
        anchors += _system_roots()
    if bundle_key is not None:
        path = Path(bundle_key[0])
        try:
            extra = _parse_pem(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"CA bundle {path} cannot be read ({exc.strerror})") from None
        if not extra:
            raise ConfigError(f"CA bundle {path} holds no PEM certificate")
        anchors += extra
    return TrustStore(anchors)


def _system_roots() -> list[x509.Certificate]:
    """The system's roots, each parsed once.

    The default paths name the same certificates several times over: OpenSSL's default file
    is often a link to the distribution's bundle, and the CA directory holds the bundle's
    certificates again, one per hashed file (Debian: 144 roots parsed three times, ~2/3 of
    the load). Identical PEM blocks are parsed once.
    """
    paths = ssl.get_default_verify_paths()
    files = [cafile for cafile in (paths.cafile, paths.openssl_cafile) if cafile]
    capath = paths.capath or paths.openssl_capath
    if capath and os.path.isdir(capath):
        files += [
            os.path.join(capath, name) for name in sorted(os.listdir(capath))
            if _HASHED_NAME.match(name)
        ]  # fmt: skip
    blocks: dict[bytes, None] = {}  # in order of appearance, each once
    for name in dict.fromkeys(files):
        try:
            with open(name, "rb") as file:
                data = file.read()
        except OSError:
            continue
        found = _PLAIN_PEM_BLOCK.findall(data)
        if len(found) != data.count(b"-----BEGIN "):  # headers, other labels: the full rules
            found = _PEM_BLOCK.findall(data)
        blocks.update(dict.fromkeys(found))
    return _parse_pem(b"\n".join(blocks))


def _parse_pem(data: bytes) -> list[x509.Certificate]:
    # Some system roots have a non-positive serial; cryptography warns, they still anchor.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            pass
        # One bad block must not hide the good ones.
        certs = []
        for block in _PEM_BLOCK.findall(data):
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
        return certs


# --------------------------------------------------------------------------- analysis


def analyze_chain(
    chain: Sequence[bytes], server_name: str, trust: TrustStore, *, now: dt.datetime
) -> CertInfo:
    """What the presented chain is, and every problem Outlook would have with it.

    A pure function of its arguments, so answers are remembered per trust store: the same
    server shows the same chain on 587 and 465, and to every diagnosis of it (~2 ms each).
    """
    if not chain:
        raise ValueError("analyze_chain needs at least the leaf certificate")
    if now.tzinfo is None:
        now = now.replace(tzinfo=_UTC)
    key = (tuple(chain), server_name, now)
    with _ANALYSES_LOCK:  # probes analyse in worker threads
        info = trust._analyses.get(key)
    if info is None:
        info = _analyze_chain(chain, server_name, trust, now)
        with _ANALYSES_LOCK:
            if len(trust._analyses) >= _ANALYSES_KEPT:
                del trust._analyses[next(iter(trust._analyses))]
            trust._analyses[key] = info
    return info


_ANALYSES_KEPT = 256  # per trust store; a chain is a few KiB
_ANALYSES_LOCK = threading.Lock()


def _analyze_chain(
    chain: Sequence[bytes], server_name: str, trust: TrustStore, now: dt.datetime
) -> CertInfo:
    certs: list[x509.Certificate | None] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for der in chain:
            try:
                certs.append(x509.load_der_x509_certificate(der))
            except ValueError:
                certs.append(None)
    leaf = certs[0]
    if leaf is None:
        return _unreadable(chain, certs, now)
    presented = [c for c in certs[1:] if c is not None]

    problems: set[CertProblem] = set()
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if now > not_after:
        problems.add(CertProblem.EXPIRED)
    if now < not_before:
        problems.add(CertProblem.NOT_YET_VALID)
    names = _names(leaf)
    matching = matching_names(server_name, names)
    if not matching:
        problems.add(CertProblem.HOSTNAME_MISMATCH)
    problems |= _path_problems(leaf, presented, trust)

    verify_error, refused = _verify(leaf, presented, server_name, trust, now)
    if refused and not problems:
        problems.add(CertProblem.UNTRUSTED)

    return CertInfo(
        subject=_name_text(leaf.subject),
        issuer=_name_text(leaf.issuer),
        issuer_name=readable_name(leaf.issuer),
        names=_kept_names(names, matching),
        names_total=len(names),
        not_before=not_before,
        not_after=not_after,
        serial=format(leaf.serial_number, "X"),
        sha256=leaf.fingerprint(_SHA256).hex(),
        chain_length=len(chain),
        chain_subjects=tuple(_subject_or_unreadable(c) for c in certs[:_MAX_PATH]),
        problems=tuple(p for p in CertProblem if p in problems),
        verify_error=None if verify_error is None else visible(verify_error, limit=_DN_CHARS),
        key=_key_text(leaf),
    )


def _kept_names(names: list[str], matching: list[str]) -> tuple[str, ...]:
    """The first names, and those matching the host entered, as they may be shown."""
    kept = dict.fromkeys(names[:MAX_CERT_NAMES])
    kept.update(dict.fromkeys(matching[:MAX_MATCHING_NAMES]))
    return tuple(visible(name, limit=_NAME_CHARS) for name in kept)


def _path_problems(
    leaf: x509.Certificate, presented: list[x509.Certificate], trust: TrustStore
) -> set[CertProblem]:
    """Walk from the leaf through the presented certificates towards a trust anchor."""
    current = leaf
    used = {leaf.fingerprint(_SHA256)}
    for _ in range(_MAX_PATH):
        if trust.contains(current):
            return set()
        if _self_signed(current):
            # A lone self-signed leaf is its own problem; a self-signed CA at the end of
            # the chain is an authority this computer does not know.
            return {CertProblem.SELF_SIGNED if current is leaf else CertProblem.UNTRUSTED}
        issuer = next(
            (c for c in presented if c.fingerprint(_SHA256) not in used and _issued_by(current, c)),
            None,
        )
        if issuer is None:
            if trust.issuers_of(current):
                return set()  # the root was not sent, but it is one we trust: fine
            return {CertProblem.CHAIN_INCOMPLETE}
        used.add(issuer.fingerprint(_SHA256))
        current = issuer
    return {CertProblem.UNTRUSTED}


def _verify(
    leaf: x509.Certificate,
    presented: list[x509.Certificate],
    server_name: str,
    trust: TrustStore,
    now: dt.datetime,
) -> tuple[str | None, bool]:
    """The `cryptography` verifier's words when it refuses the chain, and whether they count.

    Names are matched by `hostname_matches` (Windows still accepts a CN-only certificate,
    which the Web PKI verifier refuses), so the chain is checked with a client verifier
    whose end-entity policy demands serverAuth instead of a subjectAltName.
    """
    store = trust.verification_store
    if store is None:
        return "no trusted root certificates are configured", False
    ca_policy, ee_policy = _extension_policies()
    try:
        builder = PolicyBuilder().store(store).time(now)
        builder = builder.extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        builder.build_client_verifier().verify(leaf, presented)
    except VerificationError as exc:
        return _ENCOUNTERED.sub("", str(exc)), True
    except (ValueError, TypeError) as exc:  # a name or certificate the verifier cannot take
        return f"cannot verify: {exc}", False
    return None, False


@functools.cache
def _extension_policies() -> tuple[ExtensionPolicy, ExtensionPolicy]:
    agnostic = Criticality.AGNOSTIC
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, agnostic, None)
        .may_be_present(x509.ExtendedKeyUsage, agnostic, _server_eku)
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
    )
    # Private CAs (Active Directory CS, appliances) often lack key identifiers; Windows
    # builds the path by name and signature all the same.
    ca = (
        ExtensionPolicy.webpki_defaults_ca()
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
        .may_be_present(x509.SubjectKeyIdentifier, agnostic, None)
    )
    return ca, ee


def _server_eku(
    _policy: object, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    if eku is not None and not {ExtendedKeyUsageOID.SERVER_AUTH, _ANY_EKU} & set(eku):
        raise ValueError("the certificate is not for TLS servers (no serverAuth usage)")


def _unreadable(
    chain: Sequence[bytes], certs: list[x509.Certificate | None], now: dt.datetime
) -> CertInfo:
    # Dates are unknown; `now` keeps them harmless rather than inventing an expiry.
    return CertInfo(
        subject="(unreadable certificate)",
        issuer="(unreadable certificate)",
        issuer_name="(unreadable certificate)",
        names=(),
        not_before=now,
        not_after=now,
        serial="",
        sha256=hashlib.sha256(chain[0]).hexdigest(),
        chain_length=len(chain),
        chain_subjects=tuple(_subject_or_unreadable(c) for c in certs),
        problems=(CertProblem.UNTRUSTED,),
        verify_error="the server's certificate could not be parsed",
        key=None,
    )


def _subject_or_unreadable(cert: x509.Certificate | None) -> str:
    return "(unreadable certificate)" if cert is None else _name_text(cert.subject)


def _name_text(name: x509.Name) -> str:
    """A subject or issuer as it may be shown (the certificate's owner chose every byte)."""
    try:
        text = name.rfc4514_string()
    except ValueError:
        text = repr(name)
    return visible(text, limit=_DN_CHARS)


def readable_name(name: x509.Name) -> str:
    """A subject or issuer as a person reads it: the organisation, then the common name (or
    the unit) in brackets, "Let's Encrypt (R11)"; the whole name when it has neither.

    Sanitised like the raw name (the certificate's owner chose every byte)."""
    organisation = _attribute(name, NameOID.ORGANIZATION_NAME)
    detail = _attribute(name, NameOID.COMMON_NAME) or _attribute(
        name, NameOID.ORGANIZATIONAL_UNIT_NAME
    )
    if organisation and detail and detail.casefold() != organisation.casefold():
        text = f"{organisation} ({detail})"
    else:
        text = organisation or detail
    return visible(text, limit=_READABLE_CHARS) if text else _name_text(name)


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    """The first value of `oid` in `name`, stripped ("" when absent)."""
    values = name.get_attributes_for_oid(oid)
    value = values[0].value if values else ""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return text.strip()


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Does `issuer`'s name match and its key verify `cert`'s signature?"""
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # name mismatch, bad signature, unsupported algorithm: not its issuer
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.subject == cert.issuer and _issued_by(cert, cert)


def _key_text(cert: x509.Certificate) -> str | None:
    try:
        key = cert.public_key()
    except (ValueError, TypeError):
        return None
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__


# --------------------------------------------------------------------------- names


def _names(cert: x509.Certificate) -> list[str]:
    """DNS names and IP addresses from the SAN; the subject CN only when there is no SAN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError:  # a malformed extension: treat as absent
        san = None
    if san is not None:
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        return names
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return [str(attr.value) for attr in common]


def hostname_matches(server_name: str, presented: str) -> bool:
    """RFC 6125 matching of one presented name: IPs exactly, a wildcard for one label."""
    return bool(matching_names(server_name, [presented]))


def matching_names(server_name: str, presented: Sequence[str]) -> list[str]:
    """The presented names `server_name` matches (`hostname_matches` for each, with the
    server's side worked out once: a certificate can hold thousands of names)."""
    server_ip = _ip(server_name)
    if server_ip is not None:
        return [name for name in presented if _looks_ip(name) and _ip(name) == server_ip]
    host = _ascii(server_name)
    if host is None:
        return []
    host_labels = host.split(".")
    return [
        name
        for name in presented
        if not (_looks_ip(name) and _ip(name) is not None)
        and _labels_match(host_labels, _ascii(name))
    ]


def _labels_match(host_labels: list[str], pattern: str | None) -> bool:
    if pattern is None:
        return False
    pattern_labels = pattern.split(".")
    if len(host_labels) != len(pattern_labels):
        return False
    first, *rest = pattern_labels
    if first == "*":
        # A wildcard stands for exactly one whole label, and never for most of a name
        # ("*.com"): at least two labels must follow it.
        return len(rest) >= 2 and "*" not in "".join(rest) and host_labels[1:] == rest
    return host_labels == pattern_labels


_IP_CHARS = frozenset("0123456789abcdefABCDEF.:[]%")


def _looks_ip(value: str) -> bool:
    """Cheap pre-check before `_ip` (which raises, slowly, for every name that is not)."""
    return bool(value) and set(value) <= _IP_CHARS | set(value.partition("%")[2])


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None


def _ascii(name: str) -> str | None:
    """Lower-case A-label form ("xn--..."), wildcard kept; None when not a valid name."""
    name = name.strip().rstrip(".").lower()
    if not name:
        return None
    if name.isascii():
        return name
    labels = name.split(".")
    try:
        return ".".join(
            label if label == "*" else idna.encode(label, uts46=True).decode("ascii")
            for label in labels
        )
    except idna.IDNAError:
        return None
