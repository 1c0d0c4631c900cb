"""The bot's Prometheus metrics (their own registry), /metrics, and the Slack Web API client
that counts its failed calls and retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)


# The *_created series double the exposition for no use on a dashboard.
disable_created_metrics()  # type: ignore[no-untyped-call]


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
        data: Mapping[str, Any] = to_json()
        return data
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

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            return await super().api_call(api_method, **kwargs)
        except Exception as exc:
            # Slack's error code, the HTTP status of a bodyless answer, or the transport's class.
            (self._metrics or METRICS).record_slack_error(api_method, api_error(exc))
            raise
