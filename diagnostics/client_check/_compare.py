"""Put the user's view next to the bot's: blocking, interception, or the same on both sides."""

from __future__ import annotations

import dataclasses
from typing import Any

from diagnostics._findings import finding
from diagnostics._models import (
    Endpoint,
    Finding,
    ProbeSummary,
    Report,
    Security,
)
from diagnostics.client_check._dn import common_name, dn_display, dn_key
from diagnostics.client_check._model import CertSeen, ClientObservation, ComparisonResult
from diagnostics.client_check._products import identify
from diagnostics.client_check._server_ok import SERVER_OK_FROM_HERE
from diagnostics.labels import security_label

PORT_BLOCKED = "client.port_blocked"
PORT25_BLOCKED = "client.port25_blocked"
TLS_INTERCEPTED = "client.tls_intercepted"
STARTTLS_STRIPPED = "client.starttls_stripped"
NAME_UNRESOLVED = "client.name_unresolved"
SAME_AS_SERVER = "client.same_as_server"

FINDING_IDS = (
    PORT_BLOCKED,
    PORT25_BLOCKED,
    TLS_INTERCEPTED,
    STARTTLS_STRIPPED,
    NAME_UNRESOLVED,
    SAME_AS_SERVER,
    SERVER_OK_FROM_HERE,
)

# Probe outcomes that prove a TCP connection was made, and those that prove it was not.
_REACHED = frozenset(
    {
        "ok",
        "banner_timeout",
        "banner_rejected",
        "ehlo_timeout",
        "ehlo_rejected",
        "reply_too_long",
        "dropped",
        "starttls_not_offered",
        "starttls_rejected",
        "tls_failed",
        "tls_timeout",
        "plaintext_on_tls",
    }
)
_NOT_REACHED = frozenset({"refused", "connect_timeout", "unreachable"})
# Where Outlook should go instead, best first.
_PREFERENCE = ((587, Security.STARTTLS), (465, Security.SSL), (2525, Security.STARTTLS))
_REASON_WORDS = {
    "timeout": "timed out (the connection attempt went unanswered)",
    "refused": "was refused",
    "unreachable": "found no route to the server",
    "name_unresolved": "could not look up the server name",
    "failed": "failed",
}


@dataclasses.dataclass(frozen=True, slots=True)
class _BotView:
    """What the bot saw, per port, from the report."""

    reached: dict[int, bool]  # True: connected; False: refused/timeout; absent: unknown
    works: dict[int, Security]  # ports that worked end to end, with the security that did
    certs: dict[int, dict[str, Any]]  # the leaf certificate's evidence per port
    starttls: dict[int, bool]
    addresses: dict[int, str]
    greetings: dict[int, str]


def _bot_view(report: Report) -> _BotView:
    # The provider's documented host is another server; its probes say nothing about this one.
    probes: list[ProbeSummary] = [p for p in report.probes if p.role != "provider"]
    reached: dict[int, bool] = {}
    works: dict[int, Security] = {}
    certs: dict[int, dict[str, Any]] = {}
    starttls: dict[int, bool] = {}
    addresses: dict[int, str] = {}
    greetings: dict[int, str] = {}
    for probe in probes:
        outcome = str(probe.outcome)
        if outcome in _REACHED:
            reached[probe.port] = True
        elif outcome in _NOT_REACHED:
            reached.setdefault(probe.port, False)
        if outcome == "ok" and probe.security in (Security.SSL, Security.STARTTLS):
            works.setdefault(probe.port, probe.security)
        if probe.certificate and probe.certificate.get("issuer"):
            certs.setdefault(probe.port, probe.certificate)
        if probe.starttls_offered is not None and probe.security is Security.STARTTLS:
            starttls.setdefault(probe.port, probe.starttls_offered)
        if probe.address and outcome in _REACHED:
            addresses.setdefault(probe.port, probe.address)
        if probe.greeting:
            greetings.setdefault(probe.port, probe.greeting)
    # Certificate evidence can also sit on findings (tls.cert.*), with or without a port.
    for reported in report.findings:
        ev = reported.evidence
        cert = ev.get("certificate") if isinstance(ev.get("certificate"), dict) else ev
        if isinstance(cert, dict) and cert.get("issuer") and isinstance(ev.get("port"), int):
            certs.setdefault(ev["port"], cert)
    return _BotView(reached, works, certs, starttls, addresses, greetings)


def _host(report: Report) -> str | None:
    return report.input.host or (report.recommended.host if report.recommended else None)


def _recommend(
    report: Report, bot: _BotView, obs: ClientObservation, *, exclude: set[int]
) -> Endpoint | None:
    host = _host(report)
    if not host:
        return None
    order = [p for p, _ in _PREFERENCE] + sorted(bot.works)
    for port in dict.fromkeys(order):
        if port in exclude or not obs.reachable.get(port) or port not in bot.works:
            continue
        return Endpoint(host=host, port=port, security=bot.works[port])
    return None


