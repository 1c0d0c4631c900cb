"""One probe of one (port, security) pair, as Outlook would talk to the server.

Greeting, EHLO, STARTTLS or implicit TLS, EHLO again, the AUTH mechanisms, and on request
one AUTH attempt and an unauthenticated relay test (MAIL + RCPT, then RSET; never DATA).
Everything a server does becomes a `ProbeResult`; nothing it does raises.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import socket
import ssl
import time
from typing import NotRequired, TypedDict, Unpack

import aiosmtplib
from aiosmtplib.auth import auth_crammd5_verify
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH
from aiosmtplib.response import SMTPResponse

from diagnostics._config import EngineConfig
from diagnostics._models import (
    AuthAttempt,
    Credentials,
    ProbeOutcome,
    ProbePlan,
    ProbeResult,
    Reply,
    Security,
    TlsInfo,
    ms,
)
from diagnostics._tls import (
    TimedSSLObject,
    TrustStore,
    analyze_chain,
    handshake_sink,
    peer_chain,
    probe_context,
)
from diagnostics._transcript import (
    AUTH_TEXT_WITHHELD,
    MAX_LINE_CHARS,
    MAX_LINES_PER_REPLY,
    REDACTED,
    Transcript,
    secret_forms,
)

__all__ = ["MAX_LINES_PER_REPLY", "MAX_LINE_CHARS", "run_probe"]

MAX_EXTENSIONS = 100
QUIT_TIMEOUT = 1.0
MIN_STEP = 0.05  # below this much budget a step is not started
GRACE = 0.2  # the safety net fires this long after the deadline
DEFAULT_SENDER = "postmaster@smtpcheck.invalid"
RELAY_RECIPIENT = "relay-test@example.com"
OAUTH_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")

# OpenSSL's words when the "TLS record" it reads is really a plain-text "220 ..." line.
_PLAINTEXT_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
_PLAINTEXT_WORDS = ("wrong version number", "record layer failure", "packet length too long")


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux


class _ProbeSocket(socket.socket):
    """A TCP socket that acknowledges at once what it has read (Linux TCP_QUICKACK).

    After a TLS 1.3 handshake many servers (Postfix among them) write their session tickets
    and then the greeting or the EHLO reply as two small segments; with Nagle's algorithm on
    the server the reply waits for our ACK of the tickets, which Linux delays by up to 40 ms.
    Re-arming quick ACKs after each read sends that ACK at once; nothing else on the wire
    changes. The event loop's transport reads through these two methods.
    """

    __slots__ = ()

    def recv(self, *args: int) -> bytes:
        data = super().recv(*args)
        self._quickack()
        return data

    def recv_into(self, *args) -> int:  # type: ignore[no-untyped-def]
        count = super().recv_into(*args)
        self._quickack()
        return count

    def _quickack(self) -> None:
        if _QUICKACK is not None:
            try:
                self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                pass  # closed meanwhile, or not TCP: nothing to speed up


class _Stop(Exception):
    """Ends the dialogue with an outcome; `clean` when QUIT can still be sent."""

    def __init__(
        self,
        outcome: ProbeOutcome,
        error: str | None = None,
        *,
        reply: Reply | None = None,
        clean: bool = False,
    ) -> None:
        super().__init__(outcome, error)
        self.outcome = outcome
        self.error = error
        self.reply = reply
        self.clean = clean


class ProbeWhere(TypedDict):
    """Where and how one probe runs: the address (resolved and allowed by the policy), the
    name the certificate must carry, the engine's settings, the diagnosis's clock (loop
    time at its start, its deadline), the trust store and, for the one login test, the
    credentials."""

    address: str
    server_name: str
    config: EngineConfig
    deadline: float
    t0: float
    trust: TrustStore
    credentials: NotRequired[Credentials | None]


async def run_probe(
    plan: ProbePlan,
    *,
    sender: str | None = None,
    relay_test: bool = False,
    **where: Unpack[ProbeWhere],
) -> ProbeResult:
    """Probe `where["address"]` on `plan.port` with `plan.security`; never raises."""
    return await _Probe(plan, **where).run(sender=sender, relay_test=relay_test)


class _Probe:
    """The state of one probe while it runs."""

    def __init__(self, plan: ProbePlan, **where: Unpack[ProbeWhere]) -> None:
        self.plan = plan
        self.address = where["address"]
        self.server_name = where["server_name"]
        self.config = config = where["config"]
        self.timeouts = config.timeouts
        self.deadline = where["deadline"]
        self.t0 = t0 = where["t0"]
        self.trust = where["trust"]
        self.credentials = credentials = where.get("credentials")
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        # Converts the handshake's time.monotonic() stamps to loop time.
        self.clock_offset = self.loop.time() - time.monotonic()

        self.record = Transcript(plan.label, t0, secret_forms(credentials))
        self.steps: dict[str, float] = {}
        self.outcome: ProbeOutcome = ProbeOutcome.OK
        self.error: str | None = None
        self.failed_reply: Reply | None = None
        self.greeting: Reply | None = None
        self.ehlo_before: Reply | None = None
        self.ehlo_after: Reply | None = None
        self.extensions_before: tuple[str, ...] = ()
        self.extensions_after: tuple[str, ...] = ()
        self.auth_before: tuple[str, ...] = ()
        self.auth_after: tuple[str, ...] = ()
        self.starttls_offered: bool | None = None
        self.tls: TlsInfo | None = None
        self.auth: AuthAttempt | None = None
        self.relay_reply: Reply | None = None

        self.sock: socket.socket | None = None
        self.smtp: aiosmtplib.SMTP | None = None
        self.handed_over = False  # the socket belongs to an asyncio transport now
        self.transport: asyncio.BaseTransport | None = None
        self.clean = False  # the dialogue is in step: QUIT may be sent
        self.handshakes: list[TimedSSLObject] = []
        self.chain: list[bytes] = []  # the server's certificates, analysed after the dialogue

    # ------------------------------------------------------------------ driver

    async def run(self, *, sender: str | None, relay_test: bool) -> ProbeResult:
        token = handshake_sink.set(self.handshakes)
        try:
            safety_net = asyncio.timeout_at(self.deadline + GRACE)
            try:
                async with safety_net:
                    await self._dialogue(sender=sender, relay_test=relay_test)
            except _Stop as stop:
                self._stop(stop)
            except TimeoutError as exc:
                self.clean = False
                if safety_net.expired():
                    self.record.event("time budget exhausted; stopping")
                    self.outcome = ProbeOutcome.BUDGET_EXHAUSTED
                else:
                    self._internal_error(exc)
            except Exception as exc:  # a bug or a library surprise: report, never raise
                self.clean = False
                self._internal_error(exc)
            await self._quit()
            await _analyse_certificate(self)
        finally:
            self._close()
            handshake_sink.reset(token)
        return self._result()

    def _internal_error(self, exc: BaseException) -> None:
        self.outcome = ProbeOutcome.ERROR
        self.error = self.record.text(f"{type(exc).__name__}: {exc}")[:300]
        self.record.event(f"internal error: {self.error}")

    async def _dialogue(self, *, sender: str | None, relay_test: bool) -> None:
        security = self.plan.security
        await self._connect()
        self.smtp = aiosmtplib.SMTP(
            hostname=self.server_name,  # SNI and nothing else: the socket is connected
            sock=self.sock,
            local_hostname=self.config.ehlo_name,
            use_tls=security is Security.SSL,
            start_tls=False,
            tls_context=probe_context(),
            timeout=self.timeouts.command,
        )
        if security is Security.SSL:
            await self._greeting(implicit_tls=True)
            self.ehlo_after = await self._ehlo("ehlo")
            self.extensions_after, self.auth_after = _extensions(self)
        else:
            await self._greeting(implicit_tls=False)
            self.ehlo_before = await self._ehlo("ehlo")
            self.extensions_before, self.auth_before = _extensions(self)
            self.starttls_offered = "STARTTLS" in self.extensions_before
            if security is Security.STARTTLS:
                if not self.starttls_offered:
                    self.record.event("STARTTLS is not offered")
                    raise _Stop(ProbeOutcome.STARTTLS_NOT_OFFERED, clean=True)
                await self._starttls()
                self.ehlo_after = await self._ehlo("ehlo_tls")
                self.extensions_after, self.auth_after = _extensions(self)
        # The main check is done; what follows never changes the outcome.
        if relay_test:
            await _relay_test(self, sender)
        if self.credentials is not None and self.tls is not None:
            self.auth = await _authenticate(self, self.auth_after)
        elif self.credentials is not None and self._cleartext_login_allowed():
            self.record.event("the operator allows a login without encryption: trying it")
            self.auth = await _authenticate(self, self.auth_before)

    def _cleartext_login_allowed(self) -> bool:
        """Encryption "none" chosen, and the operator's setting lets the password cross the
        network in clear text (off by default: the login is then not tried at all)."""
        return self.plan.security is Security.NONE and self.config.allow_cleartext_login

    # ------------------------------------------------------------------ steps

    async def _connect(self) -> None:
        """TCP to the pinned address, never resolving anything."""
        try:
            infos = socket.getaddrinfo(
                self.address,
                self.plan.port,
                type=socket.SOCK_STREAM,
                flags=socket.AI_NUMERICHOST,
            )
        except (socket.gaierror, UnicodeError):
            raise _Stop(ProbeOutcome.ERROR, f"{self.address!r} is not an IP address") from None
        timeout, limited = self._budget(self.timeouts.connect, "connecting")
        family, kind, proto, _name, sockaddr = infos[0]
        self.sock = _ProbeSocket(family, kind, proto)
        self.sock.setblocking(False)
        start = self.loop.time()
        try:
            await asyncio.wait_for(self.loop.sock_connect(self.sock, sockaddr), timeout)
        except TimeoutError:
            self._timed("connect", start)
            self.record.event(f"no answer to the connection attempt after {timeout:.1f} s")
            raise _Stop(self._timeout(ProbeOutcome.CONNECT_TIMEOUT, limited)) from None
        except ConnectionRefusedError:
            self._timed("connect", start)
            self.record.event("connection refused")
            raise _Stop(ProbeOutcome.REFUSED, "connection refused") from None
        except OSError as exc:
            self._timed("connect", start)
            reason = exc.strerror or str(exc)
            self.record.event(f"cannot connect: {reason}")
            raise _Stop(ProbeOutcome.UNREACHABLE, reason) from None
        self._timed("connect", start)
        self.record.event(f"connected to {_host_port(self.address, self.plan.port)}")

    async def _greeting(self, *, implicit_tls: bool) -> None:
        """The greeting; with implicit TLS, the handshake before it."""
        assert self.smtp is not None
        step = max(self.timeouts.tls, self.timeouts.greeting) if implicit_tls else None
        timeout, limited = self._budget(step or self.timeouts.greeting, "the greeting")
        start = self.loop.time()
        self.handed_over = True  # from here on asyncio owns (and closes) the socket
        try:
            response = await self.smtp.connect(timeout=timeout)
        except aiosmtplib.SMTPConnectResponseError as exc:
            _after_handshake(self, start, implicit_tls)
            reply = self.record.reply(exc.code, exc.message)
            self.greeting = reply
            self.record.received(reply)
            raise _Stop(ProbeOutcome.BANNER_REJECTED, reply=reply) from None
        except aiosmtplib.SMTPConnectTimeoutError as exc:
            handshake_done = _after_handshake(self, start, implicit_tls)
            if implicit_tls and not handshake_done:
                self.record.event(f"timeout in the TLS handshake after {timeout:.1f} s")
                raise _Stop(self._timeout(ProbeOutcome.TLS_TIMEOUT, limited)) from exc
            waited = self.loop.time() - (
                _handshake_end(
                    self,
                )
                or start
            )
            self.record.event(f"timeout waiting for greeting after {waited:.1f} s")
            raise _Stop(self._timeout(ProbeOutcome.BANNER_TIMEOUT, limited)) from exc
        except aiosmtplib.SMTPConnectError as exc:
            handshake_done = _after_handshake(self, start, implicit_tls)
            if implicit_tls and not handshake_done:
                record = self.handshakes[-1] if self.handshakes else None
                error = (
                    record.handshake_error  # asyncio may call it a reset; OpenSSL knows why
                    if record is not None and record.handshake_error is not None
                    else _cause(exc, (ssl.SSLError, ConnectionAbortedError, OSError)) or exc
                )
                raise _handshake_failure(self, error, timeout, limited) from None
            self.record.event("the server closed the connection before its greeting")
            raise _Stop(ProbeOutcome.DROPPED, "connection closed before the greeting") from None
        except aiosmtplib.SMTPResponseException as exc:  # too long, or not SMTP at all
            _after_handshake(self, start, implicit_tls)
            raise self._bad_reply(exc, "the greeting") from None
        _after_handshake(self, start, implicit_tls)
        self.transport = self.smtp.transport
        self.greeting = self.record.reply(response.code, response.message)
        self.record.received(self.greeting)
        self.clean = True

    async def _ehlo(self, step: str) -> Reply:
        name = self.config.ehlo_name
        response = await self._exchange(
            (b"EHLO", name.encode("ascii", "replace")),
            f"EHLO {name}",
            step=step,
            on_timeout=ProbeOutcome.EHLO_TIMEOUT,
            what="the EHLO reply",
        )
        reply = self.record.reply(response.code, response.message)
        if response.code != 250:
            self.record.event("EHLO refused")
            raise _Stop(ProbeOutcome.EHLO_REJECTED, reply=reply, clean=self._connected())
        assert self.smtp is not None
        self.smtp.last_ehlo_response = response  # parses the extensions for aiosmtplib too
        return reply

    async def _starttls(self) -> None:
        assert self.smtp is not None
        timeout, limited = self._budget(max(self.timeouts.command, self.timeouts.tls), "STARTTLS")
        self.record.sent("STARTTLS")
        start = self.loop.time()
        seen = len(self.handshakes)
        try:
            response = await self.smtp.starttls(
                server_hostname=self.server_name, tls_context=probe_context(), timeout=timeout
            )
        except aiosmtplib.SMTPResponseException as exc:
            self._timed("starttls", start)
            if exc.code < 0:
                raise self._bad_reply(exc, "the STARTTLS reply") from None
            reply = self.record.reply(exc.code, exc.message)
            self.record.received(reply)
            self.record.event("STARTTLS refused")
            raise _Stop(
                ProbeOutcome.STARTTLS_REJECTED, reply=reply, clean=self._connected()
            ) from None
        except aiosmtplib.SMTPReadTimeoutError:
            self._timed("starttls", start)
            self.record.event(f"timeout waiting for the STARTTLS reply after {timeout:.1f} s")
            raise _Stop(self._timeout(ProbeOutcome.TLS_TIMEOUT, limited)) from None
        except aiosmtplib.SMTPTimeoutError:
            _starttls_timings(self, start, seen)
            self.record.event(f"timeout in the TLS handshake after {timeout:.1f} s")
            raise _Stop(self._timeout(ProbeOutcome.TLS_TIMEOUT, limited)) from None
        except (ssl.SSLError, OSError) as exc:  # SMTPServerDisconnected is an OSError too
            _starttls_timings(self, start, seen)
            record = self.handshakes[-1] if len(self.handshakes) > seen else None
            # asyncio may report a failed handshake as a reset; OpenSSL knows why.
            error = record.handshake_error if record and record.handshake_error else exc
            if isinstance(error, ssl.SSLEOFError | ConnectionError):
                self.record.event("the server closed the connection after accepting STARTTLS")
                raise _Stop(ProbeOutcome.DROPPED, "connection closed during STARTTLS") from None
            self.record.event("STARTTLS accepted; the TLS handshake failed")
            raise _handshake_failure(self, error, timeout, limited, implicit=False) from None
        reply_at = _starttls_timings(self, start, seen)
        self.record.received(self.record.reply(response.code, response.message), at=reply_at)
        self.transport = self.smtp.transport
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        _record_tls(self, ssl_object)

    async def _quit(self) -> None:
        """Say goodbye when the dialogue is still in step and there is time."""
        if not self.clean or self.smtp is None or not self._connected():
            return
        timeout = min(QUIT_TIMEOUT, self.timeouts.command, self.deadline - self.loop.time())
        if timeout < MIN_STEP:
            return
        self.record.sent("QUIT")
        start = self.loop.time()
        try:
            response = await self.smtp.execute_command(b"QUIT", timeout=timeout)
        except (aiosmtplib.SMTPException, OSError):
            self.record.event("no reply to QUIT")
        else:
            self.record.received(self.record.reply(response.code, response.message))
        finally:
            self._timed("quit", start)

    def _close(self) -> None:
        """Close the transport; a hostile or desynchronised peer gets no graceful shutdown."""
        transport = self.transport
        if self.smtp is not None:
            transport = self.smtp.transport or transport
            self.smtp.close()
        if isinstance(transport, asyncio.WriteTransport) and not self.clean:
            transport.abort()
        if self.sock is not None and not self.handed_over:
            self.sock.close()

    # ------------------------------------------------------------------ one exchange

    async def _exchange(
        self,
        args: tuple[bytes, ...],
        shown: str,
        *,
        step: str | None,
        on_timeout: ProbeOutcome,
        what: str,
    ) -> SMTPResponse:
        """Send one command and read its reply; trouble becomes `_Stop`."""
        assert self.smtp is not None
        timeout, limited = self._budget(self.timeouts.command, what)
        self.record.sent(shown)
        start = self.loop.time()
        try:
            response = await self.smtp.execute_command(*args, timeout=timeout)
        except aiosmtplib.SMTPTimeoutError:
            self.record.event(f"timeout waiting for {what} after {timeout:.1f} s")
            raise _Stop(self._timeout(on_timeout, limited), f"timeout waiting for {what}") from None
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
            self.record.event("the server closed the connection")
            raise _Stop(ProbeOutcome.DROPPED, f"connection closed waiting for {what}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise self._bad_reply(exc, what) from None
        finally:
            if step is not None:
                self._timed(step, start)
        self.record.received(self.record.reply(response.code, response.message))
        return response

    # ------------------------------------------------------------------ helpers

    def _bad_reply(self, exc: aiosmtplib.SMTPResponseException, what: str) -> _Stop:
        message = self.record.text(exc.message)
        if "too long" in message.lower():
            limit = MAX_RESPONSE_LENGTH // 1024
            self.record.event(f"{what} is longer than {limit} KiB; stopped reading")
            return _Stop(ProbeOutcome.REPLY_TOO_LONG, f"{what} was too long")
        if self.record.in_auth:
            self.record.event(f"{what} is not SMTP {AUTH_TEXT_WITHHELD}")
            return _Stop(ProbeOutcome.ERROR, f"{what} is not SMTP")
        self.record.event(f"not an SMTP reply: {message[:200]}")
        return _Stop(ProbeOutcome.ERROR, f"{what} is not SMTP: {message[:200]}")

    def _budget(self, step_timeout: float, what: str) -> tuple[float, bool]:
        """This step's timeout, and whether the remaining budget (not the step) set it."""
        remaining = self.deadline - self.loop.time()
        if remaining < MIN_STEP:
            self.record.event(f"time budget exhausted before {what}")
            raise _Stop(
                ProbeOutcome.BUDGET_EXHAUSTED,
                f"no time left for {what}",
                clean=self.clean,
            )
        return min(step_timeout, remaining), remaining < step_timeout

    @staticmethod
    def _timeout(outcome: ProbeOutcome, limited: bool) -> ProbeOutcome:
        return ProbeOutcome.BUDGET_EXHAUSTED if limited else outcome

    def _stop(self, stop: _Stop) -> None:
        self.outcome = stop.outcome
        self.error = stop.error
        self.failed_reply = stop.reply
        self.clean = stop.clean and self.clean

    def _connected(self) -> bool:
        return self.smtp is not None and self.smtp.is_connected

    def _timed(self, step: str, start: float) -> None:
        self.steps[step] = round(self.steps.get(step, 0.0) + ms(self.loop.time() - start), 1)

    def _result(self) -> ProbeResult:
        return ProbeResult(
            plan=self.plan,
            address=self.address,
            outcome=self.outcome,
            elapsed_ms=ms(self.loop.time() - self.started),
            greeting=self.greeting,
            ehlo_before=self.ehlo_before,
            ehlo_after=self.ehlo_after,
            extensions_before=self.extensions_before,
            extensions_after=self.extensions_after,
            auth_before_tls=self.auth_before,
            auth_after_tls=self.auth_after,
            starttls_offered=self.starttls_offered,
            tls=self.tls,
            failed_reply=self.failed_reply,
            error=self.error,
            auth=self.auth,
            relay_reply=self.relay_reply,
            transcript=tuple(self.record.lines),
            steps_ms=dict(self.steps),
        )


