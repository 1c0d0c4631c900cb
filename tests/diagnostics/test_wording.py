"""Plain words for durations and probe results: what users read instead of machine names."""

from __future__ import annotations

import pytest

from diagnostics._models import ProbeOutcome, ProbeSummary, Security
from diagnostics.wording import (
    OUTCOME_WORDS,
    duration_text,
    outcome_words,
    probe_result_words,
    shown_code,
)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0.2, "<1 ms"),
        (37.4, "37 ms"),
        (412.0, "412 ms"),
        (999.4, "999 ms"),
        (999.6, "1.0 s"),
        (1440.0, "1.4 s"),
        (20_000.0, "20.0 s"),
        (61_000.0, "1 min 1 s"),
        (None, "?"),
    ],
)
def test_durations_are_milliseconds_below_one_second(ms: float | None, text: str) -> None:
    assert duration_text(ms) == text


def test_every_outcome_has_plain_words_without_underscores() -> None:
    assert set(OUTCOME_WORDS) >= {o.value for o in ProbeOutcome}
    for outcome in ProbeOutcome:
        words = outcome_words(outcome.value)
        assert "_" not in words, outcome
        if "_" in outcome.value:  # a machine name with blanks is still a machine name
            assert words != outcome.value.replace("_", " "), outcome


def probe(outcome: str = "ok", **fields: object) -> ProbeSummary:
    values: dict = {"tls_version": "TLSv1.3", "auth_after_tls": ("PLAIN",), **fields}
    return ProbeSummary(
        port=587, security=Security.STARTTLS, address=None, outcome=outcome, **values
    )


@pytest.mark.parametrize(
    ("summary", "words"),
    [
        (probe(), "works"),
        (probe("plaintext_on_tls", tls_version=None), "answered unencrypted"),
        (probe(certificate={"problems": ["expired"]}), "certificate expired"),
        (probe(tls_version="TLSv1"), "outdated TLS only"),
        (probe(auth_after_tls=()), "no login offered"),
        (probe(tls_version=None), "works, unencrypted"),
    ],
)
def test_probe_result_words(summary: ProbeSummary, words: str) -> None:
    assert probe_result_words(summary) == words


def test_only_real_error_codes_are_shown() -> None:
    assert shown_code("0x800CCC0E") == "0x800CCC0E"
    assert shown_code("535 5.7.139") == "535 5.7.139"
    assert shown_code("encryption-type-not-supported") is None
    assert shown_code(None) is None
