"""Secrets: a canary password through the engine API, the CLI and the bot's credential test
never shows up in logs (every logger at DEBUG, raw records), JSON, transcripts, Slack
payloads, the store's bytes or exception text. Nor do the Slack token and signing secret.

The servers include `auth_echo`, which repeats the password in its AUTH reply: the canary
then really passes through the engine's hands, and must still be gone from every output.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from rich.console import Console

from diagnostics import (
    CheckRequest,
    EngineConfig,
    Report,
    TargetRefused,
    Timeouts,
    _render,
    diagnose,
)
from tests import factories
from tests.bot.support import diagnosis_id as report_diagnosis_id
from tests.bot.support import login_test_form, submit, submit_password
from tests.dns_server import DnsServer
from tests.faults._support import all_logs, loopback_engine, run_cli
from tests.servers import TEST_USER, SmtpTestServer

CANARY = "CANARY-pw-7Qz!x9"  # what the user types as the password
NAME = "mail.example.test"
FAST = Timeouts(dns=1.0, connect=1.0, greeting=1.5, command=1.5, tls=1.5)


def forms(secret: str, user: str = TEST_USER) -> list[str]:
    """The password and the encodings it travels in (AUTH PLAIN, AUTH LOGIN)."""
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.b64encode(b"\0" + user.encode() + b"\0" + raw).decode(),
    ]


def leaks(text: str, secret: str = CANARY) -> list[str]:
    return [form for form in forms(secret) if form in text]


# A hostile server's echo of the password in disguise (issue 12 item 4): its own canary, so
# that no other canary of this module shares a fragment with it.
ECHOED = "Zq8#Wv!m4Rt-Echo"


def disguises(secret: str) -> list[str]:
    import codecs
    import urllib.parse

    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    return [
        secret,
        secret[::-1],
        codecs.encode(secret, "rot13"),
        " ".join(secret),
        urllib.parse.quote(secret, safe=""),
        b64,
        b64.rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        raw.hex(),
        raw.hex().upper(),
        base64.b32encode(raw).decode(),
    ]


def fragments(text: str, secret: str = ECHOED, width: int = 6) -> list[str]:
    """Every piece (`width` characters or more) of any disguise of `secret` found in `text`."""
    found = []
    for form in disguises(secret):
        for start in range(0, max(1, len(form) - width + 1)):
            piece = form[start : start + width]
            if piece in text:
                found.append(piece)
    return found


async def test_a_password_echoed_in_disguise_is_never_kept(dns, ca_bundle) -> None:
    """535 replies carrying the password split over lines, as unpadded or URL-safe base64,
    hex, base32, reversed ...: only the reply's codes and known meaning are kept."""
    from tests.faults._scripted import ScriptedSmtp, echoing_auth_reply

    progress: list[Any] = []
    cert = default_cert_pem()
    async with ScriptedSmtp(cert=cert, auth=echoing_auth_reply(ECHOED)) as server:
        dns.zone.host(NAME, server.host)
        request = CheckRequest(
            target=NAME, port=587, security="starttls", user=TEST_USER, password=ECHOED
        )
        with all_logs() as logs:
            report = await diagnose(
                request, engine_config(dns, ca_bundle), on_progress=progress.append
            )
    assert server.auth_attempts, "the login never reached the server"
    outputs = {
        "json": report.to_json(),
        "repr": repr(report),
        "text report": text_report(report),
        "progress": repr(progress),
        "logs": logs.text,
    }
    assert {name: fragments(text) for name, text in outputs.items() if fragments(text)} == {}
    # The words were still read: the rule for "disabled for the tenant" matched.
    (failed,) = report.by_id("auth.failed.basic_disabled")
    assert failed.evidence["variant"] == "tenant_disabled"
    assert failed.evidence["reply"] == "535 5.7.139"
    assert "withheld" in " ".join(t.line for t in report.transcript)


