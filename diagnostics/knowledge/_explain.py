"""Explain a pasted error without probing anything: what it says, what it is about, the fix.

One function serves `smtpcheck explain`, `check --error`, the Slack message shortcut and
`/smtpcheck explain`. It reads the text (linear time, bounded), keeps the most specific
reading of each part, says plainly when the error is not an outgoing-settings problem, and
attaches the fix of each matched cause for the user's Outlook. Nothing is probed, so nothing
is confirmed: the login in particular is "not tested".

Async callers run it off the event loop: ``await asyncio.to_thread(explain, text, ...)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict

from diagnostics._models import Finding, Fix, OutlookClient, Severity
from diagnostics.knowledge._kb import Knowledge
from diagnostics.knowledge._linear import MAX_TEXT
from diagnostics.knowledge._models import ErrorTextMatch, FixContext, Scope, Status
from diagnostics.sanitize import VisibleModel


class _Frozen(VisibleModel):  # codes and quotes come from the user's paste: sanitised
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExplainedCause(_Frozen):
    """One thing recognised in the text: its code or label, what it means, what it is about."""

    code: str | None
    kind: Literal["outlook_code", "smtp_reply", "message"]
    cause: str
    about: Scope
    outgoing_settings: bool  # False: said plainly that it is not an outgoing-settings problem
    finding_ids: tuple[str, ...] = ()  # the causes it may be, most likely first
    finding_id: str | None = None  # the one whose fix is shown (None: explained by another)
    transient: bool | None = None  # a 4xx reply: trying again later may work
    status: Status = "verified"
    sources: tuple[str, ...] = ()


class Explanation(_Frozen):
    """The answer to "what does this error mean?", for one Outlook."""

    client: OutlookClient
    recognised: bool
    causes: tuple[ExplainedCause, ...] = ()
    findings: tuple[Finding, ...] = ()  # one per cause to act on, fix attached
    notes: tuple[str, ...] = ()  # what the error is about, said once each
    login_tested: bool = False  # explain never signs in
    truncated: bool = False  # the text was longer than the parser reads

    @property
    def fixes(self) -> tuple[Fix, ...]:
        return tuple(f.fix for f in self.findings if f.fix is not None)

    @property
    def not_outgoing_settings(self) -> bool:
        """True when every cause found is about something other than the outgoing settings."""
        return bool(self.causes) and not any(c.outgoing_settings for c in self.causes)


def explain_text(
    text: str,
    *,
    client: OutlookClient | str = OutlookClient.CLASSIC,
    today: dt.date | None = None,
    provider: str | None = None,
) -> Explanation:
    """`diagnostics.explain`: the bundled knowledge base's explanation of a pasted error."""
    from diagnostics.knowledge._loader import load_knowledge

    return explain(load_knowledge(), text, client=client, today=today, provider_key=provider)


def explain(
    kb: Knowledge,
    text: str,
    *,
    client: OutlookClient | str = OutlookClient.CLASSIC,
    today: dt.date | None = None,
    provider_key: str | None = None,
) -> Explanation:
    """Explain a pasted Outlook error or server reply; probes nothing, never raises on text."""
    client = OutlookClient(client)
    matches = kb.parse_error_text(text)
    scopes = kb.scopes
    reply_findings = {f for m in matches if m.kind == "smtp_reply" for f in m.finding_ids}
    causes = tuple(_cause(m, reply_findings, scopes[m.scope].outgoing_settings) for m in matches)
    provider = kb.provider(provider_key) if provider_key in kb.provider_keys else None
    findings: dict[str, Finding] = {}
    for match, cause in zip(matches, causes, strict=True):
        if cause.finding_id is None or cause.finding_id in findings:
            continue
        findings[cause.finding_id] = _finding(kb, match, cause, client, provider, today)
    notes = tuple(dict.fromkeys(scopes[c.about].text for c in causes if not c.outgoing_settings))
    return Explanation(
        client=client,
        recognised=bool(matches),
        causes=causes,
        findings=tuple(findings.values()),
        notes=notes,
        truncated=len(text) > MAX_TEXT,
    )


def _cause(match: ErrorTextMatch, reply_findings: set[str], outgoing: bool) -> ExplainedCause:
    """The cause, and the finding whose fix it shows: a server reply's precise finding
    explains a broader Outlook code or sentence that lists it, which then adds no fix."""
    ids = match.finding_ids
    primary: str | None = ids[0] if ids else None
    if match.kind != "smtp_reply" and set(ids) & reply_findings:
        primary = None
    return ExplainedCause(
        code=match.code,
        kind=match.kind,
        cause=match.cause,
        about=match.scope,
        outgoing_settings=outgoing,
        finding_ids=ids,
        finding_id=primary,
        transient=match.reply.transient if match.reply else None,
        status=match.status,
        sources=match.sources,
    )


def _finding(
    kb: Knowledge,
    match: ErrorTextMatch,
    cause: ExplainedCause,
    client: OutlookClient,
    provider: object,
    today: dt.date | None,
) -> Finding:
    assert cause.finding_id is not None
    spec = kb.finding(cause.finding_id)
    reply = match.reply
    evidence: dict[str, object] = {"source": "pasted", "login_tested": False}
    if reply is not None:
        evidence.update(reply=match.matched, variant=reply.variant, rule=reply.rule)
    finding = Finding(
        id=cause.finding_id,
        severity=reply.severity if reply is not None else spec.severity,
        title=spec.title,
        detail=cause.cause,
        evidence={k: v for k, v in evidence.items() if v is not None},
    )
    ctx = FixContext(provider=provider, today=today)  # type: ignore[arg-type]
    return kb.with_fix(finding, client, ctx)


__all__ = ["ExplainedCause", "Explanation", "Severity", "explain", "explain_text"]
