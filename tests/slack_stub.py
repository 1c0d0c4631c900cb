"""A local stand-in for Slack, both ways, on loopback.

`SlackStub` plays the Web API (an aiohttp server recording every call, able to answer 429
with Retry-After, 500, an error such as invalid_auth or expired_trigger_id, or to hang).
`SlackSender` plays Slack calling the app: slash commands, `payload=` interactions and
events, signed exactly as Slack signs them (v0:timestamp:body, HMAC-SHA256).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import itertools
import json
import re
import time
import urllib.parse
from typing import Any

import aiohttp
from aiohttp import web

TEAM_ID = "T0TEST"
BOT_USER_ID = "UBOT0001"


@dataclasses.dataclass
class Call:
    """One Web API call as the stand-in received it."""

    method: str
    args: dict[str, Any]
    status: int
    response: dict[str, Any] | None
    at: float
    raw: str = ""  # the request body exactly as sent (for "the canary never left" checks)


@dataclasses.dataclass
class Fault:
    kind: str  # "status" | "error" | "hang"
    status: int = 200
    retry_after: float | None = None
    error: str = ""
    seconds: float = 0.0


class SlackStub:
    """The Slack Web API on 127.0.0.1, recording calls and failing on request."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._faults: dict[str, list[Fault | None]] = {}
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self.base_url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/api/"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ faults

    def fail(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
        hang: float | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """After `after` more calls succeed, the next `times` calls of `method` fail."""
        if hang is not None:
            fault = Fault(kind="hang", seconds=hang)
        elif error is not None:
            fault = Fault(kind="error", error=error)
        else:
            fault = Fault(kind="status", status=status or 500, retry_after=retry_after)
        self._faults.setdefault(method, []).extend([None] * after + [fault] * times)

    # ------------------------------------------------------------------ queries

    def to(self, method: str, *, ok_only: bool = True) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (not ok_only or (c.response or {}).get("ok"))
        ]

    async def wait_for(
        self, method: str, predicate: Any = None, *, timeout: float = 10.0, count: int = 1
    ) -> list[Call]:
        """Wait until `count` successful calls of `method` match `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.to(method) if predicate is None or predicate(c)]
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [(c.method, c.status) for c in self.calls]
                raise AssertionError(f"no {count}x {method} within {timeout}s; calls: {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
            except TimeoutError:
                pass

    # ------------------------------------------------------------------ server

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.text()
        args: dict[str, Any] = dict(request.query)
        if raw:
            if request.content_type == "application/json":
                args.update(json.loads(raw))
            else:
                args.update(dict(urllib.parse.parse_qsl(raw)))
        token = request.headers.get("Authorization", "")
        faults = self._faults.get(method)
        fault = faults.pop(0) if faults else None
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            self._record(Call(method, args, fault.status, None, time.monotonic(), raw))
            return web.Response(status=fault.status, headers=headers, text="")
        if fault is not None and fault.kind == "error":
            body = {"ok": False, "error": fault.error}
        elif not token.startswith("Bearer xoxb-"):
            body = {"ok": False, "error": "not_authed"}
        else:
            body = self._answer(method, args)
        self._record(Call(method, args, 200, body, time.monotonic(), raw))
        return web.json_response(body)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._changed.set()

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://test.slack.invalid/",
                "team": "Test",
                "user": "smtpcheck",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": "BTEST",
            }
        if method in {"chat.postMessage", "chat.update"}:
            ts = args.get("ts") or f"{1700000000 + next(self._ts)}.000100"
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": {}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}
        if method == "chat.getPermalink":
            ts = str(args.get("message_ts", "")).replace(".", "")
            return {
                "ok": True,
                "channel": args.get("channel"),
                "permalink": f"https://test.slack.invalid/archives/{args.get('channel')}/p{ts}",
            }
        if method.startswith("views."):
            view_id = args.get("view_id") or f"V{next(self._views):06d}"
            return {"ok": True, "view": {"id": view_id, "hash": f"h{view_id}"}}
        return {"ok": True}


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature, computed from its documentation (not Bolt's code)."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclasses.dataclass
class Reply:
    status: int
    text: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.text) if self.text.strip() else None


class SlackSender:
    """Slack's side of the request URL: signed slash commands, interactions and events."""

    def __init__(self, url: str, secret: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.secret = secret
        self.session = session
        self._triggers = itertools.count(1)

    async def post(
        self,
        body: str,
        *,
        content_type: str,
        secret: str | None = None,
        timestamp: float | None = None,
        sign: bool = True,
    ) -> Reply:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp}
        if sign:
            headers["X-Slack-Signature"] = signature(secret or self.secret, stamp, body)
        started = time.perf_counter()
        async with self.session.post(self.url, data=body.encode(), headers=headers) as response:
            text = await response.text()
            return Reply(response.status, text, time.perf_counter() - started)

    def trigger(self) -> str:
        return f"{next(self._triggers)}.1234.trigger"

    def command_body(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0HELP", team: str = TEAM_ID
    ) -> str:
        return urllib.parse.urlencode(
            {
                "token": "deprecated-verification-token",
                "team_id": team,
                "team_domain": "test",
                "channel_id": channel,
                "channel_name": "help",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/smtpcheck",
                "text": text,
                "api_app_id": "ATEST",
                "response_url": "https://hooks.slack.invalid/commands/x",
                "trigger_id": self.trigger(),
            }
        )

    async def command(self, text: str = "", **kwargs: Any) -> Reply:
        return await self.post(
            self.command_body(text, **kwargs), content_type="application/x-www-form-urlencoded"
        )

    async def interaction(self, payload: dict[str, Any], **kwargs: Any) -> Reply:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return await self.post(body, content_type="application/x-www-form-urlencoded", **kwargs)

    async def event(self, event: dict[str, Any], **kwargs: Any) -> Reply:
        body = json.dumps(
            {
                "token": "deprecated",
                "team_id": TEAM_ID,
                "api_app_id": "ATEST",
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{next(self._triggers):08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
            }
        )
        return await self.post(body, content_type="application/json", **kwargs)

    # Payload shapes, as Slack sends them.

    def view_submission(
        self,
        *,
        callback_id: str,
        values: dict[str, Any],
        private_metadata: str,
        user: str = "U0ALICE",
    ) -> dict[str, Any]:
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "team_id": TEAM_ID, "name": user.lower()},
            "api_app_id": "ATEST",
            "trigger_id": self.trigger(),
            "view": {
                "id": "VSUBMIT",
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "state": {"values": values},
                "hash": "h1",
            },
        }

    def block_action(
        self,
        *,
        action_id: str,
        value: str,
        user: str = "U0ALICE",
        channel: str = "C0HELP",
        message_ts: str = "1700000000.000100",
        view: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "team_id": TEAM_ID, "name": user.lower()},
            "api_app_id": "ATEST",
            "trigger_id": self.trigger(),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": str(time.time()),
                }
            ],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view.get("id")}
            payload["view"] = view
        else:
            payload["container"] = {"type": "message", "message_ts": message_ts}
            payload["channel"] = {"id": channel, "name": "help"}
            payload["message"] = {"ts": message_ts, "text": ""}
        return payload

    def message_shortcut(
        self, *, callback_id: str, text: str, user: str = "U0ALICE", channel: str = "C0HELP"
    ) -> dict[str, Any]:
        return {
            "type": "message_action",
            "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "team_id": TEAM_ID, "name": user.lower()},
            "channel": {"id": channel, "name": "help"},
            "callback_id": callback_id,
            "trigger_id": self.trigger(),
            "message_ts": "1700000000.000900",
            "response_url": "https://hooks.slack.invalid/actions/x",
            "message": {
                "type": "message",
                "user": "U0BOB",
                "ts": "1700000000.000900",
                "text": text,
            },
        }