def _extensions(probe: _Probe) -> tuple[tuple[str, ...], tuple[str, ...]]:
    assert probe.smtp is not None
    keywords = [probe.record.text(k).upper()[:64] for k in probe.smtp.esmtp_extensions]
    mechanisms: list[str] = []
    for mechanism in probe.smtp.server_auth_methods:
        name = probe.record.text(mechanism).upper()[:64]
        if name not in mechanisms:
            mechanisms.append(name)
    return tuple(keywords[:MAX_EXTENSIONS]), tuple(mechanisms[:MAX_EXTENSIONS])


# ---------------------------------------------------------------------- login and relay test


async def _envelope(probe: _Probe, verb: str, argument: str) -> SMTPResponse:
    """MAIL or RCPT in the relay test (untimed; a timeout there ends the test, not the probe)."""
    return await probe._exchange(
        (verb.encode("ascii"), argument.encode("ascii")),
        f"{verb} {argument}",
        step=None,
        on_timeout=ProbeOutcome.OK,
        what=f"the {verb} reply",
    )


async def _relay_test(probe: _Probe, sender: str | None) -> None:
    """Would the server take mail for another domain without a login? Never sends DATA."""
    mail_from = sender if sender and sender.isascii() else DEFAULT_SENDER
    start = probe.loop.time()
    try:
        mail = await _envelope(probe, "MAIL", f"FROM:<{mail_from}>")
        if mail.code // 100 != 2:
            probe.relay_reply = probe.record.reply(mail.code, mail.message)
        else:
            rcpt = await _envelope(probe, "RCPT", f"TO:<{RELAY_RECIPIENT}>")
            probe.relay_reply = probe.record.reply(rcpt.code, rcpt.message)
        await probe._exchange(
            (b"RSET",), "RSET", step=None, on_timeout=ProbeOutcome.OK, what="the RSET reply"
        )
    except _Stop as stop:
        probe.clean = stop.clean and probe.clean
        probe.record.event(f"relay test incomplete: {stop.error or stop.outcome}")
    finally:
        probe._timed("relay", start)


