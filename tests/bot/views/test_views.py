"""Pure view builders: Block Kit limits however long the data, and no mrkdwn injection."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bot.views.details import details_view, transcript_chunks
from bot.views.escalation import EscalationInfo, escalation_message, mention
from bot.views.help import error_blocks, help_blocks
from bot.views.home import RecentCheck, home_view
from bot.views.modal import check_modal, credentials_modal, pack_metadata, unpack_metadata
from bot.views.progress import Step, progress_message
from bot.views.report import changes_between, report_message
from bot.views.text import clip_escaped, code_block, escape
from diagnostics import Endpoint, Finding, Fix, Report, Security, Severity, Verdict
from diagnostics._models import ErrorTextCause, ProbeSummary, TranscriptLine
from tests import factories
from tests.slack_stub import forged, mrkdwn_texts, validate_blocks, validate_view, walk

EVIL = "<!channel> <https://evil.example|click here> & <@U0BOSS> <#C0SECRET> ```x``` *b*"


def hostile_report(*, findings: int = 5, text_size: int = 200, transcript: int = 20) -> Report:
    fix = Fix(
        summary=EVIL * 3,
        steps=tuple(f"step {i} {EVIL}" + "y" * text_size for i in range(30)),
        values={"Outgoing server": EVIL, "Port": "587"},
        link="https://support.example/help?a=1&b=2",
    )
    return factories.report(
        "mail.example.test",
        587,
        security=Security.SSL,
        email="a@example.test",
        user=EVIL,
        client="mac",
        error_text=EVIL,
        verdict=Verdict.FAIL,
        recommended=Endpoint(host="mail.example.test", port=587, security=Security.STARTTLS),
        findings=tuple(
            Finding(
                id=f"test.finding.{i}",
                severity=[Severity.ERROR, Severity.WARN, Severity.INFO][i % 3],
                title=f"{EVIL} title {i} " + "t" * text_size,
                detail=f"{EVIL} " + "d" * (text_size * 10),
                evidence={"greeting": EVIL, "n": i},
                fix=fix,
            )
            for i in range(findings)
        ),
        probes=tuple(
            ProbeSummary(
                port=587,
                security=Security.STARTTLS,
                address="127.0.0.1",
                outcome="ok",
                greeting=EVIL,
            )
            for _ in range(3)
        ),
        transcript=tuple(
            TranscriptLine(
                t_ms=i, dir="<", line=f"220 {EVIL} " + "z" * (i % 700), probe="587/starttls"
            )
            for i in range(transcript)
        ),
        timings_ms={"total": 1234.5, "dns": 3.0},
        error_text_causes=(ErrorTextCause(code="0x800CCC0E", cause=EVIL, confirmed=True),),
    )


def assert_safe(payload: object) -> None:
    for text in mrkdwn_texts(payload):
        assert not forged(text, allowed_links=("https://support.example/",)), text
        assert "<@U0BOSS>" not in text and "<#C0SECRET>" not in text
    for node in walk(payload):
        if node.get("type") == "mrkdwn":
            assert node.get("verbatim") is True


def as_message(text: str, blocks: list) -> dict:
    return {"text": text, "blocks": [b.to_dict() for b in blocks]}


def test_escape_covers_the_three_characters() -> None:
    assert escape("<a & b>") == "&lt;a &amp; b&gt;"
    assert clip_escaped("&&&&", 6) == "&amp;…"  # never half an entity
    block = code_block("```" + "<" * 5000, 3000)
    assert len(block) <= 3000 and block.startswith("```\n") and block.endswith("\n```")
    assert block.count("```") == 2


@pytest.mark.parametrize("findings,size", [(0, 0), (5, 100), (60, 3000), (200, 10)])
def test_report_fits_block_kit_and_is_escaped(findings: int, size: int) -> None:
    report = hostile_report(findings=findings, text_size=size)
    text, blocks = report_message(report, diagnosis_id="d" * 32, changes=["New: " + EVIL] * 40)
    message = as_message(text, blocks)
    validate_blocks(message["blocks"], limit=50)
    assert_safe(message)
    dumped = json.dumps(message)
    if findings:
        assert "Outgoing server" in dumped  # fix values shown
        assert "<https://support.example/help?a=1&b=2|More help>" in dumped
    assert "report_rerun" in dumped and "report_details" in dumped


def test_report_lists_errors_before_warnings_and_shows_recommendation() -> None:
    report = hostile_report(findings=6, text_size=5)
    _, blocks = report_message(report, diagnosis_id="abc")
    dumped = json.dumps([b.to_dict() for b in blocks])
    assert dumped.index("title 0") < dumped.index("title 1")  # error before warn
    assert dumped.index("title 3") < dumped.index("title 4")
    assert "`STARTTLS`" in dumped and "`587`" in dumped
    assert "Outlook for Mac" in dumped


def test_report_without_escalation_channel_has_no_escalate_button() -> None:
    _, blocks = report_message(hostile_report(), diagnosis_id="abc", escalation=False)
    assert "report_escalate" not in json.dumps([b.to_dict() for b in blocks])


def test_changes_between_runs() -> None:
    before = hostile_report(findings=3).to_json_dict()
    after = hostile_report(findings=1)
    changes = changes_between(before, after)
    assert any(c.startswith("Gone:") for c in changes)
    assert changes_between(after.to_json_dict(), after) == []


@pytest.mark.slow
@pytest.mark.parametrize("transcript", [0, 10, 5000])
def test_details_pages_fit(transcript: int) -> None:
    report = hostile_report(findings=50, transcript=transcript).to_json_dict()
    chunks = transcript_chunks(report)
    assert all(len(c) <= 3000 for c in chunks)
    view = details_view(report, diagnosis_id="abc").to_dict()
    validate_view(view)
    assert_safe(view)
    pages = json.dumps(view).count("details_page_next")
    assert pages == (1 if len(chunks) > 12 else 0)
    last = details_view(report, diagnosis_id="abc", page=10_000).to_dict()
    validate_view(last)
    assert "details_page_next" not in json.dumps(last)


def test_progress_message_escapes_server_notes() -> None:
    steps = [
        Step(step=str(i), label=EVIL, state="done", elapsed_ms=i, note=EVIL * 50) for i in range(60)
    ]
    text, blocks = progress_message(user_id="U1", target=EVIL, steps=steps, phase="running")
    message = as_message(text, blocks)
    validate_blocks(message["blocks"], limit=50)
    assert_safe(message)
    for phase in ("queued", "refused", "interrupted", "error"):
        text, blocks = progress_message(
            user_id="U1", target="h", steps=[], phase=phase, message=EVIL
        )
        assert_safe(as_message(text, blocks))


def test_modal_prefill_and_metadata_limits() -> None:
    view = check_modal(channel_id="C1", error_text=EVIL * 500, credential_test=True).to_dict()
    validate_view(view)
    fields = {"host": "h" * 250, "email": "e" * 300, "user": "u" * 320, "error_text": "x" * 2000}
    metadata = pack_metadata(fields, channel_id="C1")
    assert len(metadata) <= 3000
    channel, restored = unpack_metadata(metadata)
    assert (
        channel == "C1"
        and restored["host"] == fields["host"]
        and restored["user"] == fields["user"]
    )
    validate_view(credentials_modal(fields=fields, channel_id="C1").to_dict())
    assert unpack_metadata("not json") == (None, {})


def test_escalation_message() -> None:
    info = EscalationInfo(
        escalation_id="7",
        requester_id="U0ALICE",
        summary=EVIL * 100,
        permalink="https://test.slack.invalid/archives/C1/p1",
        incident_users=3,
        host=EVIL,
    )
    text, blocks = escalation_message(info)
    message = as_message(text, blocks)
    validate_blocks(message["blocks"], limit=50)
    dumped = json.dumps(message)
    assert "Possible incident" in dumped and "escalation_claim" in dumped
    for text_ in mrkdwn_texts(message):
        assert not forged(text_, allowed_links=("https://test.slack.invalid/",))
    assert mention("U0ALICE") == "<@U0ALICE>"
    assert mention("!channel") == "someone"
    forged_link = EscalationInfo(
        escalation_id="1", requester_id="U1", summary="s", permalink="https://x.example/a|evil>"
    )
    assert "evil" not in json.dumps(as_message(*escalation_message(forged_link)))
    resolved = EscalationInfo(
        escalation_id="1",
        requester_id="U1",
        summary="s",
        permalink=None,
        status="resolved",
        resolved_by="U2",
    )
    assert "escalation_" not in json.dumps(as_message(*escalation_message(resolved)))


def test_home_and_help() -> None:
    recent = [
        RecentCheck(
            target=EVIL, verdict="fail", created_at=dt.datetime.now(dt.UTC), top_problem=EVIL
        )
    ] * 30
    view = home_view(recent).to_dict()
    validate_view(view)
    assert_safe(view)
    text, blocks = help_blocks()
    validate_blocks([b.to_dict() for b in blocks], limit=50)
    text, blocks = error_blocks(EVIL)
    assert_safe(as_message(text, blocks))