def _cert_evidence(cert: CertSeen) -> dict[str, Any]:
    return {
        "issuer": cert.issuer,
        "subject": cert.subject,
        "not_after": cert.not_after.isoformat() if cert.not_after else None,
        "sha256": cert.sha256,
    }


def _norm_fp(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.replace(":", "").replace(" ", "").upper() or None


@dataclasses.dataclass
class _Comparison:
    """What the sections of `compare` read and add to."""

    report: Report
    bot: _BotView
    obs: ClientObservation
    host: str | None
    entered: int | None
    findings: list[Finding] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    same: list[str] = dataclasses.field(default_factory=list)  # for "same on both sides"
    differs: bool = False

    def differ(self, note: str) -> None:
        """A difference worth a note but no finding of its own."""
        self.differs = True
        self.notes.append(note)


def compare(report: Report, observation: ClientObservation) -> ComparisonResult:
    """Findings from the difference between the user's view and the bot's (no fixes yet)."""
    obs = observation
    if obs.empty:
        return ComparisonResult(
            verdict_text="Nothing could be read from the pasted text: please paste the whole "
            "output of the check, from the '== smtpcheck' line to '== end =='.",
            notes=tuple(obs.notes),
        )
    c = _Comparison(report, _bot_view(report), obs, _host(report), report.input.port)
    c.notes += obs.notes
    if obs.host and c.host and obs.host != c.host.lower():
        c.notes.append(
            f"The pasted output is about {obs.host}, but this diagnosis is about {c.host}: "
            "the comparison may not mean much."
        )
    _compare_name(c)
    recommended = _compare_ports(c)
    intercepted = _compare_certificates(c)
    _compare_starttls(c)
    _compare_tls_errors(c, intercepted)
    _compare_greetings(c)
    _same_on_both_sides(c)
    return ComparisonResult(
        findings=tuple(c.findings),
        recommended=recommended,
        verdict_text=_verdict_text(c.findings, recommended, obs),
        notes=tuple(dict.fromkeys(c.notes)),
    )


def _compare_name(c: _Comparison) -> None:
    if not c.obs.name_unresolved:
        return
    c.differs = True
    c.findings.append(
        finding(
            NAME_UNRESOLVED,
            detail=(
                "The bot finds the server, but your computer's DNS does not. Check the "
                "spelling in Outlook; on an office network or VPN, the internal DNS or a "
                "DNS filter may not know or may block this name."
            ),
            evidence={"host": c.host, "bot_resolved": any(c.bot.reached.values())},
            host=c.host or "the server name",
        )
    )


def _compare_ports(c: _Comparison) -> Endpoint | None:
    """Ports blocked on the user's side; the setting to use instead when one is."""
    blocked = _blocked_ports(c)
    if not blocked:
        return None
    c.differs = True
    recommended = _recommend(c.report, c.bot, c.obs, exclude=set(blocked))
    reachable = sorted(p for p, ok in c.obs.reachable.items() if ok and p not in blocked)
    instead = _instead_text(reachable, c.bot)
    for port in blocked:
        reason = c.obs.reasons.get(port, "failed")
        evidence = {
            "port": port,
            "user_reason": reason,
            "bot_reached": c.bot.reached.get(port),
            "reachable_instead": reachable,
            "recommended": recommended.model_dump(mode="json") if recommended else None,
        }
        c.findings.append(_port_blocked(c, port, reason, instead, evidence))
    return recommended


def _blocked_ports(c: _Comparison) -> list[int]:
    """Ports the user cannot reach but the bot can (and 25 whenever the user cannot)."""
    blocked: list[int] = []
    for port, user_ok in sorted(c.obs.reachable.items()):
        bot_ok = c.bot.reached.get(port)
        reason = c.obs.reasons.get(port, "failed")
        if user_ok is None:
            c.notes.append(f"The output does not say whether port {port} could be reached.")
        elif user_ok is False and reason == "name_unresolved":
            continue  # already said once, by _compare_name
        elif user_ok is False and (port == 25 or bot_ok is True):
            blocked.append(port)
        elif user_ok is False and bot_ok is False:
            c.same.append(f"port {port} is closed from both sides")
        elif user_ok is True and bot_ok is True:
            c.same.append(f"port {port} is reachable from both sides")
        elif user_ok is True and bot_ok is False:
            c.differ(
                f"Port {port} answers on your computer but not from here: the bot's own "
                "network may block it, or something on your side (an antivirus or proxy) "
                "answers in the server's place."
            )
        else:
            c.notes.append(f"Port {port} was not checked from here, so it cannot be compared.")
    return blocked


def _port_blocked(
    c: _Comparison, port: int, reason: str, instead: str, evidence: dict[str, Any]
) -> Finding:
    if port == 25:
        return finding(
            PORT25_BLOCKED,
            detail=(
                f"Your computer's connection to port 25 {_REASON_WORDS[reason]}. "
                "Most internet providers and many office networks block outgoing "
                "port 25 to stop spam from infected computers; it is meant for "
                "servers, not for Outlook. Use port 587 with STARTTLS (or 465 with "
                f"SSL/TLS) and sign in.{instead}"
            ),
            evidence=evidence,
            not_entered=c.entered != 25,
        )
    rec = c.report.recommended
    important = port == c.entered or (rec is not None and rec.port == port)
    return finding(
        PORT_BLOCKED,
        detail=(
            f"From here port {port} answers, but from your computer the connection "
            f"{_REASON_WORDS[reason]}. A firewall, your internet provider, a VPN or "
            f"the security software on your computer blocks it.{instead}"
        ),
        evidence=evidence,
        not_in_use=not important and c.entered is not None,
    )


def _compare_certificates(c: _Comparison) -> list[dict[str, Any]]:
    """The certificates the user saw against the server's; the intercepted ones."""
    intercepted: list[dict[str, Any]] = []
    bot_certs = c.bot.certs
    for port, cert in sorted(c.obs.certs.items()):
        server = bot_certs.get(port) or (next(iter(bot_certs.values())) if bot_certs else None)
        verdict = _compare_cert(cert, server)
        if verdict == "same":
            c.same.append(f"the certificate on port {port} is the server's own")
        elif verdict == "other_cert_same_issuer":
            c.notes.append(
                f"On port {port} your computer got a different certificate from the same "
                "issuer: probably another server behind the same name, or a renewal."
            )
        elif verdict == "intercepted":
            intercepted.append({"port": port, "cert": cert, "server": server})
        elif identify(cert.issuer):  # unknown_server, but a known interceptor's name
            intercepted.append({"port": port, "cert": cert, "server": None})
        else:
            c.notes.append(
                f"The certificate on port {port} cannot be compared: the bot has none from the "
                "server for it."
            )
    for cert in c.obs.loose_certs:
        server = next(iter(bot_certs.values()), None)
        verdict = _compare_cert(cert, server)
        if verdict == "same":
            c.same.append("the certificate is the server's own")
        elif verdict == "intercepted" or (verdict == "unknown_server" and identify(cert.issuer)):
            intercepted.append({"port": None, "cert": cert, "server": server})
    if intercepted:
        c.differs = True
        c.findings.append(_interception_finding(intercepted, c.host))
    return intercepted


def _compare_starttls(c: _Comparison) -> None:
    """STARTTLS hidden by a middlebox (e.g. a firewall's "SMTP inspection")."""
    stripped = [
        p
        for p, offered in sorted(c.obs.starttls_offered.items())
        if offered is False and c.bot.starttls.get(p) is True
    ]
    if not stripped:
        return
    c.differs = True
    c.findings.append(
        finding(
            STARTTLS_STRIPPED,
            detail=(
                f"From here the server offers STARTTLS on {_ports(stripped)}; from "
                "your computer it does not. A firewall's SMTP inspection or an antivirus "
                "removes it, so Outlook cannot encrypt. Use port 465 with SSL/TLS, or ask "
                "IT to turn off SMTP inspection for this server."
            ),
            evidence={
                "ports": stripped,
                "user_greeting": {p: c.obs.greetings.get(p) for p in stripped},
                "bot_greeting": {p: c.bot.greetings.get(p) for p in stripped},
            },
        )
    )


def _compare_tls_errors(c: _Comparison, intercepted: list[dict[str, Any]]) -> None:
    for port, error in sorted(c.obs.tls_errors.items()):
        if port in c.bot.works and not any(i["port"] == port for i in intercepted):
            c.differ(
                f"On port {port} the encrypted connection failed on your computer "
                f"({error[:160]}) but works from here: security software or a firewall "
                "between you and the server is the likely cause."
            )


def _compare_greetings(c: _Comparison) -> None:
    for port, greeting in sorted(c.obs.greetings.items()):
        theirs = c.bot.greetings.get(port)
        mine = _greeting_host(greeting)
        if theirs and mine and mine != _greeting_host(theirs):
            c.differ(
                f"On port {port} a different server greets your computer "
                f"('{greeting[:80]}') than the bot ('{theirs[:80]}'): your network redirects "
                "mail connections (common for port 25 at some providers)."
            )


def _same_on_both_sides(c: _Comparison) -> None:
    if c.differs or not c.same:
        return
    c.findings.append(
        finding(
            SAME_AS_SERVER,
            detail=(
                "Nothing between your computer and the server changes the picture: "
                + "; ".join(c.same)
                + ". The cause is in the settings or on the server: see the other "
                "findings of this diagnosis."
            ),
            evidence={"matched": c.same, "server_findings": list(c.report.finding_ids)},
        )
    )


def _instead_text(reachable: list[int], bot: _BotView) -> str:
    ports = [p for p in reachable if p in bot.works] or reachable
    if not ports:
        return " None of the other mail ports answered from your computer either."
    verb = "does" if len(ports) == 1 else "do"
    return f" From your computer {_ports(ports)} {verb} answer."


def _ports(ports: list[int]) -> str:
    """ "port 587" or "ports 25 and 587"."""
    text = [str(p) for p in ports]
    if len(text) == 1:
        return f"port {text[0]}"
    return "ports " + ", ".join(text[:-1]) + " and " + text[-1]


def _compare_cert(cert: CertSeen, server: dict[str, Any] | None) -> str:
    """same | other_cert_same_issuer | intercepted | unknown_server."""
    if not server:
        return "unknown_server"
    theirs = _norm_fp(server.get("sha256"))
    if cert.sha256 and theirs and cert.sha256 == theirs:
        return "same"
    if not cert.issuer:
        return "unknown_server"
    if dn_key(cert.issuer) == dn_key(str(server.get("issuer", ""))):
        if cert.sha256 and theirs:
            return "other_cert_same_issuer"
        return "same"
    return "intercepted"


def _interception_finding(items: list[dict[str, Any]], host: str | None) -> Finding:
    first: CertSeen = items[0]["cert"]
    product = identify(first.issuer)
    server = items[0]["server"]
    ports = sorted({i["port"] for i in items if i["port"]})
    issuer_name = common_name(first.issuer) or dn_display(first.issuer)
    if product and product.kind == "antivirus":
        who = f"{product.name}, security software on your computer,"
    elif product:
        who = f"{product.name}, a firewall or web gateway on your network,"
    else:
        who = "Security software, a firewall or a proxy"
    detail = f"Your computer was shown a certificate issued by '{issuer_name}'"
    if server:
        theirs = common_name(server.get("issuer")) or dn_display(server.get("issuer"))
        detail += f", but the server's own is issued by '{theirs}'"
    where = f" on {_ports(ports)}" if ports else ""
    detail += f". {who} decrypts and re-encrypts the connection{where}."
    if first.trusted:
        detail += (
            " Windows trusts that certificate (the product installed its own root), so "
            "Outlook may not warn, but the scanning can still drop or stall sending."
        )
    else:
        detail += " Outlook then warns about the certificate or refuses to send."
    if not product:
        detail += (
            " If no such software or network device is in place, another server answers "
            f"for {host or 'this name'} on your network (internal DNS)."
        )
    return finding(
        TLS_INTERCEPTED,
        detail=detail,
        evidence={
            "ports": ports,
            "product": product.name if product else None,
            "product_kind": product.kind if product else None,
            "product_hint": product.hint if product else None,
            "user_certificate": _cert_evidence(first),
            "server_issuer": server.get("issuer") if server else None,
            "server_sha256": server.get("sha256") if server else None,
        },
    )


def _greeting_host(greeting: str) -> str | None:
    parts = greeting.split()
    if len(parts) >= 2 and parts[0][:3].isdigit():
        name = parts[1].lstrip("-").lower()
        return name if "." in name else None
    return None


def _verdict_text(
    findings: list[Finding], recommended: Endpoint | None, obs: ClientObservation
) -> str:
    ids = [f.id for f in findings]
    parts: list[str] = []
    if NAME_UNRESOLVED in ids:
        parts.append("Your computer cannot look up the server name.")
    if TLS_INTERCEPTED in ids:
        f = findings[ids.index(TLS_INTERCEPTED)]
        product = f.evidence.get("product")
        parts.append(
            f"{product} intercepts the encrypted mail connection on your computer."
            if product
            else "Something between your computer and the server replaces its certificate."
        )
    if STARTTLS_STRIPPED in ids:
        parts.append("Your network hides the server's STARTTLS.")
    blocked = [f.evidence["port"] for f in findings if f.id in (PORT_BLOCKED, PORT25_BLOCKED)]
    if blocked:
        verb = "is" if len(blocked) == 1 else "are"
        what = _ports(blocked)
        parts.append(
            f"{what[0].upper()}{what[1:]} {verb} blocked between your computer and the server."
        )
    if recommended:
        label = security_label(recommended.security)
        parts.append(
            f"Use {recommended.host}, port {recommended.port} with {label}: it works from "
            "your computer and from here."
        )
    if SAME_AS_SERVER in ids:
        parts.append(
            "Your computer sees the same as the bot, so nothing in between is at fault: "
            "look at the server-side findings."
        )
    if not parts:
        parts.append(
            "The output could be read, but there was nothing to compare with what the bot saw."
        )
    return " ".join(parts)
