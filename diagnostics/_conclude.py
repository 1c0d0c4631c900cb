"""Step 4 of a diagnosis, pure: findings from the target and the probe results, then their
meaning and fixes from the knowledge base.

Nothing here does I/O or keeps state; `_engine._Diagnosis` calls these in order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from diagnostics import _assess, _dns
from diagnostics._findings import finding
from diagnostics._models import (
    SEVERITY_ORDER,
    CheckRequest,
    Endpoint,
    ErrorTextCause,
    Finding,
    OutlookClient,
    ProbeOutcome,
    ProbeResult,
    ProbeSummary,
    Security,
    Severity,
)
from diagnostics._target import Target
from diagnostics.knowledge import ErrorTextMatch, FixContext, Knowledge
from diagnostics.labels import security_label
from diagnostics.recommend import Recommendation, Tried, recommend
from diagnostics.wording import shown_code

log = logging.getLogger("smtpcheck.engine")

_SOURCE_WORDS = {"mx": "domain's MX records", "host": "server name"}
# Reply findings the knowledge base refines; when it finds no precise meaning, the generic
# finding becomes its contract ID.
_GENERIC_REPLY = {
    "auth.failed": "auth.failed.credentials",
    "smtp.relay.refused": "smtp.relay.denied",
}


def dns_finding(exc: _dns.DnsError, name: str) -> Finding:
    """Why the server's name did not resolve."""
    rule = _assess.DNS_RULES.get(exc.finding_id, _assess.DNS_RULES["dns.timeout"])
    return _assess.finding_from_rule(rule, host=name, error=str(exc)).model_copy(
        update={"evidence": {"host": name, "error": str(exc)}}
    )


def assess_context(
    target: Target, request: CheckRequest, now: dt.datetime, timeouts: dict[str, float]
) -> _assess.Context:
    return _assess.Context(
        host=target.host,
        requires_auth=request.requires_auth,
        has_password=request.password is not None,
        now=now,
        timeouts=timeouts,
    )


SUBMISSION_PORTS = (587, 465)  # the ports mail programs send on (RFC 6409, RFC 8314)


def port25_blocked_likely(
    target: Target, results: Sequence[ProbeResult], *, now: dt.datetime, requires_auth: bool
) -> bool:
    """Port 25 entered for a mail client while a submission port (587 or 465) works: port 25
    is the one internet providers usually block, whatever it does from here."""
    if target.port != 25 or not requires_auth:
        return False
    return any(
        r.plan.port in SUBMISSION_PORTS and _assess.usable(r, now=now, requires_auth=True)
        for r in results
    )


def port25_finding(target: Target, recommended: Endpoint) -> Finding:
    """The port 25 finding, naming the setting the report recommends instead (which
    `recommendation` chose with port 25 left, see port25_blocked_likely)."""
    shown = f"Port {recommended.port} with {security_label(recommended.security)}"
    return finding(
        "settings.port25_blocked_likely",
        detail=(
            "Many internet providers and office networks block port 25 so "
            "that infected computers cannot send spam. It may work from here "
            f"and still fail from the user's network. {shown} works on "
            f"{recommended.host}: use that."
        ),
        evidence={
            "host": target.host,
            "port": 25,
            "recommended": recommended.model_dump(mode="json"),
        },
    )


def recommendation(
    target: Target,
    results: Sequence[ProbeResult],
    entered: ProbeResult,
    *,
    now: dt.datetime,
    requires_auth: bool,
    leave_port_25: bool,
) -> Recommendation:
    """The setting to tell the user to enter: diagnostics.recommend's rule over the probes.

    A rejected password is the password's fault (it fails on every port alike), so the
    entered setting counts as working without the login; port 25 is left when
    `leave_port_25` (a mail client's port 25 is usually blocked, see port25_blocked_likely).
    """

    def endpoint(result: ProbeResult) -> Endpoint:
        plan = result.plan
        return Endpoint(host=plan.host or target.host, port=plan.port, security=plan.security)

    tried = [
        Tried(
            endpoint(r),
            # Port 25 left means in either mode (the other mode answering there included).
            works=_assess.usable(r, now=now, requires_auth=requires_auth)
            and not (leave_port_25 and r.plan.port == 25),
        )
        for r in results
        if r.plan.role != "credentials"
    ]
    works = _assess.usable(entered, now=now, requires_auth=requires_auth, ignore_login=True)
    return recommend(
        endpoint(entered),
        tried,
        entered_works=works and not leave_port_25,
        preferred=target.documented,
    )


