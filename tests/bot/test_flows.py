"""Whole conversations over HTTP: signed Slack requests in, Web API calls out (to the
stand-in), diagnoses against real loopback SMTP servers, everything stored."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import statistics
import time
from typing import Any

import pytest

from bot.views import modal as m
from bot.views.escalation import CLAIM_ACTION, RESOLVE_ACTION
from bot.views.report import DETAILS_ACTION, ESCALATE_ACTION, RERUN_ACTION
from tests.bot import support
from tests.bot.support import blocks_text, form, submit, wait_report
from tests.certs import CertFactory
from tests.servers import SERVER_NAME, TEST_PASSWORD, SmtpTestServer, next_loopback
from tests.slack_stub import (
    BotHarness,
    Call,
    forged,
    mrkdwn_texts,
)

EVIL_BANNER = "<!channel> <https://evil.example|click> &amp; <@U0BOSS>"


def is_parent(call: Call) -> bool:
    return "thread_ts" not in call.args or not call.args.get("thread_ts")


def all_mrkdwn(bot: BotHarness) -> list[str]:
    texts = []
    for call in bot.stub.calls:
        texts += mrkdwn_texts(call.args.get("view") or call.args)
    return texts


async def desk_click(bot: BotHarness, action_id: str, escalation_id: str, agent: str) -> None:
    """An agent clicks a button on the escalation post in the help-desk channel."""
    await bot.sender.interaction(
        bot.sender.block_action(
            action_id=action_id, value=escalation_id, user=agent, channel="C0DESK"
        )
    )


async def desk_post_and_thread_say(
    bot: BotHarness, thread: str, on_post: str, in_thread: str
) -> None:
    """The escalation post is updated with `on_post`; the user's thread is told `in_thread`."""
    await bot.stub.wait_for(
        "chat.update", lambda c: c.args["channel"] == "C0DESK" and on_post in blocks_text(c)
    )
    await bot.stub.wait_for(
        "chat.postMessage",
        lambda c: in_thread in str(c.args.get("text")) and c.args.get("thread_ts") == thread,
    )


# --------------------------------------------------------------------------- inline command


async def test_inline_command_progress_then_threaded_report(
    bot: BotHarness, tls_server: SmtpTestServer
) -> None:
    started = time.perf_counter()
    reply = await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls mac")
    assert reply.status == 200 and reply.elapsed < 3
    [report] = await wait_report(bot)
    command_to_report = time.perf_counter() - started
    parent = next(c for c in bot.stub.to("chat.postMessage") if is_parent(c))
    assert parent.args["channel"] == "C0HELP"
    assert report.args["thread_ts"] == parent.response["ts"]
    updates = [c for c in bot.stub.to("chat.update") if c.args["ts"] == parent.response["ts"]]
    assert updates, "the parent message was never updated with progress"
    final = blocks_text(updates[-1])
    assert "Full report in the thread" in final
    assert ":white_check_mark:" in final  # a finished step of the checklist
    text = blocks_text(report)
    assert f"{tls_server.host}" in text and "Outlook for Mac" in text
    for action in (RERUN_ACTION, DETAILS_ACTION):
        assert action in text
    rows = await support.saved_for_user(bot.store, "U0ALICE")
    assert len(rows) == 1 and rows[0].thread_ts == parent.response["ts"]
    # The audit row is written once the report is out (the runner never holds a ready report
    # back for it): wait for it a little.
    for _ in range(50):
        audit = await bot.store.audit_entries()
        if any(a["action"] == "diagnose" and a["host"] == tls_server.host for a in audit):
            break
        await asyncio.sleep(0.1)
    assert any(a["action"] == "diagnose" and a["host"] == tls_server.host for a in audit)
    print(
        f"\ncommand to report: {command_to_report * 1000:.0f} ms, {len(updates)} progress updates"
    )


async def test_progress_updates_are_throttled(bot: BotHarness, tls_server: SmtpTestServer) -> None:
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot)
    updates = sorted(c.at for c in bot.stub.to("chat.update"))
    gaps = [b - a for a, b in itertools.pairwise(updates)]
    # progress_interval is 0.2 s in tests; the final update is sent at once (never throttled).
    assert all(gap >= 0.15 for gap in gaps[:-1]), gaps


# --------------------------------------------------------------------------- modal


