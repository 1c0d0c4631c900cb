"""Server- and user-controlled text never drives a terminal or Slack (issue 12, item 2).

Terminal control (ESC sequences, the 8-bit CSI 0x9b and the other C1 controls), bidi
overrides and isolates, zero-width and other format characters, U+2028/U+2029 and the BOM
must reach no renderer raw: the terminal report (with --transcript), the JSON report and
Slack's messages and views. Three layers of tests:

* the sanitiser itself, fuzzed (nothing hidden survives, bounded, idempotent);
* every renderer, fuzzed with reports whose every text field is hostile;
* a scripted server that puts such characters in its greeting, EHLO lines, replies and
  certificate names (CN, SAN, issuer), through diagnose() and every renderer.
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from bot.views.details import details_view
from bot.views.progress import Step, progress_message
from bot.views.report import report_message
from diagnostics import CheckRequest, EngineConfig, Report, Timeouts, diagnose
from diagnostics._models import Progress
from diagnostics._render import ProgressDisplay, print_report
from diagnostics.sanitize import visible, visible_data
from tests.dns_server import DnsServer
from tests.faults._scripted import ScriptedSmtp, hostile_cert
from tests.faults._support import loopback_engine

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Written out here (not taken from the sanitiser) so that the test is independent of it.
NAMED = {
    0x061C: "ARABIC LETTER MARK",
    0x200B: "ZERO WIDTH SPACE",
    0x200C: "ZERO WIDTH NON-JOINER",
    0x200D: "ZERO WIDTH JOINER",
    0x200E: "LEFT-TO-RIGHT MARK",
    0x200F: "RIGHT-TO-LEFT MARK",
    0x202A: "LEFT-TO-RIGHT EMBEDDING",
    0x202B: "RIGHT-TO-LEFT EMBEDDING",
    0x202C: "POP DIRECTIONAL FORMATTING",
    0x202D: "LEFT-TO-RIGHT OVERRIDE",
    0x202E: "RIGHT-TO-LEFT OVERRIDE",
    0x2028: "LINE SEPARATOR",
    0x2029: "PARAGRAPH SEPARATOR",
    0x2060: "WORD JOINER",
    0x2066: "LEFT-TO-RIGHT ISOLATE",
    0x2067: "RIGHT-TO-LEFT ISOLATE",
    0x2068: "FIRST STRONG ISOLATE",
    0x2069: "POP DIRECTIONAL ISOLATE",
    0xFEFF: "ZERO WIDTH NO-BREAK SPACE",
    0x00AD: "SOFT HYPHEN",
    0x3164: "HANGUL FILLER",
}
ATTACKS = [
    "\x1b[2J\x1b[H",  # clear the screen
    "\x1b]0;owned\x07",  # set the window title
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",  # a terminal hyperlink
    "\x9b2J",  # 8-bit CSI
    "\x9d0;t\x9c",  # 8-bit OSC ... ST
    "\x85",  # NEL
    "\r220 all fine",  # overwrite the line
    "\x08\x08\x08",
    "\x00",
    "\x7f",
    "\u202egnp.exe",
    "\u2066hidden\u2069",
    "a\u200bb",
    "\ufeffbom",
    "line\u2028forged",
    "para\u2029forged",
    "\U000e0041\U000e0042",  # tag characters
    "\udc9b",  # a lone surrogate (a server byte decoded with surrogateescape)
    "\u3164",
]


def forbidden(char: str, *, newline_ok: bool) -> bool:
    if char == "\n":
        return not newline_ok
    code = ord(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or code in NAMED
        or unicodedata.category(char) in {"Cf", "Zl", "Zp", "Cs", "Cc"}
    )


def offenders(text: str, *, newline_ok: bool = True) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if forbidden(c, newline_ok=newline_ok)]


hostile = st.lists(
    st.one_of(
        st.sampled_from(ATTACKS),
        st.sampled_from([chr(c) for c in NAMED]),
        st.characters(min_codepoint=0, max_codepoint=0x9F).map(str),
        st.text(max_size=8),
    ),
    max_size=12,
).map("".join)


# --------------------------------------------------------------------------- the sanitiser


@FUZZ
@given(text=hostile, limit=st.none() | st.integers(min_value=0, max_value=80))
def test_visible_leaves_nothing_hidden_and_is_bounded(text: str, limit: int | None) -> None:
    single = visible(text, limit=limit)
    multi = visible(text, limit=limit, multiline=True)
    assert offenders(single, newline_ok=False) == []
    assert offenders(multi) == []
    if limit is not None:
        assert len(single) <= limit and len(multi) <= limit
    assert visible(single) == single and visible(multi, multiline=True) == multi


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_is_shown_as_visible_escapes(attack: str) -> None:
    shown = visible(attack)
    assert offenders(shown, newline_ok=False) == []
    assert shown.isprintable()
    assert ("\\x" in shown) or ("U+" in shown)


def test_escapes_are_the_documented_forms() -> None:
    assert visible("a\x1bb\x9bc\u202ed") == "a\\x1bb\\x9bcU+202Ed"
    assert visible("two\nlines") == "two\\x0alines"
    assert visible("two\nlines", multiline=True) == "two\nlines"
    assert visible("two\nlines\u202e", multiline=True) == "two\nlinesU+202E"
    assert visible("two\n\u3164\tlines", multiline=True) == "two\nU+3164 lines"
    assert visible("two\nlines", multiline=True, limit=5) == "two\n…"
    assert visible("plain text, unchanged: café ✓") == "plain text, unchanged: café ✓"
    assert visible("x" * 50, limit=10) == "x" * 9 + "…"


# --------------------------------------------------------------------------- every renderer


def report_with(texts: Iterator[str]) -> Report:
    """A report whose every free-text field holds a hostile text (built as the engine does:
    from raw values, through the models)."""
    t = lambda: next(texts)  # noqa: E731
    cert = {"subject": t(), "issuer": t(), "names": [t(), t()], "chain_subjects": [t()]}
    raw: dict[str, Any] = {
        "input": {
            "target": t(),
            "host": t(),
            "port": 587,
            "security": "starttls",
            "email": t(),
            "user": t(),
            "client": "classic",
            "error_text": t(),
        },
        "verdict": "fail",
        "provider": {"name": t(), "source": "mx"},
        "recommended": {"host": t(), "port": 587, "security": "starttls"},
        "findings": [
            {
                "id": "tls.cert.hostname_mismatch",
                "severity": "error",
                "title": t(),
                "detail": t() + "\n" + t(),
                "evidence": {"certificate": cert, "greeting": t(), t(): [t()]},
                "fix": {"summary": t(), "steps": [t(), t()], "values": {t(): t()}},
            },
            {"id": "smtp.banner.rejected", "severity": "warn", "title": t(), "detail": t()},
        ],
        "probes": [
            {
                "port": 587,
                "security": "starttls",
                "address": t(),
                "outcome": t(),
                "greeting": t(),
                "auth_after_tls": [t()],
                "certificate": cert,
                "host": t(),
            }
        ],
        "transcript": [
            {"t_ms": 1.0, "dir": "<", "line": t(), "probe": t()},
            {"t_ms": 2.0, "dir": "*", "line": t(), "probe": "587/starttls"},
        ],
        "timings_ms": {"total": 10.0},
        "error_text_causes": [{"code": t(), "cause": t(), "confirmed": True}],
    }
    return Report.model_validate(raw)


def terminal(report: Report) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, force_terminal=False)
    print_report(report, transcript=True, console=console)
    return out.getvalue()


def strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from strings(value)


def assert_clean_everywhere(report: Report) -> None:
    data = report.to_json_dict()
    assert offenders("".join(strings(data))) == [], "JSON text fields"
    assert offenders(report.to_json()) == [], "JSON document"
    assert offenders(terminal(report)) == [], "terminal report with transcript"
    text, blocks = report_message(report, diagnosis_id="d" * 32)
    message = json.dumps({"text": text, "blocks": [b.to_dict() for b in blocks]})
    assert offenders(json.loads(message)["text"] + "".join(strings(json.loads(message)))) == []
    view = details_view(data, diagnosis_id="d" * 32).to_dict()
    assert offenders("".join(strings(view))) == [], "Technical details"


@pytest.mark.slow
@FUZZ
@given(pool=st.lists(hostile, min_size=1, max_size=20))
def test_no_renderer_writes_a_hidden_character(pool: list[str]) -> None:
    texts = (pool[i % len(pool)] + "x" for i in range(10_000))
    assert_clean_everywhere(report_with(texts))


@pytest.mark.slow
@FUZZ
@given(pool=st.lists(hostile, min_size=1, max_size=10))
def test_progress_is_clean_in_slack_and_on_the_terminal(pool: list[str]) -> None:
    texts = [p + "x" for p in pool]
    steps = [Step(step=str(i), label=t, state="done", note=t) for i, t in enumerate(texts)]
    for phase in ("running", "refused", "error"):
        text, blocks = progress_message(
            user_id="U1", target=texts[0], steps=steps, phase=phase, message=texts[-1]
        )
        payload = [text, *strings([b.to_dict() for b in blocks])]
        assert offenders("".join(payload)) == [], phase
    display = ProgressDisplay()
    out = io.StringIO()
    display.console = Console(file=out, width=200, color_system=None, force_terminal=True)
    display.enabled = True
    with display:
        for i, t in enumerate(texts):
            display.update(Progress(step=str(i), label=t, state="running"))
            display.update(Progress(step=str(i), label=t, state="failed", note=t))
    shown = out.getvalue()
    # The spinner itself writes cursor controls; what a server wrote must not add any.
    for attack in ("\x1b[2J", "\x1b]0;", "\x9b", "\u202e", "\u200b", "\u2028"):
        assert all(attack not in t or attack not in shown for t in texts), attack


def test_visible_data_walks_nested_structures() -> None:
    data = {"a\x1b": ["\u202e", ("\x9b", {"k": "\u200b"})], "n": 3, "none": None}
    cleaned = visible_data(data)
    assert cleaned == {"a\\x1b": ["U+202E", ("\\x9b", {"k": "U+200B"})], "n": 3, "none": None}


# --------------------------------------------------------------------------- a hostile server

NAME = "mail.example.test"
FAST = Timeouts(dns=1.0, connect=1.0, greeting=1.0, command=1.0, tls=1.0)
SERVER_TEXT = "\x1b[2J\x1b]0;owned\x07\x9b2J\u202egnp\u2066i\u2069\u200b\ufeff\u2028\x85"


def engine(dns: DnsServer, ca_bundle: Path) -> EngineConfig:
    return loopback_engine(dns, ca_bundle, budget=4.0, timeouts=FAST)


async def test_a_hostile_server_reaches_no_renderer_raw(dns, ca_bundle) -> None:
    evil = SERVER_TEXT.encode("utf-8")
    cert = hostile_cert(
        common_name=f"cn{SERVER_TEXT}",
        names=[NAME, f"san\x1b[31m{SERVER_TEXT}.test", "b\u202eexe.test"],
        organization=f"org{SERVER_TEXT}",
    )
    server = ScriptedSmtp(
        cert=cert,
        greeting=[b"220-" + NAME.encode() + b" " + evil, b"220 ready " + evil],
        ehlo=[b"250-" + NAME.encode() + evil, b"250-X-" + evil, b"250 STARTTLS"],
        ehlo_tls=[b"250-hello " + evil, b"250 AUTH PLAIN LOGIN"],
    )
    async with server:
        dns.zone.host(NAME, server.host)
        report = await diagnose(
            CheckRequest(target=NAME, port=587, security="starttls"), engine(dns, ca_bundle)
        )
    assert len(server.received) >= 3, server.received  # the dialogue really happened
    dumped = report.to_json()
    assert "U+202E" in dumped and "\\\\x1b" in dumped  # the text is there, made visible
    probe = report.probes[0]
    assert probe.certificate is not None and "U+202E" in probe.certificate["subject"]
    assert any("san\\x1b[31m" in name for name in probe.certificate["names"])
    assert_clean_everywhere(report)


# --------------------------------------------------------------------------- addresses (item 10)

INVISIBLE = [*sorted(set(NAMED) - {0x2028, 0x2029}), 0xE0041, 0x180E, 0x2064]
ADDRESS_SPOTS = ["alice{}@example.com", "{}alice@example.com", "alice@exa{}mple.com"]


@FUZZ
@given(
    code=st.sampled_from(INVISIBLE),
    spot=st.sampled_from(ADDRESS_SPOTS),
    field=st.sampled_from(["target", "email", "user", "connect"]),
)
def test_invisible_characters_in_an_address_are_refused_by_name(code, spot, field) -> None:
    """Issue 12 item 10: U+202E and zero-width characters got into the progress note and the
    report through an email local part. Now: a clear one-line refusal naming the character."""
    from pydantic import ValidationError

    from bot.parsing import OpenModal, ParseError, parse_command

    value = spot.format(chr(code))
    if field == "connect":  # a host name: the same places, no local part
        value = value.replace("@", ".")
    fields = {"target": "mail.example.test", field: value}
    with pytest.raises(ValidationError) as caught:
        CheckRequest(**fields)
    shown = caught.value.errors()[0]["msg"]
    assert f"U+{code:04X}" in shown and "invisible or text-direction" in shown
    assert chr(code) not in str(caught.value)
    if field == "target":  # the slash command: `/smtpcheck alice\u202e@example.com`
        try:
            command = parse_command(f"{value} 587")
        except ParseError as parsed:
            said = [str(parsed)]
        else:  # the form opens with the problem said, and without the address
            assert isinstance(command, OpenModal), command
            assert chr(code) not in repr(command.initial)
            said = list(command.problems)
        assert any(f"U+{code:04X}" in s and "\n" not in s for s in said), said


@pytest.mark.parametrize("code", INVISIBLE)
def test_the_slack_form_names_the_field_with_the_invisible_character(code: int) -> None:
    from bot.forms import FieldErrors, build_request
    from bot.views import modal as m

    base = {"host": "smtp.example.test", "port": "587", "security": "starttls"}
    for key, block in (("email", m.EMAIL), ("host", m.SERVER), ("user", m.USER)):
        value = "bob@example.test" if key != "user" else "bob"
        value = value.replace("b", "b" + chr(code), 1)
        with pytest.raises(FieldErrors) as caught:
            build_request({**base, key: value})
        assert f"U+{code:04X}" in caught.value.errors.get(block, ""), (key, caught.value.errors)


@FUZZ
@given(local=hostile)
def test_an_accepted_address_carries_nothing_hidden(local: str) -> None:
    from pydantic import ValidationError

    try:
        request = CheckRequest(target=f"x{local}@example.com", user=f"u{local}")
    except ValidationError:
        return
    for text in (request.target, request.email or "", request.user or ""):
        assert offenders(text, newline_ok=False) == [], text


@FUZZ
@given(text=hostile)
def test_an_explained_paste_quotes_nothing_hidden(text: str) -> None:
    """`/smtpcheck explain <paste>`: codes and replies read from the paste come back clean."""
    from diagnostics.knowledge._explain import explain_text

    for paste in (f"535 5.7.8 {text}", f"0x800CCC0E{text}", f"{text} 550 5.7.1 {text}"):
        answer = explain_text(paste)
        assert offenders(answer.model_dump_json()) == [], paste
        assert offenders("".join(strings(answer.model_dump(mode="json")))) == [], paste
