"""A scripted SMTP server: every byte it sends is the test's choice.

`ScriptedSmtp` greets, answers EHLO (before and after STARTTLS, or on implicit TLS) and AUTH
with the exact lines given, presents any certificate (`hostile_cert` builds ones whose names
carry control, bidi and invisible characters, or thousands of names), and answers anything
else with 250. It serves on its own loopback address, like tests.servers.SmtpTestServer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.certs import issue
from tests.servers import next_loopback


def _dns_name(value: str) -> x509.DNSName:
    # The certificate's owner writes any bytes; cryptography refuses non-ASCII on purpose.
    return x509.DNSName._init_without_validation(value)  # type: ignore[attr-defined]


def hostile_cert(
    *, common_name: str, names: Sequence[str], organization: str = "Example"
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a self-signed certificate with these names."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    san = [x509.SubjectAlternativeName([_dns_name(n) for n in names])] if names else []
    served = issue(
        subject,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=90),
        extensions=san,
    )
    return served.chain_pem[0], served.key_pem


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "c.pem").write_bytes(cert_pem)
        Path(tmp, "k.pem").write_bytes(key_pem)
        context.load_cert_chain(Path(tmp, "c.pem"), Path(tmp, "k.pem"))
    return context


class ScriptedSmtp:
    """Lines are bytes without their CRLF; the server adds it."""

    def __init__(
        self,
        *,
        port: int = 587,
        implicit_tls: bool = False,
        cert: tuple[bytes, bytes] | None = None,
        greeting: Sequence[bytes] = (b"220 mail.example.test ESMTP",),
        ehlo: Sequence[bytes] = (b"250-mail.example.test", b"250 STARTTLS"),
        ehlo_tls: Sequence[bytes] = (b"250-mail.example.test", b"250 AUTH PLAIN LOGIN"),
        auth: Sequence[bytes] = (b"535 5.7.8 Authentication credentials invalid",),
    ) -> None:
        self.host = next_loopback()
        self.port = port
        self.implicit_tls = implicit_tls
        self.context = server_context(*cert) if cert else None
        self.greeting, self.ehlo, self.ehlo_tls, self.auth = greeting, ehlo, ehlo_tls, auth
        self.received: list[bytes] = []  # every line the client sent (AUTH payloads too)
        self._server: asyncio.AbstractServer | None = None

    @property
    def auth_attempts(self) -> list[bytes]:
        return [line for line in self.received if line.upper().startswith(b"AUTH")]

    async def __aenter__(self) -> ScriptedSmtp:
        tls = self.context if self.implicit_tls else None
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=tls)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tls = self.implicit_tls
        try:
            await self._send(writer, self.greeting)
            while line := await reader.readline():
                self.received.append(line)
                verb = line.split(b" ", 1)[0].strip().upper()
                if verb in {b"EHLO", b"HELO"}:
                    await self._send(writer, self.ehlo_tls if tls else self.ehlo)
                elif verb == b"STARTTLS" and self.context is not None and not tls:
                    await self._send(writer, [b"220 2.0.0 go ahead"])
                    await writer.start_tls(self.context)
                    tls = True
                elif verb == b"AUTH":
                    await self._auth(reader, writer, line)
                elif verb == b"QUIT":
                    await self._send(writer, [b"221 2.0.0 bye"])
                    break
                else:
                    await self._send(writer, [b"250 2.0.0 ok"])
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _auth(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes
    ) -> None:
        if line.split()[1:2] == [b"LOGIN"]:  # two 334 challenges, then the verdict
            for challenge in (b"334 VXNlcm5hbWU6", b"334 UGFzc3dvcmQ6"):
                await self._send(writer, [challenge])
                self.received.append(await reader.readline())
        await self._send(writer, self.auth)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, lines: Sequence[bytes]) -> None:
        writer.write(b"".join(line + b"\r\n" for line in lines))
        await writer.drain()


def echoing_auth_reply(
    secret: str, *, code: bytes = b"535", enhanced: bytes = b"5.7.139"
) -> list[bytes]:
    """A multi-line AUTH refusal that repeats `secret` in every disguise at hand, after a
    first line a known rule recognises (Microsoft 365: SMTP AUTH disabled for the tenant)."""
    import base64
    import codecs
    import urllib.parse

    raw = secret.encode()
    half = len(raw) // 2
    disguises = [
        raw[:half],  # split across continuation lines
        raw[half:],
        base64.b64encode(raw).rstrip(b"="),  # unpadded
        base64.urlsafe_b64encode(raw),
        base64.b64encode(raw)[:9],  # base64 split across lines
        base64.b64encode(raw)[9:],
        raw.hex().encode(),
        raw.hex().upper().encode(),
        base64.b32encode(raw),
        codecs.encode(secret, "rot13").encode(),
        secret[::-1].encode(),
        " ".join(secret).encode(),
        urllib.parse.quote(secret, safe="").encode(),
        b"password=" + raw,
    ]
    first = b"Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
    body = [first, *disguises]
    lines = [code + b"-" + enhanced + b" " + part for part in body[:-1]]
    return [*lines, code + b" " + enhanced + b" " + body[-1]]
