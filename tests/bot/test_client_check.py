"""The check from the user's computer, end to end through the Slack app: the report's
buttons, the script modal, the paste form, and the verdict in the user's thread.

The bot diagnoses real loopback SMTP servers (587 STARTTLS and 465 SSL/TLS on one address);
"the user's computer" is a pasted output, or this machine running the script the modal shows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.views import modal as m
from bot.views.client_check import (
    OUTPUT_BLOCK,
    PASTE_CALLBACK,
    SCRIPT_CALLBACK,
    comparison_message,
    script_view,
)
from bot.views.report import (
    CLIENT_PASTE_ACTION,
    CLIENT_SCRIPT_MAC_ACTION,
    CLIENT_SCRIPT_WINDOWS_ACTION,
    RERUN_ACTION,
)
from bot.views.text import clip_escaped
from diagnostics import Report, Security
from diagnostics.client_check import (
    BEGIN_MARKER,
    END_MARKER,
    attach_fixes,
    client_check_script,
    compare,
    parse_client_output,
)
from tests.bot import support
from tests.bot.support import blocks_text, form, is_report, submit, wait_report
from tests.certs import CertFactory
from tests.client_side import fake_nc_env, interceptor_cert, run_script
from tests.factories import probe, report
from tests.servers import SERVER_NAME, TEST_PASSWORD, SmtpTestServer, next_loopback
from tests.slack_stub import (
    BotHarness,
    Call,
    forged,
    mrkdwn_texts,
    validate_blocks,
    validate_view,
)

CONNECTION_ERROR = (
    "Send test e-mail message: Cannot connect to the outgoing (SMTP) server. 0x800CCC0E"
)
EVIL = "<!channel> <https://evil.example|click> <@U0BOSS> &amp;"
OPENSSL = shutil.which("openssl")


# --------------------------------------------------------------------------- the bot, the servers


class Site:
    """The mail server as the bot sees it: 587 STARTTLS and 465 SSL/TLS on one address."""

    def __init__(self, cert_factory: CertFactory) -> None:
        self.host = next_loopback()
        self.cert = cert_factory.valid(SERVER_NAME, self.host)
        self.servers: list[SmtpTestServer] = []

    async def start(self, cert: Any = None) -> Site:
        cert = cert or self.cert
        self.servers = [
            await SmtpTestServer(host=self.host, port=587, mode="starttls", cert=cert).start(),
            await SmtpTestServer(host=self.host, port=465, mode="ssl", cert=cert).start(),
        ]
        return self

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
        self.servers = []


@pytest.fixture
async def site(cert_factory: CertFactory) -> AsyncIterator[Site]:
    running = await Site(cert_factory).start()
    try:
        yield running
    finally:
        await running.stop()


# --------------------------------------------------------------------------- helpers


def as_obj(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def view_of(call: Call) -> dict[str, Any]:
    return as_obj(call.args["view"])


def button_values(call: Call) -> dict[str, str]:
    """action_id -> value of every button in a message."""
    found = {}
    for block in as_obj(call.args.get("blocks")) or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button":
                found[element["action_id"]] = element["value"]
    return found


def is_verdict(call: Call) -> bool:
    return "client_compare_actions" in json.dumps(call.args.get("blocks", []))


async def diagnose_via_form(
    bot: BotHarness,
    site: Site,
    *,
    error_text: str | None = CONNECTION_ERROR,
    client: str = "classic",
    fails_here: bool = False,
) -> tuple[Call, str]:
    """The modal, submitted: returns the threaded report and its diagnosis ID."""
    fields: dict[str, Any] = {
        "server": site.host,
        "port": "587",
        "security": "starttls",
        "auth": m.AUTH_OPTION,
        "client": client,
    }
    if error_text:
        fields["error_text"] = error_text
    values = form(**fields)
    if fails_here:
        values[m.FAILS_HERE] = {
            m.VALUE: {"type": "checkboxes", "selected_options": [{"value": m.FAILS_HERE_OPTION}]}
        }
    before = len([c for c in bot.stub.to("chat.postMessage") if is_report(c)])
    reply = await submit(bot, values)
    assert reply.status == 200 and not reply.text.strip(), reply.text
    report = (await wait_report(bot, count=before + 1))[-1]
    assert RERUN_ACTION in button_values(report), "not a report"
    return report, button_values(report)[RERUN_ACTION]


async def stored_report(bot: BotHarness, diagnosis_id: str) -> Report:
    row = await support.saved_diagnosis(bot, diagnosis_id)
    return Report.model_validate(row.report)


async def paste(bot: BotHarness, diagnosis_id: str, text: str, *, user: str = "U0ALICE"):
    values = {OUTPUT_BLOCK: {"value": {"type": "plain_text_input", "value": text}}}
    payload = bot.sender.view_submission(
        callback_id=PASTE_CALLBACK, values=values, private_metadata=diagnosis_id, user=user
    )
    return await bot.sender.interaction(payload)


async def wait_verdict(bot: BotHarness, report: Call) -> Call:
    thread = report.args["thread_ts"]
    [verdict] = await bot.stub.wait_for(
        "chat.postMessage", lambda c: is_verdict(c) and c.args.get("thread_ts") == thread
    )
    assert verdict.args["channel"] == report.args["channel"]
    return verdict


def windows_dn(rfc4514: str) -> str:
    """A distinguished name as .NET's X509Certificate2 prints it."""
    return ", ".join(part.strip() for part in rfc4514.split(","))