# --------------------------------------------------------------------------- the bot under test

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


def engine_config_for_tests(ca_bundle: Any = None, **overrides: Any) -> Any:
    """The engine as the bot's tests run it: loopback allowed, short timeouts, no real DNS."""
    import ipaddress

    from diagnostics import EngineConfig, Timeouts

    options: dict[str, Any] = {
        "allow_private": True,
        "allow_targets": (ipaddress.ip_network("127.0.0.0/8"),),
        "budget": 6.0,
        "ca_bundle": ca_bundle,
        "nameservers": ("127.0.0.1:9",),  # never the system's resolvers
        "timeouts": Timeouts(dns=0.5, connect=1.0, greeting=1.5, command=1.5, tls=1.5),
    }
    options.update(overrides)
    return EngineConfig(_env_file=None, **options)


BOT_TOKEN = "xoxb-test-0000-token"


class BotHarness:
    """The real bot (aiohttp + Bolt + store) on 127.0.0.1:0, talking to a SlackStub."""

    def __init__(self, tmp_path: Any, *, engine_config: Any, **settings: Any) -> None:
        self.tmp_path = tmp_path
        self.engine_config = engine_config
        self.settings_overrides = settings
        self.stub = SlackStub()
        self.session: aiohttp.ClientSession | None = None
        self.server: Any = None
        self.store: Any = None
        self.sender: SlackSender | None = None

    async def start(self) -> BotHarness:
        from bot.server import EVENTS_PATH, BotServer
        from bot.settings import BotSettings
        from bot.store import Store

        base_url = await self.stub.start()
        options = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_base_url": base_url,
            "escalation_channel": "C0DESK",
            "progress_interval": 0.2,
            "shutdown_grace": 5.0,
        }
        options.update(self.settings_overrides)
        settings = BotSettings(_env_file=None, **options)
        self.store = await Store.open(f"sqlite+aiosqlite:///{self.tmp_path}/bot.db")
        self.server = BotServer(
            settings=settings, engine_config=self.engine_config, store=self.store
        )
        port = await self.server.start(host="127.0.0.1", port=0)
        self.url = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()
        self.sender = SlackSender(self.url + EVENTS_PATH, SIGNING_SECRET, self.session)
        return self

    def check_payloads(self) -> None:
        """Block Kit limits on every payload the bot sent."""
        for call in self.stub.calls:
            validate_call(call)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=2.0)
        if self.session is not None:
            await self.session.close()
        if self.store is not None:
            await self.store.close()
        await self.stub.stop()