async def test_modal_submit_runs_the_check(bot: BotHarness, tls_server: SmtpTestServer) -> None:
    reply = await bot.sender.command("")
    assert reply.status == 200
    [opened] = await bot.stub.wait_for("views.open")
    metadata = (
        json.loads(opened.args["view"])["private_metadata"]
        if isinstance(opened.args["view"], str)
        else opened.args["view"]["private_metadata"]
    )
    reply = await submit(
        bot,
        form(
            server=tls_server.host,
            port="587",
            security="starttls",
            auth=m.AUTH_OPTION,
            user="alice",
            client="new",
            error_text="0x800CCC0E",
        ),
        metadata=metadata,
    )
    assert reply.status == 200 and not reply.text.strip()  # ack(): the modal closes
    [report] = await wait_report(bot)
    assert report.args["channel"] == "C0HELP"
    assert "New Outlook for Windows".lower() in blocks_text(report).lower()


@pytest.mark.parametrize(
    "values,block",
    [
        (form(server="bad host!"), m.SERVER),
        (form(server="smtp.example.test", email="not-an-address"), m.EMAIL),
        (form(server="smtp.example.test", user="x\r\nRSET"), m.USER),
        (form(server="smtp.example.test", port="other", port_other="70000"), m.PORT_OTHER),
        (form(server="smtp.example.test", port="other", port_other="8080"), m.PORT_OTHER),
        (form(), m.SERVER),
    ],
)
async def test_modal_field_errors(bot: BotHarness, values: dict, block: str) -> None:
    reply = await submit(bot, values)
    assert reply.status == 200
    body = reply.json()
    assert body["response_action"] == "errors"
    assert block in body["errors"] and body["errors"][block]
    await asyncio.sleep(0.3)
    assert not bot.stub.to("chat.postMessage")


async def test_policy_refusal_on_the_server_block(make_bot: Any) -> None:
    harness = await make_bot(engine={"allow_private": False, "allow_targets": ()})
    reply = await submit(harness, form(server="127.0.0.1"))
    assert reply.json()["errors"][m.SERVER]
    reply = await submit(harness, form(server="[::ffff:127.0.0.1]"))
    assert reply.json()["errors"][m.SERVER]
    reply = await harness.sender.command("127.1:587 starttls")  # 127.0.0.1, short spelling
    assert reply.status == 200 and reply.json()["text"].startswith("smtpcheck:")
    await asyncio.sleep(0.3)
    assert not harness.stub.to("chat.postMessage")


async def test_expired_trigger_gets_a_plain_note(bot: BotHarness) -> None:
    bot.stub.fail("views.open", error="expired_trigger_id")
    reply = await bot.sender.command("")
    assert reply.status == 200
    [note] = await bot.stub.wait_for("chat.postEphemeral")
    assert "/smtpcheck" in note.args["text"] and note.args["user"] == "U0ALICE"


# --------------------------------------------------------------------------- buttons


@pytest.mark.slow
async def test_rerun_details_escalate_claim_resolve(
    bot: BotHarness, tls_server: SmtpTestServer
) -> None:
    await bot.sender.command(
        f"{tls_server.host}:{tls_server.port} ssl"
    )  # SSL/TLS on a STARTTLS port
    [report] = await wait_report(bot)
    diagnosis_id = next(
        e["value"] for e in report.args["blocks"][-1]["elements"] if e["action_id"] == RERUN_ACTION
    )
    thread = report.args["thread_ts"]

    # Re-run: same settings, same thread, says what changed.
    await bot.sender.interaction(
        bot.sender.block_action(action_id=RERUN_ACTION, value=diagnosis_id, message_ts=thread)
    )
    [_, second] = await wait_report(bot, count=2)
    assert second.args["thread_ts"] == thread
    assert "Since the last run" in blocks_text(second)

    # Technical details: a modal with the transcript.
    await bot.sender.interaction(
        bot.sender.block_action(action_id=DETAILS_ACTION, value=diagnosis_id)
    )
    [details] = await bot.stub.wait_for("views.open")
    assert "Transcript" in json.dumps(details.args["view"]) and "Connection tests" in json.dumps(
        details.args["view"]
    )

    # Escalate: a post in the help desk's channel with a link to the user's thread.
    await bot.sender.interaction(
        bot.sender.block_action(action_id=ESCALATE_ACTION, value=diagnosis_id)
    )
    [post] = await bot.stub.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0DESK")
    [permalink] = bot.stub.to("chat.getPermalink")
    assert permalink.args["message_ts"] == thread
    assert permalink.response["permalink"] in blocks_text(post)
    escalation_id = next(
        e["value"] for e in post.args["blocks"][-1]["elements"] if e["action_id"] == CLAIM_ACTION
    )
    await bot.stub.wait_for(
        "chat.postMessage",
        lambda c: "Escalated" in str(c.args.get("text")) and c.args.get("thread_ts") == thread,
    )

    # Claim: the post is updated, the user is told in the thread.
    await desk_click(bot, CLAIM_ACTION, escalation_id, "U0AGENT")
    await desk_post_and_thread_say(bot, thread, "Claimed by", "<@U0AGENT>")

    # A second agent cannot claim it again.
    await desk_click(bot, CLAIM_ACTION, escalation_id, "U0OTHER")
    [already] = await bot.stub.wait_for("chat.postEphemeral", lambda c: c.args["user"] == "U0OTHER")
    assert "already" in already.args["text"]

    # Resolve.
    await desk_click(bot, RESOLVE_ACTION, escalation_id, "U0AGENT")
    await desk_post_and_thread_say(bot, thread, "Resolved by", "resolved")
    actions = {a["action"] for a in await bot.store.audit_entries()}
    assert {"diagnose", "escalate", "escalation_claim", "escalation_resolve"} <= actions