def text_report(report: Report) -> str:
    """The CLI's text report with the transcript, as a terminal would show it."""
    rendered = io.StringIO()
    _render.print_report(
        report, transcript=True, console=Console(file=rendered, width=200, highlight=False)
    )
    return rendered.getvalue()


def default_cert_pem() -> tuple[bytes, bytes]:
    from tests.certs import default_factory

    served = default_factory().valid(NAME)
    return b"".join(served.chain_pem), served.key_pem


def engine_config(dns: DnsServer, ca_bundle: Path) -> EngineConfig:
    return loopback_engine(dns, ca_bundle, budget=4.0, timeouts=FAST)


# --------------------------------------------------------------------------- engine API


@pytest.mark.parametrize("behaviour", [None, "auth_echo", "auth_bad_credentials"])
async def test_engine_api_keeps_the_password(dns, ca_bundle, behaviour) -> None:
    progress: list[Any] = []
    async with SmtpTestServer(
        port=587, mode="starttls", behaviour=behaviour, password=CANARY
    ) as server:
        dns.zone.host(NAME, server.host)
        request = CheckRequest(
            target=NAME, port=587, security="starttls", user=TEST_USER, password=CANARY
        )
        with all_logs() as logs:
            logging.getLogger("smtpcheck.engine.sentinel").debug("capture is live")
            report = await diagnose(
                request, engine_config(dns, ca_bundle), on_progress=progress.append
            )
        attempts = list(server.auth_attempts)
    assert attempts, "the login never reached the server: the canary was never used"
    outputs = {
        "json": report.to_json(),
        "repr": repr(report),
        "transcript": "\n".join(t.line for t in report.transcript),
        "text report": text_report(report),
        "progress": repr(progress),
        "request repr": repr(request) + str(request.model_dump()) + request.model_dump_json(),
        "logs": logs.text,
    }
    assert "capture is live" in logs.text
    assert {name: leaks(text) for name, text in outputs.items() if leaks(text)} == {}
    if behaviour in {"auth_echo", "auth_bad_credentials"}:
        # The refusal came back; only its codes are kept (issue 12 item 4).
        (failed,) = [f for f in report.findings if f.id.startswith("auth.failed")]
        assert re.fullmatch(r"5\d\d( \d\.\d{1,3}\.\d{1,3})?", failed.evidence["reply"])


async def test_refusal_with_a_password_does_not_repeat_it(dns, ca_bundle) -> None:
    request = CheckRequest(target="127.1", port=587, user="u", password=CANARY)
    config = engine_config(dns, ca_bundle).model_copy(update={"allow_private": False})
    with pytest.raises(TargetRefused) as caught:
        await diagnose(request, config)
    assert not leaks(str(caught.value)) and not leaks(repr(caught.value))


def test_validation_error_with_a_secretstr_password_is_masked() -> None:
    with pytest.raises(ValueError) as caught:
        CheckRequest(target="bad host!", user="u", password=SecretStr(CANARY))
    assert not leaks(str(caught.value))


def test_validation_error_for_another_field_does_not_show_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        CheckRequest(target="bad host!", user="u", password=CANARY)
    assert not leaks(str(caught.value))


def test_validation_error_for_the_password_does_not_show_it() -> None:
    with pytest.raises(ValueError) as caught:
        CheckRequest(target="x.test", user="u", password=CANARY + "\nRSET")
    assert not leaks(str(caught.value))


# --------------------------------------------------------------------------- CLI


