"""Outlook's words for the engine's values: the one place a front end or a finding gets them.

Classic Outlook for Windows is the reference ("Use the following type of encrypted
connection": None, SSL/TLS, STARTTLS, Auto). How each other Outlook words the same choice
lives with that client in the knowledge base (``clients.yaml``: ``security_labels``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from diagnostics._models import OutlookClient, Security

SECURITY_LABEL: Mapping[Security, str] = MappingProxyType(
    {
        Security.NONE: "None",
        Security.SSL: "SSL/TLS",
        Security.STARTTLS: "STARTTLS",
        Security.AUTO: "Auto",
    }
)
CLIENT_LABEL: Mapping[OutlookClient, str] = MappingProxyType(
    {
        OutlookClient.CLASSIC: "classic Outlook for Windows",
        OutlookClient.NEW: "new Outlook for Windows",
        OutlookClient.MAC: "Outlook for Mac",
        OutlookClient.IOS: "Outlook for iOS",
        OutlookClient.ANDROID: "Outlook for Android",
    }
)


def security_label(value: Security | str | None) -> str:
    """Outlook's label for an encryption choice; "not given" for none, anything else as is."""
    if value is None:
        return "not given"
    try:
        return SECURITY_LABEL[Security(value)]
    except ValueError:
        return str(value)


def client_label(value: OutlookClient | str | None) -> str:
    """The Outlook's name as users know it (classic Outlook for Windows when not given)."""
    try:
        return CLIENT_LABEL[OutlookClient(value or OutlookClient.CLASSIC)]
    except ValueError:
        return str(value)
