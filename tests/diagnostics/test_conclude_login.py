"""A pasted cause only a login can confirm, with no password given (issue 14): "login not
tested", never "not what the test saw", and the matched cause's fix is given."""

from __future__ import annotations

from diagnostics import _conclude
from diagnostics._models import OutlookClient
from diagnostics.knowledge import FixContext, load_knowledge

PASTE = (
    "The server responded: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
    "is disabled for the Tenant."
)


def test_untested_login_cause_says_so_and_carries_the_causes_fix() -> None:
    kb = load_knowledge()
    matches = kb.parse_error_text(PASTE)
    causes, made = _conclude.error_text_causes(matches, [], None, login_tested=False)
    assert causes[0].confirmed is None and causes[0].note == "login not tested"
    fixed = _conclude.with_fix(kb, made[0], FixContext(), OutlookClient.CLASSIC)
    assert fixed.fix is not None
    assert "Authenticated SMTP" in " ".join(fixed.fix.steps)  # the tenant-disabled fix


def test_tested_login_keeps_the_old_reading() -> None:
    kb = load_knowledge()
    matches = kb.parse_error_text(PASTE)
    causes, made = _conclude.error_text_causes(matches, [], None, login_tested=True)
    assert causes[0].note is None
    fixed = _conclude.with_fix(kb, made[0], FixContext(), OutlookClient.CLASSIC)
    assert "fix_for" not in made[0].evidence
    assert fixed.fix is None or "Authenticated SMTP" not in " ".join(fixed.fix.steps)