def provider_findings(
    target: Target, kb: Knowledge, request: CheckRequest, today: dt.date
) -> list[Finding]:
    """The provider recognised, how the settings compare with its documentation, its policies."""
    provider, ref = target.provider, target.provider_ref
    if provider is None or ref is None:
        return []
    documented = target.documented
    listed = "; ".join(f"{e.host} port {e.port} {security_label(e.security)}" for e in documented)
    findings = [
        finding(
            "provider.detected",
            detail=f"Recognised from the {_SOURCE_WORDS[ref.source]}. "
            + (f"Documented settings: {listed}" if documented else ""),
            evidence={
                "provider": provider.key,
                "documented": [e.model_dump(mode="json") for e in documented],
                "source": ref.source,
            },
            name=provider.name,
        )
    ]
    if documented and not any(
        (e.host, e.port) == (target.host, target.port)
        and target.security in {Security.AUTO, e.security}
        for e in documented
    ):
        findings.append(_differs(target, provider.name, documented))
    findings += kb.policy_findings(provider.key, today=today, uses_password=request.requires_auth)
    if provider.key == "microsoft365" and request.client == "classic":
        findings.append(
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
    return findings


def _differs(target: Target, provider_name: str, documented: Sequence[Endpoint]) -> Finding:
    best = documented[0]
    return finding(
        "settings.differ_from_provider",
        detail=(
            f"Entered: {target.host} port {target.port} {security_label(target.security)}."
            f" {provider_name} documents {best.host} port {best.port} "
            f"{security_label(best.security)}."
        ),
        evidence={
            "entered": {
                "host": target.host,
                "port": target.port,
                "security": str(target.security),
            },
            "documented": [e.model_dump(mode="json") for e in documented],
        },
        provider_name=provider_name,
    )


LOGIN_NOT_TESTED = "login not tested"


def error_text_causes(
    matches: Sequence[ErrorTextMatch],
    findings: Sequence[Finding],
    entered: ProbeResult | None,
    *,
    login_tested: bool = True,
) -> tuple[list[ErrorTextCause], list[Finding]]:
    """What each pasted Outlook error points to, and whether the checks confirm it.

    A cause only a login can confirm (535 5.7.139 ...) is "login not tested" when no password
    was given, never "not seen": its finding then carries the fix of the matched cause.
    """
    ids = {f.id for f in findings}
    entered_done = entered is not None and entered.outcome not in {
        ProbeOutcome.BUDGET_EXHAUSTED,
        ProbeOutcome.ERROR,
    }
    causes: list[ErrorTextCause] = []
    made: list[Finding] = []
    for match in matches:
        confirming = tuple(match.finding_ids)
        confirmed = bool(ids & set(confirming)) if entered_done else None
        if confirmed is False and not confirming:
            confirmed = None
        untested = not login_tested and "auth" in match.probes_to_confirm
        if untested and not confirmed:
            confirmed = None
        causes.append(
            ErrorTextCause(
                code=match.code,
                cause=match.cause,
                confirmed=confirmed,
                finding_ids=confirming,
                note=LOGIN_NOT_TESTED if untested and confirmed is None else None,
            )
        )
        evidence: dict[str, object] = {
            "code": match.code,
            "confirmed": confirmed,
            "findings": list(confirming),
        }
        if untested and confirmed is None and confirming:
            evidence["fix_for"] = confirming[0]
            evidence["login_tested"] = False
            if match.reply is not None and match.reply.variant:
                evidence["variant"] = match.reply.variant
        made.append(
            finding(
                "input.error_text.cause",
                detail=match.cause,
                evidence=evidence,
                code=shown_code(match.code) or "you pasted",  # never the data's own label
                not_seen=confirmed is False,
            )
        )
    return causes, made


def settings_ok(
    target: Target, findings: Sequence[Finding], entered: ProbeResult | None
) -> Finding | None:
    """Nothing worse than a note, and the entered setting worked: say so."""
    if entered is None or entered.outcome is not ProbeOutcome.OK:
        return None
    if any(f.severity is not Severity.INFO for f in findings):
        return None
    return finding(
        "settings.ok",
        detail=(
            f"{target.host} port {target.port} (encryption: "
            f"{security_label(target.security)}) accepts connections and "
            "offers a login over encryption."
        ),
        evidence={"host": target.host, "port": target.port},
    )


def interpret(kb: Knowledge, found: Finding, provider_key: str | None) -> Finding:
    """Give replies their precise meaning (5.7.139, 5.7.9 ...) from the knowledge base."""
    if found.id == "smtp.banner.rejected":
        greeting = found.model_copy(update={"evidence": {**found.evidence, "stage": "greeting"}})
        refined = kb.refine(greeting, provider_key=provider_key)
        # The contract's ID stays (scripts match on it); the meaning goes in the detail.
        return refined.model_copy(
            update={"id": found.id, "severity": found.severity, "title": found.title}
        )
    if found.id not in _GENERIC_REPLY:
        return found
    refined = kb.refine(found, provider_key=provider_key)
    if refined.id == found.id:
        refined = refined.model_copy(update={"id": _GENERIC_REPLY[found.id]})
    return refined


def fix_context(target: Target, request: CheckRequest, recommended: Endpoint | None) -> FixContext:
    """What every fix of this diagnosis is filled with (each finding adds its evidence)."""
    params = dict(target.match.params) if target.match is not None else {}
    return FixContext(
        host=target.host,
        port=target.port,
        security=target.security,
        recommended=recommended,
        provider=target.provider,
        provider_params=params,
        user=request.user,
        email=request.email,
    )


def with_fix(kb: Knowledge, found: Finding, context: FixContext, client: OutlookClient) -> Finding:
    """The finding with the fix steps for the user's Outlook, when the knowledge base has them."""
    filled = context.model_copy(
        update={"variant": found.evidence.get("variant"), "evidence": found.evidence}
    )
    # A pasted cause the checks could not test (no password) gets the matched cause's fix.
    fix_for = found.evidence.get("fix_for")
    fix_id = fix_for if found.id == "input.error_text.cause" and isinstance(fix_for, str) else None
    try:
        fix = kb.fix_for(fix_id or found.id, client, filled)
    except Exception:  # a gap in the knowledge base must not lose the diagnosis
        log.exception("no fix for %s", found.id)
        fix = None
    return found.model_copy(update={"fix": fix}) if fix is not None else found


def ordered(findings: Sequence[Finding]) -> list[Finding]:
    """Each (id, title) once, most severe first (stable within a severity)."""
    seen: set[tuple[str, str]] = set()
    unique: list[Finding] = []
    for each in findings:
        if (each.id, each.title) not in seen:
            seen.add((each.id, each.title))
            unique.append(each)
    return sorted(unique, key=lambda f: SEVERITY_ORDER[f.severity])


def summary(result: ProbeResult) -> ProbeSummary:
    """A probe as the report shows it."""
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
