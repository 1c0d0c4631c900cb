"""The report's words (issue 17): what to do with the settings, said from the verdict and
the probes; one total in ms; no template slug; no sentence twice in one finding."""

from __future__ import annotations

from bot.views.report import report_message
from diagnostics import Endpoint, Finding, Report, Security, Severity, Verdict
from diagnostics._models import ErrorTextCause
from tests.factories import address_discovery, probe, report
from tests.slack_stub import mrkdwn_texts

PLAINLY = "The problem lies between your computer and the server"


def text(subject: Report) -> str:
    _, blocks = report_message(subject, diagnosis_id="d1")
    return "\n".join(mrkdwn_texts([b.to_dict() for b in blocks]))


def test_a_warn_whose_settings_work_says_keep_them() -> None:
    shown = text(report(verdict=Verdict.WARN, probes=(probe(tls_version="TLSv1.3"),)))
    assert "Your settings work: keep them" in shown
    assert "none of the settings" not in shown.lower()


def test_nothing_working_says_so() -> None:
    shown = text(report(verdict=Verdict.FAIL, probes=(probe(outcome="refused", role="entered"),)))
    assert "None of the settings tried worked" in shown
    assert "Recommended settings" not in shown


def test_the_closest_setting_comes_with_the_other_working_one() -> None:
    host = "mail.contoso-mail.de"
    shown = text(
        report(
            port=465,
            security=Security.STARTTLS,
            verdict=Verdict.FAIL,
            recommended=Endpoint(host=host, port=465, security=Security.SSL),
            alternatives=(Endpoint(host=host, port=587, security=Security.STARTTLS),),
        )
    )
    assert "*Use these settings in Outlook:*" in shown
    assert "• Port: `465`" in shown and "• Encryption: `SSL/TLS`" in shown
    assert "_Also works:_ port `587` with `STARTTLS`" in shown


def test_the_footer_gives_the_one_total_in_milliseconds() -> None:
    shown = text(report(timings_ms={"total": 37.4}))
    assert "checked in 37 ms" in shown and "0.0 s" not in shown


def hint(detail: str) -> Finding:
    return Finding(
        id="client.server_ok_from_here",
        severity=Severity.WARN,
        title="The server works from here, but not for the user's Outlook",
        detail=detail,
    )


def test_the_client_side_sentence_is_said_once() -> None:
    for detail in (f"From here it works. {PLAINLY}: a firewall or VPN.", "From here it works."):
        shown = text(report(verdict=Verdict.WARN, findings=(hint(detail),)))
        assert shown.count(PLAINLY) == 1, shown


def test_a_pasted_error_shows_real_codes_never_the_datas_labels() -> None:
    causes = (
        ErrorTextCause(
            code="encryption-type-not-supported", cause="Wrong encryption.", confirmed=True
        ),
        ErrorTextCause(code="0x800CCC0E", cause="Cannot connect.", confirmed=False),
    )
    cause_finding = Finding(
        id="input.error_text.cause", severity=Severity.INFO, title="The error you pasted: confirmed"
    )
    shown = text(report(error_text_causes=causes, findings=(cause_finding,)))
    assert "encryption-type-not-supported" not in shown
    assert "`0x800CCC0E` Cannot connect." in shown
    assert "The error you pasted" not in shown  # its section says it; not a second time


def test_an_address_whose_server_connects_but_fails_gives_the_settings_to_enter() -> None:
    # Nothing was entered, so there is nothing to "keep": the settings found are to be entered,
    # and the problems below are what stops sending.
    found = report(
        target="adele@contoso.test",
        email="adele@contoso.test",
        security=Security.STARTTLS,
        verdict=Verdict.FAIL,
        probes=(probe(role="entered", auth_after_tls=("PLAIN",), tls_version="TLSv1.3"),),
        discovery=address_discovery(),
    )
    shown = text(found)
    assert "Enter these settings in Outlook (found for the address; they connect)" in shown
    assert "What stops sending is below." in shown
    assert "keep them" not in shown
