"""The report's actions: Escalate on every report (a passing check included)."""

from __future__ import annotations

import json

import pytest

from bot.views.report import ESCALATE_ACTION, RERUN_ACTION, report_message
from diagnostics import Report, Security, Verdict
from tests import factories


def report(verdict: Verdict) -> Report:
    return factories.report(
        "mail.example.test",
        587,
        security=Security.STARTTLS,
        verdict=verdict,
        timings_ms={"total": 321.0},
    )


@pytest.mark.parametrize("verdict", list(Verdict))
def test_escalate_is_on_every_report(verdict: Verdict) -> None:
    # A PASS is when a person is needed most: the server works from here, Outlook still fails.
    _, blocks = report_message(report(verdict), diagnosis_id="d1", escalation=True)
    actions = [b.to_dict() for b in blocks if b.to_dict().get("block_id") == "report_actions"]
    assert len(actions) == 1
    ids = [e["action_id"] for e in actions[0]["elements"]]
    assert ESCALATE_ACTION in ids and RERUN_ACTION in ids


def test_no_escalate_without_a_help_desk_channel() -> None:
    _, blocks = report_message(report(Verdict.PASS), diagnosis_id="d1", escalation=False)
    assert ESCALATE_ACTION not in json.dumps([b.to_dict() for b in blocks])
