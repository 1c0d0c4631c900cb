"""`diagnose()`: from the settings a user typed into Outlook to a frozen report.

The order of work, and why:
1. Validate ports and resolve the server name ONCE; the address that passes the target
   policy is pinned and every probe connects to it (no second lookup, no DNS rebinding).
2. Probe the setting as entered and, at the same time, the alternatives that tell the user
   what would work (587 STARTTLS, 465 SSL/TLS, the other mode on the same port, the
   provider's documented endpoint). Sender-domain DNS checks run alongside.
3. When the entered setting works, alternatives still running get a short grace period and
   are then cancelled: the user does not wait for a filtered port they never asked about.
4. Findings from the results, then meaning from the knowledge base (reply codes, provider
   policy, fix steps for the user's Outlook).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence

import dns.resolver

from diagnostics import _assess, _dns, _policy, _sender
from diagnostics._config import EngineConfig
from diagnostics._errors import InputError, TargetRefused
from diagnostics._findings import finding
from diagnostics._models import (
    DEFAULT_SECURITY_FOR_PORT,
    SEVERITY_ORDER,
    CheckRequest,
    Credentials,
    Endpoint,
    ErrorTextCause,
    Finding,
    ProbeOutcome,
    ProbePlan,
    ProbeResult,
    ProbeSummary,
    Progress,
    ProviderRef,
    Report,
    ReportInput,
    Security,
    Severity,
    ms,
    split_events,
    tool_version,
    verdict_for,
)
from diagnostics.labels import security_label

log = logging.getLogger("smtpcheck.engine")

ProgressCallback = Callable[[Progress], Awaitable[None] | None]

# Once the entered setting works, how long alternatives may keep running (seconds).
ALTERNATIVE_GRACE = 1.0
IMPLICIT_TLS_PORTS = frozenset({465, 2465})
_SOURCE_WORDS = {"mx": "domain's MX records", "host": "server name"}


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
        from diagnostics.knowledge import load_knowledge

        load_knowledge()
        _prepared = True


class _Diagnosis:
    def __init__(
        self,
        request: CheckRequest,
        config: EngineConfig,
        on_progress: ProgressCallback | None,
        today: dt.date | None,
    ) -> None:
        from diagnostics.knowledge import load_knowledge

        self.request = request
        self.config = config
        self.on_progress = on_progress
        self.kb = load_knowledge()
        self.policy = _policy.TargetPolicy.from_config(config)
        self.now = dt.datetime.now(dt.UTC)
        self.today = today or self.now.date()
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.deadline = self.t0 + config.budget
        self.findings: list[Finding] = []
        self.timings: dict[str, float] = {}
        self.provider = None
        self.match = None  # knowledge.ProviderMatch: the provider and the name's parts
        self.provider_ref: ProviderRef | None = None
        self.mx: _dns.MxResult | None = None
        self.host: str = ""
        self.port: int = 0
        self.security: Security = Security.STARTTLS
        self.resolver = _dns.build_resolver(
            config.nameservers,
            timeout=config.timeouts.dns,
            lifetime=min(config.timeouts.dns * 2, config.budget),
        )
        # Each question once per diagnosis (the PTR's forward check asks the target's A and
        # AAAA again); the cache belongs to this diagnosis alone, so no answer outlives it.
        self.resolver.cache = dns.resolver.Cache()

    # ------------------------------------------------------------------ orchestration

    async def run(self) -> Report:
        request = self.request
        results: list[ProbeResult] = []
        if request.port is not None:
            self.policy.check_port(request.port)
        started = time.perf_counter()
        # The trust store is first needed after a handshake: load it while DNS answers.
        self.trust = asyncio.ensure_future(self._trust_store())
        try:
            dns_ok = await self._resolve_target()
        except BaseException:
            _discard(self.trust)
            raise
        if dns_ok is None:
            _discard(self.trust)
        else:
            address, addresses = dns_ok
            sender_task = self._start_sender_checks(address)
            results = await self._probe_all(address, addresses)
            self.findings += await sender_task
        self._provider_findings(results)
        await self._error_text_findings(results)
        recommended = self._recommended(results)
        findings = self._finalize(recommended, results)
        self.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        exchanged, events = split_events(line for r in results for line in r.transcript)
        return Report(
            input=ReportInput(
                target=request.target,
                host=self.host or request.host,
                port=self.port or request.port,
                security=self.security,
                email=request.email,
                user=request.user,
                client=request.client,
                requires_auth=request.requires_auth,
                error_text=request.error_text,
                connect=request.connect,
            ),
            verdict=verdict_for(findings),
            provider=self.provider_ref,
            recommended=recommended,
            findings=tuple(findings),
            probes=tuple(self._summary(r) for r in results),
            transcript=exchanged,
            events=events,
            timings_ms=self.timings,
            started_at=self.now,
            error_text_causes=tuple(self.error_causes),
            tool_version=tool_version(),
        )

    async def _progress(self, step: str, label: str, state: str, note: str = "") -> None:
        if self.on_progress is None:
            return
        event = Progress(
            step=step,
            label=label,
            state=state,  # type: ignore[arg-type]
            elapsed_ms=round((self.loop.time() - self.t0) * 1000, 1),
            note=note,
        )
        try:
            result = self.on_progress(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a front end's progress display must never break a diagnosis
            log.warning("progress callback failed", exc_info=True)

    async def _trust_store(self):  # -> _tls.TrustStore
        from diagnostics import _tls

        return await _tls.load_trust_store(self.config.ca_bundle)

    def _remaining(self) -> float:
        return max(0.0, self.deadline - self.loop.time())

    # ------------------------------------------------------------------ target and DNS

    async def _resolve_target(self) -> tuple[str, tuple[str, ...]] | None:
        """Work out host/port/security; resolve and pin the address (None: DNS failed)."""
        request = self.request
        domain = request.sender_domain
        started = self.loop.time()
        await self._progress("dns", "Looking up the server", "running")
        if domain:
            self.mx = await self._lookup_mx(domain)
        if request.host:
            self.host = request.host
            self.match = self.kb.match_host(request.host, port=request.port)
        if self.match is None and self.mx is not None and self.mx.hosts:
            self.match = self.kb.match_mx(self.mx.hosts)
        if self.match is not None:
            self.provider = self.match.provider
            self.provider_ref = ProviderRef(
                name=self.provider.name, source=self.match.source, key=self.provider.key
            )
        documented = self._documented_endpoints()
        if not self.host:
            if documented:
                self.host = documented[0].host
            else:
                self.host = await self._guess_host(domain or "")
        self.port = request.port or (documented[0].port if documented else 587)
        self.policy.check_port(self.port)
        self.security = self._entered_security(documented)
        target = request.connect or self.host
        literal = self.policy.literal_target(target)  # raises TargetRefused
        try:
            if literal is not None:
                addresses: tuple[str, ...] = (literal,)
            else:
                addresses = await _dns.resolve_host(self.resolver, target)
        except _dns.DnsError as exc:
            self.findings.append(self._dns_finding(exc, target))
            self.timings["dns"] = ms(self.loop.time() - started)
            await self._progress("dns", f"Looking up {target}", "failed", str(exc))
            return None
        address = self.policy.pick_address(target, addresses)  # pinned from here on
        self.timings["dns"] = ms(self.loop.time() - started)
        await self._progress("dns", f"Looking up {target}", "done", ", ".join(addresses[:4]))
        return address, addresses

    async def _lookup_mx(self, domain: str) -> _dns.MxResult | None:
        try:
            return await _dns.lookup_mx(self.resolver, domain)
        except _dns.DnsError as exc:
            log.info("MX lookup for %s failed: %s", domain, exc)
            return None

    async def _guess_host(self, domain: str) -> str:
        """No known provider: try the names hosting companies use for submission."""
        candidates = [f"smtp.{domain}", f"mail.{domain}"]
        if self.mx is not None:
            candidates += list(self.mx.hosts[:1])
        for name in candidates:
            try:
                await _dns.resolve_host(self.resolver, name)
            except _dns.DnsError:
                continue
            self.findings.append(
                finding(
                    "provider.unknown",
                    detail=(
                        f"The mail provider of {domain} is not one smtpcheck knows, so it "
                        f"checked {name}, the usual name for an outgoing server. Ask the "
                        "provider for its documented SMTP settings if this is not it."
                    ),
                    evidence={"domain": domain, "candidates": candidates, "checked": name},
                )
            )
            return name
        raise InputError(
            f"could not find an outgoing server for {domain}: give the server name "
            f"(e.g. smtp.{domain}:587)"
        )

    def _documented_endpoints(self) -> list[Endpoint]:
        # Regional hosts (Amazon SES, the Microsoft 365 tenant relay) filled from the match.
        return list(self.match.endpoints()) if self.match is not None else []

    def _entered_security(self, documented: list[Endpoint]) -> Security:
        security = self.request.security
        if security is None:
            for endpoint in documented:
                if endpoint.port == self.port:
                    return endpoint.security
            return DEFAULT_SECURITY_FOR_PORT.get(self.port, Security.STARTTLS)
        return security

    def _dns_finding(self, exc: _dns.DnsError, name: str) -> Finding:
        rule = _assess.DNS_RULES.get(exc.finding_id, _assess.DNS_RULES["dns.timeout"])
        return _assess.finding_from_rule(rule, host=name, error=str(exc)).model_copy(
            update={"evidence": {"host": name, "error": str(exc)}}
        )

    def _start_sender_checks(self, address: str) -> asyncio.Task[list[Finding]]:
        return asyncio.create_task(self._sender_checks(address))

    async def _sender_checks(self, address: str) -> list[Finding]:
        started = self.loop.time()
        findings: list[Finding] = []
        domain = self.request.sender_domain
        jobs: list[Awaitable[list[Finding]]] = [
            _sender.check_ptr(self.resolver, address, host=self.host)
        ]
        if domain:
            await self._progress("sender", f"Checking DNS of {domain}", "running")
            jobs.append(_sender.check_sender_domain(self.resolver, domain, mx=self.mx))
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
            await self._progress("sender", f"Checking DNS of {domain}", "done")
        return findings

    # ------------------------------------------------------------------ probes

    def _plans(self) -> list[ProbePlan]:
        entered_security = self.security
        if entered_security is Security.AUTO:
            # What Outlook's "Auto" ends up doing: implicit TLS on 465, STARTTLS elsewhere.
            entered_security = (
                Security.SSL if self.port in IMPLICIT_TLS_PORTS else Security.STARTTLS
            )
        plans = [ProbePlan(self.port, entered_security, "entered")]
        if entered_security is Security.SSL:
            plans.append(ProbePlan(self.port, Security.STARTTLS, "mode_check"))
        elif entered_security is Security.STARTTLS or entered_security is Security.NONE:
            plans.append(ProbePlan(self.port, Security.SSL, "mode_check"))
        for port, security in ((587, Security.STARTTLS), (465, Security.SSL)):
            plans.append(ProbePlan(port, security, "alternative"))
        for endpoint in self._documented_endpoints():
            host = None if endpoint.host == self.host else endpoint.host
            plans.append(ProbePlan(endpoint.port, endpoint.security, "provider", host))
        unique: dict[tuple[str | None, int, Security], ProbePlan] = {}
        for plan in plans:
            if plan.port not in self.config.allowed_ports and plan.role != "entered":
                continue
            unique.setdefault((plan.host, plan.port, plan.security), plan)
        return list(unique.values())

    async def _probe_all(self, address: str, addresses: Sequence[str]) -> list[ProbeResult]:
        from diagnostics import _smtp_probe

        trust = await self.trust
        credentials = None
        if self.request.password is not None and self.request.user:
            credentials = Credentials(user=self.request.user, password=self.request.password)
        relay_test = not self.request.requires_auth or self.port == 25
        other_hosts = await self._resolve_other_hosts(self._plans())
        tasks: dict[ProbePlan, asyncio.Task[ProbeResult]] = {}
        for plan in self._plans():
            plan_address = address if plan.host is None else other_hosts.get(plan.host)
            if plan_address is None:
                continue
            is_entered = plan.role == "entered"
            coro = self._one_probe(
                _smtp_probe.run_probe,
                plan,
                address=plan_address,
                server_name=plan.host or self.host,
                trust=trust,
                credentials=credentials if is_entered else None,
                sender=self.request.email,
                relay_test=relay_test and is_entered,
            )
            tasks[plan] = asyncio.create_task(coro, name=f"probe {plan.label}")
        entered_plan = next(iter(tasks))
        results = await self._gather_with_grace(tasks, entered_plan)
        # One credential test only; if the entered setting never reached a login, try the
        # login once on the setting that works, so the user learns about the password too.
        entered = results[entered_plan]
        if credentials is not None and entered.auth is None:
            target = self._credential_retry_plan(results)
            if target is not None:
                retry = await self._one_probe(
                    _smtp_probe.run_probe,
                    ProbePlan(
                        target.plan.port, target.plan.security, "credentials", target.plan.host
                    ),
                    address=target.address or address,
                    server_name=target.plan.host or self.host,
                    trust=trust,
                    credentials=credentials,
                    sender=self.request.email,
                    relay_test=False,
                )
                results[retry.plan] = retry
        return list(results.values())

    def _credential_retry_plan(self, results: dict[ProbePlan, ProbeResult]) -> ProbeResult | None:
        if self._remaining() < self.config.timeouts.connect:
            return None
        for result in results.values():
            if _assess.usable(result, now=self.now, requires_auth=True):
                return result
        return None

    async def _resolve_other_hosts(self, plans: list[ProbePlan]) -> dict[str, str]:
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

    async def _one_probe(self, run_probe, plan: ProbePlan, **kwargs) -> ProbeResult:
        what = f"{plan.host or self.host} port {plan.port} ({security_label(plan.security)})"
        await self._progress(plan.label, f"Connecting to {what}", "running")
        result = await run_probe(
            plan,
            config=self.config,
            deadline=self.deadline,
            t0=self.t0,
            **kwargs,
        )
        state = "done" if result.outcome is ProbeOutcome.OK else "failed"
        await self._progress(plan.label, f"Connecting to {what}", state, _probe_note(result))
        self.timings[f"probe {plan.label}"] = round(result.elapsed_ms, 1)
        return result

    async def _gather_with_grace(
        self, tasks: dict[ProbePlan, asyncio.Task[ProbeResult]], entered_plan: ProbePlan
    ) -> dict[ProbePlan, ProbeResult]:
        entered_task = tasks[entered_plan]
        # A safety net above the probes' own deadline handling.
        hard_stop = self._remaining() + 1.0
        try:
            await asyncio.wait_for(asyncio.shield(entered_task), timeout=hard_stop)
        except TimeoutError:
            pass
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
                    results[plan] = _not_finished(plan, ProbeOutcome.BUDGET_EXHAUSTED, self)
                continue
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                log.error("probe %s crashed", plan.label, exc_info=exc)
                results[plan] = _not_finished(plan, ProbeOutcome.ERROR, self, type(exc).__name__)
                continue
            results[plan] = task.result()
        return results

    # ------------------------------------------------------------------ findings

    def _context(self) -> _assess.Context:
        timeouts = self.config.timeouts
        return _assess.Context(
            host=self.host,
            requires_auth=self.request.requires_auth,
            has_password=self.request.password is not None,
            now=self.now,
            timeouts={
                "connect": timeouts.connect,
                "greeting": timeouts.greeting,
                "command": timeouts.command,
                "tls": timeouts.tls,
            },
        )

    def _recommended(self, results: list[ProbeResult]) -> Endpoint | None:
        self.entered = next((r for r in results if r.plan.role == "entered"), None)
        if self.entered is None:
            return None
        mode_check = next((r for r in results if r.plan.role == "mode_check"), None)
        self.findings += _assess.entered_probe_findings(self.entered, mode_check, self._context())
        for result in results:
            if result.plan.role == "credentials":
                self.findings += _assess.credential_findings(result, self._context())
        preferred = [
            (e.host if e.host != self.host else None, e.port, e.security)
            for e in self._documented_endpoints()
        ]
        recommended = _assess.pick_recommended(
            results,
            entered=self.entered,
            host=self.host,
            now=self.now,
            requires_auth=self.request.requires_auth,
            preferred=preferred,
        )
        if self.port == 25 and self.request.requires_auth:
            works_587 = any(
                r.plan.port == 587 and _assess.usable(r, now=self.now, requires_auth=True)
                for r in results
            )
            if works_587:
                self.findings.append(
                    finding(
                        "settings.port25_blocked_likely",
                        detail=(
                            "Many internet providers and office networks block port 25 so "
                            "that infected computers cannot send spam. It may work from here "
                            "and still fail from the user's network. Port 587 with STARTTLS "
                            f"works on {self.host}: use that."
                        ),
                        evidence={"host": self.host, "port": 25},
                    )
                )
                if recommended is None:
                    recommended = Endpoint(host=self.host, port=587, security=Security.STARTTLS)
        return recommended

    def _provider_findings(self, results: list[ProbeResult]) -> None:
        provider = self.provider
        if provider is None:
            return
        documented = self._documented_endpoints()
        self.findings.append(
            finding(
                "provider.detected",
                detail=(
                    f"Recognised from the {_SOURCE_WORDS[self.provider_ref.source]}. "
                    + (
                        "Documented settings: "
                        + "; ".join(
                            f"{e.host} port {e.port} {security_label(e.security)}"
                            for e in documented
                        )
                        if documented
                        else ""
                    )
                ),
                evidence={
                    "provider": provider.key,
                    "documented": [e.model_dump(mode="json") for e in documented],
                    "source": self.provider_ref.source,
                },
                name=provider.name,
            )
        )
        entered = (self.host, self.port, self.security)
        if documented and not any(
            (e.host, e.port) == entered[:2] and (self.security in {Security.AUTO, e.security})
            for e in documented
        ):
            best = documented[0]
            self.findings.append(
                finding(
                    "settings.differ_from_provider",
                    detail=(
                        f"Entered: {self.host} port {self.port} {security_label(self.security)}."
                        f" {provider.name} documents {best.host} port {best.port} "
                        f"{security_label(best.security)}."
                    ),
                    evidence={
                        "entered": {
                            "host": self.host,
                            "port": self.port,
                            "security": str(self.security),
                        },
                        "documented": [e.model_dump(mode="json") for e in documented],
                    },
                    provider_name=provider.name,
                )
            )
        self.findings += self.kb.policy_findings(
            provider.key, today=self.today, uses_password=self.request.requires_auth
        )
        if provider.key == "microsoft365" and self.request.client == "classic":
            self.findings.append(
                finding(
                    "provider.microsoft365.classic_uses_exchange",
                    detail=(
                        "Added as a Microsoft 365 (Exchange) account, classic Outlook sends "
                        "through Exchange and ignores these SMTP settings. They only matter if "
                        "the mailbox was added as IMAP or POP."
                    ),
                    evidence={"provider": provider.key, "client": "classic"},
                )
            )

    async def _error_text_findings(self, results: list[ProbeResult]) -> None:
        self.error_causes: list[ErrorTextCause] = []
        if not self.request.error_text:
            return
        # Linear-time (RE2) but up to 20,000 characters of the user's text: not on the loop.
        self.pending_error_matches = await asyncio.to_thread(
            self.kb.parse_error_text, self.request.error_text
        )

    def _finalize(self, recommended: Endpoint | None, results: list[ProbeResult]) -> list[Finding]:
        findings = [self._interpret(f) for f in self.findings]
        ids = {f.id for f in findings}
        entered_done = self.entered is not None and self.entered.outcome not in {
            ProbeOutcome.BUDGET_EXHAUSTED,
            ProbeOutcome.ERROR,
        }
        for match in getattr(self, "pending_error_matches", []):
            confirming = tuple(match.finding_ids)
            confirmed = bool(ids & set(confirming)) if entered_done else None
            if confirmed is False and not confirming:
                confirmed = None
            cause = ErrorTextCause(
                code=match.code, cause=match.cause, confirmed=confirmed, finding_ids=confirming
            )
            self.error_causes.append(cause)
            findings.append(
                finding(
                    "input.error_text.cause",
                    detail=match.cause,
                    evidence={
                        "code": match.code,
                        "confirmed": confirmed,
                        "findings": list(confirming),
                    },
                    code=match.code or "text",
                    not_seen=confirmed is False,
                )
            )
        findings = self._client_side_hint(findings, results)
        if not any(f.severity is not Severity.INFO for f in findings) and self.entered is not None:
            if self.entered.outcome is ProbeOutcome.OK:
                findings.append(
                    finding(
                        "settings.ok",
                        detail=(
                            f"{self.host} port {self.port} (encryption: "
                            f"{security_label(self.security)}) accepts connections and "
                            "offers a login over encryption."
                        ),
                        evidence={"host": self.host, "port": self.port},
                    )
                )
        findings = _dedupe(findings)
        findings.sort(key=lambda f: SEVERITY_ORDER[f.severity])
        return [self._with_fix(f, recommended) for f in findings]

    def _client_side_hint(
        self, findings: list[Finding], results: list[ProbeResult]
    ) -> list[Finding]:
        """Server fine from here, user reports a connection problem: the path is at fault."""
        if not self.error_causes and not getattr(self.request, "user_reports_failure", False):
            # Nothing says the user fails: the hint cannot apply (server_ok_but_user_fails'
            # own first rule), so neither its import (~35 ms) nor a draft report is needed.
            return findings
        try:
            from diagnostics.client_check import server_ok_but_user_fails
        except ImportError:
            return findings
        draft = Report(
            input=ReportInput(
                target=self.request.target,
                host=self.host,
                port=self.port,
                security=self.security,
                email=self.request.email,
                user=self.request.user,
                client=self.request.client,
                error_text=self.request.error_text,
            ),
            verdict=verdict_for(findings),
            findings=tuple(findings),
            probes=tuple(self._summary(r) for r in results),
            error_text_causes=tuple(self.error_causes),
        )
        hint = server_ok_but_user_fails(
            draft, user_reports_failure=self.request.user_reports_failure
        )
        return [*findings, hint] if hint is not None else findings

    def _interpret(self, finding: Finding) -> Finding:
        """Give replies their precise meaning (5.7.139, 5.7.9 ...) from the knowledge base."""
        generic = {
            "auth.failed": "auth.failed.credentials",
            "smtp.relay.refused": "smtp.relay.denied",
        }
        if finding.id not in generic and finding.id != "smtp.banner.rejected":
            return finding
        if finding.id == "smtp.banner.rejected":
            finding = finding.model_copy(
                update={"evidence": {**finding.evidence, "stage": "greeting"}}
            )
        refined = self.kb.refine(finding, provider_key=self.provider.key if self.provider else None)
        if finding.id == "smtp.banner.rejected":
            # The contract's ID stays (scripts match on it); the meaning goes in the detail.
            return refined.model_copy(
                update={"id": finding.id, "severity": finding.severity, "title": finding.title}
            )
        if refined.id == finding.id:
            refined = refined.model_copy(update={"id": generic[finding.id]})
        return refined

    def _with_fix(self, finding: Finding, recommended: Endpoint | None) -> Finding:
        from diagnostics.knowledge import FixContext

        context = FixContext(
            host=self.host,
            port=self.port,
            security=self.security,
            recommended=recommended,
            provider=self.provider,
            user=self.request.user,
            email=self.request.email,
            provider_params=dict(self.match.params) if self.match is not None else {},
            variant=finding.evidence.get("variant"),
            evidence=finding.evidence,
        )
        try:
            fix = self.kb.fix_for(finding.id, self.request.client, context)
        except Exception:  # a gap in the knowledge base must not lose the diagnosis
            log.exception("no fix for %s", finding.id)
            fix = None
        return finding.model_copy(update={"fix": fix}) if fix is not None else finding

    def _summary(self, result: ProbeResult) -> ProbeSummary:
        tls = result.tls
        return ProbeSummary(
            port=result.plan.port,
            security=result.plan.security,
            address=result.address,
            outcome=str(result.outcome),
            tls_version=tls.version if tls else None,
            elapsed_ms=round(result.elapsed_ms, 1),
            role=result.plan.role,
            tls_cipher=tls.cipher if tls else None,
            auth_before_tls=result.auth_before_tls,
            auth_after_tls=result.auth_after_tls,
            starttls_offered=result.starttls_offered,
            greeting=str(result.greeting) if result.greeting else None,
            certificate=tls.cert.as_evidence() if tls and tls.cert else None,
            steps_ms=dict(result.steps_ms),
            host=result.plan.host,
        )


def _not_finished(
    plan: ProbePlan, outcome: ProbeOutcome, run: _Diagnosis, error: str | None = None
) -> ProbeResult:
    return ProbeResult(
        plan=plan,
        address=None,
        outcome=outcome,
        elapsed_ms=ms(run.loop.time() - run.t0),
        error=error,
    )


def _discard(task: asyncio.Future) -> None:
    """Cancel a task whose result is no longer wanted, and never log its failure."""
    task.cancel()
    if task.done() and not task.cancelled():
        task.exception()


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for each in findings:
        key = (each.id, each.title)
        if key not in seen:
            seen.add(key)
            unique.append(each)
    return unique


def _probe_note(result: ProbeResult) -> str:
    if result.outcome is ProbeOutcome.OK:
        parts = []
        if result.tls:
            parts.append(result.tls.version or "TLS")
        if result.auth_after_tls or result.auth_before_tls:
            parts.append("AUTH " + " ".join(result.auth_after_tls or result.auth_before_tls))
        return ", ".join(parts) or "ok"
    return str(result.outcome).replace("_", " ")