async def _authenticate(probe: _Probe, offered: tuple[str, ...]) -> AuthAttempt | None:
    """One login with the best password mechanism offered; None when AUTH is not offered."""
    assert probe.credentials is not None
    if not offered:
        return None
    for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
        if mechanism in offered:
            break
    else:
        if set(offered) <= set(OAUTH_MECHANISMS):
            probe.record.event("only OAuth is offered; the password was not tried")
            return AuthAttempt(mechanism=offered[0], ok=False, reply=None, error="oauth only")
        return AuthAttempt(
            mechanism="",
            ok=False,
            reply=None,
            error=f"no mechanism smtpcheck can test (offered: {' '.join(offered)})",
        )
    try:
        probe._budget(probe.timeouts.command, "the login test")
    except _Stop:
        return None  # not tried at all: the engine may try it elsewhere
    start = probe.loop.time()
    probe.record.in_auth = True
    try:
        reply = await _auth_dialogue(probe, mechanism)
    except _Stop as stop:
        probe.clean = stop.clean and probe.clean
        return AuthAttempt(
            mechanism=mechanism, ok=False, reply=stop.reply, error=stop.error or "failed"
        )
    finally:
        probe.record.in_auth = False
        probe._timed("auth", start)
    return AuthAttempt(mechanism=mechanism, ok=reply.code == 235, reply=reply)


