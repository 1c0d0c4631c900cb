"""A local stand-in for Slack, both ways, on loopback.

`SlackStub` plays the Web API: an aiohttp server recording every call, enforcing Slack's rate
limits as Slack does (`SlackLimits`: chat.postMessage per channel, the published tiers per
method and workspace, HTTP 429 with Retry-After), and failing on request on any method (429,
5xx, an error such as invalid_auth or expired_trigger_id, or a hang past the client's timeout).
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
import math
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
    wall: float = dataclasses.field(default_factory=time.time)  # when answered, epoch seconds


@dataclasses.dataclass
class Fault:
    kind: str  # "status" | "error" | "hang"
    status: int = 200
    retry_after: float | None = None
    error: str = ""
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Limit:
    """A token bucket: `per_minute` sustained, up to `burst` calls at once."""

    per_minute: float
    burst: float


# Slack's published limits (https://api.slack.com/apis/rate-limits, "Rate limit tiers"):
# evaluated "per API method per app per workspace"; Tier 2 "20+ per minute ... occasional
# bursts", Tier 3 "50+ per minute ... sporadic bursts are welcome", Tier 4 "100+ per minute
# ... generous burst behavior". Burst sizes are not published: these are cautious guesses.
TIER_1 = Limit(per_minute=1, burst=1)
TIER_2 = Limit(per_minute=20, burst=3)
TIER_3 = Limit(per_minute=50, burst=5)
TIER_4 = Limit(per_minute=100, burst=10)
# chat.postMessage (special tier): "one message per second per channel ... short bursts >1
# allowed. If you attempt bursts, there is no guarantee that messages will be stored"; plus an
# unpublished workspace-wide limit (off unless a test sets one).
POST_PER_CHANNEL = Limit(per_minute=60, burst=3)
# Each method's tier, from its reference page ("Rate limits" in the method's facts).
METHOD_TIERS: dict[str, Limit] = {
    "auth.test": TIER_4,  # special in Slack's catalog ("thousands per hour"): Tier 4 is close
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.getPermalink": TIER_4,
    "conversations.info": TIER_3,
    "users.info": TIER_4,
    "views.open": TIER_4,
    "views.publish": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
    "oauth.v2.access": TIER_4,
}
DEFAULT_TIER = TIER_2  # "Most methods allow at least 20 requests per minute"


@dataclasses.dataclass(frozen=True, slots=True)
class SlackLimits:
    """The limits the stand-in enforces. `speed` runs Slack's clock faster (4.0: every limit
    4x higher, every Retry-After a quarter as long, as a fraction of a second) so that a test of
    a busy channel takes seconds, not minutes; at 1.0 Retry-After is whole seconds, as Slack's."""

    post_per_channel: Limit | None = POST_PER_CHANNEL
    post_per_workspace: Limit | None = None
    tiers: dict[str, Limit] = dataclasses.field(default_factory=lambda: dict(METHOD_TIERS))
    default_tier: Limit | None = DEFAULT_TIER
    speed: float = 1.0


# For unit tests that are about something else entirely (never a test of posting or progress).
UNLIMITED_FOR_UNRELATED_TESTS = SlackLimits(
    post_per_channel=None, post_per_workspace=None, tiers={}, default_tier=None
)


class _Bucket:
    def __init__(self, limit: Limit, speed: float) -> None:
        self.rate = limit.per_minute / 60.0 * speed  # tokens per (real) second
        self.capacity = limit.burst
        self.tokens = limit.burst
        self.stamp = time.monotonic()

    def wait(self, now: float) -> float:
        """Seconds until a token is free (0: take it now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class RateLimiter:
    """Slack's limits as token buckets, keyed as Slack keys them."""

    def __init__(self, limits: SlackLimits) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self.limited: list[tuple[str, str, float]] = []  # (method, key, Retry-After) answered

    def _bucket(self, key: tuple[str, ...], limit: Limit) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(limit, self.limits.speed)
        return bucket

    def check(self, method: str, workspace: str, args: dict[str, Any]) -> float | None:
        """None if the call may go through (its tokens are taken), else its Retry-After."""
        buckets: list[_Bucket] = []
        if method == "chat.postMessage":
            if self.limits.post_per_channel is not None:
                channel = str(args.get("channel", ""))
                key = (workspace, method, channel)
                buckets.append(self._bucket(key, self.limits.post_per_channel))
            if self.limits.post_per_workspace is not None:
                buckets.append(self._bucket((workspace, method), self.limits.post_per_workspace))
        else:
            limit = self.limits.tiers.get(method, self.limits.default_tier)
            if limit is not None:
                buckets.append(self._bucket((workspace, method), limit))
        now = time.monotonic()
        wait = max((b.wait(now) for b in buckets), default=0.0)
        if wait > 0:
            retry_after = self.retry_after(wait)
            self.limited.append((method, str(args.get("channel", "")), retry_after))
            return retry_after
        for bucket in buckets:
            bucket.take()
        return None

    def retry_after(self, wait: float) -> float:
        if self.limits.speed == 1.0:
            return float(max(1, math.ceil(wait)))  # Slack: whole seconds
        return round(max(wait, 0.001), 3)