def windows_cert_lines(port: int, cert: dict[str, Any], *, issuer: str | None = None) -> list[str]:
    return [
        f"TLS {port} OK Tls13",
        f"CERT {port} subject={windows_dn(cert['subject'])}",
        f"CERT {port} issuer={issuer or windows_dn(cert['issuer'])}",
        f"CERT {port} notafter=3000-01-01T00:00:00Z",
        f"CERT {port} sha256={(cert['sha256'] if issuer is None else 'AB' * 32).upper()}",
        f"CERT {port} windows_check=None",
    ]


def windows_output(
    report: Report, *, blocked: tuple[int, ...] = (), issuer: str | None = None
) -> str:
    """What the Windows check prints on a computer that sees `report`'s server."""
    host = report.input.host
    probes = {p.port: p for p in report.probes if p.outcome == "ok"}
    lines = [BEGIN_MARKER, f"HOST {host}", "CLIENT windows"]
    for port in (587, 465):
        if port in blocked:
            lines.append(f"PORT {port} TCP FAIL timeout")
            continue
        lines.append(f"PORT {port} TCP OK {host}:{port}")
        if port == 587:
            lines.append(f"SMTP 587 greeting={probes[587].greeting}")
        lines += windows_cert_lines(port, probes[port].certificate, issuer=issuer)
    lines.append(END_MARKER)
    return "\r\n".join(lines) + "\r\n"


def avast_mac_output(host: str) -> str:
    """macOS openssl output (OpenSSL 3 spelling) behind Avast's Mail Shield."""
    lines = [BEGIN_MARKER, f"HOST {host}", "CLIENT mac"]
    for port in (587, 465):
        lines += [
            f"PORT {port} TCP OK",
            f"NC {port} Connection to {host} port {port} [tcp/*] succeeded!",
            f"CERT {port} issuer=OU = generated by Avast Antivirus for SSL/TLS scanning,"
            " O = Avast Web/Mail Shield, CN = Avast Web/Mail Shield Root",
            f"CERT {port} subject=CN = {host}",
            f"CERT {port} notAfter=Jun  1 12:00:00 2030 GMT",
            f"CERT {port} sha256 Fingerprint=" + ":".join(["5A"] * 32),
        ]
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


def copied_script(view: dict[str, Any]) -> str:
    """The script as the user copies it: Slack shows the escaped code block unescaped."""
    block = next(b for b in view["blocks"] if b.get("block_id") == "client_script")
    text = block["text"]["text"]
    assert text.startswith("```\n") and text.endswith("\n```")
    body = text[4:-4]
    return body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def assert_no_injection(texts: list[str]) -> None:
    for text in texts:
        assert not [f for f in forged(text) if "evil" in f or f.startswith("<!")], text
        assert "<@U0BOSS>" not in text