async def _auth_dialogue(probe: _Probe, mechanism: str) -> Reply:
    assert probe.credentials is not None
    user = probe.credentials.user.encode("utf-8")
    password = probe.credentials.password.get_secret_value().encode("utf-8")

    async def send(args: tuple[bytes, ...], shown: str) -> SMTPResponse:
        return await probe._exchange(
            args, shown, step=None, on_timeout=ProbeOutcome.OK, what="the AUTH reply"
        )

    if mechanism == "PLAIN":
        blob = base64.b64encode(b"\0" + user + b"\0" + password)
        response = await send((b"AUTH", b"PLAIN", blob), f"AUTH PLAIN {REDACTED}")
    elif mechanism == "LOGIN":
        response = await send((b"AUTH", b"LOGIN"), "AUTH LOGIN")
        if response.code == 334:
            response = await send((base64.b64encode(user),), REDACTED)
        if response.code == 334:
            response = await send((base64.b64encode(password),), REDACTED)
    else:
        response = await send((b"AUTH", b"CRAM-MD5"), "AUTH CRAM-MD5")
        if response.code == 334:
            try:
                answer = auth_crammd5_verify(user, password, response.message.strip())
            except aiosmtplib.SMTPAuthenticationError:
                answer = b"*"  # an undecodable challenge: cancel the exchange
            response = await send((answer,), REDACTED)
    if response.code == 334:  # the server wants more than the mechanism has: cancel
        response = await send((b"*",), "*")
    return probe.record.reply(response.code, response.message)


