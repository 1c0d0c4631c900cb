"""Mozilla's autoconfig format (`clientConfig` 1.1): the outgoing servers a document names.

The same format serves two sources: the Thunderbird ISP database shipped in the package
(`_ispdb`) and the document a domain may publish itself (`_fetch` brings it). Both are
parsed here, with defusedxml: no DTD entities (an "XML bomb" is refused, not expanded), no
external references. What the document says is hostile text: host names are checked to be
DNS names, ports to be numbers, and only the fields the diagnosis needs are kept.

    AutoconfigInvalid(SmtpcheckError)   the document is not a usable clientConfig;
                                        `reason` is "entities", "malformed" or "not_clientconfig"
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as StdET  # types and ParseError only; parsing is defused
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from diagnostics._errors import SmtpcheckError
from diagnostics._models import Endpoint, Security

_SOCKET_TYPES = {"SSL": Security.SSL, "STARTTLS": Security.STARTTLS, "plain": Security.NONE}
_HOST = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
MAX_SERVERS = 8  # a hostile document may list thousands


class AutoconfigInvalid(SmtpcheckError):
    """The document is not a usable clientConfig (see the module docstring)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingServer:
    """One `<outgoingServer type="smtp">`, placeholders filled in."""

    host: str
    port: int
    security: Security
    username: str = ""  # the template as documented: "%EMAILADDRESS%", "%EMAILLOCALPART%"
    authentication: tuple[str, ...] = ()  # "password-cleartext", "OAuth2", ...

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(host=self.host, port=self.port, security=self.security)

    def as_evidence(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "security": str(self.security),
            "username": self.username,
            "authentication": list(self.authentication),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ClientConfig:
    """What one `<emailProvider>` documents about sending."""

    provider_id: str
    display_name: str
    domains: tuple[str, ...]
    outgoing: tuple[OutgoingServer, ...]
    skipped: tuple[str, ...] = ()  # outgoing servers left out, and why


def parse(data: bytes, *, email: str | None = None) -> ClientConfig:
    """Parse a clientConfig document; fill %EMAILDOMAIN% and the like from `email`.

    Raises AutoconfigInvalid. CPU-bound: call it from a worker thread on the event loop.
    """
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True)
    except DefusedXmlException as exc:
        raise AutoconfigInvalid(
            f"the document declares XML entities or external references ({type(exc).__name__})",
            reason="entities",
        ) from None
    except (StdET.ParseError, ValueError) as exc:
        raise AutoconfigInvalid(
            f"the document is not well-formed XML ({exc})", reason="malformed"
        ) from None
    if root.tag != "clientConfig":
        raise AutoconfigInvalid(
            f"the document is not a clientConfig (root element <{root.tag[:40]}>)",
            reason="not_clientconfig",
        )
    provider = root.find("emailProvider")
    if provider is None:
        raise AutoconfigInvalid("the document has no <emailProvider>", reason="not_clientconfig")
    outgoing: list[OutgoingServer] = []
    skipped: list[str] = []
    for element in provider.findall("outgoingServer")[:MAX_SERVERS]:
        server, problem = _outgoing(element, email)
        if server is not None and server not in outgoing:
            outgoing.append(server)
        elif problem:
            skipped.append(problem)
    domains = tuple(_clean(d.text).lower() for d in provider.findall("domain") if _clean(d.text))
    return ClientConfig(
        provider_id=_clean(provider.get("id")),
        display_name=_clean(provider.findtext("displayName")) or _clean(provider.get("id")),
        domains=domains,
        outgoing=tuple(outgoing),
        skipped=tuple(skipped),
    )


def _outgoing(element: StdET.Element, email: str | None) -> tuple[OutgoingServer | None, str]:
    if element.get("type", "smtp") != "smtp":
        return None, f"type {_clean(element.get('type'))!r} is not smtp"
    host = _fill(_clean(element.findtext("hostname")), email).lower().rstrip(".")
    if not host or "%" in host:
        return None, "no host name (or a placeholder without an address to fill it)"
    if not _HOST.match(host):
        return None, f"{host[:80]!r} is not a DNS name"
    port_text = _clean(element.findtext("port"))
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        return None, f"{host}: port {port_text[:12]!r} is not a number from 1 to 65535"
    security = _SOCKET_TYPES.get(_clean(element.findtext("socketType")))
    if security is None:
        return None, f"{host}: unknown socketType {_clean(element.findtext('socketType'))!r}"
    auth = tuple(_clean(a.text) for a in element.findall("authentication")[:6] if a.text)
    return (
        OutgoingServer(
            host=host,
            port=int(port_text),
            security=security,
            username=_clean(element.findtext("username")),
            authentication=auth,
        ),
        "",
    )


def _clean(text: str | None) -> str:
    return (text or "").strip()[:255]


def _fill(template: str, email: str | None) -> str:
    if "%" not in template or not email or "@" not in email:
        return template
    local, _, domain = email.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", email)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain.lower())
    )
