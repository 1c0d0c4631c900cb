"""The OAuth install flow and token rotation against a loopback stand-in of Slack's Web API."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.oauth import TeamTokens, add_oauth_routes, authorize_url_for, oauth_settings
from bot.store import Store
from diagnostics import ConfigError
from tests.bot import support
from tests.certs import CertFactory
from tests.servers import SERVER_NAME, SmtpTestServer
from tests.slack_stub import SlackSender, engine_config_for_tests, web_api_call

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "CANARY-client-secret"
SIGNING_SECRET = "CANARY-signing-secret"


# The workspaces the stand-in knows: the install's authorization code -> (team ID, name).
TEAMS = {"good-code": ("T0TEAM", "Contoso"), "other-code": ("T0OTHER", "Fabrikam")}


@dataclass
class SlackWebStandIn:
    """oauth.v2.access (code and refresh_token grants), auth.test, chat.* and views.*, with
    every call's Authorization header; bot calls need a token it issued (else invalid_auth)."""

    token_lifetime_s: int = 43200
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    issued: int = 0
    valid_refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> team
    token_team: dict[str, str] = field(default_factory=dict)  # bot token -> team
    faults: dict[str, list[str]] = field(default_factory=dict)  # method -> errors to answer
    base_url: str = ""

    def _token(self, team: str) -> tuple[str, str]:
        self.issued += 1
        refresh = f"xoxe-1-refresh-{self.issued}"
        token = f"xoxe.xoxb-1-bot-{self.issued}"
        self.valid_refresh[refresh] = team
        self.token_team[token] = team
        return token, refresh

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        self.faults.setdefault(method, []).extend([error] * times)

    async def handle(self, request: web.Request) -> web.Response:
        method, form = await web_api_call(request)
        auth = request.headers.get("Authorization", "")
        call = {**form, "authorization": auth}
        self.calls.append((method, call))
        body = self._answer(method, form, auth)
        if not body.get("ok"):
            call["refused"] = body.get("error")
        return web.json_response(body)

    def _answer(self, method: str, form: dict[str, Any], auth: str) -> dict[str, Any]:
        if method == "oauth.v2.access":
            return self._oauth(form, auth)
        if method == "respond":  # a slash command's response_url
            return {"ok": True}
        team = self.token_team.get(auth.removeprefix("Bearer "))
        if team is None:
            return {"ok": False, "error": "invalid_auth"}
        if self.faults.get(method):
            return {"ok": False, "error": self.faults[method].pop(0)}
        if method == "auth.test":
            return {"ok": True, "team_id": team, "user_id": "UBOT", "bot_id": "B0BOT",
                    "url": "https://example.invalid/", "team": "Contoso"}  # fmt: skip
        if method in {"chat.postMessage", "chat.update", "chat.postEphemeral"}:
            ts = form.get("ts") or f"1700000000.{len(self.calls):06d}"
            return {"ok": True, "channel": form.get("channel"), "ts": ts}
        if method.startswith("views."):
            return {"ok": True, "view": {"id": "V1", "hash": "h1"}}
        return {"ok": False, "error": "unknown_method"}

    def _oauth(self, form: dict[str, Any], auth: str) -> dict[str, Any]:
        # slack_sdk sends the client credentials as HTTP Basic auth.
        import base64

        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if auth != expected:
            return {"ok": False, "error": "invalid_client_id"}
        if form.get("grant_type") == "refresh_token":
            team = self.valid_refresh.pop(str(form.get("refresh_token")), None)
            if team is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            token, refresh = self._token(team)
            return {"ok": True, "access_token": token, "refresh_token": refresh,
                    "expires_in": self.token_lifetime_s, "token_type": "bot",
                    "team": {"id": team, "name": "Contoso"}, "bot_user_id": "UBOT",
                    "app_id": "A0APP", "scope": "commands,chat:write"}  # fmt: skip
        if form.get("code") not in TEAMS:
            return {"ok": False, "error": "invalid_code"}
        team, name = TEAMS[str(form["code"])]
        token, refresh = self._token(team)
        return {
            "ok": True, "access_token": token, "refresh_token": refresh,
            "expires_in": self.token_lifetime_s, "token_type": "bot",
            "scope": "commands,chat:write", "bot_user_id": "UBOT", "app_id": "A0APP",
            "team": {"id": team, "name": name}, "enterprise": None,
            "is_enterprise_install": False, "authed_user": {"id": "UINSTALLER"},
        }  # fmt: skip

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