# ------------------------------------------------------------ TLS: timings, facts, failures


def _after_handshake(probe: _Probe, start: float, implicit_tls: bool) -> bool:
    """Time the greeting (and the implicit-TLS handshake); True when TLS came up."""
    end = probe.loop.time()
    if not implicit_tls:
        probe.steps["greeting"] = ms(end - start)
        return False
    record = probe.handshakes[-1] if probe.handshakes else None
    if record is None or record.handshake_started is None:
        return False
    hs_start = record.handshake_started + probe.clock_offset
    if record.handshake_done is None:
        probe.steps["tls"] = ms(end - hs_start)
        return False
    done = record.handshake_done + probe.clock_offset
    probe.steps["tls"] = ms(done - hs_start)
    probe.steps["greeting"] = ms(end - done)
    _record_tls(probe, record)
    return True


def _handshake_end(probe: _Probe) -> float | None:
    record = probe.handshakes[-1] if probe.handshakes else None
    if record is None or record.handshake_done is None:
        return None
    return record.handshake_done + probe.clock_offset


def _starttls_timings(probe: _Probe, start: float, seen: int) -> float | None:
    """Split STARTTLS into the reply wait and the handshake; when the handshake began."""
    record = probe.handshakes[-1] if len(probe.handshakes) > seen else None
    end = probe.loop.time()
    if record is None or record.handshake_started is None:
        probe.steps["starttls"] = ms(end - start)
        return None
    hs_start = record.handshake_started + probe.clock_offset
    probe.steps["starttls"] = ms(hs_start - start)
    hs_end = (record.handshake_done + probe.clock_offset) if record.handshake_done else end
    probe.steps["tls"] = ms(hs_end - hs_start)
    return hs_start


