"""The progress checklist: context probes are neutral, durations in ms, one total."""

from __future__ import annotations

from bot.views.progress import CONTEXT_FAILED_ICON, STATE_ICON, Step, progress_message
from diagnostics import Verdict
from diagnostics._models import Progress
from tests.slack_stub import mrkdwn_texts


def text_of(steps: list[Step], **kwargs: object) -> str:
    _, blocks = progress_message(user_id="U0USER", target="mail.example.test:587", steps=steps,
                                 **kwargs)  # fmt: skip
    return "\n".join(mrkdwn_texts([b.to_dict() for b in blocks]))


def event(step: str, role: str | None, state: str, **extra: object) -> Progress:
    return Progress(step=step, label=f"label {step}", state=state, role=role, **extra)  # type: ignore[arg-type]


def test_a_setting_the_user_never_chose_is_never_a_red_cross() -> None:
    steps = [
        Step.from_event(event("587/starttls", "entered", "done", duration_ms=38.2)),
        Step.from_event(event("587/ssl", "mode_check", "failed", duration_ms=4.0)),
        Step.from_event(event("465/ssl", "alternative", "failed", duration_ms=1200.0)),
    ]
    text = text_of(steps, phase="finished", verdict=Verdict.PASS, total_ms=412.0)
    assert STATE_ICON["failed"] not in text
    assert text.count(CONTEXT_FAILED_ICON) == 2
    assert "_38 ms_" in text and "_4 ms_" in text and "_1.2 s_" in text
    assert "checked in 412 ms" in text
    assert "0.0 s" not in text


def test_the_entered_setting_failing_is_a_red_cross() -> None:
    steps = [Step.from_event(event("587/ssl", "entered", "failed", duration_ms=5.0))]
    text = text_of(steps, phase="finished", verdict=Verdict.FAIL, total_ms=80.0)
    assert STATE_ICON["failed"] in text and CONTEXT_FAILED_ICON not in text


def test_running_steps_show_no_duration() -> None:
    steps = [Step.from_event(event("dns", None, "running"))]
    text = text_of(steps, phase="running")
    assert " ms_" not in text and " s_" not in text
