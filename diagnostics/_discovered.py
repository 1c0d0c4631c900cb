"""What discovery found, checked against the probes: findings and the report's `discovery`.

Pure functions of a `_discovery.Discovery`, the server the diagnosis checked and the probe
results. A candidate is *confirmed* when a probe of its (host, port, encryption) is usable
as Outlook would use it, *not confirmed* when probed and not usable, and unknown (None)
when it was not probed (a port the operator does not allow, no time left).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from diagnostics import _assess
from diagnostics._discovery import SOURCE_NAMES, SOURCE_WORDS, Candidate, Discovery
from diagnostics._findings import finding
from diagnostics._models import (
    DiscoveredServer,
    DiscoveredSource,
    DiscoverySummary,
    Endpoint,
    Finding,
    ProbeResult,
)

_SECURITY_WORDS = {"ssl": "SSL/TLS", "starttls": "STARTTLS", "none": "no encryption"}
_UNUSABLE = {"refused", "invalid"}


def confirmations(
    discovery: Discovery,
    results: Sequence[ProbeResult],
    *,
    host: str,
    now: dt.datetime,
    requires_auth: bool,
) -> dict[Candidate, bool | None]:
    """Each candidate: True (a usable probe), False (probed, not usable), None (not probed)."""
    found: dict[Candidate, bool | None] = {}
    for candidate in discovery.candidates:
        probed = [
            r
            for r in results
            if (r.plan.host or host).lower() == candidate.host
            and (r.plan.port, r.plan.security) == (candidate.port, candidate.security)
        ]
        found[candidate] = (
            any(_assess.usable(r, now=now, requires_auth=requires_auth) for r in probed)
            if probed
            else None
        )
    return found


def summary(discovery: Discovery, confirmed: dict[Candidate, bool | None]) -> DiscoverySummary:
    """The report's additive `discovery` object: every source's outcome, every candidate."""
    return DiscoverySummary(
        domain=discovery.domain,
        sources=tuple(
            DiscoveredSource(
                source=o.source, state=o.state, words=SOURCE_WORDS[o.source], detail=o.detail
            )
            for o in discovery.outcomes
        ),
        servers=tuple(
            DiscoveredServer(
                host=c.host,
                port=c.port,
                security=c.security,
                sources=c.sources,
                words=c.words,
                confirmed=confirmed.get(c),
            )
            for c in discovery.candidates
        ),
    )


def findings(
    discovery: Discovery, checked: Endpoint, confirmed: dict[Candidate, bool | None]
) -> list[Finding]:
    """settings.discovered, settings.sources_disagree, settings.autoconfig.unusable."""
    out: list[Finding] = []
    chosen = next(
        (c for c in discovery.candidates if (c.host, c.port, c.security) == _key(checked)), None
    )
    if chosen is not None:
        out.append(_discovered(discovery, chosen, confirmed))
        working = [c for c, ok in confirmed.items() if ok and c is not chosen]
        if confirmed.get(chosen) is False and working:
            out.append(_disagree(chosen, working[0]))
    autoconfig = discovery.outcome("autoconfig")
    if autoconfig is not None and autoconfig.state in _UNUSABLE:
        out.append(
            finding(
                "settings.autoconfig.unusable",
                detail=(
                    f"{autoconfig.detail}. Mail clients that read autoconfig files "
                    "(Thunderbird and others) get no settings from it; smtpcheck ignored it."
                ),
                evidence={
                    "domain": discovery.domain,
                    "state": autoconfig.state,
                    **autoconfig.evidence,
                },
            )
        )
    return out


def no_server_found(discovery: Discovery | None, domain: str) -> Finding:
    """settings.no_server_found: nothing to check, and what every source said."""
    said = (
        "; ".join(
            f"{SOURCE_NAMES[o.source]}: {o.state.replace('_', ' ')}"
            for o in discovery.outcomes
            if o.source != "provider"
        )
        if discovery is not None
        else ""
    )
    return finding(
        "settings.no_server_found",
        detail=(
            f"smtpcheck asked the ISP database, the domain's autoconfig file and SRV records, "
            f"and tried smtp.{domain} and mail.{domain}: none names an outgoing server"
            + (f" ({said})." if said else ".")
            + " The provider's setup page (or IT) has the server name."
        ),
        evidence={
            "domain": domain,
            "sources": [o.as_evidence() for o in discovery.outcomes] if discovery else [],
        },
    )


def _discovered(
    discovery: Discovery, chosen: Candidate, confirmed: dict[Candidate, bool | None]
) -> Finding:
    state = confirmed.get(chosen)
    verdict = {
        True: "The probes confirmed it works.",
        False: "The probes could not confirm it (see the findings above).",
        None: "It could not be probed from here.",
    }[state]
    others = [c for c in discovery.candidates if c is not chosen]
    also = (
        " Also named: "
        + "; ".join(
            f"{c.host} port {c.port} ({c.words}"
            + {True: ", works)", False: ", does not work)", None: ", not probed)"}[confirmed.get(c)]
            for c in others[:4]
        )
        + "."
        if others
        else ""
    )
    return finding(
        "settings.discovered",
        detail=f"{verdict}{also}",
        host=chosen.host,
        port=chosen.port,
        encryption=_SECURITY_WORDS[str(chosen.security)],
        evidence={
            "from": chosen.words,
            "sources": list(chosen.sources),
            "confirmed": state,
            "domain": discovery.domain,
            "candidates": [
                {**c.as_evidence(), "confirmed": confirmed.get(c)} for c in discovery.candidates
            ],
        },
    )


def _disagree(chosen: Candidate, working: Candidate) -> Finding:
    return finding(
        "settings.sources_disagree",
        working=f"{working.host} port {working.port}",
        working_from=working.words,
        chosen=f"{chosen.host} port {chosen.port}",
        chosen_from=chosen.words,
        detail=(
            "The sources name different outgoing servers. The one checked first does not "
            f"work from here; {working.host} port {working.port} "
            f"{_SECURITY_WORDS[str(working.security)]} does."
        ),
        evidence={
            "chosen": chosen.as_evidence(),
            "working": working.as_evidence(),
            "recommended": working.endpoint.model_dump(mode="json"),
        },
    )


def _key(endpoint: Endpoint) -> tuple[str, int, object]:
    return endpoint.host.lower(), endpoint.port, endpoint.security
