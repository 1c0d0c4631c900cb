"""Structured logs with secret redaction and a request ID, Prometheus metrics, /health state."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import json as jsonlib
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal, TextIO

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import async_default_handlers
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_io import api_error

_log = logging.getLogger(__name__)

# =========================================================================== redaction

REDACTED = "[redacted]"

_MECHANISMS = (
    r"(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5|DIGEST-MD5|GSSAPI|NTLM|SCRAM-[A-Z0-9-]+)"
)
_PATTERNS: tuple[tuple[re.Pattern[str], Any], ...] = (
    # Slack tokens: bot, user, refresh, rotated (xoxe.xoxb-), app-level. Keep the kind.
    (re.compile(r"\b(xox[a-z](?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]+"), r"\1-" + REDACTED),
    # SMTP AUTH with an initial response; never a capability list ("AUTH PLAIN LOGIN").
    (
        re.compile(
            rf"(?i)\b(AUTH\s+{_MECHANISMS})\s+(?!{_MECHANISMS}\b)[A-Za-z0-9+/]{{4,}}={{0,2}}"
        ),
        r"\1 " + REDACTED,
    ),
    # HTTP Authorization values.
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*"), r"\1 " + REDACTED),
    # user:password@ in URLs (database URLs).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    # password=..., "client_secret": "...", signing_secret: ..., token=...
    (
        re.compile(
            r"""(?ix)
            (["']?)
            ([\w.-]*(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key)[\w.-]*)
            \1
            (\s*[=:]\s*)
            ("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;&'"})\]]+)
            """
        ),
        lambda m: m[1] + m[2] + m[1] + m[3] + _keep_quotes(m[4]),
    ),
)


def _keep_quotes(value: str) -> str:
    """[redacted], quoted as the value was (JSON stays JSON)."""
    return value[0] + REDACTED + value[0] if value[:1] in ('"', "'") else REDACTED


# Literal secret values known at run time (the signing secret has no recognizable shape).
_literal_secrets: set[str] = set()
_SECRET_ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_SECRET",
    "SLACK_STATE_SECRET",
)


def register_secret(value: str | None) -> None:
    """Redact this exact value wherever it shows up in a log record (ignored if short)."""
    if value and len(value.strip()) >= 6:
        _literal_secrets.add(value.strip())


def register_env_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register the Slack secrets and the database password from the environment."""
    environ = os.environ if environ is None else environ
    for name in _SECRET_ENV:
        register_secret(environ.get(name))
    url = environ.get("SMTPCHECK_DATABASE_URL") or ""
    match = re.search(r"://[^/\s:@]+:([^@\s/]+)@", url)
    if match:
        register_secret(match.group(1))


def redact(text: str) -> str:
    """TEXT with Slack tokens, secrets, passwords and SMTP AUTH payloads replaced."""
    if not text:
        return text
    for secret in _literal_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# =========================================================================== context

_CONTEXT: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "smtpcheck_log_context", default=MappingProxyType({})
)
_CONTEXT_FIELDS = ("request_id", "diagnosis_id", "team_id", "user_id")


