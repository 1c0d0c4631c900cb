"""Turn probe results into findings, and pick the setting that was seen to work.

Pure functions over `ProbeResult`s: no I/O, so every rule is testable on its own. Titles
and details are written for the person who typed the settings, not for a mail admin; the
fix steps come later from the knowledge base.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from diagnostics._findings import finding
from diagnostics._models import (
    CertInfo,
    CertProblem,
    Finding,
    ProbeOutcome,
    ProbeResult,
    Reply,
    Security,
)
from diagnostics.labels import security_label
from diagnostics.wording import tls_words

EXPIRY_WARNING_DAYS = 14
LEGACY_TLS = frozenset({"TLSv1", "TLSv1.1", "SSLv3"})
OAUTH_MECHANISMS = frozenset({"XOAUTH2", "OAUTHBEARER"})
PASSWORD_MECHANISMS = frozenset({"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "NTLM", "GSSAPI"})


@dataclasses.dataclass(frozen=True, slots=True)
class OutcomeRule:
    """A finding the engine words itself: its ID (severity and headline are the catalog's)
    and the detail, which may use {host} {port} {security} {seconds} and the evidence."""

    finding_id: str
    detail: str


# One rule per way a probe can end early. The two mode mismatches are decided in
# `entered_probe_findings`, because they need the other probe of the same port.
OUTCOME_RULES: dict[ProbeOutcome, OutcomeRule] = {
    ProbeOutcome.REFUSED: OutcomeRule(
        "tcp.refused",
        "The server actively refused the connection: nothing listens on port {port}, or a "
        "firewall rejects it. The port number is probably wrong for this server.",
    ),
    ProbeOutcome.CONNECT_TIMEOUT: OutcomeRule(
        "tcp.timeout",
        "The connection attempt got no answer within {seconds} s. The port is filtered by a "
        "firewall, blocked on the way, or the server is down.",
    ),
    ProbeOutcome.UNREACHABLE: OutcomeRule(
        "tcp.unreachable",
        "The network reported that the server's address cannot be reached from here.",
    ),
    ProbeOutcome.BANNER_TIMEOUT: OutcomeRule(
        "smtp.banner.timeout",
        "A mail server says hello (a 220 greeting) right after connecting. None came within "
        "{seconds} s: the server is overloaded or deliberately slow (a tarpit), or the port "
        "expects encryption from the first byte.",
    ),
    ProbeOutcome.BANNER_REJECTED: OutcomeRule(
        "smtp.banner.rejected",
        "The server answered the connection with an error instead of a welcome.",
    ),
    ProbeOutcome.EHLO_TIMEOUT: OutcomeRule(
        "smtp.ehlo.timeout",
        "The server greeted, then went silent when the client introduced itself (EHLO).",
    ),
    ProbeOutcome.EHLO_REJECTED: OutcomeRule(
        "smtp.ehlo.rejected",
        "The server refused the client's introduction (EHLO), so no session can start.",
    ),
    ProbeOutcome.REPLY_TOO_LONG: OutcomeRule(
        "smtp.reply.too_long",
        "A reply went past the SMTP line or size limit, so the check stopped reading. "
        "Outlook would give up too. This points to a broken server or something in the "
        "path that is not a mail server.",
    ),
    ProbeOutcome.DROPPED: OutcomeRule(
        "smtp.connection.dropped",
        "The server (or something in between) hung up before the session finished.",
    ),
    ProbeOutcome.STARTTLS_NOT_OFFERED: OutcomeRule(
        "tls.starttls.not_offered",
        "The server's EHLO reply does not list STARTTLS, so a client set to STARTTLS cannot "
        "encrypt the connection and will refuse to send.",
    ),
    ProbeOutcome.STARTTLS_REJECTED: OutcomeRule(
        "tls.starttls.rejected",
        "The server listed STARTTLS but answered the STARTTLS command with an error.",
    ),
    ProbeOutcome.TLS_FAILED: OutcomeRule(
        "tls.handshake.failed",
        "The TLS handshake did not complete.",
    ),
    ProbeOutcome.TLS_TIMEOUT: OutcomeRule(
        "tls.handshake.timeout",
        "The server did not complete the encryption handshake within {seconds} s.",
    ),
    ProbeOutcome.BUDGET_EXHAUSTED: OutcomeRule(
        "probe.budget_exhausted",
        "The whole diagnosis has a time budget; this server was too slow to finish within it.",
    ),
    ProbeOutcome.ERROR: OutcomeRule(
        "probe.error",
        "Something unexpected happened while talking to the server.",
    ),
}

# Keyed by DnsError.finding_id: how the server's name failed to resolve.
DNS_RULES: dict[str, OutcomeRule] = {
    "dns.host.nxdomain": OutcomeRule(
        "dns.host.nxdomain",
        "DNS says there is no such name. Check the spelling of the outgoing server against "
        "the provider's documentation.",
    ),
    "dns.host.no_address": OutcomeRule(
        "dns.host.no_address",
        "The name is registered in DNS but points to no server (no A or AAAA record). It is "
        "probably not the outgoing mail server's name.",
    ),
    "dns.servfail": OutcomeRule(
        "dns.servfail",
        "The DNS servers answered with a failure (SERVFAIL or REFUSED) for this name: its DNS "
        "zone is broken or misconfigured, so nobody can find the server. The domain's owner "
        "must fix it.",
    ),
    "dns.timeout": OutcomeRule(
        "dns.timeout",
        "The DNS servers did not answer in time, so the server's address is unknown. This is "
        "usually a network problem on the checking side; try again.",
    ),
}

CERT_RULES: dict[CertProblem, OutcomeRule] = {
    CertProblem.EXPIRED: OutcomeRule(
        "tls.cert.expired",
        "{host} presents a certificate that is no longer valid. Outlook refuses it (or warns "
        "on every send) until the server's administrator renews it.",
    ),
    CertProblem.NOT_YET_VALID: OutcomeRule(
        "tls.cert.not_yet_valid",
        "{host} presents a certificate whose start date is in the future: a clock or "
        "deployment problem on the server.",
    ),
    CertProblem.HOSTNAME_MISMATCH: OutcomeRule(
        "tls.cert.hostname_mismatch",
        "The server's certificate is valid for {names}, not for {host}. Outlook warns that "
        'the certificate cannot be verified ("The target principal name is incorrect"). '
        "Use one of the names the certificate holds as the outgoing server.",
    ),
    CertProblem.SELF_SIGNED: OutcomeRule(
        "tls.cert.self_signed",
        "{host} presents a certificate it signed itself, which no computer trusts by default.",
    ),
    CertProblem.UNTRUSTED: OutcomeRule(
        "tls.cert.untrusted",
        "{host}'s certificate chain ends at {issuer}, which is not a trusted certificate "
        "authority (a private CA, or an interception proxy).",
    ),
    CertProblem.CHAIN_INCOMPLETE: OutcomeRule(
        "tls.cert.chain_incomplete",
        "{host} sends its certificate without the intermediate certificate that links it to "
        "a trusted authority ({issuer}). Some computers fill the gap themselves, many do not: "
        "the server's administrator must install the chain file.",
    ),
}


def finding_from_rule(rule: OutcomeRule, **values: object) -> Finding:
    """A finding from a rule: its detail and the catalog's headline filled from `values`."""
    text = {k: ("" if v is None else v) for k, v in values.items()}
    evidence = {k: v for k, v in values.items() if k not in {"host", "seconds"}}
    return finding(
        rule.finding_id,
        detail=rule.detail.format_map(_Defaults(text)),
        evidence={k: v for k, v in evidence.items() if v is not None},
        **values,
    )


class _Defaults(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "?"


def _reply_text(reply: Reply | None) -> str | None:
    return str(reply) if reply else None


def _step_seconds(result: ProbeResult, timeouts: dict[str, float]) -> float:
    step = {
        ProbeOutcome.CONNECT_TIMEOUT: "connect",
        ProbeOutcome.BANNER_TIMEOUT: "greeting",
        ProbeOutcome.EHLO_TIMEOUT: "command",
        ProbeOutcome.TLS_TIMEOUT: "tls",
    }.get(result.outcome, "command")
    return timeouts.get(step, 0.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What the assessment needs besides the probe results."""

    host: str
    requires_auth: bool
    has_password: bool
    now: dt.datetime
    timeouts: dict[str, float]


def entered_probe_findings(
    entered: ProbeResult, mode_check: ProbeResult | None, ctx: Context
) -> list[Finding]:
    """Findings about the setting as entered (the probe that matters most)."""
    plan = entered.plan
    host = plan.host or ctx.host
    base = {
        "host": host,
        "port": plan.port,
        "security": str(plan.security),
        "address": entered.address,
    }
    # The two classic Outlook traps: SSL/TLS on a STARTTLS port, STARTTLS on an SSL port.
    if plan.security is Security.SSL and (
        entered.outcome is ProbeOutcome.PLAINTEXT_ON_TLS
        or (
            entered.outcome in {ProbeOutcome.TLS_FAILED, ProbeOutcome.TLS_TIMEOUT}
            and mode_check is not None
            and mode_check.greeting is not None
        )
    ):
        return [
            finding(
                "tls.mode.ssl_on_starttls_port",
                detail=(
                    f"{host} speaks plain SMTP on port {plan.port} and upgrades with STARTTLS. "
                    "With SSL/TLS selected, Outlook starts encrypting at once, the server "
                    "answers in plain text, and the connection fails."
                ),
                evidence={**base, "server_greeting": _reply_text(_greeting(mode_check))},
            )
        ]
    if (
        plan.security in {Security.STARTTLS, Security.NONE}
        and entered.outcome in {ProbeOutcome.BANNER_TIMEOUT, ProbeOutcome.DROPPED}
        and mode_check is not None
        and mode_check.plan.security is Security.SSL
        and mode_check.tls is not None
    ):
        return [
            finding(
                "tls.mode.starttls_on_ssl_port",
                detail=(
                    f"{host} encrypts port {plan.port} from the first byte (implicit TLS). "
                    "Outlook, set to STARTTLS, waits for a plain-text greeting that never comes "
                    "and times out."
                ),
                evidence={**base, "tls_version": mode_check.tls.version},
                security_label=security_label(plan.security),
            )
        ]
    rule = OUTCOME_RULES.get(entered.outcome)
    if rule is not None:
        extra: dict[str, object] = {}
        if entered.failed_reply is not None:
            extra["reply"] = str(entered.failed_reply)
        if entered.error:
            extra["error"] = entered.error
        early_end = finding_from_rule(
            rule, **base, seconds=_step_seconds(entered, ctx.timeouts), **extra
        )
        if entered.outcome is ProbeOutcome.STARTTLS_NOT_OFFERED:
            early_end = _with_evidence(early_end, extensions=list(entered.extensions_before))
        findings = [early_end]
        if entered.outcome is ProbeOutcome.STARTTLS_NOT_OFFERED:
            findings += _auth_findings(entered, ctx, base)
        return findings
    if entered.outcome is not ProbeOutcome.OK:
        return []
    return _healthy_session_findings(entered, ctx, base)


def _healthy_session_findings(
    result: ProbeResult, ctx: Context, base: dict[str, Any]
) -> list[Finding]:
    findings: list[Finding] = []
    plan = result.plan
    host = base["host"]
    if plan.security is Security.NONE:
        if result.starttls_offered:
            findings.append(
                finding(
                    "tls.none.selected",
                    detail=(
                        "Outlook would send the user name and password, and every message, "
                        f"unencrypted. {host} supports STARTTLS on port {plan.port}: use it."
                    ),
                    evidence=base,
                    login_optional=not ctx.requires_auth,
                )
            )
        else:
            findings.append(
                finding(
                    "tls.starttls.not_offered",
                    detail="Passwords and messages would cross the network in clear text.",
                    evidence={**base, "extensions": list(result.extensions_before)},
                    encryption_off=True,
                )
            )
    if result.tls is not None:
        findings += _tls_findings(result, ctx, base)
    findings += _auth_findings(result, ctx, base)
    if result.relay_reply is not None:
        findings += _relay_findings(result.relay_reply, ctx, base)
    return findings


def _tls_findings(result: ProbeResult, ctx: Context, base: dict[str, Any]) -> list[Finding]:
    tls = result.tls
    assert tls is not None
    findings: list[Finding] = []
    host = base["host"]
    if tls.version in LEGACY_TLS:
        findings.append(
            finding(
                "tls.version.legacy",
                detail=(
                    "TLS 1.0 and 1.1 are switched off in current Windows, macOS and Outlook "
                    "builds, so the connection fails on the user's side. The server needs "
                    "TLS 1.2 or newer."
                ),
                evidence={**base, "tls_version": tls.version, "cipher": tls.cipher},
            )
        )
    cert = tls.cert
    if cert is None:
        return findings
    findings += cert_findings(cert, host=host, now=ctx.now, base=base)
    if not findings:
        findings.append(
            finding(
                "tls.ok",
                detail=(
                    f"Certificate issued by {cert.issuer_shown}, "
                    f"valid until {cert.not_after:%Y-%m-%d}."
                ),
                evidence={
                    **base,
                    "tls_version": tls.version,
                    "cipher": tls.cipher,
                    "issuer": cert.issuer,  # the raw name, for the technical details
                },
                tls_version=tls_words(tls.version),  # the headline's: "TLS 1.3"
            )
        )
    return findings


def cert_findings(
    cert: CertInfo, *, host: str, now: dt.datetime, base: dict[str, Any]
) -> list[Finding]:
    """One finding per certificate problem, plus the expiry warning."""
    evidence = {**base, "certificate": cert.as_evidence()}
    findings = [
        finding_from_rule(
            CERT_RULES[problem],
            host=host,
            names=cert.names_text,
            issuer=cert.issuer_shown,  # readable; the raw name is in the evidence
            not_after=f"{cert.not_after:%Y-%m-%d}",
            not_before=f"{cert.not_before:%Y-%m-%d}",
        ).model_copy(update={"evidence": evidence})
        for problem in cert.problems
    ]
    days_left = cert.days_left(now)
    if CertProblem.EXPIRED not in cert.problems and 0 <= days_left < EXPIRY_WARNING_DAYS:
        findings.append(
            finding(
                "tls.cert.expiring_soon",
                detail=(
                    f"{host}'s certificate is valid until {cert.not_after:%Y-%m-%d %H:%M} UTC. "
                    "After that Outlook refuses it; the server's administrator should renew "
                    "it now."
                ),
                evidence=evidence,
                days=int(days_left),
            )
        )
    return findings


def _cleartext_login(result: ProbeResult, base: dict[str, Any]) -> Finding:
    """Encryption None, a login offered in the clear, a password given: tried or not."""
    if result.auth is None:
        return finding("auth.not_tried_cleartext", detail=_NOT_TRIED_CLEARTEXT, evidence=base)
    return finding("auth.tried_cleartext", detail=_TRIED_CLEARTEXT, evidence=base)


_NOT_TRIED_CLEARTEXT = (
    "Encryption is set to None and the server offers a login on the unencrypted connection. "
    "smtpcheck did not try the password: it would have crossed the network in clear text, "
    "readable on the way. Turn encryption on to test it."
)
_TRIED_CLEARTEXT = (
    "Encryption is set to None; the operator's setting SMTPCHECK_ALLOW_CLEARTEXT_LOGIN let "
    "smtpcheck try the password on the unencrypted connection, so it crossed the network in "
    "clear text."
)


# What the server's list of AUTH mechanisms means, by finding ({host}, {mechanisms}).
_MECHANISMS_DETAIL = {
    "auth.offered_before_tls": (
        "{host} lists AUTH ({mechanisms}) on the unencrypted connection. A client set to None "
        "would send the password in clear text; the server should offer AUTH only after "
        "STARTTLS."
    ),
    "auth.oauth_only": (
        "{host} offers only {mechanisms}: a user name and password will not work. Outlook "
        "must sign in with the provider's own sign-in window, or use an app password where "
        "the provider allows one."
    ),
}


def _mechanisms_finding(
    finding_id: str, mechanisms: set[str], base: dict[str, Any], **facts: Any
) -> Finding:
    listed = sorted(mechanisms)
    detail = _MECHANISMS_DETAIL[finding_id].format(host=base["host"], mechanisms=", ".join(listed))
    return finding(finding_id, detail=detail, evidence={**base, "mechanisms": listed}, **facts)


def _auth_findings(result: ProbeResult, ctx: Context, base: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    encrypted = result.tls is not None
    before, after = set(result.auth_before_tls), set(result.auth_after_tls)
    plain_choice = result.plan.security is Security.NONE
    if before and result.plan.security is not Security.SSL:
        if result.starttls_offered or plain_choice:
            findings.append(_mechanisms_finding("auth.offered_before_tls", before, base))
    if before and plain_choice and not encrypted and ctx.has_password:
        findings.append(_cleartext_login(result, base))
    offered = after if encrypted else before
    if not offered:
        if ctx.requires_auth and (encrypted or result.plan.security is Security.NONE):
            findings.append(
                finding(
                    "auth.not_offered",
                    detail=(
                        "The EHLO reply lists no AUTH mechanism, so Outlook's "
                        '"My outgoing server (SMTP) requires authentication" cannot work '
                        "here. This port is for server-to-server mail or IP-based relay, not "
                        "for a mail client."
                    ),
                    evidence={
                        **base,
                        "extensions": list(result.extensions_after or result.extensions_before),
                    },
                )
            )
        return findings
    if offered <= OAUTH_MECHANISMS:
        findings.append(
            _mechanisms_finding("auth.oauth_only", offered, base, has_password=ctx.has_password)
        )
    if result.auth is not None and result.auth.error != "oauth only":
        findings += _auth_attempt_findings(result, base)
    return findings


def _auth_attempt_findings(result: ProbeResult, base: dict[str, Any]) -> list[Finding]:
    """A reply to AUTH is shown as its codes only: its words can repeat the password."""
    attempt = result.auth
    assert attempt is not None
    codes = _reply_codes(attempt.reply)
    evidence = {**base, "mechanism": attempt.mechanism, "reply": codes}
    if attempt.ok:
        return [
            finding(
                "auth.ok",
                detail=f"AUTH {attempt.mechanism} succeeded; nothing was sent.",
                evidence=evidence,
            )
        ]
    # The reply's meaning (5.7.139, 5.7.9 ...) is knowledge; the engine maps it afterwards
    # from the whole reply, and the knowledge base keeps only its codes (KnowledgeBase.refine).
    return [
        finding(
            "auth.failed",
            detail=(
                f"AUTH {attempt.mechanism} was refused: {codes}"
                if attempt.reply
                else f"AUTH {attempt.mechanism} failed: {attempt.error}"
            ),
            evidence={**evidence, "reply": _reply_text(attempt.reply), "stage": "auth"},
        )
    ]


def _reply_codes(reply: Reply | None) -> str | None:
    """ "535 5.7.8": the reply code and enhanced status code, without the server's words."""
    if reply is None:
        return None
    return " ".join(part for part in (str(reply.code), reply.enhanced) if part)


def credential_findings(result: ProbeResult, ctx: Context) -> list[Finding]:
    """The login test run on another setting than the one entered (which never got there)."""
    if result.auth is None or result.auth.error == "oauth only":
        return []
    base = {
        "host": result.plan.host or ctx.host,
        "port": result.plan.port,
        "security": str(result.plan.security),
        "address": result.address,
        "tested_on": result.plan.label,
    }
    return _auth_attempt_findings(result, base)


def _relay_findings(reply: Reply, ctx: Context, base: dict[str, Any]) -> list[Finding]:
    evidence = {**base, "reply": str(reply), "stage": "rcpt"}
    if ctx.requires_auth and not 200 <= reply.code < 300:
        # Refused without a login, and the user's Outlook logs in: what the server should do
        # (a missing AUTH has its own finding). Said as an error, it would be false.
        return []
    if 200 <= reply.code < 300:
        return [
            finding(
                "smtp.relay.open",
                detail=(
                    "A test recipient at another domain was accepted without authentication "
                    "(no message was sent). That works for sending, but it is an open relay "
                    "unless the server trusts this network on purpose."
                ),
                evidence=evidence,
            )
        ]
    return [
        finding(
            "smtp.relay.refused",  # mapped to its precise meaning by the knowledge base
            detail=f"Without authentication the server answered: {reply}",
            evidence=evidence,
        )
    ]


def _greeting(result: ProbeResult | None) -> Reply | None:
    return result.greeting if result else None


def _with_evidence(finding: Finding, **evidence: object) -> Finding:
    return finding.model_copy(update={"evidence": {**finding.evidence, **evidence}})


def usable(
    result: ProbeResult, *, now: dt.datetime, requires_auth: bool, ignore_login: bool = False
) -> bool:
    """Would Outlook send through this endpoint (encrypted, trusted, with a login if needed)?"""
    if not result.works or result.tls is None:
        return False
    if result.tls.version in LEGACY_TLS:
        return False
    cert = result.tls.cert
    if cert is not None and cert.problems:
        return False
    if requires_auth and not set(result.auth_after_tls) & (PASSWORD_MECHANISMS | OAUTH_MECHANISMS):
        return False
    relay = result.relay_reply
    if not requires_auth and relay is not None and not 200 <= relay.code < 300:
        return False  # no login, and the server will not send without one
    if ignore_login:
        return True
    return not (result.auth is not None and not result.auth.ok and result.auth.reply is not None)