def cli_args(dns: DnsServer, ca_bundle: Path, *extra: str) -> list[str]:
    login = ["--user", TEST_USER, "--password-stdin"]
    flags = factories.engine_flags(dns, ca_bundle, timeout=4)
    return ["check", f"{NAME}:587", "--security", "starttls", *login, *flags, *extra]


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", [None, "auth_echo"])
async def test_cli_keeps_the_password(dns, ca_bundle, behaviour) -> None:
    env = {"SMTPCHECK_TIMEOUTS": FAST.model_dump_json()}
    async with SmtpTestServer(
        port=587, mode="starttls", behaviour=behaviour, password=CANARY
    ) as server:
        dns.zone.host(NAME, server.host)
        as_json, as_text = await asyncio.gather(
            run_cli(*cli_args(dns, ca_bundle, "--json"), stdin=CANARY + "\n", env=env),
            run_cli(*cli_args(dns, ca_bundle, "--transcript"), stdin=CANARY + "\n", env=env),
        )
        attempts = list(server.auth_attempts)
    assert len(attempts) >= 2, "the login never reached the server"
    assert as_json.code in {0, 1} and as_text.code in {0, 1}, as_json.user_lines
    report = as_json.json()
    assert report["input"]["user"] == TEST_USER
    assert "password" not in report["input"]
    assert any(line.startswith("LOG DEBUG") for line in as_json.log_lines)  # DEBUG was on
    for run in (as_json, as_text):
        assert not leaks(run.out), run.out
        assert not leaks(run.err), [line for line in run.err.splitlines() if leaks(line)]


async def test_cli_bad_input_with_a_password_does_not_repeat_it(dns) -> None:
    run = await run_cli(
        "check",
        "bad host!",
        "--user",
        "u",
        "--password-stdin",
        "--nameserver",
        dns.nameserver,
        stdin=CANARY + "\n",
    )
    assert run.code == 2
    assert next(line for line in run.user_lines if line.strip()).startswith("smtpcheck: error:")
    assert not leaks(run.out + run.err)


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfepassword", b"pass\x80word", b"secret\xc3", b"\xed\xa0\x80pw", b"caf\xe9"],
    ids=["bom-utf16", "lone-continuation", "truncated", "encoded-surrogate", "latin-1"],
)
async def test_a_password_that_is_not_utf8_is_bad_input(dns, raw: bytes) -> None:
    """Issue 12 item 9: exit 3 with a message naming the byte and its position. Bad input:
    exit 2, one line, and nothing about the bytes (the password's, after all)."""
    run = await run_cli(
        "check", f"{NAME}:587", "--user", TEST_USER, "--password-stdin",
        "--nameserver", dns.nameserver, stdin=raw + b"\n",
    )  # fmt: skip
    said = [line for line in run.user_lines if line.strip()]
    assert run.code == 2, run.err
    assert len(said) == 1 and said[0].startswith("smtpcheck: error:"), said
    assert "UTF-8" in said[0]
    for telltale in ("0x", "\\x", "position", "byte", "Traceback", "codec"):
        assert telltale not in run.err, (telltale, run.err[-500:])


# --------------------------------------------------------------------------- bot

SLACK_TOKEN = "xoxb-1111-2222-CANARYslacktoken"
SIGNING = "CANARYsigning-0123456789abcdef"


@pytest.fixture
async def bot(tmp_path: Path, ca_bundle: Path) -> AsyncIterator[Any]:
    from tests.slack_stub import BotHarness, engine_config_for_tests

    harness = BotHarness(
        tmp_path,
        engine_config=engine_config_for_tests(ca_bundle),
        credential_test=True,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SIGNING,
    )
    with all_logs() as logs:
        await harness.start()
        harness.sender.secret = SIGNING
        harness.logs = logs
        try:
            yield harness
        finally:
            await harness.stop()


