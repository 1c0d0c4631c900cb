"""A bounded HTTPS GET for autoconfig documents: a network client strangers can aim.

Every fetch obeys the same rules as the SMTP probes:

* HTTPS only, certificate verified against the URL's host name (system roots plus the
  operator's CA bundle); a redirect to plain HTTP is refused.
* The host is resolved once with the diagnosis' resolver, the target policy picks the
  address, and aiohttp connects to that address (a pinned resolver): SNI and Host carry the
  name, no second lookup can rebind it. Every redirect is resolved and checked again; at
  most MAX_REDIRECTS.
* Port 443 only (an operator-set `https_port` is where the connection goes: tests).
* At most MAX_BYTES of body, no compression (a gzip bomb cannot expand), one timeout for
  the whole fetch, redirects included.

Failures raise `FetchFailed`, whose `reason` says what the report should say::

    FetchFailed(SmtpcheckError)
        reason: "not_found"   (404/410, NXDOMAIN, no address: nothing published)
                "refused"     (target policy, a non-HTTPS or non-443 redirect)
                "tls"         (certificate not valid for the name, handshake failed)
                "too_large"   (body past MAX_BYTES)  "redirects" (more than MAX_REDIRECTS)
                "timeout"     "http_status"   "connect"   "dns"
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from diagnostics import _dns, _policy
from diagnostics._errors import SmtpcheckError, TargetRefused

MAX_BYTES = 64 * 1024
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 8192


class FetchFailed(SmtpcheckError):
    """The document could not be fetched; `reason` is one of the module docstring's."""

    def __init__(self, message: str, *, reason: str, url: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.url = url


@dataclasses.dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # the URL asked for
    final_url: str  # after redirects
    address: str  # the address the final request went to (internal: never shown to users)
    body: bytes
    redirects: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Fetcher:
    """What a fetch needs from the diagnosis: its resolver, policy and trust."""

    resolver: Any  # dns.asyncresolver.Resolver
    policy: _policy.TargetPolicy
    ca_bundle: Path | None = None
    https_port: int = 443
    max_bytes: int = MAX_BYTES

    async def get(self, url: str, *, budget: float) -> Fetched:
        """GET `url` within `budget` seconds (redirects included); raise FetchFailed."""
        if budget <= 0:
            raise FetchFailed("no time left in the budget", reason="timeout", url=url)
        context = await _ssl_context(self.ca_bundle)
        try:
            async with asyncio.timeout(budget):
                return await self._follow(url, context, budget)
        except TimeoutError:
            raise FetchFailed(
                f"no complete answer within {budget:.1f} s", reason="timeout", url=url
            ) from None

    async def _follow(self, url: str, context: ssl.SSLContext, budget: float) -> Fetched:
        current = url
        redirects: list[str] = []
        while True:
            host = self._check_url(current, first=current == url)
            address = await self._address(host, current)
            status, location, body = await self._one(current, host, address, context, budget)
            if status in _REDIRECTS:
                if len(redirects) >= MAX_REDIRECTS:
                    raise FetchFailed(
                        f"more than {MAX_REDIRECTS} redirects", reason="redirects", url=url
                    )
                if not location:
                    raise FetchFailed(
                        f"HTTP {status} without a Location", reason="http_status", url=url
                    )
                current = urljoin(current, location)
                redirects.append(current)
                continue
            if status in (404, 410):
                raise FetchFailed(f"HTTP {status}: not published", reason="not_found", url=url)
            if status != 200:
                raise FetchFailed(f"HTTP {status}", reason="http_status", url=url)
            return Fetched(url, current, address, body, tuple(redirects))

    def _check_url(self, url: str, *, first: bool) -> str:
        parts = urlsplit(url)
        what = "the URL" if first else "a redirect"
        if parts.scheme != "https" or not parts.hostname:
            raise FetchFailed(
                f"{what} leads to {parts.scheme or 'no'}:// , not https://",
                reason="refused",
                url=url,
            )
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port not in (None, 443):
            raise FetchFailed(f"{what} leads to port {port}, not 443", reason="refused", url=url)
        if parts.username or parts.password:
            raise FetchFailed(f"{what} carries a user name", reason="refused", url=url)
        return parts.hostname

    async def _address(self, host: str, url: str) -> str:
        try:
            literal = self.policy.literal_target(host)
            addresses = (literal,) if literal else await _dns.resolve_host(self.resolver, host)
            return self.policy.pick_address(host, addresses)
        except TargetRefused as exc:
            raise FetchFailed(str(exc), reason="refused", url=url) from None
        except (_dns.HostNotFound, _dns.NoAddress) as exc:
            raise FetchFailed(str(exc), reason="not_found", url=url) from None
        except _dns.DnsError as exc:
            raise FetchFailed(str(exc), reason="dns", url=url) from None

    async def _one(
        self, url: str, host: str, address: str, context: ssl.SSLContext, budget: float
    ) -> tuple[int, str | None, bytes]:
        connector = aiohttp.TCPConnector(
            resolver=_Pinned(host, address, self.https_port),
            ssl=context,
            use_dns_cache=False,
            force_close=True,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=False,  # never a proxy from the environment
            timeout=aiohttp.ClientTimeout(total=budget),
            headers={"Accept-Encoding": "identity", "User-Agent": "smtpcheck autoconfig"},
        )
        try:
            async with session.get(url, allow_redirects=False) as response:
                if response.status in _REDIRECTS:
                    return response.status, response.headers.get("Location"), b""
                if response.status != 200:
                    return response.status, None, b""
                return 200, None, await self._body(response, url)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise FetchFailed(
                f"the certificate is not valid for {host}: {_short(exc.certificate_error)}",
                reason="tls",
                url=url,
            ) from None
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise FetchFailed(
                f"the TLS handshake failed: {_short(exc)}", reason="tls", url=url
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise FetchFailed(
                f"could not connect: {_short(exc.os_error)}", reason="connect", url=url
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchFailed(
                f"the connection failed: {_short(exc)}", reason="connect", url=url
            ) from None
        finally:
            await session.close()

    async def _body(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchFailed(
                f"the server sent a compressed body ({encoding[:20]}) although asked not to",
                reason="http_status",
                url=url,
            )
        length = response.content_length
        if length is not None and length > self.max_bytes:
            raise FetchFailed(
                f"the document is {length} bytes; at most {self.max_bytes} are read",
                reason="too_large",
                url=url,
            )
        body = bytearray()
        while len(body) <= self.max_bytes:
            chunk = await response.content.read(_CHUNK)
            if not chunk:
                return bytes(body)
            body += chunk
        raise FetchFailed(
            f"the document is larger than {self.max_bytes} bytes", reason="too_large", url=url
        )


class _Pinned(AbstractResolver):
    """aiohttp's resolver for one request: the name maps to the address already checked."""

    def __init__(self, host: str, address: str, port: int) -> None:
        self.host = host
        self.address = address
        self.port = port

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".").lower() != self.host.rstrip(".").lower():
            raise OSError(f"unexpected host {host!r}")  # never resolve anything else
        fam = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        return [
            {
                "hostname": host,
                "host": self.address,
                "port": self.port,
                "family": fam,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def _ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    return await asyncio.to_thread(_build_context, str(ca_bundle) if ca_bundle else None)


@functools.cache
def _build_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verification on, system roots plus the operator's bundle (loading them costs CPU)."""
    context = ssl.create_default_context()
    if ca_bundle:
        context.load_verify_locations(cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _short(value: object) -> str:
    text = str(value).replace("\n", " ")
    return text[:160]