# --------------------------------------------------------------------------- the report


@pytest.mark.slow
async def test_buttons_when_the_server_works_but_the_user_cannot_connect(
    bot: BotHarness, site: Site
) -> None:
    # Without a word about failing on the user's side: a plain report, no client check.
    await bot.sender.command(f"{site.host}:587 starttls")
    [plain] = await wait_report(bot)
    assert CLIENT_SCRIPT_WINDOWS_ACTION not in button_values(plain)
    assert "between your computer and the server" not in blocks_text(plain)

    report, diagnosis_id = await diagnose_via_form(bot, site)
    buttons = button_values(report)
    for action in (CLIENT_SCRIPT_WINDOWS_ACTION, CLIENT_SCRIPT_MAC_ACTION, CLIENT_PASTE_ACTION):
        assert buttons[action] == diagnosis_id
    text = blocks_text(report)
    assert "The server is reachable and working from here" in text
    assert "The problem lies between your computer and the server" in text
    labels = [
        e["text"]["text"]
        for b in as_obj(report.args["blocks"])
        for e in b.get("elements") or []
        if e.get("type") == "button"
    ]
    assert {
        "Check from my computer (Windows)",
        "Check from my computer (Mac)",
        "Paste the result",
    } <= set(labels)
    # The engine's finding is the callout, not repeated among the findings below it.
    assert text.count("The server is reachable and working from here") == 1
    stored = await stored_report(bot, diagnosis_id)
    assert "client.server_ok_from_here" in stored.finding_ids


async def test_script_buttons_show_the_script_for_this_server(bot: BotHarness, site: Site) -> None:
    report, diagnosis_id = await diagnose_via_form(bot, site)
    stored = await stored_report(bot, diagnosis_id)
    for action, platform, needle in (
        (CLIENT_SCRIPT_WINDOWS_ACTION, "windows", f"$h = '{site.host}'"),
        (CLIENT_SCRIPT_MAC_ACTION, "mac", f"SC_H='{site.host}'"),
    ):
        before = len(bot.stub.to("views.open"))
        reply = await bot.sender.interaction(
            bot.sender.block_action(
                action_id=action, value=diagnosis_id, message_ts=report.args["thread_ts"]
            )
        )
        assert reply.status == 200
        opened = await bot.stub.wait_for("views.open", count=before + 1)
        view = view_of(opened[-1])
        validate_view(view)
        assert view["callback_id"] == SCRIPT_CALLBACK and view["private_metadata"] == diagnosis_id
        script = copied_script(view)
        assert needle in script and BEGIN_MARKER in script
        assert script == client_check_script(stored, platform)  # exact, never cut
        assert site.host in json.dumps(view)
        assert CLIENT_PASTE_ACTION in json.dumps(view)

    # "Paste the result" inside the script's modal stacks the paste form on it.
    await bot.sender.interaction(
        bot.sender.block_action(
            action_id=CLIENT_PASTE_ACTION,
            value=diagnosis_id,
            view={"id": "V000001", "hash": "h1", "type": "modal", "callback_id": SCRIPT_CALLBACK},
        )
    )
    [pushed] = await bot.stub.wait_for("views.push")
    form_view = view_of(pushed)
    assert form_view["callback_id"] == PASTE_CALLBACK
    assert form_view["private_metadata"] == diagnosis_id
    [field] = [b for b in form_view["blocks"] if b.get("block_id") == OUTPUT_BLOCK]
    assert field["element"]["multiline"] is True and field["element"]["max_length"] == 3000
    actions = {a["action"] for a in await bot.store.audit_entries()}
    assert "client_script" in actions


# --------------------------------------------------------------------------- the paste form


