"""`diagnostics.explain`: the one explanation behind `smtpcheck explain`, `check --error`,
the Slack message shortcut and `/smtpcheck explain` (issue 14)."""

from __future__ import annotations

import datetime as dt

import diagnostics
from diagnostics.knowledge import load_knowledge
from diagnostics.knowledge._explain import Explanation, explain


def test_explain_is_part_of_the_engine_api() -> None:
    result = diagnostics.explain("535 5.7.8 Username and Password not accepted", client="mac")
    assert isinstance(result, diagnostics.Explanation)
    assert result.client == "mac" and result.recognised and not result.login_tested
    assert [f.id for f in result.findings] == ["auth.failed.credentials"]
    assert result.fixes and result.fixes[0].client == "mac"


def test_unknown_reply_gets_a_neutral_answer_with_the_servers_reason() -> None:
    kb = load_knowledge()
    permanent = explain(kb, "554 5.7.0 Your message could not be accepted (XYZ-42)")
    assert [f.id for f in permanent.findings] == ["smtp.reply.unrecognised"]
    text = " ".join([permanent.causes[0].cause, *permanent.fixes[0].steps])
    assert "permanent" in text and "XYZ-42" in text and "send the provider" in text
    assert "smtp.sender.rejected" not in {c for x in permanent.causes for c in x.finding_ids}
    temporary = explain(kb, "450 4.7.1 Try later please")
    assert temporary.causes[0].transient is True
    assert "temporary" in temporary.causes[0].cause.lower()


def test_a_quoted_reply_is_not_read_again_as_a_sentence() -> None:
    # "Authentication unsuccessful" inside the 5.7.139 reply must not add the generic
    # "wrong password" cause: the most specific rule wins, the generic one stays silent.
    kb = load_knowledge()
    result = explain(kb, "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                         "is disabled for the Tenant.")  # fmt: skip
    assert [c.code for c in result.causes] == ["535 5.7.139"]
    assert [f.id for f in result.findings] == ["auth.failed.basic_disabled"]


def test_not_about_sending_is_said_plainly() -> None:
    kb = load_knowledge()
    result = explain(kb, "Log onto incoming mail server (POP3): Your e-mail server rejected "
                         "your login.")  # fmt: skip
    assert result.not_outgoing_settings
    assert any("not an outgoing-settings problem" in note for note in result.notes)
    sending = explain(kb, "530 5.7.57 Client not authenticated to send mail")
    assert not sending.not_outgoing_settings and not sending.notes


def test_dates_in_the_fix_follow_today() -> None:
    kb = load_knowledge()
    text = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled"

    def steps(today: dt.date) -> str:
        result = explain(kb, text, today=today, provider_key="microsoft365")
        return " ".join(s for f in result.fixes for s in f.steps)

    assert "short-lived" in steps(dt.date(2026, 12, 1))
    assert "began switching" in steps(dt.date(2027, 2, 1))


def test_unrecognised_text_is_said_and_long_text_is_marked() -> None:
    kb = load_knowledge()
    nothing = explain(kb, "hello, my printer is out of toner")
    assert not nothing.recognised and not nothing.causes and not nothing.findings
    long = explain(kb, "x" * 30_000)
    assert long.truncated


def test_explanation_round_trips_as_json() -> None:
    result = diagnostics.explain("421 4.7.0 Temporary System Problem. Try again later - gsmtp")
    again = Explanation.model_validate_json(result.model_dump_json())
    assert again == result
