"""Logs (JSON/readable, request IDs, redaction), Prometheus metrics, /health and /metrics."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.errors import SlackApiError

from bot.observability import health as obs_health
from bot.observability import logs as obs_logs
from bot.observability import metrics as obs_metrics
from bot.observability import redaction as obs_redaction
from diagnostics._models import (
    Finding,
    Report,
    Security,
    Severity,
    Verdict,
)
from tests import factories

BOT_TOKEN = "xoxb-111-222-CANARYbot"
SIGNING_SECRET = "0123456789abcdefCANARYsigning0000"


@pytest.fixture
def log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Root logging configured by configure_logging into a buffer; restored afterwards."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SMTPCHECK_DATABASE_URL", "postgresql://bot:CANARYdbpw@db/x")
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    obs_logs.configure_logging(json=True, level="DEBUG", stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[1]:
            root.addHandler(handler)
        root.setLevel(saved[0])


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("bot token xoxb-123-456-CANARYabc", "xoxb-[redacted]"),
        ("user token xoxp-1-2-3-CANARYdef", "xoxp-[redacted]"),
        ("rotated xoxe.xoxb-1-CANARYrot and refresh xoxe-1-CANARYref", "xoxe.xoxb-[redacted]"),
        ("app token xapp-1-A0-123-CANARYapp", "xapp-[redacted]"),
        ("password=CANARYpw1 user=alice", "password=[redacted] user=alice"),
        ('{"password": "CANARY pw with spaces", "user": "alice"}', '"password": "[redacted]"'),
        ("client_secret: 'CANARYcs'", "client_secret: '[redacted]'"),
        ("SLACK_SIGNING_SECRET=CANARYss", "SLACK_SIGNING_SECRET=[redacted]"),
        ("> AUTH PLAIN AGFsaWNlAENBTkFSWXB3", "AUTH PLAIN [redacted]"),
        ("> auth login YWxpY2VAQ0FOQVJZ", "auth login [redacted]"),
        ("Authorization: Bearer CANARYbearer123", "Bearer [redacted]"),
        ("postgresql://bot:CANARYdb@db:5432/x", "postgresql://bot:[redacted]@db:5432/x"),
    ],
)
def test_redact_removes_secrets(text: str, kept: str) -> None:
    out = obs_redaction.redact(text)
    assert "CANARY" not in out
    assert kept in out


@pytest.mark.parametrize(
    "text",
    [
        "250-AUTH PLAIN LOGIN XOAUTH2",
        "250 AUTH LOGIN PLAIN",
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
        "diagnosis 3f2a finished: verdict fail in 812 ms",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert obs_redaction.redact(text) == text


def test_registered_literal_secrets_are_redacted() -> None:
    obs_redaction.register_secret("CANARY-literal-42")
    obs_redaction.register_secret("abc")  # too short to be safe to replace everywhere: ignored
    assert obs_redaction.redact("sig=CANARY-literal-42 abc") == "sig=[redacted] abc"


# Nested redaction, as a property: a secret under a secret-named key, at any depth, in any
# JSON-like structure, is gone from the structure, from its JSON text and from its repr.

_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_ -.", min_size=0, max_size=12)
_PLAIN_KEYS = _WORDS.filter(lambda k: not obs_redaction.is_secret_key(k))
_SECRET_KEYS = st.sampled_from(
    ["password", "Password", "client_secret", "access_token", "refresh_token", "bot_token",
     "signing_secret", "api_key", "passwd", "SLACK_APP_TOKEN", "x-password-2", "credentials"]
)  # fmt: skip
_CANARY = st.sampled_from(["CANARYone", "CANARY two words", 'CANARY"quoted}', "CANARY'{["])
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), _WORDS)


def _json_like(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(_PLAIN_KEYS, inner, max_size=4)
        ),
        max_leaves=12,
    )


@st.composite
def _with_a_buried_secret(draw: st.DrawFn) -> Any:
    """A structure with a canary under a secret key somewhere, maybe wrapped in the shape
    Slack gives a view's state ({"password": {"value": {"type": ..., "value": ...}}})."""
    secret: Any = draw(_CANARY)
    if draw(st.booleans()):
        secret = {"value": {"type": "plain_text_input", "value": secret}}
    if draw(st.booleans()):
        secret = [draw(_json_like(_LEAVES)), secret]
    node: Any = {draw(_SECRET_KEYS): secret}
    for _ in range(draw(st.integers(0, 6))):  # bury it
        siblings = draw(st.dictionaries(_PLAIN_KEYS, _json_like(_LEAVES), max_size=3))
        if draw(st.booleans()):
            node = [*siblings.values(), node]
        else:
            key = draw(_PLAIN_KEYS.filter(lambda k, taken=siblings: k not in taken))  # type: ignore[misc]
            node = {**siblings, key: node}
    return node


