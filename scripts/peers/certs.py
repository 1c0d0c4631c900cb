"""Write the throwaway CA and the peer certificates for scripts/peers.sh (PEM files).

    python3 certs.py OUTDIR ID=KIND:NAME[,NAME...] ...

KIND is one of: good (leaf from the intermediate, chain sent), expired, nochain (leaf
from the intermediate, intermediate not sent), selfsigned. NAMEs are DNS names or IP
addresses for the subjectAltName. For each ID the script writes OUTDIR/ID.key (the leaf
key) and OUTDIR/ID.pem (the certificates exactly as the server sends them). The client
trusts OUTDIR/ca-bundle.pem (the root only).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KINDS = ("good", "expired", "nochain", "selfsigned")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smtpcheck interop peers"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _ca(
    subject: str,
    key: rsa.RSAPrivateKey,
    *,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    path_length: int,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 30 * DAY)
        .not_valid_after(NOW + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _leaf(
    names: list[str],
    key: rsa.RSAPrivateKey,
    *,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer.subject if issuer else _name(names[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def main(argv: list[str]) -> int:
    """Parse the leaf specs, build the CA, and write every PEM file."""
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    specs: list[tuple[str, str, list[str]]] = []
    for spec in argv[1:]:
        ident, _, rest = spec.partition("=")
        kind, _, names = rest.partition(":")
        if kind not in KINDS or not ident or not names:
            print(f"certs.py: bad spec {spec!r} (ID=KIND:NAME[,NAME])", file=sys.stderr)
            return 2
        specs.append((ident, kind, names.split(",")))

    root_key, inter_key, leaf_key = _key(), _key(), _key()
    root = _ca("smtpcheck test root CA", root_key, issuer=None, issuer_key=root_key, path_length=1)
    inter = _ca(
        "smtpcheck test intermediate CA", inter_key, issuer=root, issuer_key=root_key, path_length=0
    )
    _write(out / "ca-root.pem", _pem(root))
    _write(out / "ca-intermediate.pem", _pem(inter))
    _write(out / "ca-bundle.pem", _pem(root))  # what the client trusts: the root only
    _write(out / "ca-root.key", _key_pem(root_key), 0o600)
    _write(out / "ca-intermediate.key", _key_pem(inter_key), 0o600)

    for ident, kind, names in specs:
        if kind == "selfsigned":
            cert = _leaf(
                names,
                leaf_key,
                issuer=None,
                issuer_key=leaf_key,
                not_before=NOW - DAY,
                not_after=NOW + 365 * DAY,
            )
            served = _pem(cert)
        else:
            expired = kind == "expired"
            cert = _leaf(
                names,
                leaf_key,
                issuer=inter,
                issuer_key=inter_key,
                not_before=NOW - (400 if expired else 1) * DAY,
                not_after=NOW - 30 * DAY if expired else NOW + 365 * DAY,
            )
            served = _pem(cert) if kind == "nochain" else _pem(cert, inter)
        _write(out / f"{ident}.pem", served)
        _write(out / f"{ident}.key", _key_pem(leaf_key), 0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
