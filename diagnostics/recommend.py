"""Which settings to tell the user to enter, and what to say about the ones they entered.

Two pure rules, no I/O:

- `recommend`: from what was tried, the working setting closest to what was entered (fewest
  of host, port and encryption changed; the same port first; then the provider's documented
  order; then 587 STARTTLS before 465 SSL/TLS), and the other working ones as alternatives.
  Nothing to change when the entered setting works.
- `settings_advice`: the one sentence a report leads with: change to the recommendation,
  keep the settings (they work, or they are right and something else fails), enter the
  settings found for an address (they work), or none of the settings tried worked. Decided
  from the verdict and the probes, never from `recommended` alone (it is null both when the
  settings work and when nothing did).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

from diagnostics._assess import LEGACY_TLS
from diagnostics._models import Endpoint, ProbeSummary, Report, Security, Verdict

# The common submission settings, in the order a help desk would suggest them.
STANDARD_ORDER = ((587, Security.STARTTLS), (465, Security.SSL))
MAX_ALTERNATIVES = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Tried:
    """One setting that was probed, and whether Outlook could send through it."""

    endpoint: Endpoint
    works: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Recommendation:
    best: Endpoint | None  # None: keep what was entered (it works), or nothing works
    alternatives: tuple[Endpoint, ...] = ()


def fields_changed(entered: Endpoint, other: Endpoint) -> int:
    """How many of Outlook's three fields (server, port, encryption) the user must edit."""
    return sum(
        (
            entered.host != other.host,
            entered.port != other.port,
            entered.security is not other.security,
        )
    )


def recommend(
    entered: Endpoint,
    tried: Sequence[Tried],
    *,
    entered_works: bool,
    preferred: Sequence[Endpoint] = (),
) -> Recommendation:
    """The working setting closest to `entered`, and the other working ones.

    `entered_works` is False also when the entered setting connects but should not be kept
    (port 25 for a mail client): then the closest working setting is recommended instead.
    """
    if entered_works:
        return Recommendation(best=None)
    candidates: list[Endpoint] = []
    for item in tried:
        if item.works and item.endpoint != entered and item.endpoint not in candidates:
            candidates.append(item.endpoint)
    if not candidates:
        return Recommendation(best=None)

    def rank(endpoint: Endpoint) -> tuple[int, bool, int, int, int]:
        return (
            fields_changed(entered, endpoint),
            endpoint.port != entered.port,
            _index(preferred, endpoint),
            _index(
                [Endpoint(host=endpoint.host, port=p, security=s) for p, s in STANDARD_ORDER],
                endpoint,
            ),
            endpoint.port,
        )

    ranked = sorted(candidates, key=rank)
    return Recommendation(best=ranked[0], alternatives=tuple(ranked[1 : 1 + MAX_ALTERNATIVES]))


def _index(order: Sequence[Endpoint], endpoint: Endpoint) -> int:
    try:
        return list(order).index(endpoint)
    except ValueError:
        return len(order)


class Advice(enum.StrEnum):
    CHANGE = "change"  # use the recommended settings
    KEEP = "keep"  # the settings work (PASS or WARN)
    KEEP_FIX_OTHER = "keep_fix_other"  # the settings connect; the login or server fails
    NONE_WORKED = "none_worked"
    NOT_FOUND = "not_found"  # an address alone, and no outgoing server could be found
    FOUND = "found"  # an address alone: the server found for it works (nothing was entered)
    FOUND_FIX_OTHER = "found_fix_other"  # an address alone: the server found connects; the
    # login or the server fails (KEEP_FIX_OTHER, with nothing entered to keep)