@pytest.mark.parametrize(
    "text,words",
    [
        ("Outlook still says 0x800CCC0E, please help!!", "Nothing in the text looks like"),
        (f"{BEGIN_MARKER}\nHOST x\nCLIENT windows\n{END_MARKER}\n", "Nothing in the text"),
        ("   \n ", "Paste the output of the check"),
    ],
)
async def test_unreadable_paste_is_a_field_error(
    bot: BotHarness, site: Site, text: str, words: str
) -> None:
    _, diagnosis_id = await diagnose_via_form(bot, site)
    # The paste form opened from the thread's button.
    await bot.sender.interaction(
        bot.sender.block_action(action_id=CLIENT_PASTE_ACTION, value=diagnosis_id)
    )
    [opened] = await bot.stub.wait_for("views.open")
    assert view_of(opened)["callback_id"] == PASTE_CALLBACK
    posts = len(bot.stub.to("chat.postMessage"))
    reply = await paste(bot, diagnosis_id, text)
    assert reply.status == 200
    body = reply.json()
    assert body["response_action"] == "errors"
    assert words in body["errors"][OUTPUT_BLOCK]
    assert BEGIN_MARKER in body["errors"][OUTPUT_BLOCK]  # says what to paste instead
    await asyncio.sleep(0.4)
    assert len(bot.stub.to("chat.postMessage")) == posts  # nothing in the thread


async def test_port_587_blocked_names_465_and_outlooks_steps(bot: BotHarness, site: Site) -> None:
    report, diagnosis_id = await diagnose_via_form(bot, site, client="classic")
    stored = await stored_report(bot, diagnosis_id)
    started = time.perf_counter()
    reply = await paste(bot, diagnosis_id, windows_output(stored, blocked=(587,)))
    assert reply.json() == {"response_action": "clear"}
    assert reply.elapsed < 3  # Slack's deadline for the acknowledgement
    verdict = await wait_verdict(bot, report)
    print(
        f"\npaste: ack {reply.elapsed * 1000:.0f} ms,"
        f" verdict in the thread {(time.perf_counter() - started) * 1000:.0f} ms"
    )
    text = blocks_text(verdict)
    assert "Port 587 is blocked between your computer and the server" in text
    assert "From your computer port 465 does answer" in text
    # The setting to move to, and classic Outlook's steps for that port.
    assert "Use these settings in Outlook" in text and "`465`" in text and "`SSL/TLS`" in text
    # The knowledge base's steps for classic Outlook (or, until it has its own entry for
    # client.port_blocked, those of tcp.timeout), filled in with the port to move to.
    output = windows_output(stored, blocked=(587,))
    [finding] = attach_fixes(compare(stored, parse_client_output(output)), stored).findings
    fix = finding.fix
    assert fix is not None and fix.client == "classic"
    assert "465" in fix.summary + " ".join(fix.steps)
    shown = "\n".join(mrkdwn_texts(verdict.args))
    assert f"*Fix:* {clip_escaped(fix.summary, 500)}" in shown
    for step in fix.steps[:3]:
        assert clip_escaped(step, 400) in shown
    assert "Pasted by <@U0ALICE>" in text and "from Windows" in text
    audit = [a for a in await bot.store.audit_entries() if a["action"] == "client_compare"]
    assert audit and audit[0]["detail"]["findings"] == ["client.port_blocked"]


@pytest.mark.parametrize("source", ["pasted", "script"])
async def test_avast_interception_is_named(
    bot: BotHarness, site: Site, tmp_path: Path, source: str
) -> None:
    report, diagnosis_id = await diagnose_via_form(bot, site, client="mac")
    if source == "pasted":
        output = avast_mac_output(site.host)
    else:
        # This machine plays the user's Mac behind Avast: the same address now presents an
        # Avast-issued certificate, and the script is run exactly as the modal shows it.
        if OPENSSL is None:
            pytest.skip("openssl not installed")
        await bot.sender.interaction(
            bot.sender.block_action(action_id=CLIENT_SCRIPT_MAC_ACTION, value=diagnosis_id)
        )
        [opened] = await bot.stub.wait_for("views.open")
        script = copied_script(view_of(opened))
        await site.stop()
        await site.start(cert=interceptor_cert(site.host))
        output = await run_mac_script(script, tmp_path)
        assert "Avast" in output, output
    reply = await paste(bot, diagnosis_id, output)
    assert reply.json() == {"response_action": "clear"}
    verdict = await wait_verdict(bot, report)
    text = blocks_text(verdict)
    assert "Avast intercepts the encrypted connection to the mail server" in text
    assert "Avast Web/Mail Shield Root" in text  # the issuer the user's Mac was shown
    assert "*Where to look:* Avast: Protection &gt; Core Shields &gt; Mail Shield" in text
    assert "from macOS" in text


