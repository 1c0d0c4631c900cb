"""Secrets never reach the bot process's output, even at DEBUG, and each log line is written
once. A real `smtpcheck serve` process (the console script's module) runs against a Slack
stand-in on loopback in each mode: HTTP, Socket Mode (the password arrives in a WebSocket
frame, which slack_sdk logs whole at DEBUG), and OAuth (the install returns tokens, which
slack_sdk logs in the oauth.v2.access answer at DEBUG)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.views import modal as m
from tests.slack_stub import TEAM_ID, SlackSender, web_api_call

pytestmark = pytest.mark.slow

PASSWORD = "CANARYpw-Zq8v"  # typed in the credential step
BOT_TOKEN = "xoxb-1-2-CANARYbot"
APP_TOKEN = "xapp-1-A1-CANARYapp"
SIGNING_SECRET = "CANARYsigning-0123456789abcdef"
CLIENT_SECRET = "CANARYclient-secret"
INSTALLED_TOKEN = "xoxe.xoxb-1-CANARYinstalled"  # what oauth.v2.access hands out
REFRESH_TOKEN = "xoxe-1-CANARYrefresh"
CANARIES = ("CANARY",)  # every secret above carries it, in every encoding used here


@dataclass
class SlackStandIn:
    """Slack's Web API (chat, views, auth.test, oauth.v2.access, apps.connections.open) and
    a Socket Mode WebSocket, on loopback."""

    base_url: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def api(self, request: web.Request) -> web.Response:
        method, form = await web_api_call(request)
        self.calls.append((method, form))
        if method == "oauth.v2.access":
            return web.json_response(
                {
                    "ok": True,
                    "access_token": INSTALLED_TOKEN,
                    "refresh_token": REFRESH_TOKEN,
                    "expires_in": 43200,
                    "token_type": "bot",
                    "scope": "commands,chat:write",
                    "bot_user_id": "UBOT",
                    "app_id": "A0APP",
                    "team": {"id": TEAM_ID, "name": "T"},
                    "enterprise": None,
                    "is_enterprise_install": False,
                    "authed_user": {"id": "UINSTALLER"},
                }
            )
        if method == "apps.connections.open":
            return web.json_response(
                {"ok": True, "url": self.base_url.replace("http:", "ws:").replace("/api/", "/link")}
            )
        if method == "auth.test":
            return web.json_response(
                {"ok": True, "team_id": TEAM_ID, "user_id": "UBOT", "bot_id": "B0BOT"}
            )
        ts = form.get("ts") or f"1700000000.{len(self.calls):06d}"
        return web.json_response({"ok": True, "channel": form.get("channel"), "ts": ts})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1})
        self.connected.set()
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
        return ws

    def posted(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        return [call for name, call in self.calls if name == method]


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    stand_in = SlackStandIn()
    app = web.Application()
    app.router.add_route("*", "/api/{method}", stand_in.api)
    app.router.add_get("/link", stand_in.websocket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stand_in.base_url = f"http://127.0.0.1:{port}/api/"
    try:
        yield stand_in
    finally:
        for ws in stand_in.sockets:
            await ws.close()
        await runner.cleanup()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Serving:
    process: asyncio.subprocess.Process
    url: str
    session: aiohttp.ClientSession

    async def stop(self) -> str:
        """SIGTERM; everything the process wrote (stdout and stderr)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(self.process.communicate(), 30)
        assert self.process.returncode == 0, err.decode()[-2000:]
        return out.decode() + err.decode()