@pytest.mark.slow
async def test_escalation_says_incident_when_several_users_fail_alike(bot: BotHarness) -> None:
    dead = next_loopback()  # nothing listens there: connection refused for everyone
    for user in ("U0A", "U0B", "U0C"):
        await bot.sender.command(f"{dead}:587 starttls", user=user)
    await wait_report(bot, count=3)
    [row] = await support.saved_for_user(bot.store, "U0C")
    assert "tcp.refused" in row.finding_ids
    diagnosis_id = row.diagnosis_id
    await bot.sender.interaction(
        bot.sender.block_action(action_id=ESCALATE_ACTION, value=diagnosis_id, user="U0C")
    )
    [post] = await bot.stub.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0DESK")
    assert "Possible incident" in blocks_text(post) and "2 other users" in blocks_text(post)


async def test_app_home_lists_recent_checks(bot: BotHarness, tls_server: SmtpTestServer) -> None:
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot)
    reply = await bot.sender.event(
        {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0", "tab": "home"}
    )
    assert reply.status == 200
    [published] = await bot.stub.wait_for("views.publish")
    assert published.args["user_id"] == "U0ALICE"
    assert tls_server.host in json.dumps(published.args["view"])


async def test_history_for_agents_only(make_bot: Any, tls_server: SmtpTestServer) -> None:
    bot = await make_bot(agents="U0AGENT")
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot)
    reply = await bot.sender.command(f"history {tls_server.host}", user="U0ALICE")
    assert "help-desk agents" in reply.text
    await bot.sender.command(f"history {tls_server.host}", user="U0AGENT")
    [listing] = await bot.stub.wait_for("chat.postEphemeral", lambda c: c.args["user"] == "U0AGENT")
    assert tls_server.host in blocks_text(listing) and "<@U0ALICE>" in blocks_text(listing)


# --------------------------------------------------------------------------- limits and failures


async def test_rate_limit_is_friendly(make_bot: Any, tls_server: SmtpTestServer) -> None:
    bot = await make_bot(user_rate="2/60")
    for _ in range(3):
        reply = await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
        assert reply.status == 200
    [note] = await bot.stub.wait_for("chat.postEphemeral")
    assert "wait a moment" in note.args["text"]
    await wait_report(bot, count=2)
    await asyncio.sleep(0.3)
    assert len([c for c in bot.stub.to("chat.postMessage") if is_parent(c)]) == 2
    assert any(a["action"] == "rate_limited" for a in await bot.store.audit_entries())


@pytest.mark.slow
async def test_429_then_success_delivers_the_report(
    bot: BotHarness, tls_server: SmtpTestServer
) -> None:
    bot.stub.fail("chat.postMessage", status=429, retry_after=1, after=1)  # the report's first try
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    [report] = await wait_report(bot, timeout=20)
    refused = [c for c in bot.stub.calls if c.method == "chat.postMessage" and c.status == 429]
    assert len(refused) == 1 and report.at - refused[0].at >= 0.9  # Retry-After honoured