@pytest.fixture
async def slack_web() -> AsyncIterator[SlackWebStandIn]:
    stand_in = SlackWebStandIn()
    app = web.Application()
    app.router.add_route("*", "/api/{method}", stand_in.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stand_in.base_url = str(server.make_url("/api/"))
    try:
        yield stand_in
    finally:
        await server.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/oauth.db")
    try:
        yield s
    finally:
        await s.close()


ENV = {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": CLIENT_SECRET}


@dataclass
class Bot:
    http: TestClient
    app: AsyncApp
    seen_tokens: list[str]


@pytest.fixture
async def bot(store: Store, slack_web: SlackWebStandIn) -> AsyncIterator[Bot]:
    """A Bolt app wired as app.py wires it in OAuth mode, served on loopback."""
    settings = oauth_settings(store, api_base_url=slack_web.base_url, environ=ENV)
    assert settings is not None
    app = AsyncApp(
        client=AsyncWebClient(base_url=slack_web.base_url),
        signing_secret=SIGNING_SECRET,
        oauth_settings=settings,
    )
    seen: list[str] = []

    @app.command("/smtpcheck")
    async def command(ack: Any, context: Any, client: Any) -> None:
        await ack()
        seen.append(context.bot_token)
        await client.chat_postMessage(channel="C1", text="checking")

    web_app = web.Application()
    assert add_oauth_routes(web_app, app)

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app.router.add_post("/slack/events", events)
    async with TestClient(TestServer(web_app, host="127.0.0.1")) as http:
        yield Bot(http=http, app=app, seen_tokens=seen)


async def install(bot: Bot, *, code: str = "good-code") -> tuple[int, str]:
    """Click "Add to Slack", approve, come back: the callback's status and body."""
    started = await bot.http.get("/slack/install", allow_redirects=False)
    assert started.status == 302
    location = urllib.parse.urlparse(started.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    cookie = started.headers["Set-Cookie"].split(";", 1)[0]
    done = await bot.http.get(
        "/slack/oauth_redirect",
        params={"code": code, "state": query["state"][0]},
        headers={"Cookie": cookie},
        allow_redirects=False,
    )
    return done.status, await done.text()


async def rows(store: Store, table: str) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        result = await conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
        return [dict(r._mapping) for r in result]


def slash_command(
    respond_to: str, team_id: str = "T0TEAM", text: str = "smtp.contoso.com"
) -> tuple[str, dict[str, str]]:
    """A signed slash command; Bolt answers RESPOND_TO (loopback) when it cannot authorize."""
    body = urllib.parse.urlencode(
        {"command": "/smtpcheck", "text": text, "team_id": team_id, "team_domain": "t",
         "user_id": "U0ALICE", "channel_id": "C1", "response_url": respond_to,
         "trigger_id": "1.2.3", "api_app_id": "A0APP", "token": "legacy"}
    )  # fmt: skip
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    return body, {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


# --------------------------------------------------------------------------- settings


def test_no_client_credentials_means_single_workspace_mode(store: Store) -> None:
    assert oauth_settings(store, environ={"SLACK_BOT_TOKEN": "xoxb-1"}) is None


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SLACK_CLIENT_ID": CLIENT_ID}, "SLACK_CLIENT_SECRET: missing"),
        ({"SLACK_CLIENT_SECRET": CLIENT_SECRET}, "SLACK_CLIENT_ID: missing"),
        ({**ENV, "SLACK_CLIENT_ID": "abc"}, "SLACK_CLIENT_ID: malformed"),
        ({**ENV, "SMTPCHECK_TOKEN_ROTATION_MINUTES": "0"}, "SMTPCHECK_TOKEN_ROTATION_MINUTES"),
    ],
)
def test_half_configured_oauth_is_refused(
    store: Store, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        oauth_settings(store, environ=environ)
    assert "CANARY" not in str(info.value)


def test_settings_use_the_store_database_and_the_api_base_url(store: Store) -> None:
    settings = oauth_settings(
        store,
        environ={**ENV, "SLACK_API_BASE_URL": "https://slack-gov.com/api/",
                 "SLACK_SCOPES": "commands, chat:write", "SMTPCHECK_TOKEN_ROTATION_MINUTES": "30"},
    )  # fmt: skip
    assert settings is not None
    assert settings.installation_store.engine is store.engine
    assert settings.state_store.engine is store.engine
    assert settings.authorization_url == "https://slack-gov.com/oauth/v2/authorize"
    assert settings.authorize.token_rotator.client.base_url == "https://slack-gov.com/api/"
    assert settings.scopes == ["commands", "chat:write"]
    assert settings.token_rotation_expiration_minutes == 30
    assert authorize_url_for("http://127.0.0.1:8/api") == "http://127.0.0.1:8/oauth/v2/authorize"


# --------------------------------------------------------------------------- install flow


async def test_install_redirects_to_slack_with_a_stored_state(
    bot: Bot, store: Store, slack_web: SlackWebStandIn
) -> None:
    response = await bot.http.get("/slack/install", allow_redirects=False)
    assert response.status == 302
    location = urllib.parse.urlparse(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == authorize_url_for(
        slack_web.base_url
    )
    query = urllib.parse.parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert "commands" in query["scope"][0].split(",")
    state = query["state"][0]
    assert f"slack-app-oauth-state={state}" in response.headers["Set-Cookie"]
    assert [r["state"] for r in await rows(store, "slack_oauth_states")] == [state]


async def test_callback_stores_the_installation(
    bot: Bot, store: Store, slack_web: SlackWebStandIn
) -> None:
    status, _ = await install(bot)
    assert status == 200
    assert "oauth.v2.access" in slack_web.methods()
    installations = await rows(store, "slack_installations")
    assert len(installations) == 1
    inst = installations[0]
    assert (inst["team_id"], inst["team_name"], inst["client_id"]) == (
        "T0TEAM",
        "Contoso",
        CLIENT_ID,
    )
    assert inst["bot_token"] == "xoxe.xoxb-1-bot-1"
    assert inst["bot_refresh_token"] == "xoxe-1-refresh-1"
    assert inst["bot_token_expires_at"] is not None
    assert inst["user_id"] == "UINSTALLER"
    bots = await rows(store, "slack_bots")
    assert [(b["team_id"], b["bot_token"]) for b in bots] == [("T0TEAM", "xoxe.xoxb-1-bot-1")]
    assert await rows(store, "slack_oauth_states") == []  # the state was consumed


async def test_callback_refuses_a_forged_or_replayed_state(bot: Bot, store: Store) -> None:
    started = await bot.http.get("/slack/install", allow_redirects=False)
    state = urllib.parse.parse_qs(urllib.parse.urlparse(started.headers["Location"]).query)[
        "state"
    ][0]
    cookie = started.headers["Set-Cookie"].split(";", 1)[0]
    # No cookie: a link someone else started.
    forged = await bot.http.get(
        "/slack/oauth_redirect", params={"code": "good-code", "state": state}
    )
    assert forged.status == 400
    ok = await bot.http.get(
        "/slack/oauth_redirect",
        params={"code": "good-code", "state": state},
        headers={"Cookie": cookie},
    )
    assert ok.status == 200
    replay = await bot.http.get(
        "/slack/oauth_redirect",
        params={"code": "good-code", "state": state},
        headers={"Cookie": cookie},
    )
    assert replay.status == 401
    assert len(await rows(store, "slack_installations")) == 1


async def test_callback_with_a_bad_code_stores_nothing(bot: Bot, store: Store) -> None:
    status, _ = await install(bot, code="stolen-code")
    assert status == 401
    assert await rows(store, "slack_installations") == []


# --------------------------------------------------------------------------- tokens


async def test_requests_use_the_installed_token(
    bot: Bot, slack_web: SlackWebStandIn, store: Store
) -> None:
    await install(bot)
    body, headers = slash_command(slack_web.base_url + "respond")
    response = await bot.http.post("/slack/events", data=body, headers=headers)
    assert response.status == 200
    assert bot.seen_tokens == ["xoxe.xoxb-1-bot-1"]
    posted = [c for m, c in slack_web.calls if m == "chat.postMessage"]
    assert posted and posted[0]["authorization"] == "Bearer xoxe.xoxb-1-bot-1"
    # A workspace that never installed the app gets nothing done.
    body, headers = slash_command(slack_web.base_url + "respond", team_id="T0OTHER")
    await bot.http.post("/slack/events", data=body, headers=headers)
    assert bot.seen_tokens == ["xoxe.xoxb-1-bot-1"]
    [(_, note)] = [(m, c) for m, c in slack_web.calls if m == "respond"]  # "please reinstall"
    assert "text" in note


async def test_expiring_token_is_rotated_and_saved(
    bot: Bot, slack_web: SlackWebStandIn, store: Store
) -> None:
    # A token that lives one minute: inside the 120-minute rotation margin.
    slack_web.token_lifetime_s = 60
    await install(bot)
    body, headers = slash_command(slack_web.base_url + "respond")
    response = await bot.http.post("/slack/events", data=body, headers=headers)
    assert response.status == 200
    refreshes = [c for m, c in slack_web.calls if m == "oauth.v2.access" and "grant_type" in c]
    assert [c["refresh_token"] for c in refreshes] == ["xoxe-1-refresh-1"]
    assert bot.seen_tokens == ["xoxe.xoxb-1-bot-2"]
    latest = (await rows(store, "slack_bots"))[-1]
    assert (latest["bot_token"], latest["bot_refresh_token"]) == (
        "xoxe.xoxb-1-bot-2",
        "xoxe-1-refresh-2",
    )


async def test_team_tokens_for_background_work(
    bot: Bot, slack_web: SlackWebStandIn, store: Store
) -> None:
    settings = bot.app.oauth_flow.settings
    tokens = TeamTokens(settings)
    assert await tokens.bot_token("T0TEAM") is None
    await install(bot)
    assert await tokens.bot_token("T0TEAM") == "xoxe.xoxb-1-bot-1"  # 12 h left: no rotation
    assert "grant_type" not in json.dumps(slack_web.calls)
    slack_web.token_lifetime_s = 60
    # Make the stored token expire within the margin, as time would.
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE slack_bots SET bot_token_expires_at = :t"),
            {"t": _naive_utc_in(30)},
        )
    assert await tokens.bot_token("T0TEAM") == "xoxe.xoxb-1-bot-2"
    assert await tokens.bot_token("T0TEAM") == "xoxe.xoxb-1-bot-3"  # 60 s tokens: again


async def test_failed_rotation_falls_back_to_a_token_that_still_works(
    bot: Bot, slack_web: SlackWebStandIn, store: Store
) -> None:
    from slack_sdk.errors import SlackTokenRotationError

    tokens = TeamTokens(bot.app.oauth_flow.settings)
    await install(bot)
    slack_web.valid_refresh.clear()  # e.g. another replica used the refresh token first
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE slack_bots SET bot_token_expires_at = :t"), {"t": _naive_utc_in(30)}
        )
    assert await tokens.bot_token("T0TEAM") == "xoxe.xoxb-1-bot-1"  # 30 s left: still good
    async with store.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE slack_bots SET bot_token_expires_at = :t"), {"t": _naive_utc_in(-5)}
        )
    with pytest.raises(SlackTokenRotationError):  # expired, not renewable: said, not hidden
        await tokens.bot_token("T0TEAM")


def _naive_utc_in(seconds: int) -> Any:
    import datetime as dt

    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).replace(tzinfo=None)