async def run_mac_script(script: str, tmp_path: Path) -> str:
    """Run the macOS check here with a stand-in for macOS' `nc -G`."""
    return await run_script("sh", script, fake_nc_env(tmp_path))


async def test_same_on_both_sides_goes_back_to_the_server(bot: BotHarness, site: Site) -> None:
    report, diagnosis_id = await diagnose_via_form(bot, site)
    stored = await stored_report(bot, diagnosis_id)
    reply = await paste(bot, diagnosis_id, windows_output(stored))
    assert reply.json() == {"response_action": "clear"}
    verdict = await wait_verdict(bot, report)
    text = blocks_text(verdict)
    assert "Your computer sees the same as the bot" in text
    assert "Same result on both sides*, so back to the server-side findings" in text
    assert "The check from here found nothing wrong with the server" in text
    assert f"server `{site.host}`" in text and "port `587`" in text
    assert "blocked" not in text.lower() and "intercept" not in text.lower()


async def test_pasted_text_is_escaped(bot: BotHarness, site: Site) -> None:
    report, diagnosis_id = await diagnose_via_form(bot, site)
    stored = await stored_report(bot, diagnosis_id)
    output = windows_output(stored, issuer=f"CN=Avast {EVIL}, O=Avast Web/Mail Shield")
    output = output.replace(
        "greeting=220 ", f"greeting=220 evil.example {EVIL} ", 1
    )  # another server greets: a note quoting the greeting
    reply = await paste(bot, diagnosis_id, output)
    assert reply.json() == {"response_action": "clear"}
    verdict = await wait_verdict(bot, report)
    text = blocks_text(verdict)
    assert "Avast" in text and "&lt;!channel&gt;" in text  # shown, escaped...
    assert_no_injection(mrkdwn_texts(verdict.args))  # ...but never as a mention or a link


async def test_paste_for_a_forgotten_check_gets_a_plain_note(bot: BotHarness) -> None:
    reply = await paste(bot, "0" * 32, avast_mac_output("mail.example.test"))
    assert reply.json() == {"response_action": "clear"}
    [note] = await bot.stub.wait_for("chat.postMessage", lambda c: c.args["channel"] == "U0ALICE")
    assert "no longer stored" in note.args["text"]


# --------------------------------------------------------------------------- the form's box