ADVICE_WORDS = {
    Advice.CHANGE: "Use these settings in Outlook",
    Advice.KEEP: "Your settings work: keep them",
    Advice.KEEP_FIX_OTHER: (
        "Your server, port and encryption are right: keep them. What stops sending is below"
    ),
    Advice.NONE_WORKED: "None of the settings tried worked",
    Advice.NOT_FOUND: "No outgoing server found to check: ask the provider for its name",
    Advice.FOUND: "Enter these settings in Outlook (found for the address; they work)",
    Advice.FOUND_FIX_OTHER: "Enter these settings in Outlook (found for the address; they connect)",
}
# Said after the settings shown (ADVICE_WORDS is their heading, kept short for a panel title).
ADVICE_AFTER_SETTINGS = {Advice.FOUND_FIX_OTHER: "What stops sending is below."}


def settings_advice(report: Report) -> Advice:
    """What to say about the entered settings, from the verdict and the probes."""
    if report.recommended is not None:
        return Advice.CHANGE
    if report.verdict is not Verdict.FAIL:
        return Advice.FOUND if found_settings(report) is not None else Advice.KEEP
    if nothing_checked(report):
        return Advice.NOT_FOUND
    entered = next((p for p in report.probes if p.role == "entered"), None)
    if entered is not None and _connects(entered, requires_auth=report.input.requires_auth):
        found = found_settings(report) is not None
        return Advice.FOUND_FIX_OTHER if found else Advice.KEEP_FIX_OTHER
    return Advice.NONE_WORKED


def nothing_checked(report: Report) -> bool:
    """Only an address was given and no server was found for it: no setting was tried."""
    return not report.probes and report.has("settings.no_server_found")


def found_settings(report: Report) -> Endpoint | None:
    """The setting checked when only an address was given (discovery found it), else None."""
    entered = report.input
    if report.discovery is None or not entered.host or not entered.port or not entered.security:
        return None
    return Endpoint(host=entered.host, port=entered.port, security=entered.security)


def advised_settings(report: Report) -> Endpoint | None:
    """The settings to show as the ones to enter in Outlook: the recommendation (CHANGE),
    or the ones found for an address (FOUND, FOUND_FIX_OTHER); None for every other advice."""
    return _settings_to_enter(report, settings_advice(report))


def _settings_to_enter(report: Report, advice: Advice) -> Endpoint | None:
    if advice is Advice.CHANGE:
        return report.recommended
    if advice in (Advice.FOUND, Advice.FOUND_FIX_OTHER):
        return found_settings(report)
    return None


def found_from(report: Report, endpoint: Endpoint) -> str | None:
    """Where discovery found `endpoint`, in words ("published by the domain (SRV)")."""
    if report.discovery is None:
        return None
    for server in report.discovery.servers:
        if (server.host.lower(), server.port, server.security) == (
            endpoint.host.lower(),
            endpoint.port,
            endpoint.security,
        ):
            return server.words
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class AdviceText:
    """What the report says to do with the settings, for every renderer alike."""

    advice: Advice
    heading: str  # ADVICE_WORDS: a sentence, or the title above the settings to enter
    settings: Endpoint | None  # the settings to enter in Outlook, if any (advised_settings)
    source: str | None  # where those settings were found ("published by the domain (SRV)")
    after: str | None  # said after the settings (ADVICE_AFTER_SETTINGS)


def advice_for(report: Report) -> AdviceText:
    """settings_advice, advised_settings and found_from at once: what a renderer shows."""
    advice = settings_advice(report)
    settings = _settings_to_enter(report, advice)
    return AdviceText(
        advice=advice,
        heading=ADVICE_WORDS[advice],
        settings=settings,
        source=found_from(report, settings) if settings is not None else None,
        after=ADVICE_AFTER_SETTINGS.get(advice),
    )


def _connects(probe: ProbeSummary, *, requires_auth: bool) -> bool:
    """Encrypted, trusted, and offering a login: Outlook would get as far as signing in."""
    if probe.outcome != "ok" or probe.tls_version is None or probe.tls_version in LEGACY_TLS:
        return False
    if probe.certificate and probe.certificate.get("problems"):
        return False
    return bool(probe.auth_after_tls) or not requires_auth
