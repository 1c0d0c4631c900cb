"""Step 3 of a diagnosis: run the planned probes of one target within the time budget.

The setting as entered and its alternatives run concurrently against the pinned address.
When the entered setting works, alternatives still running get a short grace period and are
then cancelled: the user does not wait for a filtered port they never asked about. One
credential test only: if the entered setting never reached a login, the login is tried once
on a setting that works.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import dns.asyncresolver

from diagnostics import _assess, _dns, _plan
from diagnostics._conclude import summary
from diagnostics._config import EngineConfig
from diagnostics._errors import TargetRefused
from diagnostics._models import (
    CheckRequest,
    Credentials,
    ProbeOutcome,
    ProbePlan,
    ProbeResult,
    ms,
)
from diagnostics._policy import TargetPolicy
from diagnostics._progress import ProgressReporter
from diagnostics._target import Target
from diagnostics.labels import security_label
from diagnostics.wording import probe_result_words, tls_words

if TYPE_CHECKING:
    from diagnostics._tls import TrustStore

log = logging.getLogger("smtpcheck.engine")

# Once the entered setting works, how long alternatives may keep running (seconds).
ALTERNATIVE_GRACE = 1.0


class ProbeRun:
    """The probes of one diagnosis: its target, clock and budget, and the steps' timings."""

    def __init__(
        self,
        target: Target,
        address: str,
        *,
        request: CheckRequest,
        config: EngineConfig,
        policy: TargetPolicy,
        resolver: dns.asyncresolver.Resolver,
        clock: tuple[float, float, dt.datetime],  # loop time at the start, deadline, now
        progress: ProgressReporter,
        timings: dict[str, float],  # the diagnosis's: each probe adds its duration
    ) -> None:
        self.target = target
        self.address = address
        self.request = request
        self.config = config
        self.policy = policy
        self.resolver = resolver
        self.t0, self.deadline, self.now = clock
        self.loop = asyncio.get_running_loop()
        self.progress = progress
        self.timings = timings

    def _remaining(self) -> float:
        return max(0.0, self.deadline - self.loop.time())

    async def run(self, trust: TrustStore) -> list[ProbeResult]:
        """Every planned probe, the entered one first; a credential retry when it helps."""
        from diagnostics import _smtp_probe

        target, address, request = self.target, self.address, self.request
        credentials = None
        if request.password is not None and request.user:
            credentials = Credentials(user=request.user, password=request.password)
        relay_test = not request.requires_auth or target.port == 25
        plans = _plan.probe_plans(target, self.config.allowed_ports)
        other_hosts = await self._resolve_other_hosts(plans)
        tasks: dict[ProbePlan, asyncio.Task[ProbeResult]] = {}
        for plan in plans:
            plan_address = address if plan.host is None else other_hosts.get(plan.host)
            if plan_address is None:
                continue
            is_entered = plan.role == "entered"
            coro = self._one_probe(
                _smtp_probe.run_probe,
                plan,
                address=plan_address,
                server_name=plan.host or target.host,
                trust=trust,
                credentials=credentials if is_entered else None,
                sender=request.email,
                relay_test=relay_test and is_entered,
            )
            tasks[plan] = asyncio.create_task(coro, name=f"probe {plan.label}")
        entered_plan = next(iter(tasks))
        results = await self._gather_with_grace(tasks, entered_plan)
        # One credential test only; if the entered setting never reached a login, try the
        # login once on the setting that works, so the user learns about the password too.
        if credentials is not None and results[entered_plan].auth is None:
            works = self._credential_retry_target(results)
            if works is not None:
                retry = await self._one_probe(
                    _smtp_probe.run_probe,
                    ProbePlan(works.plan.port, works.plan.security, "credentials", works.plan.host),
                    address=works.address or address,
                    server_name=works.plan.host or target.host,
                    trust=trust,
                    credentials=credentials,
                    sender=request.email,
                    relay_test=False,
                )
                results[retry.plan] = retry
        return list(results.values())

    def _credential_retry_target(self, results: dict[ProbePlan, ProbeResult]) -> ProbeResult | None:
        if self._remaining() < self.config.timeouts.connect:
            return None
        for result in results.values():
            if _assess.usable(result, now=self.now, requires_auth=True):
                return result
        return None

    async def _resolve_other_hosts(self, plans: Sequence[ProbePlan]) -> dict[str, str]:
        """Addresses for the provider's documented host, under the same policy."""
        resolved: dict[str, str] = {}
        for host in {p.host for p in plans if p.host}:
            try:
                literal = self.policy.literal_target(host)
                addresses = (literal,) if literal else await _dns.resolve_host(self.resolver, host)
                resolved[host] = self.policy.pick_address(host, addresses)
            except (_dns.DnsError, TargetRefused) as exc:
                log.info("provider endpoint %s not probed: %s", host, exc)
        return resolved

    async def _one_probe(
        self, run_probe: Callable[..., Awaitable[ProbeResult]], plan: ProbePlan, **kwargs: Any
    ) -> ProbeResult:
        label = probe_label(plan, self.target.host)
        await self.progress(plan.label, label, "running", role=plan.role)
        result = await run_probe(
            plan, config=self.config, deadline=self.deadline, t0=self.t0, **kwargs
        )
        works = _assess.usable(result, now=self.now, requires_auth=self.request.requires_auth)
        await self.progress(
            plan.label,
            label,
            "done" if works else "failed",
            self._note(result),
            role=plan.role,
            duration_ms=result.elapsed_ms,
        )
        self.timings[f"probe {plan.label}"] = round(result.elapsed_ms, 1)
        return result

    def _note(self, result: ProbeResult) -> str:
        """How the probe ended, in the words the reports use (diagnostics.wording)."""
        words = probe_result_words(summary(result), requires_auth=self.request.requires_auth)
        if words == "works" and result.tls is not None:
            words += f", {tls_words(result.tls.version)}"
        auth = result.auth
        if auth is not None and auth.error != "oauth only":
            if auth.ok:
                words += ", login accepted"
            else:
                words = "login refused" if words.startswith("works") else f"{words}, login refused"
        return words

    async def _gather_with_grace(
        self, tasks: dict[ProbePlan, asyncio.Task[ProbeResult]], entered_plan: ProbePlan
    ) -> dict[ProbePlan, ProbeResult]:
        entered_task = tasks[entered_plan]
        # A safety net above the probes' own deadline handling.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(entered_task), timeout=self._remaining() + 1.0)
        pending = [t for t in tasks.values() if not t.done()]
        entered_ok = False
        if pending:
            entered_ok = (
                entered_task.done()
                and not entered_task.cancelled()
                and entered_task.exception() is None
                and _assess.usable(
                    entered_task.result(), now=self.now, requires_auth=self.request.requires_auth
                )
            )
            wait = min(ALTERNATIVE_GRACE, self._remaining()) if entered_ok else self._remaining()
            await asyncio.wait(pending, timeout=wait + (0 if entered_ok else 1.0))
        results: dict[ProbePlan, ProbeResult] = {}
        for plan, task in tasks.items():
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                # Unfinished because the entered setting already works: not needed, not shown.
                if plan is entered_plan or not entered_ok:
                    results[plan] = self._not_finished(plan, ProbeOutcome.BUDGET_EXHAUSTED)
                continue
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                log.error("probe %s crashed", plan.label, exc_info=exc)
                results[plan] = self._not_finished(plan, ProbeOutcome.ERROR, type(exc).__name__)
                continue
            results[plan] = task.result()
        return results

    def _not_finished(
        self, plan: ProbePlan, outcome: ProbeOutcome, error: str | None = None
    ) -> ProbeResult:
        elapsed = ms(self.loop.time() - self.t0)
        return ProbeResult(
            plan=plan, address=None, outcome=outcome, elapsed_ms=elapsed, error=error
        )


def probe_label(plan: ProbePlan, host: str) -> str:
    """The checklist's line for a probe: what is tried, and why when it is not the setting
    entered (context, not the user's choice)."""
    setting = f"{plan.port} {security_label(plan.security)}"
    if plan.role == "mode_check":
        return f"Checking the other encryption mode ({setting})"
    if plan.role == "alternative":
        return f"Trying {setting} too"
    if plan.role == "provider":
        return f"Trying the provider's setting {plan.host or host} {setting} too"
    if plan.role == "credentials":
        return f"Testing the login on {setting}"
    return f"Connecting to {plan.host or host} port {plan.port} ({security_label(plan.security)})"