@pytest.mark.slow
async def test_fails_on_my_computer_box_and_the_canary(
    make_bot: Any, site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # No error text at all: only the box says it fails on the user's computer. The password
    # test is on, so a canary password travels through the whole flow and must never leave.
    caplog.set_level("DEBUG")
    bot = await make_bot(credential_test=True)
    step_one = support.login_test_form(site.host)
    step_one[m.FAILS_HERE] = {
        m.VALUE: {"type": "checkboxes", "selected_options": [{"value": m.FAILS_HERE_OPTION}]}
    }
    body = (await submit(bot, step_one)).json()
    assert body["response_action"] == "push"
    metadata = body["view"]["private_metadata"]
    reply = await support.submit_password(bot, TEST_PASSWORD, metadata=metadata)
    assert reply.json() == {"response_action": "clear"}
    [report] = await wait_report(bot)
    diagnosis_id = button_values(report)[RERUN_ACTION]
    assert button_values(report)[CLIENT_SCRIPT_MAC_ACTION] == diagnosis_id
    assert "The server is reachable and working from here" in blocks_text(report)
    row = await support.saved_diagnosis(bot, diagnosis_id)
    assert row.request["fails_here"] is True
    # The box reached the engine (CheckRequest.user_reports_failure): the finding is its own,
    # with the knowledge base's fix, and the report shows it once, as the callout.
    assert "client.server_ok_from_here" in row.finding_ids
    [hint] = (await stored_report(bot, diagnosis_id)).by_id("client.server_ok_from_here")
    assert hint.fix is not None
    assert blocks_text(report).count("The server is reachable and working from here") == 1

    await bot.sender.interaction(
        bot.sender.block_action(action_id=CLIENT_SCRIPT_MAC_ACTION, value=diagnosis_id)
    )
    await bot.stub.wait_for("views.open")
    stored = await stored_report(bot, diagnosis_id)
    reply = await paste(bot, diagnosis_id, windows_output(stored, blocked=(587,)))
    assert reply.json() == {"response_action": "clear"}
    await wait_verdict(bot, report)

    # A re-run keeps the box.
    await bot.sender.interaction(
        bot.sender.block_action(action_id=RERUN_ACTION, value=diagnosis_id)
    )
    [_, again] = await wait_report(bot, count=2)
    assert CLIENT_PASTE_ACTION in button_values(again)

    for call in bot.stub.calls:
        assert TEST_PASSWORD not in call.raw and TEST_PASSWORD not in json.dumps(call.args)
    assert TEST_PASSWORD not in caplog.text
    rows = await bot.store.recent_for_user(team_id="T0TEST", user_id="U0ALICE")
    assert TEST_PASSWORD not in json.dumps([r.request for r in rows] + [r.report for r in rows])
    assert TEST_PASSWORD not in json.dumps(
        [a["detail"] for a in await bot.store.audit_entries()], default=str
    )


# --------------------------------------------------------------------------- pure views


def _report(host: str, *, client: str = "classic") -> Report:
    cert = {"issuer": "CN=R11, O=Let's Encrypt, C=US", "subject": f"CN={host}", "sha256": "ab"}
    return report(
        host,
        587,
        security=Security.STARTTLS,
        client=client,
        probes=(
            probe(587, address="192.0.2.1", cert=cert, starttls_offered=True),
            probe(465, address="192.0.2.1", cert=cert),
            *(probe(p, address="192.0.2.1") for p in (25, 2525, 26, 2587, 8025, 1025)),
        ),
        started_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize("platform", ["windows", "mac"])
def test_script_modal_fits_for_the_longest_host(platform: str) -> None:
    host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57, "com"])  # 253 characters
    report = _report(host)
    view = script_view(report, platform, diagnosis_id="d" * 32).to_dict()
    validate_view(view)
    assert copied_script(view) == client_check_script(report, platform)


def test_verdict_message_fits_with_hostile_output() -> None:
    report = _report("mail.example.test")
    lines = [BEGIN_MARKER, "HOST mail.example.test", "CLIENT windows"]
    for port in (587, 465, 25, 2525, 26, 2587, 8025, 1025):
        lines += [
            f"PORT {port} TCP OK 192.0.2.9:{port}",
            f"SMTP {port} greeting=220 evil{port}.example {EVIL * 20}",
            f"TLS {port} OK Tls12",
            f"CERT {port} subject=CN={EVIL * 10}",
            f"CERT {port} issuer=CN=Avast {EVIL * 30}, O=Avast Web/Mail Shield",
            f"CERT {port} sha256={'CD' * 32}",
        ]
    observation = parse_client_output("\n".join([*lines, END_MARKER]))
    result = compare(report, observation)
    text, blocks = comparison_message(
        result, report=report, observation=observation, diagnosis_id="d" * 32, user_id="U0ALICE"
    )
    message = {"text": text, "blocks": [b.to_dict() for b in blocks]}
    validate_blocks(message["blocks"], limit=50)
    assert len(text) <= 4000
    assert_no_injection(mrkdwn_texts(message))
    assert "Avast" in json.dumps(message)
