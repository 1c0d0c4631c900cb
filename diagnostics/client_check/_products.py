"""Who re-signs TLS sessions: antivirus mail shields and inspecting firewalls/proxies.

Matched against the issuer (and subject) the user's computer saw. The patterns are the
names these products put in the CA certificate they generate; when none matches, the
comparison still reports interception, just without a product name.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

Kind = Literal["antivirus", "network"]


@dataclasses.dataclass(frozen=True, slots=True)
class Interceptor:
    name: str
    kind: Kind  # antivirus: software on this computer; network: a firewall, proxy or cloud gateway
    pattern: re.Pattern[str]
    # Where the switch usually is; product menus move between versions, so this is a hint.
    hint: str


def _p(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


# Order matters: the first match wins (Norton and AVG certificates also say "Web/Mail Shield").
INTERCEPTORS: tuple[Interceptor, ...] = (
    Interceptor(
        "Avast",
        "antivirus",
        _p(r"\bavast\b"),
        "Avast: Protection > Core Shields > Mail Shield: turn off scanning of outbound "
        "mail (SMTP) / SSL scanning, or add the mail server as an exception",
    ),
    Interceptor(
        "AVG",
        "antivirus",
        _p(r"\bAVG\b"),
        "AVG: Basic Protection > Email Shield: turn off scanning of outbound mail / SSL scanning",
    ),
    Interceptor(
        "Norton",
        "antivirus",
        _p(r"\bnorton\b"),
        "Norton: Settings > Antivirus / Firewall: turn off outgoing email scanning or "
        "SSL/TLS scanning",
    ),
    Interceptor(
        "ESET",
        "antivirus",
        _p(r"\bESET\b"),
        "ESET: Setup > Advanced setup > Protections > SSL/TLS: exclude Outlook or turn "
        "off SSL/TLS filtering for mail",
    ),
    Interceptor(
        "Kaspersky",
        "antivirus",
        _p(r"kaspersky"),
        "Kaspersky: Settings > Network settings > Encrypted connections scanning: add "
        "the mail server or Outlook as an exclusion",
    ),
    Interceptor(
        "Bitdefender",
        "antivirus",
        _p(r"bitdefender"),
        "Bitdefender: Protection > Antivirus / Online Threat Prevention: turn off "
        "Email protection or Encrypted web scan for mail",
    ),
    Interceptor(
        "McAfee",
        "antivirus",
        _p(r"mcafee|trellix"),
        "McAfee: turn off email scanning, or ask IT to exempt the mail server",
    ),
    Interceptor(
        "Trend Micro",
        "antivirus",
        _p(r"trend\s?micro"),
        "Trend Micro: turn off email/SSL scanning, or exempt the mail server",
    ),
    Interceptor(
        "Webroot",
        "antivirus",
        _p(r"webroot"),
        "Webroot: turn off the mail/SSL filter, or exempt the mail server",
    ),
    Interceptor(
        "G DATA",
        "antivirus",
        _p(r"\bG\s?DATA\b"),
        "G DATA: Settings > Email check: turn off scanning of outgoing mail / SSL",
    ),
    Interceptor(
        "F-Secure",
        "antivirus",
        _p(r"f-secure|withsecure"),
        "F-Secure: turn off email/SSL scanning, or exempt the mail server",
    ),
    Interceptor(
        "Dr.Web",
        "antivirus",
        _p(r"dr\.?\s?web"),
        "Dr.Web: SpIDer Gate / SpIDer Mail: turn off checking of encrypted traffic for mail",
    ),
    Interceptor(
        "Sophos",
        "network",
        _p(r"sophos"),
        "Sophos: ask IT to exempt the mail server from SSL/TLS inspection",
    ),
    Interceptor(
        "Fortinet FortiGate",
        "network",
        _p(r"forti(?:net|gate|client)"),
        "FortiGate: ask IT to exempt the mail server from deep (SSL) inspection",
    ),
    Interceptor(
        "Zscaler",
        "network",
        _p(r"zscaler"),
        "Zscaler: ask IT to bypass SSL inspection for the mail server",
    ),
    Interceptor(
        "Palo Alto Networks",
        "network",
        _p(r"palo\s?alto"),
        "Palo Alto: ask IT to add a decryption exclusion for the mail server",
    ),
    Interceptor(
        "Cisco Umbrella",
        "network",
        _p(r"cisco\s+umbrella|opendns"),
        "Cisco Umbrella: ask IT to add the mail server to the selective decryption list",
    ),
    Interceptor(
        "Netskope",
        "network",
        _p(r"netskope|goskope"),
        "Netskope: ask IT to add an SSL decryption bypass for the mail server",
    ),
    Interceptor(
        "Check Point",
        "network",
        _p(r"check\s?point"),
        "Check Point: ask IT to bypass HTTPS/SSL inspection for the mail server",
    ),
    Interceptor(
        "SonicWall",
        "network",
        _p(r"sonicwall"),
        "SonicWall: ask IT to exclude the mail server from DPI-SSL",
    ),
    Interceptor(
        "WatchGuard",
        "network",
        _p(r"watchguard"),
        "WatchGuard: ask IT to exclude the mail server from content inspection",
    ),
    Interceptor(
        "Barracuda",
        "network",
        _p(r"barracuda"),
        "Barracuda: ask IT to exclude the mail server from SSL inspection",
    ),
    Interceptor(
        "Forcepoint",
        "network",
        _p(r"forcepoint|websense"),
        "Forcepoint: ask IT to exclude the mail server from SSL decryption",
    ),
    Interceptor(
        "Cloudflare Gateway",
        "network",
        _p(r"cloudflare.*gateway|gateway ca - cloudflare"),
        "Cloudflare Zero Trust: ask IT to add a Do Not Inspect rule for the mail server",
    ),
    Interceptor(
        "Symantec/Blue Coat proxy",
        "network",
        _p(r"blue\s?coat|proxysg"),
        "ProxySG: ask IT to exempt the mail server from SSL interception",
    ),
)


def identify(issuer: str | None) -> Interceptor | None:
    """The product whose CA issued (re-signed) the certificate, when its name says so.

    Only the issuer is read: the subject of a re-signed certificate copies the server's own,
    which may well contain a vendor's name (smtp.avast.example) without any interception.
    """
    if not issuer:
        return None
    for item in INTERCEPTORS:
        if item.pattern.search(issuer):
            return item
    return None
