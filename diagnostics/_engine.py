"""`diagnose()`: from the settings a user typed into Outlook to a frozen report.

One `_Diagnosis` per request (as dnspython's `_Resolution` is one object per resolution),
every attribute declared in `__init__`, the work in pure steps around it:
1. `_target`: work out host/port/security and resolve the name ONCE; the address that
   passes the target policy is pinned and every probe connects to it (no second lookup,
   no DNS rebinding).
2. `_plan`: the probes, pure: the setting as entered and, at the same time, the
   alternatives that tell the user what would work (587 STARTTLS, 465 SSL/TLS, the other
   mode on the same port, the provider's documented endpoint). Sender-domain DNS checks run
   alongside (`_sender`).
3. The probes (here): when the entered setting works, alternatives still running get a
   short grace period and are then cancelled: the user does not wait for a filtered port
   they never asked about.
4. `_assess` and `_conclude`: findings from the results, then meaning from the knowledge
   base (reply codes, provider policy, fix steps for the user's Outlook).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import dns.resolver

from diagnostics import _assess, _conclude, _discovered, _discovery, _dns, _policy, _sender
from diagnostics._config import EngineConfig
from diagnostics._models import (
    CheckRequest,
    DiscoverySummary,
    Endpoint,
    ErrorTextCause,
    Finding,
    ProbeResult,
    Report,
    ReportInput,
    ms,
    split_events,
    tool_version,
    verdict_for,
)
from diagnostics._plan import entered_plan_security
from diagnostics._probing import ProbeRun
from diagnostics._progress import ProgressCallback, ProgressReporter
from diagnostics._target import Target, pin_address, work_out_target
from diagnostics.knowledge import ErrorTextMatch, load_knowledge

if TYPE_CHECKING:
    from diagnostics._tls import TrustStore

log = logging.getLogger("smtpcheck.engine")

# Discovery (ISPDB, autoconfig over HTTPS, SRV, autodiscover) gets at most this much of the
# budget, so that the probes of what it found still have time.
DISCOVERY_SHARE = 0.35
DISCOVERY_BUDGET = 6.0


async def diagnose(
    request: CheckRequest,
    config: EngineConfig | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    today: dt.date | None = None,
) -> Report:
    """Diagnose the outgoing-mail settings in `request`; raise InputError for bad input."""
    if not _prepared:
        await asyncio.to_thread(_prepare)
    run = _Diagnosis(request, config or EngineConfig(), on_progress, today)
    return await run.run()


async def prepare(config: EngineConfig | None = None) -> None:
    """Load what a first diagnosis needs (modules, knowledge base, trust store) in worker
    threads. diagnose() does it itself; a long-running front end calls this at start, so
    that neither its first user nor its event loop waits for it (GIL-bound C parsing in a
    thread still delays the loop by tens of milliseconds)."""
    if not _prepared:
        await asyncio.to_thread(_prepare)
    from diagnostics import _tls

    await _tls.load_trust_store((config or EngineConfig()).ca_bundle)


_prepared = False
_prepare_lock = threading.Lock()  # a first burst of diagnoses loads once, not once per thread


def _prepare() -> None:
    """Imports and the knowledge base, once, in a worker thread: a bot's event loop never
    stalls for them (~0.3 s) when its first diagnosis starts."""
    global _prepared
    with _prepare_lock:
        if _prepared:
            return
        from diagnostics import _smtp_probe, _tls  # noqa: F401

        load_knowledge()
        _prepared = True


class _Diagnosis:
    """One diagnosis: the request, the clock and budget, and what each step found."""

    def __init__(
        self,
        request: CheckRequest,
        config: EngineConfig,
        on_progress: ProgressCallback | None,
        today: dt.date | None,
    ) -> None:
        self.request = request
        self.config = config
        self.kb = load_knowledge()
        self.policy = _policy.TargetPolicy.from_config(config)
        self.now = dt.datetime.now(dt.UTC)
        self.today = today or self.now.date()
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.progress = ProgressReporter(on_progress, self.loop, self.t0)
        self.deadline = self.t0 + config.budget
        self.resolver = _dns.build_resolver(
            config.nameservers,
            timeout=config.timeouts.dns,
            lifetime=min(config.timeouts.dns * 2, config.budget),
        )
        # Each question once per diagnosis (the PTR's forward check asks the target's A and
        # AAAA again); the cache belongs to this diagnosis alone, so no answer outlives it.
        self.resolver.cache = dns.resolver.Cache()
        self.target: Target | None = None  # step 1's result
        self.trust: asyncio.Future[TrustStore] | None = None  # loaded while DNS answers
        self.results: list[ProbeResult] = []  # step 3's
        self.entered: ProbeResult | None = None  # the probe of the setting as entered
        self.findings: list[Finding] = []
        self.error_causes: list[ErrorTextCause] = []
        self.timings: dict[str, float] = {}
        self.discovery: DiscoverySummary | None = None  # where the settings came from
        self.alternatives: tuple[Endpoint, ...] = ()  # other working settings, closest first

    # ------------------------------------------------------------------ orchestration

    async def run(self) -> Report:
        if self.request.port is not None:
            self.policy.check_port(self.request.port)
        # The trust store is first needed after a handshake: load it while DNS answers.
        self.trust = asyncio.ensure_future(self._trust_store())
        try:
            target = await self._resolve_target()
        except BaseException:
            _discard(self.trust)
            raise
        if target.address is None:
            _discard(self.trust)
            # Valid input with a real problem: the sender's domain is still checked.
            self.findings += await self._sender_checks(target, None)
        else:
            sender_task = asyncio.create_task(self._sender_checks(target, target.address))
            assert self.trust is not None
            probes = ProbeRun(
                target,
                target.address,
                request=self.request,
                config=self.config,
                policy=self.policy,
                resolver=self.resolver,
                clock=(self.t0, self.deadline, self.now),
                progress=self.progress,
                timings=self.timings,
            )
            self.results = await probes.run(await self.trust)
            self.findings += await sender_task
        self.findings += _conclude.provider_findings(target, self.kb, self.request, self.today)
        self._discovery_findings(target)
        recommended = self._recommended(target)
        matches: list[ErrorTextMatch] = []
        if self.request.error_text:
            # Linear-time (RE2) but up to 20,000 characters of the user's text: not on the loop.
            matches = await asyncio.to_thread(self.kb.parse_error_text, self.request.error_text)
        findings = self._finalize(target, recommended, matches)
        # From the same start as the progress events' times: one total, the same everywhere.
        self.timings["total"] = ms(self.loop.time() - self.t0)
        return self._report(target, recommended, findings)

    def _report(
        self, target: Target, recommended: Endpoint | None, findings: list[Finding]
    ) -> Report:
        request = self.request
        exchanged, events = split_events(line for r in self.results for line in r.transcript)
        return Report(
            input=ReportInput(
                target=request.target,
                host=target.host or request.host,
                # Nothing found to check: no port or encryption was chosen either.
                port=(target.port or request.port) if target.found else request.port,
                security=target.security if target.found else request.security,
                email=request.email,
                user=request.user,
                client=request.client,
                requires_auth=request.requires_auth,
                error_text=request.error_text,
                connect=request.connect,
            ),
            verdict=verdict_for(findings),
            provider=target.provider_ref,
            recommended=recommended,
            alternatives=self.alternatives,
            findings=tuple(findings),
            probes=tuple(_conclude.summary(r) for r in self.results),
            transcript=exchanged,
            events=events,
            discovery=self.discovery,
            timings_ms=self.timings,
            started_at=self.now,
            error_text_causes=tuple(self.error_causes),
            tool_version=tool_version(),
        )

    async def _trust_store(self) -> TrustStore:
        from diagnostics import _tls

        return await _tls.load_trust_store(self.config.ca_bundle)

    def _remaining(self) -> float:
        return max(0.0, self.deadline - self.loop.time())

    # ------------------------------------------------------------------ target and DNS

    async def _resolve_target(self) -> Target:
        """Step 1; the target's address stays None when the name did not resolve."""
        started = self.loop.time()
        await self.progress("dns", "Looking up the server", "running")
        target, guessed = await work_out_target(
            self.request, self.kb, self.resolver, discover=self._discover
        )
        self.target = target
        self.findings += guessed
        if not target.found:
            self.timings["dns"] = ms(self.loop.time() - started)
            await self.progress("dns", "Looking up the server", "failed", "none found")
            return target
        self.policy.check_port(target.port)
        try:
            target = await pin_address(target, self.policy, self.resolver)
        except _dns.DnsError as exc:
            self.findings.append(_conclude.dns_finding(exc, target.connect))
            self.timings["dns"] = ms(self.loop.time() - started)
            await self.progress(
                "dns",
                f"Looking up {target.connect}",
                "failed",
                str(exc),
                duration_ms=self.timings["dns"],
            )
            return target
        self.target = target
        self.timings["dns"] = ms(self.loop.time() - started)
        # Public addresses by name, the others counted: no internal address shown to users.
        note = self.policy.shown_addresses(target.addresses)
        await self.progress(
            "dns", f"Looking up {target.connect}", "done", note, duration_ms=self.timings["dns"]
        )
        return target

    async def _discover(self, inputs: _discovery.Inputs) -> _discovery.Discovery:
        """Discovery within its share of the budget; candidates on ports the operator does
        not allow go last (they can be named, not probed)."""
        from diagnostics import _fetch  # aiohttp: only for an address, not for a server name

        budget = min(DISCOVERY_BUDGET, self.config.budget * DISCOVERY_SHARE, self._remaining())
        fetcher = _fetch.Fetcher(
            self.resolver,
            self.policy,
            ca_bundle=self.config.ca_bundle,
            https_port=self.config.https_port,
        )
        label = f"Finding the outgoing server of {inputs.domain}"
        await self.progress("discovery", label, "running")
        started = self.loop.time()
        found = await _discovery.discover(
            inputs, resolver=self.resolver, fetcher=fetcher, budget=budget
        )
        self.timings["discovery"] = ms(self.loop.time() - started)
        allowed = self.config.allowed_ports
        ordered = sorted(found.candidates, key=lambda c: c.port not in allowed)
        named = [_discovery.SOURCE_NAMES[o.source] for o in found.outcomes if o.state == "found"]
        await self.progress(
            "discovery",
            label,
            "done",
            f"found in: {', '.join(named)}" if named else "none published",
            duration_ms=self.timings["discovery"],
        )
        return dataclasses.replace(found, candidates=tuple(ordered))

    def _discovery_findings(self, target: Target) -> None:
        """Where the settings came from and whether the probes confirmed them; or that no
        outgoing server could be found at all."""
        domain = self.request.sender_domain or ""
        if not target.found:
            self.findings.append(_discovered.no_server_found(target.discovery, domain))
        if target.discovery is None:
            return
        confirmed = _discovered.confirmations(
            target.discovery,
            self.results,
            host=target.host,
            now=self.now,
            requires_auth=self.request.requires_auth,
        )
        if target.found:
            checked = Endpoint(
                host=target.host, port=target.port, security=entered_plan_security(target)
            )
            self.findings += _discovered.findings(target.discovery, checked, confirmed)
        self.discovery = _discovered.summary(target.discovery, confirmed)

    async def _sender_checks(self, target: Target, address: str | None) -> list[Finding]:
        started = self.loop.time()
        findings: list[Finding] = []
        domain = self.request.sender_domain
        jobs: list[Awaitable[list[Finding]]] = []
        if address is not None:
            jobs.append(_sender.check_ptr(self.resolver, address, host=target.host))
        if domain:
            await self.progress("sender", f"Checking DNS of {domain}", "running")
            jobs.append(_sender.check_sender_domain(self.resolver, domain, mx=target.mx))
        try:
            async with asyncio.timeout(max(0.1, self._remaining())):
                for outcome in await asyncio.gather(*jobs, return_exceptions=True):
                    if isinstance(outcome, BaseException):
                        log.info("sender-domain check failed: %r", outcome)
                        continue
                    findings += outcome
        except TimeoutError:
            log.info("sender-domain checks ran out of budget")
        self.timings["sender_dns"] = ms(self.loop.time() - started)
        if domain:
            await self.progress(
                "sender",
                f"Checking DNS of {domain}",
                "done",
                duration_ms=self.timings["sender_dns"],
            )
        return findings

    # ------------------------------------------------------------------ findings

    def _recommended(self, target: Target) -> Endpoint | None:
        results = self.results
        self.entered = next((r for r in results if r.plan.role == "entered"), None)
        if self.entered is None:
            return None
        timeouts = self.config.timeouts
        context = _conclude.assess_context(
            target,
            self.request,
            self.now,
            {
                "connect": timeouts.connect,
                "greeting": timeouts.greeting,
                "command": timeouts.command,
                "tls": timeouts.tls,
            },
        )
        mode_check = next((r for r in results if r.plan.role == "mode_check"), None)
        self.findings += _assess.entered_probe_findings(self.entered, mode_check, context)
        for result in results:
            if result.plan.role == "credentials":
                self.findings += _assess.credential_findings(result, context)
        leave_port_25 = _conclude.port25_blocked_likely(
            target, results, now=self.now, requires_auth=self.request.requires_auth
        )
        recommendation = _conclude.recommendation(
            target,
            results,
            self.entered,
            now=self.now,
            requires_auth=self.request.requires_auth,
            leave_port_25=leave_port_25,
        )
        # The finding names the setting recommended, so it is made once that is known.
        if leave_port_25 and recommendation.best is not None:
            self.findings.append(_conclude.port25_finding(target, recommendation.best))
        self.alternatives = recommendation.alternatives
        return recommendation.best

    def _finalize(
        self, target: Target, recommended: Endpoint | None, matches: Sequence[ErrorTextMatch]
    ) -> list[Finding]:
        provider_key = target.provider.key if target.provider else None
        findings = [_conclude.interpret(self.kb, f, provider_key) for f in self.findings]
        if matches:
            self.error_causes, causes = _conclude.error_text_causes(
                matches, findings, self.entered, login_tested=self.request.password is not None
            )
            findings += causes
        findings = self._client_side_hint(target, findings)
        ok = _conclude.settings_ok(target, findings, self.entered)
        if ok is not None:
            findings.append(ok)
        context = _conclude.fix_context(target, self.request, recommended)
        client = self.request.client
        return [
            _conclude.with_fix(self.kb, f, context, client) for f in _conclude.ordered(findings)
        ]

    def _client_side_hint(self, target: Target, findings: list[Finding]) -> list[Finding]:
        """Server fine from here, user reports a connection problem: the path is at fault."""
        if not self.error_causes and not self.request.user_reports_failure:
            # Nothing says the user fails: the hint cannot apply (server_ok_but_user_fails'
            # own first rule), so neither its import (~35 ms) nor a draft report is needed.
            return findings
        from diagnostics.client_check import server_ok_but_user_fails

        draft = Report(
            input=ReportInput(
                target=self.request.target,
                host=target.host,
                port=target.port,
                security=target.security,
                email=self.request.email,
                user=self.request.user,
                client=self.request.client,
                error_text=self.request.error_text,
            ),
            verdict=verdict_for(findings),
            findings=tuple(findings),
            probes=tuple(_conclude.summary(r) for r in self.results),
            error_text_causes=tuple(self.error_causes),
        )
        hint = server_ok_but_user_fails(
            draft, user_reports_failure=self.request.user_reports_failure
        )
        return [*findings, hint] if hint is not None else findings


def _discard(task: asyncio.Future[Any]) -> None:
    """Cancel a task whose result is no longer wanted, and never log its failure."""
    task.cancel()
    if task.done() and not task.cancelled():
        task.exception()
