"""bot/listeners/_common.py: who asks comes from Bolt's context, and what a listener lets
fall through is logged once by the app's error handler."""

from __future__ import annotations

import logging

import pytest
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.listeners._common import Asker, on_listener_error


def _context(body: dict) -> AsyncBoltContext:
    return build_async_context(AsyncBoltContext(), body)


def test_the_asker_is_who_bolt_says_not_what_the_body_claims_elsewhere() -> None:
    # A button in a message: team, user and channel, as Bolt resolves them.
    body = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1", "team_id": "T1"},
        "channel": {"id": "C1"},
    }
    assert Asker.of(_context(body)) == Asker(team_id="T1", user_id="U1", channel_id="C1")
    # A modal submission in a Slack Connect channel: the installing team, no channel.
    body = {
        "type": "view_submission",
        "team": {"id": "T2"},
        "user": {"id": "U2", "team_id": "T2"},
        "view": {"app_installed_team_id": "T1"},
    }
    assert Asker.of(_context(body)) == Asker(team_id="T1", user_id="U2", channel_id=None)


def _slack_error(error: str) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,  # type: ignore[arg-type]
        http_verb="POST",
        api_url="https://slack.invalid/api/views.update",
        req_args={},
        data={"ok": False, "error": error},
        headers={},
        status_code=200,
    )
    return SlackApiError("refused", response)


async def test_a_slack_failure_is_one_warning_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="smtpcheck.bot"):
        await on_listener_error(_slack_error("expired_trigger_id"), {"type": "block_actions"})
        await on_listener_error(TimeoutError(), {"type": "view_submission"})
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        ("WARNING", "Slack call failed while handling block_actions: expired_trigger_id", None),
        ("WARNING", "Slack call failed while handling view_submission: TimeoutError", None),
    ]


async def test_our_own_bug_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="smtpcheck.bot"):
        await on_listener_error(KeyError("oops"), {"command": "/smtpcheck"})
    (record,) = caplog.records
    assert record.levelname == "ERROR" and "slash_command" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError
