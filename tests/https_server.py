"""An HTTPS server on loopback for the autoconfig tests (aiohttp.web, trustme certificates).

    async with HttpsServer(cert_factory) as server:
        server.route("autoconfig.good.test", "/mail/config-v1.1.xml", body=b"<clientConfig ...")
        fetcher = Fetcher(resolver, policy, ca_bundle=..., https_port=server.port)

One server answers for every name: routes are keyed by the Host header and path, and the
certificate is chosen by SNI (`server.certificate(name, cert)` gives a name another one, e.g.
a certificate for the wrong name). Unknown routes get 404. `stream=N` sends N bytes in
chunks without a Content-Length (a "1 GB body" that never has to exist in memory). Every
request is recorded with the SNI name it came with.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

from aiohttp import web

from tests.certs import CertFactory, ServerCert

# The "billion laughs": a few hundred bytes that expand to gigabytes in a naive parser.
XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<clientConfig><emailProvider id="x"><displayName>&lol9;</displayName>
</emailProvider></clientConfig>"""


@dataclasses.dataclass(frozen=True)
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    stream: int = 0  # bytes to stream without a Content-Length


@dataclasses.dataclass(frozen=True)
class Seen:
    host: str
    path_qs: str
    sni: str | None


class HttpsServer:
    def __init__(self, factory: CertFactory, *names: str) -> None:
        self.factory = factory
        self.default_cert = factory.valid(*(names or ("localhost",)))
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Seen] = []
        self.port = 0
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._runner: web.AppRunner | None = None

    def route(self, host: str, path: str, **kwargs: Any) -> HttpsServer:
        self.routes[(host.lower(), path)] = Route(**kwargs)
        return self

    def certificate(self, name: str, cert: ServerCert) -> HttpsServer:
        """Present `cert` to clients asking for `name` (SNI)."""
        self._contexts[name.lower()] = cert.server_context()
        return self

    async def __aenter__(self) -> HttpsServer:
        context = self.default_cert.server_context()
        context.sni_callback = self._sni
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _sni(self, sslobj: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        sslobj.sni_name = name  # type: ignore[attr-defined]  (read back in _handle)
        chosen = self._contexts.get((name or "").lower())
        if chosen is not None:
            sslobj.context = chosen

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        sslobj = request.transport.get_extra_info("ssl_object") if request.transport else None
        host = (request.host or "").split(":")[0].lower()
        self.requests.append(Seen(host, request.path_qs, getattr(sslobj, "sni_name", None)))
        route = self.routes.get((host, request.path))
        if route is None:
            return web.Response(status=404, text="not here")
        if route.stream:
            response = web.StreamResponse(status=route.status, headers=route.headers)
            await response.prepare(request)
            chunk = b"<" * 65536
            sent = 0
            try:
                while sent < route.stream:
                    await response.write(chunk)
                    sent += len(chunk)
            except (ConnectionError, RuntimeError):
                pass  # the client stopped reading: what the test wants
            return response
        return web.Response(status=route.status, body=route.body, headers=route.headers)