@settings(max_examples=300, deadline=None)
@given(_with_a_buried_secret())
def test_nested_secrets_are_redacted_at_any_depth(data: Any) -> None:
    assert "CANARY" not in json.dumps(obs_redaction.redact_data(data))
    assert "CANARY" not in obs_redaction.redact(json.dumps(data))
    assert "CANARY" not in obs_redaction.redact(repr(data))
    assert "CANARY" not in obs_redaction.redact(json.dumps(json.dumps(data)))  # JSON in a string


@settings(max_examples=200, deadline=None)
@given(_json_like(_LEAVES))
def test_structures_without_secrets_are_left_as_they_are(data: Any) -> None:
    assert obs_redaction.redact_data(data) == data
    assert obs_redaction.redact(json.dumps(data)) == json.dumps(data)


def test_log_args_are_redacted_by_key_before_formatting(log_stream: io.StringIO) -> None:
    body = {"view": {"state": {"values": {"password": {"value": {"value": "CANARYnested"}}}}}}
    logging.getLogger("smtpcheck.test").debug("body: %s", body)
    logging.getLogger("smtpcheck.test").debug("frame %r", json.dumps(body))
    out = log_stream.getvalue()
    assert "CANARY" not in out and out.count("[redacted]") == 2


def test_runtime_secrets_are_redacted_in_their_escaped_forms_and_bounded() -> None:
    obs_redaction.register_secret('CANARY pw&="x', runtime=True)
    for form in ('CANARY pw&="x', "CANARY%20pw%26%3D%22x", "CANARY+pw%26%3D%22x"):
        assert "CANARY" not in obs_redaction.redact(f"seen {form} here"), form
    for n in range(obs_redaction.MAX_RUNTIME_SECRETS + 10):
        obs_redaction.register_secret(f"filler-secret-{n:04d}", runtime=True)
    assert obs_redaction.redact("filler-secret-0000") == "filler-secret-0000"  # aged out
    assert obs_redaction.redact("filler-secret-0515") == "[redacted]"


# --------------------------------------------------------------------------- logging


def test_json_lines_without_secrets_in_message_args_and_traceback(
    log_stream: io.StringIO,
) -> None:
    log = logging.getLogger("smtpcheck.test")
    log.info("calling Slack with %s and secret %s", BOT_TOKEN, SIGNING_SECRET)
    log.warning("db at %s", "postgresql://bot:CANARYdbpw@db/x")
    try:
        raise RuntimeError(f"token {BOT_TOKEN} rejected")
    except RuntimeError:
        log.exception("failed with password=%s", "CANARYpw")
    log.info("extra fields", extra={"team_id": "T1", "note": f"tok {BOT_TOKEN}"})
    out = log_stream.getvalue()
    assert "CANARY" not in out
    records = lines(log_stream)
    assert [r["level"] for r in records] == ["info", "warning", "error", "info"]
    # The configured token is a known literal; any other token is caught by its shape.
    assert records[0]["msg"] == "calling Slack with [redacted] and secret [redacted]"
    assert records[0]["logger"] == "smtpcheck.test"
    assert "RuntimeError" in records[2]["exc"] and "token [redacted]" in records[2]["exc"]
    assert records[3]["team_id"] == "T1" and records[3]["note"] == "tok [redacted]"


