"""SMTP test servers on loopback: aiosmtpd in every mode, and the ways real servers misbehave.

Each server binds its own loopback address (127.77.N.M, see `next_loopback`), so fixed
ports such as 587, 465 and 25 can be bound by every test at once (the tests run as root).

    async with SmtpTestServer(mode="starttls", port=587) as server:
        ...  # server.host, server.port, server.commands, server.auth_attempts

Modes: "starttls" (plain greeting, STARTTLS required before MAIL), "ssl" (implicit TLS),
"plain" (no TLS). Behaviours (`behaviour=`, or the `server_behaviour` marker's keywords):
see `BEHAVIOURS`.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any, Literal

from aiosmtpd.smtp import SMTP as AiosmtpdSMTP
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.certs import ServerCert, default_factory

TEST_USER = "alice@example.test"
TEST_PASSWORD = "CANARY-pw-1f9e"  # must never appear in any probe output
SERVER_NAME = "mail.example.test"

REPLY_BASIC_AUTH_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled"
)
REPLY_APP_PASSWORD = (
    "534 5.7.9 Application-specific password required. Learn more at "
    "https://support.google.com/mail/?p=InvalidSecondFactor"
)
REPLY_BAD_CREDENTIALS = "535 5.7.8 Username and Password not accepted."
REPLY_RELAY_DENIED = "554 5.7.1 Relay access denied"
MEGABYTE = 1024 * 1024

Mode = Literal["starttls", "ssl", "plain"]
Auth = Literal["tls", "always", "none", "xoauth2"]

BEHAVIOURS = {
    None: "well-behaved",
    "tarpit": "accepts the connection and never says anything (no TLS either)",
    "greeting_421": "greets with 421 and closes",
    "huge_greeting": "a 1 MB multi-line greeting",
    "endless_line": "'220 ' followed by one line that never ends",
    "huge_ehlo": "answers EHLO with 1 MB of extension lines",
    "silent_after_greeting": "greets, then never answers EHLO",
    "drop_after_starttls": "answers STARTTLS with 220 and closes the connection",
    "auth_basic_disabled": REPLY_BASIC_AUTH_DISABLED,
    "auth_app_password": REPLY_APP_PASSWORD,
    "auth_bad_credentials": REPLY_BAD_CREDENTIALS,
    "legacy_tls": "speaks TLS 1.0/1.1 only",
    "open_relay": "accepts RCPT for any domain without AUTH",
    "auth_echo": "a hostile AUTH reply that repeats the password it was sent",
    "long_ehlo": "a legal but long EHLO reply (104 lines, the fifth of 700 characters)",
    "tls_alert": "answers the ClientHello with a fatal handshake_failure alert",
    "no_greeting": "completes the TLS handshake (implicit TLS), then never greets",
    "drop_after_greeting": "greets, then closes the connection when EHLO arrives",
    "ehlo_rejected": "answers EHLO with 550",
    "starttls_rejected": "offers STARTTLS, then answers it with 454",
    "mail_refused": "refuses MAIL FROM without AUTH (530)",
}
_AUTH_REPLIES = {
    "auth_basic_disabled": REPLY_BASIC_AUTH_DISABLED,
    "auth_app_password": REPLY_APP_PASSWORD,
    "auth_bad_credentials": REPLY_BAD_CREDENTIALS,
}
_RAW = {"tarpit", "greeting_421", "huge_greeting", "endless_line"}
# A TLS record: alert, TLS 1.2, 2 bytes, fatal, handshake_failure (what a server with no
# shared cipher sends). asyncio's own server drops its alert when it aborts, so we send it.
TLS_HANDSHAKE_FAILURE_ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])

_counter = itertools.count()
_BASE = os.getpid() % 200  # concurrent test processes start in different /24s


def next_loopback() -> str:
    """A loopback address no other server of this process has had: 127.77.N.M."""
    n = next(_counter)
    return f"127.77.{(_BASE + n // 250) % 256}.{n % 250 + 1}"


class SmtpTestServer:
    """An SMTP server on its own loopback address, well-behaved or misbehaving on request."""

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int = 587,
        mode: Mode = "starttls",
        behaviour: str | None = None,
        cert: ServerCert | None = None,
        auth: Auth = "tls",
        auth_reply: str | None = None,
        relay: Literal["denied", "open"] = "denied",
        mechanisms: tuple[str, ...] | None = None,
        user: str = TEST_USER,
        password: str = TEST_PASSWORD,
        hostname: str = SERVER_NAME,
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(
                f"unknown behaviour {behaviour!r}; known: {sorted(map(str, BEHAVIOURS))}"
            )
        self._fixed_host = host
        self.host = host or next_loopback()
        self.port = port
        self.mode = mode
        self.behaviour = behaviour
        self.cert = cert
        self.auth = auth
        self.auth_reply = auth_reply or _AUTH_REPLIES.get(behaviour or "")
        self.relay = "open" if behaviour == "open_relay" else relay
        self.mechanisms = mechanisms  # advertise only these (aiosmtpd implements PLAIN, LOGIN)
        self.user = user
        self.password = password
        self.hostname = hostname
        # What clients did (never the password).
        self.commands: list[str] = []
        self.auth_attempts: list[tuple[str, str]] = []  # (mechanism, login)
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self.protocols: list[asyncio.BaseProtocol] = []

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SmtpTestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> SmtpTestServer:
        loop = asyncio.get_running_loop()
        raw_tls = self.behaviour in {"tarpit", "tls_alert"}  # these never really handshake
        tls = self._tls_context() if self.mode == "ssl" and not raw_tls else None
        for _attempt in range(20):
            try:
                self._server = await loop.create_server(
                    self._factory(), self.host, self.port, ssl=tls, reuse_address=True
                )
                break
            except OSError as exc:
                # Another test process holds this address and port: take the next address.
                if exc.errno != errno.EADDRINUSE or self._fixed_host is not None:
                    raise
                self.host = next_loopback()
        else:
            raise OSError(errno.EADDRINUSE, f"no free loopback address for port {self.port}")
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for protocol in self.protocols:
            for name in ("transport", "_original_transport"):
                transport = getattr(protocol, name, None)
                if transport is not None and not transport.is_closing():
                    transport.abort()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run
        self._server = None

    # ------------------------------------------------------------------ building

    def _tls_context(self) -> ssl.SSLContext:
        cert = self.cert or default_factory().valid(self.hostname)
        context = cert.server_context(legacy_only=self.behaviour == "legacy_tls")
        return context

    def _factory(self) -> Callable[[], asyncio.BaseProtocol]:
        def make() -> asyncio.BaseProtocol:
            self.connections += 1
            protocol = self._make_protocol()
            self.protocols.append(protocol)
            return protocol

        return make

    def _make_protocol(self) -> asyncio.BaseProtocol:
        if self.behaviour in {"tarpit", "no_greeting"}:
            return _Tarpit()
        if self.behaviour == "greeting_421":
            return _Greeting421()
        if self.behaviour == "huge_greeting":
            return _HugeGreeting()
        if self.behaviour == "endless_line":
            return _EndlessLine()
        if self.behaviour == "tls_alert" and self.mode == "ssl":
            return _AlertOnHello()
        protocol_class = {
            "drop_after_starttls": _DropAfterStarttls,
            "tls_alert": _AlertAfterStarttls,
            "starttls_rejected": _RefuseStarttls,
        }.get(self.behaviour or "", _SMTP)
        starttls = self.mode == "starttls"
        return protocol_class(
            _Handler(self),
            hostname=self.hostname,
            ident="smtpcheck test ESMTP",
            tls_context=self._tls_context() if starttls else None,
            require_starttls=starttls,
            # aiosmtpd only counts STARTTLS as TLS; on an implicit-TLS port AUTH is safe.
            auth_require_tls=self.auth == "tls" and self.mode != "ssl",
            authenticator=self._authenticate,
            loop=asyncio.get_running_loop(),
        )

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = data.login.decode("utf-8", "replace")
        self.auth_attempts.append((mechanism, login))
        if self.behaviour == "auth_echo":
            echoed = data.password.decode("utf-8", "replace")
            reply = f"535 5.7.8 password {echoed} is wrong"
            return AuthResult(success=False, handled=False, message=reply)
        if self.auth_reply is not None:
            return AuthResult(success=False, handled=False, message=self.auth_reply)
        if login == self.user and data.password == self.password.encode():
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False, message=REPLY_BAD_CREDENTIALS)


class ServerPool:
    """Starts servers on demand and stops them all at the end (the fixture's helper)."""

    def __init__(self, **defaults: Any) -> None:
        self.defaults = defaults
        self.servers: list[SmtpTestServer] = []

    async def start(self, **kwargs: Any) -> SmtpTestServer:
        server = SmtpTestServer(**{**self.defaults, **kwargs})
        await server.start()
        self.servers.append(server)
        return server

    async def __aenter__(self) -> ServerPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for server in reversed(self.servers):
            await server.stop()


# ---------------------------------------------------------------------- aiosmtpd pieces


class _SMTP(AiosmtpdSMTP):
    """aiosmtpd's server, quiet about the clients that hang up on it on purpose."""

    async def handle_exception(self, error: Exception) -> str:
        return f"500 Error: {type(error).__name__}"


class _DropAfterStarttls(_SMTP):
    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push("220 Ready to start TLS")
        assert self.transport is not None
        self.transport.close()


class _RefuseStarttls(_SMTP):
    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push("454 4.7.0 TLS not available due to local problem")


class _AlertAfterStarttls(_SMTP):
    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push("220 Ready to start TLS")
        await self._reader.read(5)  # the ClientHello's record header
        self._writer.write(TLS_HANDSHAKE_FAILURE_ALERT)
        await self._writer.drain()
        assert self.transport is not None
        self.transport.close()


class _Handler:
    """aiosmtpd hooks: record what the client does, shape the replies."""

    def __init__(self, server: SmtpTestServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list[str]:
        self.server.commands.append("EHLO")
        session.host_name = hostname
        behaviour, auth = self.server.behaviour, self.server.auth
        if behaviour == "silent_after_greeting":
            await asyncio.sleep(3600)  # cancelled when the client goes away
        if behaviour == "drop_after_greeting":
            server.transport.close()
            return []
        if behaviour == "ehlo_rejected":
            return ["550 5.7.1 Client host rejected: access denied"]
        if behaviour == "huge_ehlo":
            line = "250-X-PADDING-" + "x" * 100
            return [responses[0]] + [line] * (MEGABYTE // len(line)) + ["250 HELP"]
        if behaviour == "long_ehlo":
            lines = [f"250-X-LONG-{i:03d}-" + "y" * 234 for i in range(98)]
            return [*responses[:-1], "250-X-WIDE-" + "w" * 700, *lines, responses[-1]]
        if self.server.mechanisms is not None:
            advertised = "250-AUTH " + " ".join(self.server.mechanisms)
            responses = [advertised if r.startswith("250-AUTH") else r for r in responses]
        if auth == "none":
            responses = [r for r in responses if not r.startswith("250-AUTH")]
        elif auth == "xoauth2":
            responses = [
                "250-AUTH XOAUTH2 OAUTHBEARER" if r.startswith("250-AUTH") else r for r in responses
            ]
        return responses

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        self.server.commands.append("MAIL")
        if self.server.behaviour == "mail_refused" and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        self.server.commands.append("RCPT")
        if self.server.relay == "denied" and not session.authenticated:
            return REPLY_RELAY_DENIED
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.server.commands.append("DATA")
        return "250 2.0.0 Queued"

    async def handle_RSET(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.server.commands.append("RSET")
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.server.commands.append("QUIT")
        return "221 2.0.0 Bye"


# ---------------------------------------------------------------------- raw misbehaviour


class Blackhole:
    """A port whose SYNs go unanswered, like a filtered port (a full listen backlog).

    Linux drops SYNs to a listener whose accept queue is full, so connecting times out.
    """

    def __init__(self, host: str | None = None) -> None:
        self.host = host or next_loopback()
        self._listener = socket.socket()
        self._listener.bind((self.host, 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self._filler = socket.create_connection((self.host, self.port), timeout=1)

    def close(self) -> None:
        self._filler.close()
        self._listener.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Raw(asyncio.Protocol):
    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        pass  # whatever the client says is ignored


class _Tarpit(_Raw):
    """Accepts, then silence: no greeting, no TLS handshake."""


class _Greeting421(_Raw):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.write(b"421 4.3.2 Service not available, closing transmission channel\r\n")
        self.transport.close()


class _AlertOnHello(_Raw):
    def data_received(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(TLS_HANDSHAKE_FAILURE_ALERT)
            self.transport.close()  # close() still flushes the alert


class _HugeGreeting(_Raw):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        line = b"220-" + b"g" * 96 + b"\r\n"
        self.transport.write(line * (MEGABYTE // len(line)) + b"220 ready\r\n")


class _EndlessLine(_Raw):
    """'220 ' and then one line that never ends (up to 256 MB, paced by flow control)."""

    CHUNK = b"A" * 65536
    LIMIT = 256 * MEGABYTE

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.paused = False
        self.sent = 0
        assert self.transport is not None
        self.transport.write(b"220 ")
        self._pump()

    def _pump(self) -> None:
        while (
            not self.paused
            and self.transport is not None
            and not self.transport.is_closing()
            and self.sent < self.LIMIT
        ):
            self.transport.write(self.CHUNK)  # pauses us synchronously when the buffer fills
            self.sent += len(self.CHUNK)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        asyncio.get_running_loop().call_soon(self._pump)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