class SlackStub:
    """The Slack Web API on 127.0.0.1, recording calls, enforcing Slack's rate limits
    (`limits`), and failing on request."""

    def __init__(self, *, limits: SlackLimits | None = None) -> None:
        self.limiter = RateLimiter(limits if limits is not None else SlackLimits())
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

    async def __aenter__(self) -> SlackStub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

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
        """After `after` more calls succeed, the next `times` calls of `method` fail.

        METHOD "*" means any method: each of the next calls, whatever its method, fails.
        `hang` holds the answer that many seconds (the client times out first: a timeout).
        """
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
        fault = self._next_fault(method)
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
            retry_after = self.limiter.check(method, token, args)
            if retry_after is not None:
                # As Slack answers: HTTP 429, Retry-After in seconds, a JSON error body.
                body = {"ok": False, "error": "ratelimited"}
                self._record(Call(method, args, 429, body, time.monotonic(), raw))
                headers = {"Retry-After": f"{retry_after:g}"}
                return web.json_response(body, status=429, headers=headers)
            body = self._answer(method, args)
        self._record(Call(method, args, 200, body, time.monotonic(), raw))
        return web.json_response(body)

    def _next_fault(self, method: str) -> Fault | None:
        for key in (method, "*"):
            faults = self._faults.get(key)
            if faults:
                return faults.pop(0)
        return None

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

    def __init__(
        self,
        tmp_path: Any,
        *,
        engine_config: Any,
        limits: SlackLimits | None = None,
        **settings: Any,
    ) -> None:
        self.tmp_path = tmp_path
        self.engine_config = engine_config
        self.settings_overrides = settings
        self.stub = SlackStub(limits=limits)
        self.session: aiohttp.ClientSession | None = None
        self.server: Any = None
        self.store: Any = None
        self.sender: SlackSender | None = None

    async def start(self, *, port: int = 0, reuse_port: bool = False) -> BotHarness:
        from bot.server import EVENTS_PATH, BotServer
        from bot.settings import BotSettings
        from bot.store import Store

        if not self.stub.base_url:
            await self.stub.start()
        options = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_base_url": self.stub.base_url,
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
        port = await self.server.start(host="127.0.0.1", port=port, reuse_port=reuse_port)
        self.url = f"http://127.0.0.1:{port}"
        self.session = self.session or aiohttp.ClientSession()
        self.sender = SlackSender(self.url + EVENTS_PATH, SIGNING_SECRET, self.session)
        return self

    async def restart(self, *, grace: float) -> int:
        """Stop the bot as SIGTERM does (GRACE seconds for running checks) and start a new
        one on the same database and the same Slack; returns how many checks were cut short."""
        assert self.server is not None and self.store is not None
        interrupted = int(await self.server.stop(grace=grace))
        await self.store.close()
        self.server = self.store = None
        await self.start()
        return interrupted

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
        for element in walk(raw):
            if element.get("type") == "button":
                assert len(element.get("value", "")) <= 255
                assert len(element.get("action_id", "")) <= 255
            if element.get("type") == "plain_text":
                assert len(element["text"]) <= 3000
    return blocks


async def web_api_call(request: web.Request) -> tuple[str, dict[str, Any]]:
    """The method and arguments of a Web API request, from a JSON or a form-encoded body
    (for the small stand-ins that tests of one feature write for themselves)."""
    method = request.match_info["method"]
    if request.content_type == "application/json":
        return method, json.loads(await request.text() or "{}")
    return method, dict(await request.post())


def walk(node: Any) -> list[dict[str, Any]]:
    """Every object (dict) in a JSON-like payload, at any depth, parents first."""
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += walk(value)
    elif isinstance(node, list):
        for value in node:
            found += walk(value)
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
    for node in walk(payload):
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
