"""`smtpcheck demo`: a real diagnosis of a deliberately misconfigured local server.

Everything stays on loopback: a throwaway CA (trustme), an aiosmtpd server that speaks
STARTTLS, and a one-zone DNS server (dnslib) that names it `mail.demo.test`. The "user" has
chosen SSL/TLS on the STARTTLS port, the most common Outlook mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from diagnostics._config import EngineConfig, Timeouts
from diagnostics._models import CheckRequest, Report, Security

DEMO_HOST = "mail.demo.test"
DEMO_USER = "demo@demo.test"


_PORT_ATTEMPTS = 20


@contextlib.contextmanager
def _dns_server(records: dict[str, str]) -> Iterator[int]:
    """A UDP+TCP DNS server on 127.0.0.1 answering A queries from `records`."""
    from dnslib import QTYPE, RR, A
    from dnslib.server import BaseResolver, DNSLogger, DNSServer

    class Resolver(BaseResolver):  # type: ignore[misc]  # dnslib has no type information
        def resolve(self, request: Any, handler: Any) -> Any:
            reply = request.reply()
            name = str(request.q.qname).rstrip(".").lower()
            if name in records and request.q.qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(records[name]), ttl=60))
            elif name not in records:
                reply.header.rcode = 3  # NXDOMAIN
            return reply

    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    # The kernel picks a free UDP port; the same TCP port may still be taken by another
    # program (a busy machine), so pick again rather than fail the demo.
    for attempt in range(_PORT_ATTEMPTS):
        udp = DNSServer(Resolver(), port=0, address="127.0.0.1", logger=quiet)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(Resolver(), port=port, address="127.0.0.1", tcp=True, logger=quiet)
            break
        except OSError as exc:
            udp.server.server_close()
            if exc.errno != errno.EADDRINUSE or attempt == _PORT_ATTEMPTS - 1:
                raise
    udp.start_thread()
    tcp.start_thread()
    try:
        yield port
    finally:
        udp.stop()
        tcp.stop()


@contextlib.asynccontextmanager
async def _smtp_server(tls_context: ssl.SSLContext) -> AsyncIterator[int]:
    """An aiosmtpd submission server: STARTTLS, AUTH only after TLS, accepts nothing."""
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    class Reject:
        async def handle_DATA(  # never reached: no DATA sent
            self, server: Any, session: Any, envelope: Any
        ) -> str:
            return "554 5.7.1 The demo server accepts no mail"

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == DEMO_USER.encode()
        return AuthResult(success=ok)

    def factory() -> SMTP:
        return SMTP(
            Reject(),
            hostname=DEMO_HOST,
            tls_context=tls_context,
            require_starttls=True,
            authenticator=authenticator,
            auth_require_tls=True,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host="127.0.0.1", port=0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def run_demo() -> Report:
    """Start the local peers, diagnose SSL/TLS on their STARTTLS port, return the report."""
    import trustme

    from diagnostics._engine import diagnose

    ca = trustme.CA()
    leaf = ca.issue_cert(DEMO_HOST)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_context)
    with tempfile.TemporaryDirectory(prefix="smtpcheck-demo-") as folder:
        bundle = Path(folder) / "demo-ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        async with _smtp_server(server_context) as smtp_port:
            with _dns_server({DEMO_HOST: "127.0.0.1"}) as dns_port:
                config = EngineConfig(
                    nameservers=(f"127.0.0.1:{dns_port}",),
                    ca_bundle=bundle,
                    allow_private=True,
                    allowed_ports=frozenset({smtp_port, 587, 465}),
                    budget=10,
                    timeouts=Timeouts(dns=2, connect=2, greeting=3, command=3, tls=3),
                )
                request = CheckRequest(
                    target=f"{DEMO_HOST}:{smtp_port}",
                    security=Security.SSL,
                    user=DEMO_USER,
                    error_text="Your server does not support the connection encryption "
                    "type you have specified. Try changing the encryption method.",
                )
                return await diagnose(request, config)