async def test_undeliverable_report_waits_in_the_outbox(
    bot: BotHarness, tls_server: SmtpTestServer
) -> None:
    bot.stub.fail("chat.postMessage", error="invalid_auth", after=1)  # not retried by the client
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    for _ in range(100):
        parked = await bot.store.outbox_entry(1)
        if parked:
            break
        await asyncio.sleep(0.1)
    assert parked.method == "chat.postMessage" and parked.state == "pending"
    assert "report_rerun" in json.dumps(parked.payload)
    sent = await bot.server.deps.runner.flush_outbox()
    assert sent == 1
    await wait_report(bot)
    assert (await bot.store.outbox_entry(1)).state == "sent"


@pytest.mark.slow
async def test_server_errors_are_retried(bot: BotHarness, tls_server: SmtpTestServer) -> None:
    bot.stub.fail("chat.postMessage", status=500, after=1)
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot)


@pytest.mark.slow
async def test_hanging_progress_updates_do_not_hold_the_report_back(
    bot: BotHarness, tls_server: SmtpTestServer
) -> None:
    bot.stub.fail("chat.update", hang=4, times=20)
    started = time.perf_counter()
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    await wait_report(bot, timeout=3.5)
    assert time.perf_counter() - started < 3.5  # well before the hung update answers