async def serve(tmp_path: Path, slack: SlackStandIn, env: dict[str, str], *args: str) -> Serving:
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SMTPCHECK_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", "--port", str(port), *args,
        env=base | {
            "SLACK_API_BASE_URL": slack.base_url,
            "SMTPCHECK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
            "SMTPCHECK_LOG_LEVEL": "DEBUG",
            "SMTPCHECK_LOG_FORMAT": "json",
            "SMTPCHECK_CREDENTIAL_TEST": "true",
            "SMTPCHECK_NAMESERVERS": "127.0.0.1:9",  # nothing answers: the check ends fast
            "SMTPCHECK_PROGRESS_INTERVAL": "0.1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        } | env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    session = aiohttp.ClientSession()
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            async with session.get(url + "/health") as response:
                if response.status == 200:
                    return Serving(process, url, session)
        except aiohttp.ClientConnectionError:
            pass
        if process.returncode is not None:
            break
        await asyncio.sleep(0.1)
    await session.close()
    process.kill()
    _, err = await process.communicate()
    raise AssertionError("the bot never became healthy: " + err.decode()[-2000:])


def credentials_step() -> dict[str, Any]:
    """The second step of the form, as Slack sends it: the password in the view's state."""
    fields = {"host": "mail.example.test", "port": "587", "security": "starttls",
              "requires_auth": True, "user": "alice@example.test", "client": "classic"}  # fmt: skip
    sender = SlackSender("", "", None)  # type: ignore[arg-type]  # only builds the payload
    return sender.view_submission(
        callback_id=m.CREDENTIALS_CALLBACK,
        values={m.PASSWORD: {m.VALUE: {"type": "plain_text_input", "value": PASSWORD}}},
        private_metadata=m.pack_metadata(fields, channel_id="C0HELP"),
    )


async def report_posted(slack: SlackStandIn, *, count: int = 1, timeout: float = 30) -> None:
    """Until COUNT reports (messages in a thread) have reached the stand-in."""
    for _ in range(int(timeout / 0.1)):
        if len([c for c in slack.posted() if c.get("thread_ts")]) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no report posted: {[name for name, _ in slack.calls]}")


def assert_clean(output: str) -> list[dict[str, Any]]:
    """No canary in any form; one handler (every line is JSON: a second handler would write
    its copy in another format); each event written once."""
    for canary in CANARIES:
        assert canary not in output, _around(output, canary)
    lines = [line for line in output.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a line not from the one JSON handler: {line[:300]}") from None
    for event in ("smtpcheck bot listening", "smtpcheck bot stopped"):
        assert sum(1 for r in records if r["msg"].startswith(event)) == 1, event
    assert any(r["level"] == "debug" for r in records)  # DEBUG was on
    return records


def _around(text: str, needle: str) -> str:
    at = text.index(needle)
    return text[max(0, at - 300) : at + 100]


async def test_http_mode_password_and_tokens_never_in_the_output(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    bot = await serve(tmp_path, slack, env)
    try:
        sender = SlackSender(bot.url + "/slack/events", SIGNING_SECRET, bot.session)
        reply = await sender.interaction(credentials_step())
        assert reply.status == 200, reply.text
        await report_posted(slack)
        reply = await sender.command("mail.example.test:587 starttls")
        assert reply.status == 200
        await report_posted(slack, count=2)
    finally:
        output = await bot.stop()
        await bot.session.close()
    records = assert_clean(output)
    # Log lines carry the ids the README promises: the request's, and the diagnosis'.
    ours = [r for r in records if r.get("request_id") and r.get("diagnosis_id")]
    assert len({r["diagnosis_id"] for r in ours}) == 2, "each check logs under its own id"
    assert all(r.get("team_id") == TEAM_ID for r in ours)


async def test_socket_mode_password_in_a_websocket_frame_never_in_the_output(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}
    bot = await serve(tmp_path, slack, env, "--socket-mode")
    try:
        await asyncio.wait_for(slack.connected.wait(), 20)
        envelope = {"envelope_id": "env-1", "type": "interactive",
                    "accepts_response_payload": True, "payload": credentials_step()}  # fmt: skip
        await slack.sockets[-1].send_json(envelope)
        await report_posted(slack)
        assert any(ack.get("envelope_id") == "env-1" for ack in slack.acks)
    finally:
        output = await bot.stop()
        await bot.session.close()
    records = assert_clean(output)
    # The frame was logged (slack_sdk at DEBUG): redacted, not dropped.
    assert any("Received message" in r["msg"] and "[redacted]" in r["msg"] for r in records)


async def test_oauth_install_tokens_never_in_the_output(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    env = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": CLIENT_SECRET,
           "SLACK_SIGNING_SECRET": SIGNING_SECRET}  # fmt: skip
    bot = await serve(tmp_path, slack, env)
    try:
        started = await bot.session.get(bot.url + "/slack/install", allow_redirects=False)
        assert started.status == 302, await started.text()
        query = urllib.parse.parse_qs(urllib.parse.urlparse(started.headers["Location"]).query)
        done = await bot.session.get(
            bot.url + "/slack/oauth_redirect",
            params={"code": "good-code", "state": query["state"][0]},
            headers={"Cookie": started.headers["Set-Cookie"].split(";", 1)[0]},
            allow_redirects=False,
        )
        assert done.status == 200, await done.text()
        sender = SlackSender(bot.url + "/slack/events", SIGNING_SECRET, bot.session)
        reply = await sender.interaction(credentials_step())
        assert reply.status == 200, reply.text
        await report_posted(slack)
    finally:
        output = await bot.stop()
        await bot.session.close()
    assert any(name == "oauth.v2.access" for name, _ in slack.calls)
    records = assert_clean(output)
    assert any("oauth.v2.access" in r["msg"] for r in records)  # the answer was logged