def _record_tls(probe: _Probe, ssl_object: object) -> None:
    """TLS version, cipher and the analysed certificate chain."""
    if probe.tls is not None or ssl_object is None:
        return
    facts = getattr(ssl_object, "facts", None)
    if facts is not None:
        version, cipher, chain = facts.version, facts.cipher, list(facts.chain)
    else:
        cipher_info = ssl_object.cipher()  # type: ignore[attr-defined]
        version = ssl_object.version()  # type: ignore[attr-defined]
        cipher = cipher_info[0] if cipher_info else None
        chain = peer_chain(ssl_object)  # type: ignore[arg-type]
    probe.tls = TlsInfo(version=version, cipher=cipher, cert=None)
    probe.chain = chain
    probe.record.event(f"{_tls_words(version)} established ({cipher})")


async def _analyse_certificate(probe: _Probe) -> None:
    """The chain's analysis, in a worker thread: parsing a certificate that holds thousands
    of names is CPU work, and the event loop serves Slack's acks meanwhile."""
    if probe.tls is None or not probe.chain:
        return
    try:
        # Whole seconds, like the certificate's own dates: concurrent probes of one server
        # then share one analysis (see analyze_chain).
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cert = await asyncio.to_thread(
            analyze_chain, probe.chain, probe.server_name, probe.trust, now=now
        )
    except Exception as exc:  # analysis must not cost us the rest of the probe
        probe.record.event(f"certificate analysis failed: {type(exc).__name__}")
        return
    probe.tls = dataclasses.replace(probe.tls, cert=cert)
    problems = ", ".join(str(p) for p in cert.problems) or "none"
    probe.record.event(
        f"certificate for {', '.join(cert.names[:5]) or cert.subject}; "
        f"issuer {cert.issuer}; problems: {problems}"
    )