async def test_single_workspace_app_has_no_oauth_routes(store: Store) -> None:
    app = AsyncApp(
        client=AsyncWebClient(token="xoxb-single", base_url="http://127.0.0.1:9/api/"),
        signing_secret=SIGNING_SECRET,
    )
    web_app = web.Application()
    assert add_oauth_routes(web_app, app) is False
    assert list(web_app.router.routes()) == []


# --------------------------------------------------------------------------- the whole bot


@dataclass
class MultiWorkspaceBot:
    server: Any  # bot.server.BotServer
    store: Store
    url: str
    session: aiohttp.ClientSession
    sender: SlackSender

    async def install(self, code: str) -> str:
        """A workspace installs the app through the bot's own pages; its bot token."""
        started = await self.session.get(self.url + "/slack/install", allow_redirects=False)
        assert started.status == 302, await started.text()
        query = urllib.parse.parse_qs(urllib.parse.urlparse(started.headers["Location"]).query)
        assert query["scope"] == ["commands,chat:write"]  # exactly the manifests' scopes
        cookie = started.headers["Set-Cookie"].split(";", 1)[0]
        done = await self.session.get(
            self.url + "/slack/oauth_redirect",
            params={"code": code, "state": query["state"][0]},
            headers={"Cookie": cookie},
            allow_redirects=False,
        )
        assert done.status == 200, await done.text()
        bots = await rows(self.store, "slack_bots")
        return str(bots[-1]["bot_token"])