# --------------------------------------------------------------------------- payload checks

LINK = re.compile(r"<(https?://[^|>]*)(\|[^>]*)?>")


def _as_obj(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


def validate_blocks(blocks: Any, *, limit: int) -> list[dict[str, Any]]:
    """Every block through slack_sdk's models (which raise past Block Kit's limits)."""
    from slack_sdk.models.blocks import Block

    blocks = _as_obj(blocks) or []
    assert len(blocks) <= limit, f"{len(blocks)} blocks > {limit}"
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, f"unknown block {raw.get('type')}"
        block.to_dict()  # validates the block and, recursively, its elements
        for element in _walk(raw):
            if element.get("type") == "button":
                assert len(element.get("value", "")) <= 255
                assert len(element.get("action_id", "")) <= 255
            if element.get("type") == "plain_text":
                assert len(element["text"]) <= 3000
    return blocks


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def validate_view(view: Any) -> dict[str, Any]:
    from slack_sdk.models.views import View

    view = _as_obj(view)
    model = View(**view)
    model.to_dict()  # title <= 24, private_metadata <= 3000, callback_id <= 255 ...
    validate_blocks(view.get("blocks"), limit=100)
    assert len(json.dumps(view)) < 250_000
    return view


def validate_call(call: Call) -> None:
    """Block Kit limits for one recorded Web API call."""
    args = call.args
    if call.method.startswith("chat."):
        if "blocks" in args:
            validate_blocks(args["blocks"], limit=50)
        assert len(str(args.get("text", ""))) <= 4000
    elif call.method.startswith("views.") and "view" in args:
        validate_view(args["view"])


def mrkdwn_texts(payload: Any) -> list[str]:
    """Every string Slack would parse as mrkdwn in a payload (message text, mrkdwn objects)."""
    payload = _as_obj(payload)
    texts = []
    for node in _walk(payload):
        if node.get("type") == "mrkdwn":
            texts.append(node.get("text", ""))
    if isinstance(payload, dict) and isinstance(payload.get("text"), str):
        texts.append(payload["text"])
    return texts


def forged(text: str, *, allowed_links: tuple[str, ...] = ()) -> list[str]:
    """Mentions, broadcasts and links in mrkdwn that the bot did not put there itself."""
    problems = [m.group(0) for m in re.finditer(r"<!(channel|here|everyone)[^>]*>", text)]
    for match in LINK.finditer(text):
        if not match.group(1).startswith(allowed_links):
            problems.append(match.group(0))
    return problems