@pytest.mark.parametrize("behaviour", [None, "auth_echo", "disguised_echo"])
async def test_bot_credential_test_keeps_the_password(
    bot: Any, cert_factory, behaviour: str | None
) -> None:
    from bot.views import modal as m
    from bot.views.report import DETAILS_ACTION, ESCALATE_ACTION, RERUN_ACTION
    from tests.faults._scripted import ScriptedSmtp, echoing_auth_reply
    from tests.servers import SERVER_NAME

    password = ECHOED if behaviour == "disguised_echo" else CANARY
    if behaviour == "disguised_echo":  # the password in every disguise, over lines
        served = cert_factory.valid(SERVER_NAME)
        server: Any = ScriptedSmtp(
            cert=(b"".join(served.chain_pem), served.key_pem), auth=echoing_auth_reply(ECHOED)
        )
    else:
        server = SmtpTestServer(
            cert=cert_factory.valid(SERVER_NAME), behaviour=behaviour, password=CANARY
        )
    async with server as smtp:
        step_one = login_test_form(smtp.host)
        reply = await submit(bot, step_one, metadata='{"c":"C0HELP"}', callback=m.CHECK_CALLBACK)
        pushed = reply.json()
        assert pushed["response_action"] == "push", pushed
        reply = await submit_password(bot, password, metadata=pushed["view"]["private_metadata"])
        assert reply.json() == {"response_action": "clear"}
        [report] = await bot.stub.wait_for(
            "chat.postMessage",
            lambda c: bool(c.args.get("thread_ts")) and RERUN_ACTION in json.dumps(c.args),
            timeout=15,
        )
        assert smtp.auth_attempts, "the credential test did not reach the server"
        diagnosis_id = report_diagnosis_id(report)
        # Every view of the stored report: the transcript modal and the help desk's post.
        await bot.sender.interaction(
            bot.sender.block_action(action_id=DETAILS_ACTION, value=diagnosis_id)
        )
        await bot.stub.wait_for("views.open")
        await bot.sender.interaction(
            bot.sender.block_action(action_id=ESCALATE_ACTION, value=diagnosis_id)
        )
        await bot.stub.wait_for("chat.postMessage", lambda c: c.args.get("channel") == "C0DESK")
        await bot.stub.wait_for(
            "chat.postMessage", lambda c: "Escalated" in str(c.args.get("text"))
        )
    # Forged and stale requests make Bolt log about signatures: never the secret itself.
    body = bot.sender.command_body("help")
    urlencoded = "application/x-www-form-urlencoded"
    assert (await bot.sender.post(body, content_type=urlencoded, secret="not-it")).status == 401
    stale = time.time() - 600
    assert (await bot.sender.post(body, content_type=urlencoded, timestamp=stale)).status == 401
    # Stop the bot before reading its database, so every write has landed.
    await bot.server.stop(grace=2.0)
    bot.server = None
    found: dict[str, list[str]] = {}
    for call in bot.stub.calls:
        text = call.raw + json.dumps(call.args) + json.dumps(call.response)
        if leaks(text):
            found.setdefault(f"slack {call.method}", []).extend(leaks(text))
        # JSON escapes "#" and "!" never, but a view may hold the text \u-escaped: both.
        for shown in (text, json.dumps(call.args, ensure_ascii=False)):
            if fragments(shown):
                found.setdefault(f"slack {call.method} (disguised)", []).extend(fragments(shown))
    if leaks(reply.text):
        found["interaction reply"] = leaks(reply.text)
    log_text = bot.logs.text
    assert len(bot.logs) > 20  # Bolt, slack_sdk, aiohttp, the bot and the engine at DEBUG
    for name, secret in (("password", CANARY), ("token", SLACK_TOKEN), ("signing", SIGNING)):
        if secret in log_text:
            found[f"logs: {name}"] = [line for line in log_text.splitlines() if secret in line][:3]
    if leaks(log_text):
        found["logs: password forms"] = leaks(log_text)
    if fragments(log_text):
        found["logs: disguised password"] = fragments(log_text)
    await bot.store.close()
    for path in sorted(bot.tmp_path.glob("bot.db*")):
        data = path.read_bytes()
        for secret in [*forms(CANARY), SLACK_TOKEN, SIGNING]:
            if secret.encode() in data:
                found.setdefault(f"store {path.name}", []).append(secret)
        if fragments(data.decode("latin-1")):
            found[f"store {path.name} (disguised)"] = fragments(data.decode("latin-1"))
    bot.store = None  # closed above
    assert found == {}


async def test_bot_settings_never_show_the_tokens() -> None:
    from bot.settings import BotSettings

    settings = BotSettings(
        _env_file=None, slack_bot_token=SLACK_TOKEN, slack_signing_secret=SIGNING
    )
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert SLACK_TOKEN not in shown and SIGNING not in shown
