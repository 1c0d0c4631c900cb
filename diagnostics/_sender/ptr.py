"""The submission server's reverse DNS (info only: Outlook does not need it)."""

from __future__ import annotations

import ipaddress
from typing import Any

import dns.asyncresolver

from diagnostics._dns import (
    DnsError,
    forward_addresses,
    reverse_names,
)
from diagnostics._findings import finding
from diagnostics._models import Finding
from diagnostics._sender._common import lookup_failed


async def check_ptr(
    resolver: dns.asyncresolver.Resolver, address: str, *, host: str
) -> list[Finding]:
    """Return findings about the reverse DNS of the server `host` at `address`.

    Info only: Outlook does not care about the submission server's PTR, but the server's
    own outgoing mail does (receivers such as Gmail require forward-confirmed reverse DNS).
    """
    host = host.rstrip(".").lower()
    try:
        names = await reverse_names(resolver, address)
    except DnsError as exc:
        return [lookup_failed(host, [("ptr", exc)], reverse_dns=True)]
    if not names:
        return [
            finding(
                "dns.ptr.missing",
                detail=(
                    "There is no PTR record for the server's address. Outlook does not need one,"
                    " but if this server also sends mail to other domains, receivers such as"
                    " Gmail reject or junk mail from addresses without reverse DNS."
                ),
                evidence={"address": address, "host": host, "ptr": []},
            )
        ]
    forward = await forward_addresses(resolver, names)
    target = ipaddress.ip_address(address)
    confirmed = [
        name
        for name, addresses in forward.items()
        if target in {ipaddress.ip_address(a) for a in addresses}
    ]
    evidence: dict[str, Any] = {
        "address": address,
        "host": host,
        "ptr": list(names),
        "forward": {name: list(addresses) for name, addresses in forward.items()},
    }
    if not confirmed:
        return [
            finding(
                "dns.ptr.mismatch",
                detail=(
                    f"{address} has the reverse DNS name {names[0]}, but that name does not"
                    f" resolve to {address}. Outlook does not need it to, but receivers that"
                    " check forward-confirmed reverse DNS may distrust mail sent by this server."
                ),
                evidence=evidence,
            )
        ]
    evidence["matches_host"] = host in confirmed
    return [
        finding(
            "dns.ptr.ok",
            detail=(
                f"The PTR name {confirmed[0]} resolves back to {address}"
                + (
                    "."
                    if host in confirmed
                    else f" (it is not the name entered, {host}; that is normal)."
                )
            ),
            evidence=evidence,
            name=confirmed[0],
        )
    ]