async def test_a_store_outage_does_not_cost_the_report(
    bot: BotHarness, tls_server: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("database down")

    for name in ("rate_limit_hit", "save_diagnosis", "audit"):
        monkeypatch.setattr(bot.store, name, broken)
    await bot.sender.command(f"{tls_server.host}:{tls_server.port} starttls")
    [report] = await wait_report(bot)
    assert "report_rerun" in blocks_text(report)


# --------------------------------------------------------------------------- injection


@pytest.mark.slow
async def test_injection_through_every_field_and_the_banner(
    bot: BotHarness, cert_factory: CertFactory
) -> None:
    async with SmtpTestServer(cert=cert_factory.valid(SERVER_NAME), hostname=EVIL_BANNER) as evil:
        evil_text = (
            "<!channel> <https://evil.example/x|Reset your password> <@U0BOSS> &lt;!here&gt;"
        )
        reply = await submit(
            bot,
            form(
                server=evil.host,
                port="587",
                security="starttls",
                email="<!here>@example.test",
                user=evil_text,
                error_text=evil_text + "\n" + evil_text,
                auth=m.AUTH_OPTION,
            ),
            metadata='{"c":"C0HELP"}',
        )
        assert reply.status == 200, reply.text
        [report] = await wait_report(bot)
        diagnosis_id = support.diagnosis_id(report)
        await bot.sender.interaction(
            bot.sender.block_action(action_id=DETAILS_ACTION, value=diagnosis_id)
        )
        [details] = await bot.stub.wait_for("views.open")
        assert "evil.example" in json.dumps(details.args["view"])  # the banner is shown...
        await bot.sender.interaction(
            bot.sender.block_action(action_id=ESCALATE_ACTION, value=diagnosis_id)
        )
        await bot.stub.wait_for("chat.postMessage", lambda c: c.args["channel"] == "C0DESK")
    # ...but nowhere as a mention, a broadcast or a link.
    texts = all_mrkdwn(bot)
    assert len(texts) > 10
    for text in texts:
        assert not [link for link in forged(text) if "evil" in link or link.startswith("<!")], text
        assert "<@U0BOSS>" not in text


# --------------------------------------------------------------------------- credential test


async def test_canary_password_never_leaves_memory(
    make_bot: Any, cert_factory: CertFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await make_bot(credential_test=True)
    async with SmtpTestServer(cert=cert_factory.valid(SERVER_NAME), auth="tls") as smtp:
        step_one = support.login_test_form(smtp.host)
        reply = await submit(bot, step_one)
        body = reply.json()
        assert body["response_action"] == "push"
        step_two = body["view"]
        assert "visible" in json.dumps(step_two)  # the plain warning
        metadata = step_two["private_metadata"]
        reply = await support.submit_password(bot, TEST_PASSWORD, metadata=metadata)
        assert reply.json() == {"response_action": "clear"}
        [_report] = await wait_report(bot)
        assert smtp.auth_attempts, "the credential test did not reach the server"
    assert TEST_PASSWORD not in reply.text
    for call in bot.stub.calls:
        assert TEST_PASSWORD not in call.raw and TEST_PASSWORD not in json.dumps(call.args)
    assert TEST_PASSWORD not in caplog.text
    rows = await support.saved_for_user(bot.store, "U0ALICE")
    assert rows and TEST_PASSWORD not in json.dumps(
        [r.request for r in rows] + [r.report for r in rows]
    )
    assert TEST_PASSWORD not in json.dumps(
        [a["detail"] for a in await bot.store.audit_entries()], default=str
    )
    await bot.store.close()
    for path in bot.tmp_path.glob("bot.db*"):
        assert TEST_PASSWORD.encode() not in path.read_bytes()
    bot.store = None  # closed above


async def test_password_step_refused_when_turned_off(bot: BotHarness) -> None:
    reply = await submit(
        bot,
        {m.PASSWORD: {m.VALUE: {"type": "plain_text_input", "value": "x"}}},
        metadata='{"c":"C0HELP","f":{"host":"127.0.0.1"}}',
        callback=m.CREDENTIALS_CALLBACK,
    )
    assert reply.json()["response_action"] == "errors"


# --------------------------------------------------------------------------- shutdown


async def test_sigterm_reports_running_checks_as_interrupted(
    bot: BotHarness, cert_factory: CertFactory
) -> None:
    async with SmtpTestServer(behaviour="tarpit") as tarpit:
        await bot.sender.command(f"{tarpit.host}:{tarpit.port} starttls")
        [parent] = await bot.stub.wait_for("chat.postMessage", is_parent)
        await asyncio.sleep(0.3)
        interrupted = await bot.server.stop(grace=0.2)
        bot.server = None
    assert interrupted == 1
    ts = parent.response["ts"]
    assert any(
        "interrupted" in blocks_text(c) for c in bot.stub.to("chat.update") if c.args["ts"] == ts
    )
    assert any(
        "interrupted" in str(c.args.get("text"))
        for c in bot.stub.to("chat.postMessage")
        if c.args.get("thread_ts") == ts
    )


# --------------------------------------------------------------------------- load


@pytest.mark.slow
async def test_time_to_ack_with_50_concurrent_commands(
    make_bot: Any, tls_server: SmtpTestServer
) -> None:
    bot = await make_bot(user_rate="100/60")
    await bot.sender.command("help")  # warm-up: Bolt's first auth.test
    # Each user in a channel of their own: Slack takes ~1 message per second per channel, so 50
    # checks (100 messages) in one channel take minutes; that case is tests/bot/test_busy_channel.
    replies = await asyncio.gather(
        *(
            bot.sender.command(
                f"{tls_server.host}:{tls_server.port} starttls",
                user=f"U{i:04d}",
                channel=f"C{i:04d}",
            )
            for i in range(50)
        )
    )
    elapsed = sorted(r.elapsed for r in replies)
    assert all(r.status == 200 for r in replies)
    assert elapsed[-1] < 3.0
    median = statistics.median(elapsed)
    started = time.perf_counter()
    await wait_report(bot, count=50, timeout=90)
    total = time.perf_counter() - started
    print(
        f"\nack of 50 concurrent commands: median {median * 1000:.0f} ms,"
        f" worst {elapsed[-1] * 1000:.0f} ms; all 50 reports {total:.1f} s after the last ack"
    )


# --------------------------------------------------------------------------- a slow first post


def instant_report(request: Any, config: Any, *, on_progress: Any = None) -> Any:
    """A diagnosis that is done at once (the engine's own speed is beside the point here)."""
    import datetime as dt

    from diagnostics import Report
    from tests import factories

    async def done() -> Report:
        return factories.report(
            request.host,
            request.port,
            target=request.target,
            security=request.security,
            client=request.client,
            started_at=dt.datetime.now(dt.UTC),
        )

    return done()


@pytest.mark.parametrize("hang", [0.5, 2.5])
async def test_a_result_faster_than_the_progress_post(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch, hang: float
) -> None:
    """The check does not wait for the progress message; the report does, since it belongs
    in that thread: a slow Slack is not an outage (the client's timeout would be one)."""
    runner = bot.server.deps.runner
    monkeypatch.setattr(runner, "_diagnose", instant_report)
    bot.stub.fail("chat.postMessage", hang=hang, times=1)  # the progress message
    started = time.perf_counter()
    await bot.sender.command("smtp.example.test:587 starttls")
    [parent] = await bot.stub.wait_for("chat.postMessage", is_parent, timeout=hang + 3)
    [report] = await wait_report(bot, timeout=5)
    assert report.args["thread_ts"] == parent.response["ts"]
    assert time.perf_counter() - started >= hang
    assert await bot.store.outbox_entry(1) is None