async def test_request_id_is_carried_into_tasks(log_stream: io.StringIO) -> None:
    log = logging.getLogger("smtpcheck.test")

    async def background() -> None:
        await asyncio.sleep(0)
        log.info("in the background")

    with obs_logs.log_context(request_id="req-1"):
        log.info("received")
        with obs_logs.log_context(diagnosis_id="diag-9"):
            task = asyncio.create_task(background())
    log.info("outside")
    await task
    records = {r["msg"]: r for r in lines(log_stream)}
    assert records["received"]["request_id"] == "req-1"
    assert "diagnosis_id" not in records["received"]
    assert records["in the background"]["request_id"] == "req-1"
    assert records["in the background"]["diagnosis_id"] == "diag-9"
    assert "request_id" not in records["outside"]


def test_format_follows_the_terminal_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    log = logging.getLogger("smtpcheck.test")
    monkeypatch.delenv("SMTPCHECK_LOG_FORMAT", raising=False)
    tty = Tty()
    obs_logs.configure_logging(stream=tty)
    with obs_logs.log_context(request_id="rid7"):
        log.info("hello %s", "xoxb-9-9-CANARYother")
    text = tty.getvalue()
    assert "INFO" in text and "[rid7]" in text and "hello xoxb-[redacted]" in text
    assert not text.lstrip().startswith("{")

    pipe = io.StringIO()  # not a terminal: JSON
    obs_logs.configure_logging(stream=pipe)
    log.info("piped")
    assert json.loads(pipe.getvalue())["msg"] == "piped"

    monkeypatch.setenv("SMTPCHECK_LOG_FORMAT", "json")
    tty_json = Tty()
    obs_logs.configure_logging(stream=tty_json)
    log.info("forced")
    assert json.loads(tty_json.getvalue())["msg"] == "forced"
    # Reconfiguring replaced the handler instead of adding another.
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_smtpcheck_handler", False)]
    assert len(ours) == 1


# --------------------------------------------------------------------------- metrics


def sample_report() -> Report:
    return factories.report(
        "smtp.contoso.com",
        465,
        target="smtp.contoso.com:465",
        security=Security.SSL,
        verdict=Verdict.FAIL,
        findings=(
            Finding(id="tls.mode.ssl_on_starttls_port", severity=Severity.ERROR, title="t"),
            Finding(id="provider.detected", severity=Severity.INFO, title="t"),
        ),
        probes=(
            factories.probe(465, "plaintext_on_tls", address="192.0.2.1", elapsed_ms=180.0),
            factories.probe(587, "ok", address="192.0.2.1", elapsed_ms=420.0),
        ),
        timings_ms={"total": 1500.0},
    )


