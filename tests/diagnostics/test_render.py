"""The terminal report: 80 columns first, whole words and IDs, plain words for results."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from diagnostics import _render
from diagnostics._models import (
    Endpoint,
    Finding,
    Fix,
    ProbeOutcome,
    ProbeSummary,
    Progress,
    Report,
    ReportInput,
    Security,
    Severity,
    Verdict,
)
from diagnostics.wording import outcome_words
from tests import factories

HOST = "a-rather-long-outgoing-server-name.mail.example.test"


def wide_report() -> Report:
    probes = tuple(
        ProbeSummary(
            port=587,
            security=Security.SSL if i % 2 else Security.STARTTLS,
            address=None,
            outcome=outcome.value,
            role="entered" if i == 0 else "alternative",
            tls_version="TLSv1.3" if outcome is ProbeOutcome.OK else None,
            auth_after_tls=("PLAIN", "LOGIN", "XOAUTH2") if outcome is ProbeOutcome.OK else (),
            elapsed_ms=12.0 * i,
            host=HOST if i == 3 else None,
        )
        for i, outcome in enumerate(ProbeOutcome)
    )
    finding = Finding(
        id="tls.mode.ssl_on_starttls_port",
        severity=Severity.ERROR,
        title=f"Port 587 on {HOST} expects STARTTLS, but SSL/TLS was chosen in Outlook",
        detail="word " * 40,
        fix=Fix(summary="Set the *Encryption* to STARTTLS", steps=("step " * 30,)),
    )
    return Report(
        input=ReportInput(
            target=HOST, host=HOST, port=587, security=Security.SSL, email=None, user=None,
            client="classic",
        ),
        verdict=Verdict.FAIL,
        recommended=Endpoint(host=HOST, port=587, security=Security.STARTTLS),
        alternatives=(Endpoint(host=HOST, port=465, security=Security.SSL),),
        findings=(finding,),
        probes=probes,
        timings_ms={"total": 37.4},
    )  # fmt: skip


def rendered(report: Report, width: int) -> list[str]:
    out = io.StringIO()
    _render.print_report(report, console=Console(file=out, width=width, color_system=None))
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_nothing_is_wider_than_the_terminal_and_nothing_splits(width: int) -> None:
    report = wide_report()
    lines = rendered(report, width)
    assert max(len(line) for line in lines) <= width
    # Each result's words, each setting, and the finding ID stay whole on one line.
    for probe in report.probes:
        assert any(outcome_words(probe.outcome) in line for line in lines), probe.outcome
    assert any("tls.mode.ssl_on_starttls_port" in line for line in lines)
    assert any("587 SSL/TLS" in line for line in lines)
    assert any("checked in 37 ms" in line for line in lines)
    assert any("Also works: port 465 with SSL/TLS" in line for line in lines)


def test_the_finding_id_is_only_a_dim_suffix() -> None:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    for part in _render.report_parts(wide_report()):
        for segment in console.render(part, console.options):
            if "tls.mode." in segment.text:
                assert segment.style is not None and segment.style.dim, segment


@pytest.mark.parametrize(
    ("role", "state", "mark"),
    [("entered", "failed", "✗"), ("mode_check", "failed", "·"), ("alternative", "done", "✓")],
)
def test_progress_line_marks_only_the_entered_setting_as_failed(role, state, mark) -> None:
    event = Progress(step="587/ssl", label="Trying", state=state, note="port closed", role=role,
                     duration_ms=3.2)  # fmt: skip
    line = _render.progress_line(event).plain
    assert line.startswith(mark) and line.endswith("(3 ms)")


def test_a_refused_login_shows_in_the_table_of_what_was_tried() -> None:
    report = wide_report()
    refused = Finding(
        id="auth.failed.credentials",
        severity=Severity.ERROR,
        title="Wrong user name or password",
        evidence={"port": 587, "security": "starttls"},
    )
    lines = rendered(report.model_copy(update={"findings": (refused,)}), 80)
    entered = next(line for line in lines if "as entered" in line)
    assert "login refused" in entered
    assert sum("login refused" in line for line in lines) == 1  # the alternatives' own words


def test_an_address_whose_server_connects_but_fails_gives_the_settings_to_enter() -> None:
    found = factories.report(
        target="adele@contoso.test",
        email="adele@contoso.test",
        security=Security.STARTTLS,
        verdict=Verdict.FAIL,
        probes=(factories.probe(role="entered", auth_after_tls=("PLAIN",), tls_version="TLSv1.3"),),
        discovery=factories.address_discovery(),
    )
    shown = "\n".join(rendered(found, 80))
    assert "Enter these settings in Outlook (found for the address; they connect)" in shown
    assert "What stops sending is below." in shown
    assert "keep them" not in shown