def new_request_id() -> str:
    """A short random ID for one Slack request or diagnosis."""
    return secrets.token_hex(6)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[Mapping[str, str]]:
    """Add FIELDS (request_id, diagnosis_id, ...) to every record logged inside the block.

    Tasks created inside inherit them (asyncio copies the context), so a background
    diagnosis keeps its ID.
    """
    merged = {**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(merged)
    try:
        yield merged
    finally:
        _CONTEXT.reset(token)


def bind_log_context(**fields: str | None) -> None:
    """Add FIELDS to the current context for the rest of this task (no block needed)."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}})


def current_log_context() -> Mapping[str, str]:
    """The fields every record gets right now."""
    return _CONTEXT.get()


class RedactingFilter(logging.Filter):
    """Redacts secrets from message, args and tracebacks, and adds the context fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        context = _CONTEXT.get()
        for name in _CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        for name, value in context.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


# Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", *_CONTEXT_FIELDS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the context IDs, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = redact(value) if isinstance(value, str) else _jsonable(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return jsonlib.dumps(entry, ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    try:
        jsonlib.dumps(value)
    except (TypeError, ValueError):
        return redact(repr(value))
    return value


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal: time, level, logger, [request ID], message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(ids)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        ids = [getattr(record, n, None) for n in ("request_id", "diagnosis_id")]
        record.ids = " [" + " ".join(i for i in ids if i) + "]" if any(ids) else ""
        return super().format(record)


_HANDLER_MARK = "_smtpcheck_handler"


def configure_logging(
    json: bool | None = None,
    level: int | str | None = None,
    *,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record through redaction to STREAM (stderr), as JSON or readable text.

    JSON when asked, or SMTPCHECK_LOG_FORMAT=json, or STREAM is not a terminal; the level
    from LEVEL, else SMTPCHECK_LOG_LEVEL, else INFO. Calling it again replaces the handler.
    """
    target = stream or sys.stderr
    if json is None:
        wanted = os.environ.get("SMTPCHECK_LOG_FORMAT", "").strip().lower()
        if wanted in ("json", "text", "console"):
            json = wanted == "json"
        else:
            json = not (hasattr(target, "isatty") and target.isatty())
    level = level or os.environ.get("SMTPCHECK_LOG_LEVEL", "").strip().upper() or logging.INFO
    register_env_secrets()
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json else ConsoleFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (as logging's last resort does),
    never to a stream that was replaced and closed since."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


# =========================================================================== metrics

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)


# The *_created series double the exposition for no use on a dashboard.
disable_created_metrics()


class Metrics:
    """The bot's Prometheus metrics, in their own registry (never the global one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.diagnoses = Counter(
            "smtpcheck_diagnoses", "Diagnoses finished, by verdict.", ["verdict"], registry=r
        )
        self.findings = Counter(
            "smtpcheck_findings",
            "Findings reported, by finding ID and severity.",
            ["finding_id", "severity"],
            registry=r,
        )
        self.probe_duration = Histogram(
            "smtpcheck_probe_duration_seconds",
            "Time one SMTP probe took, by outcome.",
            ["outcome"],
            buckets=_SECONDS,
            registry=r,
        )
        self.diagnosis_duration = Histogram(
            "smtpcheck_diagnosis_duration_seconds",
            "Time a whole diagnosis took.",
            buckets=_SECONDS,
            registry=r,
        )
        self.slack_api_errors = Counter(
            "smtpcheck_slack_api_errors",
            "Slack Web API calls that failed, by method and error.",
            ["method", "error"],
            registry=r,
        )
        self.slack_api_retries = Counter(
            "smtpcheck_slack_api_retries",
            "Slack Web API calls retried, by reason.",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "smtpcheck_queue_depth",
            "Diagnoses running (in_flight) and waiting for a slot (waiting).",
            ["state"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "smtpcheck_outbox_pending", "Slack messages waiting to be posted again.", registry=r
        )
        self.build = Info("smtpcheck_build", "The running smtpcheck version.", registry=r)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        # Zero series exist from the start, so rate() and alerts work before the first event.
        for verdict in ("pass", "warn", "fail"):
            self.diagnoses.labels(verdict=verdict)
        for state in ("in_flight", "waiting"):
            self.queue_depth.labels(state=state).set(0)
        for reason in ("rate_limited", "connection", "server_error", "other"):
            self.slack_api_retries.labels(reason=reason)
        self.build.info({"version": _version()})

    def record_report(self, report: Any) -> None:
        """Count a finished diagnosis: verdict, findings, probe and total durations."""
        data = _report_dict(report)
        verdict = str(data.get("verdict") or "unknown")
        self.diagnoses.labels(verdict=verdict).inc()
        for finding in data.get("findings") or ():
            self.findings.labels(
                finding_id=str(finding.get("id")), severity=str(finding.get("severity"))
            ).inc()
        for probe in data.get("probes") or ():
            elapsed = probe.get("elapsed_ms")
            if isinstance(elapsed, int | float) and elapsed >= 0:
                self.probe_duration.labels(outcome=str(probe.get("outcome"))).observe(
                    elapsed / 1000
                )
        total = (data.get("timings_ms") or {}).get("total")
        if isinstance(total, int | float) and total >= 0:
            self.diagnosis_duration.observe(total / 1000)

    def record_slack_error(self, method: str, error: str) -> None:
        """Count a failed Slack API call (error: Slack's error code or the exception type)."""
        self.slack_api_errors.labels(method=method, error=error).inc()

    def set_queue_depth(self, *, in_flight: int, waiting: int) -> None:
        """The runner's current load."""
        self.queue_depth.labels(state="in_flight").set(in_flight)
        self.queue_depth.labels(state="waiting").set(waiting)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("smtpcheck")
    except Exception:  # running from a source tree that is not installed
        return "unknown"


def _report_dict(report: Any) -> Mapping[str, Any]:
    if isinstance(report, Mapping):
        return report
    to_json = getattr(report, "to_json_dict", None)
    if callable(to_json):
        return to_json()
    raise TypeError(f"not a report: {type(report).__name__}")


METRICS = Metrics()


def record_report(report: Any) -> None:
    """Update the metrics from a diagnostics Report (or its JSON dict)."""
    METRICS.record_report(report)


def record_slack_error(method: str, error: str) -> None:
    """Count a failed Slack API call."""
    METRICS.record_slack_error(method, error)


def set_queue_depth(*, in_flight: int, waiting: int) -> None:
    """Publish the runner's load."""
    METRICS.set_queue_depth(in_flight=in_flight, waiting=waiting)


def render_metrics(metrics: Metrics | None = None) -> tuple[bytes, str]:
    """/metrics body and content type."""
    return (metrics or METRICS).render()


async def metrics_handler(request: web.Request) -> web.Response:
    """aiohttp handler for GET /metrics."""
    body, content_type = render_metrics()
    return web.Response(body=body, headers={"Content-Type": content_type})


# --------------------------------------------------------------------------- Slack client

_RETRY_REASONS = {
    "AsyncRateLimitErrorRetryHandler": "rate_limited",
    "AsyncConnectionErrorRetryHandler": "connection",
    "AsyncServerErrorRetryHandler": "server_error",
}


class CountingRetryHandler(AsyncRetryHandler):
    """Wraps one of slack_sdk's retry handlers and counts each retry it makes."""

    def __init__(self, inner: AsyncRetryHandler, *, metrics: Metrics | None = None) -> None:
        super().__init__(inner.max_retry_count, inner.interval_calculator)
        self.inner = inner
        self.reason = _RETRY_REASONS.get(type(inner).__name__, "other")
        self._metrics = metrics

    async def can_retry_async(self, **kwargs: Any) -> bool:
        return await self.inner.can_retry_async(**kwargs)

    async def prepare_for_next_attempt_async(self, **kwargs: Any) -> None:
        (self._metrics or METRICS).slack_api_retries.labels(reason=self.reason).inc()
        await self.inner.prepare_for_next_attempt_async(**kwargs)


def slack_retry_handlers(
    *, rate_limit_retries: int = 2, metrics: Metrics | None = None
) -> list[AsyncRetryHandler]:
    """slack_sdk's default retry handlers (plus rate-limit retries), each counted."""
    from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

    handlers = list(async_default_handlers())
    if rate_limit_retries > 0:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries))
    return [CountingRetryHandler(h, metrics=metrics) for h in handlers]


