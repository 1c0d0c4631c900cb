"""The recommendation rule, case by case: the closest working setting, and what to say."""

from __future__ import annotations

import pytest

from diagnostics import Endpoint, Report, Security, Verdict
from diagnostics._models import (
    DiscoveredServer,
    DiscoverySummary,
    ProbeSummary,
    ReportInput,
)
from diagnostics.recommend import (
    Advice,
    Tried,
    advice_for,
    advised_settings,
    fields_changed,
    found_from,
    recommend,
    settings_advice,
)

HOST = "mail.example.test"
PROVIDER = "smtp.provider.test"
S, T, N = Security.SSL, Security.STARTTLS, Security.NONE


def ep(port: int, security: Security, host: str = HOST) -> Endpoint:
    return Endpoint(host=host, port=port, security=security)


def tried(*items: tuple[int, Security, bool] | tuple[int, Security, bool, str]) -> list[Tried]:
    return [Tried(ep(i[0], i[1], *i[3:]), works=i[2]) for i in items]


# (case, entered, entered works, tried, provider's documented order, best, alternatives)
CASES = [
    (
        "the entered setting works: nothing to change",
        ep(587, T), True, tried((587, T, True), (465, S, True)), [], None, [],
    ),
    (
        "465 with STARTTLS: change only the encryption, 587 STARTTLS as the alternative",
        ep(465, T), False, tried((465, T, False), (465, S, True), (587, T, True)), [],
        ep(465, S), [ep(587, T)],
    ),
    (
        "587 with SSL/TLS: change only the encryption, 465 SSL/TLS as the alternative",
        ep(587, S), False, tried((587, S, False), (587, T, True), (465, S, True)), [],
        ep(587, T), [ep(465, S)],
    ),
    (
        "closed port: the port with the same encryption is one change, the other is two",
        ep(2525, T), False, tried((2525, T, False), (465, S, True), (587, T, True)), [],
        ep(587, T), [ep(465, S)],
    ),
    (
        "port 25 connects but is no place for a mail client: 587 with the same encryption",
        ep(25, T), False, tried((25, T, True), (587, T, True), (465, S, True)), [],
        ep(587, T), [ep(465, S)],
    ),
    (
        "only the other port works: it is recommended, with no alternative",
        ep(465, S), False, tried((465, S, False), (587, T, True), (465, T, False)), [],
        ep(587, T), [],
    ),
    (
        "nothing works: nothing to recommend",
        ep(587, T), False, tried((587, T, False), (587, S, False), (465, S, False)), [], None, [],
    ),
    (
        "same host beats the provider's documented host (fewer fields changed)",
        ep(465, T), False,
        tried((465, T, False), (465, S, True), (587, T, True, PROVIDER)),
        [ep(587, T, PROVIDER)], ep(465, S), [ep(587, T, PROVIDER)],
    ),
    (
        "a tie in fields changed goes to the provider's documented setting",
        ep(2525, N), False, tried((2525, N, False), (587, T, True), (465, S, True)),
        [ep(465, S), ep(587, T)], ep(465, S), [ep(587, T)],
    ),
    (
        "equal changes, no provider: 587 STARTTLS before 465 SSL/TLS",
        ep(2525, N), False, tried((2525, N, False), (465, S, True), (587, T, True)), [],
        ep(587, T), [ep(465, S)],
    ),
    (
        "a setting tried twice is named once",
        ep(465, T), False, tried((465, S, True), (465, S, True), (587, T, True)), [],
        ep(465, S), [ep(587, T)],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("entered", "works", "items", "preferred", "best", "alternatives"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_recommendation_rule(entered, works, items, preferred, best, alternatives) -> None:
    result = recommend(entered, items, entered_works=works, preferred=preferred)
    assert result.best == best
    assert list(result.alternatives) == alternatives


def test_fields_changed_counts_outlooks_three_fields() -> None:
    assert fields_changed(ep(587, T), ep(587, T)) == 0
    assert fields_changed(ep(465, T), ep(465, S)) == 1
    assert fields_changed(ep(465, T), ep(587, T)) == 1
    assert fields_changed(ep(465, T), ep(587, S, PROVIDER)) == 3


def report(
    verdict: Verdict,
    *,
    recommended: Endpoint | None = None,
    outcome: str = "ok",
    auth: tuple[str, ...] = ("PLAIN",),
    problems: list[str] | None = None,
    tls: str | None = "TLSv1.3",
    found: bool = False,  # only an address given; discovery found HOST 587 STARTTLS
) -> Report:
    probe = ProbeSummary(
        port=587,
        security=T,
        address="127.0.0.1",
        outcome=outcome,
        tls_version=tls,
        auth_after_tls=auth,
        certificate={"problems": problems or []},
    )
    discovery = DiscoverySummary(
        domain="contoso.test",
        servers=(
            DiscoveredServer(
                host=HOST, port=587, security=T, sources=("srv",),
                words="published by the domain (SRV)", confirmed=outcome == "ok",
            ),
        ),
    )  # fmt: skip
    return Report(
        input=ReportInput(
            target=ADDRESS if found else HOST,
            host=HOST,
            port=587,
            security=T,
            email=ADDRESS if found else None,
            user=None,
            client="classic",
        ),
        verdict=verdict,
        recommended=recommended,
        probes=(probe,),
        discovery=discovery if found else None,
    )


ADDRESS = "adele@contoso.test"


# (case, report, advice)
ADVICE_CASES = [
    ("pass: keep them", report(Verdict.PASS), Advice.KEEP),
    ("warn: the settings still work, keep them", report(Verdict.WARN), Advice.KEEP),
    ("a recommendation: change", report(Verdict.FAIL, recommended=ep(465, S)), Advice.CHANGE),
    ("warn with a recommendation (port 25): change",
     report(Verdict.WARN, recommended=ep(587, T)), Advice.CHANGE),
    ("wrong password: the settings are right", report(Verdict.FAIL), Advice.KEEP_FIX_OTHER),
    ("nothing connected", report(Verdict.FAIL, outcome="refused", tls=None), Advice.NONE_WORKED),
    ("expired certificate, nothing else works",
     report(Verdict.FAIL, problems=["expired"]), Advice.NONE_WORKED),
    ("no login offered", report(Verdict.FAIL, auth=()), Advice.NONE_WORKED),
    ("TLS 1.0 only", report(Verdict.FAIL, tls="TLSv1"), Advice.NONE_WORKED),
    ("an address alone, the server found works: enter it (nothing was entered to keep)",
     report(Verdict.PASS, found=True), Advice.FOUND),
    ("an address alone, the server found works with a warning",
     report(Verdict.WARN, found=True), Advice.FOUND),
    ("an address alone, another setting works: change",
     report(Verdict.FAIL, recommended=ep(465, S), found=True), Advice.CHANGE),
    ("an address alone, nothing works", report(Verdict.FAIL, outcome="refused", tls=None,
     found=True), Advice.NONE_WORKED),
    ("an address alone, the server found connects but the login fails: enter it, then fix that",
     report(Verdict.FAIL, found=True), Advice.FOUND_FIX_OTHER),
]  # fmt: skip


@pytest.mark.parametrize(
    ("subject", "advice"),
    [case[1:] for case in ADVICE_CASES],
    ids=[case[0] for case in ADVICE_CASES],
)
def test_settings_advice_comes_from_verdict_and_probes(subject: Report, advice: Advice) -> None:
    assert subject.recommended is None or advice is Advice.CHANGE
    assert settings_advice(subject) is advice


def test_the_settings_to_enter_and_where_they_came_from() -> None:
    found = report(Verdict.PASS, found=True)
    assert advised_settings(found) == ep(587, T)
    assert found_from(found, ep(587, T)) == "published by the domain (SRV)"
    assert found_from(found, ep(465, S)) is None
    # Connects, but the login fails: still the settings to enter (there are none to keep).
    assert advised_settings(report(Verdict.FAIL, found=True)) == ep(587, T)
    changed = report(Verdict.FAIL, recommended=ep(465, S), found=True)
    assert advised_settings(changed) == ep(465, S)
    assert advised_settings(report(Verdict.PASS)) is None  # entered and working: keep them
    assert found_from(report(Verdict.PASS), ep(587, T)) is None


def test_advice_for_says_what_every_renderer_shows() -> None:
    connects = advice_for(report(Verdict.FAIL, found=True))
    assert connects.advice is Advice.FOUND_FIX_OTHER
    assert connects.settings == ep(587, T)
    assert connects.source == "published by the domain (SRV)"
    assert connects.after == "What stops sending is below."
    kept = advice_for(report(Verdict.PASS))
    assert (kept.heading, kept.settings, kept.source, kept.after) == (
        "Your settings work: keep them", None, None, None,
    )  # fmt: skip