def _handshake_failure(
    probe: _Probe, exc: BaseException, timeout: float, limited: bool, *, implicit: bool = True
) -> _Stop:
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        probe.record.event(f"timeout in the TLS handshake after {timeout:.1f} s")
        return _Stop(probe._timeout(ProbeOutcome.TLS_TIMEOUT, limited))
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError):
        reason = probe.record.text(str(exc))[:300]
        if implicit and _looks_plaintext(exc):
            probe.record.event(f"the server answered in plain text, not TLS ({reason})")
            return _Stop(ProbeOutcome.PLAINTEXT_ON_TLS, reason)
        probe.record.event(f"TLS handshake failed: {reason}")
        return _Stop(ProbeOutcome.TLS_FAILED, reason)
    reason = "the server closed the connection during the TLS handshake"
    probe.record.event(reason)
    return _Stop(ProbeOutcome.TLS_FAILED, reason)


# ---------------------------------------------------------------------- module helpers


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _tls_words(version: str | None) -> str:
    """ "TLSv1.3" -> "TLS 1.3", "TLSv1" -> "TLS 1.0"."""
    if not version:
        return "TLS"
    if version == "TLSv1":
        return "TLS 1.0"
    return version.replace("TLSv", "TLS ")


def _looks_plaintext(exc: ssl.SSLError) -> bool:
    reason = getattr(exc, "reason", None)
    if reason in _PLAINTEXT_REASONS:
        return True
    text = str(exc).lower()
    return any(words in text for words in _PLAINTEXT_WORDS)


def _cause(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of `kinds` in the cause/context chain."""
    seen = 0
    current: BaseException | None = exc.__cause__ or exc.__context__
    while current is not None and seen < 8:
        if isinstance(current, kinds):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None