def samples(metrics: obs_metrics.Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_record_report_counts_verdict_findings_and_durations() -> None:
    metrics = obs_metrics.Metrics()
    metrics.record_report(sample_report())
    metrics.record_report(sample_report().to_json_dict())  # the stored JSON works too
    got = samples(metrics)
    assert got[("smtpcheck_diagnoses_total", (("verdict", "fail"),))] == 2
    assert got[("smtpcheck_diagnoses_total", (("verdict", "pass"),))] == 0
    key = (("finding_id", "tls.mode.ssl_on_starttls_port"), ("severity", "error"))
    assert got[("smtpcheck_findings_total", key)] == 2
    assert got[("smtpcheck_probe_duration_seconds_count", (("outcome", "ok"),))] == 2
    assert got[("smtpcheck_probe_duration_seconds_sum", (("outcome", "ok"),))] == pytest.approx(
        0.84
    )
    le = (("le", "0.25"), ("outcome", "plaintext_on_tls"))
    assert got[("smtpcheck_probe_duration_seconds_bucket", le)] == 2
    assert got[("smtpcheck_diagnosis_duration_seconds_sum", ())] == pytest.approx(3.0)
    with pytest.raises(TypeError):
        metrics.record_report(object())


def test_queue_depth_and_slack_errors_and_dedicated_registry() -> None:
    metrics = obs_metrics.Metrics()
    metrics.set_queue_depth(in_flight=3, waiting=7)
    metrics.record_slack_error("chat.postMessage", "channel_not_found")
    got = samples(metrics)
    assert got[("smtpcheck_queue_depth", (("state", "in_flight"),))] == 3
    assert got[("smtpcheck_queue_depth", (("state", "waiting"),))] == 7
    key = (("error", "channel_not_found"), ("method", "chat.postMessage"))
    assert got[("smtpcheck_slack_api_errors_total", key)] == 1
    assert ("smtpcheck_build_info", (("version", obs_metrics._version()),)) in got
    # Nothing leaks into prometheus_client's global registry.
    assert REGISTRY.get_sample_value("smtpcheck_diagnoses_total", {"verdict": "fail"}) is None


async def test_metrics_handler_serves_the_exposition_format() -> None:
    obs_metrics.record_report(sample_report())
    app = web.Application()
    app.router.add_get("/metrics", obs_metrics.metrics_handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        body = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert 'smtpcheck_diagnoses_total{verdict="fail"}' in body
    assert "# TYPE smtpcheck_probe_duration_seconds histogram" in body


# --------------------------------------------------------------------------- Slack client


@pytest.fixture
async def slack_api() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback Web API: chat.postMessage fails, conversations.info is rate limited once."""
    calls: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        calls.append(method)
        if method == "chat.postMessage":
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if method == "conversations.info" and calls.count(method) == 1:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"}
            )
        return web.json_response({"ok": True, "channel": {"id": "C1"}})

    app = web.Application()
    app.router.add_route("*", "/api/{method}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/api/")), calls
    finally:
        await server.close()


async def test_instrumented_client_counts_errors_and_retries(
    slack_api: tuple[str, list[str]],
) -> None:
    base_url, calls = slack_api
    metrics = obs_metrics.Metrics()
    client = obs_metrics.InstrumentedAsyncWebClient(
        token=BOT_TOKEN, base_url=base_url, metrics=metrics
    )
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C1", text="hi")
    response = await client.conversations_info(channel="C1")
    assert response["ok"] is True
    assert calls == ["chat.postMessage", "conversations.info", "conversations.info"]
    got = samples(metrics)
    key = (("error", "channel_not_found"), ("method", "chat.postMessage"))
    assert got[("smtpcheck_slack_api_errors_total", key)] == 1
    assert got[("smtpcheck_slack_api_retries_total", (("reason", "rate_limited"),))] == 1


# --------------------------------------------------------------------------- health


class FakeSocketClient:
    def __init__(self) -> None:
        self.connected = False

    async def is_connected(self) -> bool:
        return self.connected


async def get(state: obs_health.HealthState, path: str = "/health") -> tuple[int, dict[str, Any]]:
    app = web.Application()
    obs_health.add_ops_routes(app, state)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get(path)
        return response.status, await response.json()


async def test_health_http_mode_ready_draining_and_checks() -> None:
    state = obs_health.HealthState(mode="http")
    assert (await get(state))[0] == 503  # not started yet
    state.ready = True
    status, body = await get(state)
    assert status == 200 and body["status"] == "ok" and body["mode"] == "http"

    async def store_down() -> None:
        raise ConnectionError("postgresql://bot:CANARYpw@db refused")

    state.add_check("store", store_down)
    status, body = await get(state)
    assert status == 503 and "CANARY" not in json.dumps(body)
    # Why it fails goes to the log, not into the health text (issue 12 item 7).
    assert body["checks"]["store"] == "failing" and "postgresql" not in json.dumps(body)
    assert (await get(state, "/health?live=1"))[0] == 200  # alive, just not ready

    state = obs_health.HealthState(mode="http")
    state.ready, state.draining = True, True
    assert (await get(state))[0] == 503
    assert (await get(state, "/health?live=1"))[0] == 200


async def test_health_socket_mode_follows_the_connection() -> None:
    state = obs_health.HealthState(mode="socket", socket_grace_s=0.2)
    state.ready = True
    state.socket_client = FakeSocketClient()
    status, body = await get(state)
    assert status == 503 and body["socket_connected"] is False
    state.socket_client.connected = True
    status, body = await get(state)
    assert status == 200 and body["socket_connected"] is True
    state.socket_client.connected = False
    assert (await get(state, "/health?live=1"))[0] == 200  # within the grace period
    await asyncio.sleep(0.25)
    status, body = await get(state, "/health?live=1")
    assert status == 503 and body["live"] is False and body["socket_down_s"] >= 0.2


async def test_health_socket_mode_without_a_client() -> None:
    state = obs_health.HealthState(mode="socket")
    state.ready = True
    state.set_socket_connected(True)
    assert (await get(state))[0] == 200
    state.set_socket_connected(False)
    assert (await get(state))[0] == 503