class InstrumentedAsyncWebClient(AsyncWebClient):
    """An AsyncWebClient that counts failed calls and retries in the metrics."""

    def __init__(self, *args: Any, metrics: Metrics | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retry_handlers", slack_retry_handlers(metrics=metrics))
        super().__init__(*args, **kwargs)
        self._metrics = metrics

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return await super().api_call(api_method, **kwargs)
        except Exception as exc:
            # Slack's error code, the HTTP status of a bodyless answer, or the transport's class.
            (self._metrics or METRICS).record_slack_error(api_method, api_error(exc))
            raise


# =========================================================================== health


class HealthState:
    """What /health reports: ready for traffic (readiness) and alive (liveness).

    HTTP mode is ready once `ready` is set and not draining. Socket Mode also needs the
    WebSocket: connected (`socket_client.is_connected()` or `set_socket_connected`); a
    connection down longer than SOCKET_GRACE_S fails liveness too, so the pod is restarted.
    """

    def __init__(
        self, *, mode: Literal["http", "socket"] = "http", socket_grace_s: float = 120.0
    ) -> None:
        self.mode = mode
        self.ready = False
        self.draining = False
        self.socket_grace_s = socket_grace_s
        self.socket_client: Any = None  # slack_sdk SocketModeClient (has async is_connected)
        self.started = time.monotonic()
        self._socket_connected: bool | None = None
        self._down_since: float | None = time.monotonic()
        self._checks: dict[str, Callable[[], Awaitable[object]]] = {}

    def set_socket_connected(self, connected: bool) -> None:
        """Record the WebSocket's state (for callers without a client to ask)."""
        self._socket_connected = connected
        if connected:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.monotonic()

    def add_check(self, name: str, check: Callable[[], Awaitable[object]]) -> None:
        """A readiness dependency, e.g. the store's ping; it fails by raising or timing out."""
        self._checks[name] = check

    async def _socket_state(self) -> bool:
        if self.socket_client is not None:
            try:
                connected = bool(await self.socket_client.is_connected())
            except Exception:
                connected = False
            self.set_socket_connected(connected)
        return bool(self._socket_connected)

    async def snapshot(self, *, check_timeout: float = 2.0) -> dict[str, Any]:
        """The state as /health shows it; "ready" and "live" decide the status code."""
        body: dict[str, Any] = {
            "mode": self.mode,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "draining": self.draining,
        }
        ready = self.ready and not self.draining
        live = True
        if self.mode == "socket":
            connected = await self._socket_state()
            body["socket_connected"] = connected
            ready = ready and connected
            if not connected and self._down_since is not None:
                down_for = time.monotonic() - self._down_since
                body["socket_down_s"] = round(down_for, 1)
                live = down_for < self.socket_grace_s
        checks: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                await asyncio.wait_for(check(), check_timeout)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = redact(f"{type(exc).__name__}: {exc}")[:200]
                ready = False
        if checks:
            body["checks"] = checks
        body["ready"] = ready
        body["live"] = live
        body["status"] = "ok" if ready else "unavailable"
        return body


def make_health_handler(
    state: HealthState,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """aiohttp handler for GET /health (readiness); GET /health?live=1 is liveness."""

    async def health(request: web.Request) -> web.Response:
        body = await state.snapshot()
        if request.query.get("live") not in (None, "", "0"):
            ok = body["live"]
        else:
            ok = body["ready"]
        return web.json_response(body, status=200 if ok else 503)

    return health


def add_ops_routes(app: web.Application, state: HealthState) -> None:
    """Mount GET /health and GET /metrics on an aiohttp application."""
    app.router.add_get("/health", make_health_handler(state))
    app.router.add_get("/metrics", metrics_handler)