@pytest.fixture
async def whole_bot(
    tmp_path: Path, ca_bundle: Path, slack_web: SlackWebStandIn
) -> AsyncIterator[MultiWorkspaceBot]:
    """The real bot (BotServer: aiohttp, Bolt, runner, store) in OAuth mode, no bot token."""
    from bot.server import EVENTS_PATH, BotServer
    from bot.settings import BotSettings

    settings = BotSettings(
        _env_file=None,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=slack_web.base_url,
        progress_interval=0.2,
        outbox_interval=3600,  # the outbox is flushed by hand below
    )
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    server = BotServer(
        settings=settings, engine_config=engine_config_for_tests(ca_bundle), store=store
    )
    port = await server.start(host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{port}"
    session = aiohttp.ClientSession()
    try:
        sender = SlackSender(url + EVENTS_PATH, SIGNING_SECRET, session)
        yield MultiWorkspaceBot(server, store, url, session, sender)
    finally:
        await server.stop(grace=2.0)
        await session.close()
        await store.close()


@pytest.fixture
async def smtp(cert_factory: CertFactory) -> AsyncIterator[SmtpTestServer]:
    async with SmtpTestServer(cert=cert_factory.valid(SERVER_NAME)) as server:
        yield server


def chat_calls(slack_web: SlackWebStandIn) -> list[dict[str, Any]]:
    return [{**c, "method": m} for m, c in slack_web.calls if m.startswith("chat.")]


def is_report(call: dict[str, Any]) -> bool:
    return (
        call["method"] == "chat.postMessage"
        and bool(call.get("thread_ts"))
        and "report_rerun" in json.dumps(call.get("blocks"))
    )


async def report_posted(slack_web: SlackWebStandIn, *, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reports = [c for c in chat_calls(slack_web) if is_report(c)]
        if reports:
            return reports[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no report; calls: {[m for m, _ in slack_web.calls]}")


async def test_each_workspace_gets_its_report_with_its_own_token(
    whole_bot: MultiWorkspaceBot, slack_web: SlackWebStandIn, smtp: SmtpTestServer
) -> None:
    assert whole_bot.server.app.client.token is None  # no global token in OAuth mode
    contoso = await whole_bot.install("good-code")
    fabrikam = await whole_bot.install("other-code")
    assert contoso != fabrikam
    reply = await whole_bot.sender.command(f"{smtp.host}:{smtp.port} starttls", team="T0OTHER")
    assert reply.status == 200 and reply.elapsed < 3
    report = await report_posted(slack_web)
    assert report["authorization"] == f"Bearer {fabrikam}"
    # The progress message, its updates and the report: all as Fabrikam's bot, none as
    # Contoso's (whose token the stand-in would have accepted too).
    calls = chat_calls(slack_web)
    assert {c["method"] for c in calls} >= {"chat.postMessage", "chat.update"}
    assert {c["authorization"] for c in calls} == {f"Bearer {fabrikam}"}
    [row] = await support.saved_for_user(whole_bot.store, "U0ALICE", team_id="T0OTHER")
    assert row.thread_ts == report["thread_ts"]


async def test_parked_report_is_retried_with_its_workspace_token(
    whole_bot: MultiWorkspaceBot, slack_web: SlackWebStandIn, smtp: SmtpTestServer
) -> None:
    await whole_bot.install("good-code")
    fabrikam = await whole_bot.install("other-code")
    # The progress message goes through; the report is refused once: into the outbox.
    await whole_bot.sender.command(f"{smtp.host}:{smtp.port} starttls", team="T0OTHER")
    deadline = time.monotonic() + 15
    while not [c for c in chat_calls(slack_web) if c["method"] == "chat.postMessage"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    slack_web.fail("chat.postMessage", "ratelimited")  # the next one: the report
    entry = None
    while entry is None:
        assert time.monotonic() < deadline, "the report was neither posted nor parked"
        await asyncio.sleep(0.05)
        entry = await whole_bot.store.outbox_entry(1)
    assert entry.team_id == "T0OTHER" and "report_rerun" in json.dumps(entry.payload)
    [refused] = [c for c in chat_calls(slack_web) if is_report(c)]
    assert refused["refused"] == "ratelimited"
    before = len(slack_web.calls)
    assert await whole_bot.server.deps.runner.flush_outbox() == 1
    [(method, retried)] = slack_web.calls[before:]
    assert method == "chat.postMessage" and "report_rerun" in json.dumps(retried["blocks"])
    assert retried["authorization"] == f"Bearer {fabrikam}"
    assert (await whole_bot.store.outbox_entry(1)).state == "sent"


async def test_a_workspace_without_the_app_gets_nothing_done(
    whole_bot: MultiWorkspaceBot, slack_web: SlackWebStandIn, smtp: SmtpTestServer
) -> None:
    await whole_bot.install("good-code")
    before = len(slack_web.calls)
    body, headers = slash_command(
        slack_web.base_url + "respond", team_id="T0NONE", text=f"{smtp.host}:{smtp.port}"
    )
    async with whole_bot.session.post(whole_bot.sender.url, data=body, headers=headers) as reply:
        assert reply.status == 200
    await asyncio.sleep(0.5)  # anything the command might have started has had time to run
    # Only Bolt's "please reinstall" note to the command's response URL; no bot call at all.
    assert [m for m, _ in slack_web.calls[before:]] == ["respond"]
    assert await whole_bot.store.audit_entries() == []
    assert await whole_bot.store.recent_for_user(team_id="T0NONE", user_id="U0ALICE") == []
