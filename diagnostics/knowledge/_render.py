"""Fill fix templates with the user's settings and turn a FixSpec into a renderer-neutral Fix.

Templates use ``{name}`` placeholders (no attribute access, no format specs). A step may be
a list of alternatives: the first one whose placeholders are all known wins, and ``""`` as
the last alternative makes the step optional. The loader checks that every step's last
alternative only uses variables each client always has, so a rendered fix never shows a
raw ``{placeholder}``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from diagnostics._errors import KnowledgeError
from diagnostics._models import DEFAULT_SECURITY_FOR_PORT, Endpoint, Fix, OutlookClient, Security
from diagnostics.knowledge._linear import compile_linear
from diagnostics.knowledge._models import ClientSpec, FixContext, FixSpec, Step

# Variables that come from the diagnosis; each may be unknown (None) for a given context.
CONTEXT_VARIABLES = frozenset(
    {
        "host",  # the outgoing server as entered
        "port",
        "security",  # the encryption entered, as this Outlook labels it
        "email",
        "domain",  # the sender's domain (from the email address)
        "user",
        "login",  # the user name to type: the one entered, else the email address
        "rec_host",  # what would work: the engine's recommendation, else the provider's
        "rec_port",
        "rec_security",
        "other_host",  # rec_host when it is not the server entered (for "use X instead")
        "port_security",  # the encryption that belongs to the entered port (587 -> STARTTLS)
        "provider_name",
        "provider_host",  # the provider's own documented endpoint (not the engine's pick)
        "provider_port",
        "provider_security",
        "provider_link",
        "provider_username",
        "provider_password",
        "app_password_link",
        "cert_names",
        "reply",
        # From the finding's evidence (see `evidence_variables`).
        "checked_domain",  # the domain a DNS finding is about (sender domain or server name)
        "checked_host",  # the server name the engine guessed (provider.unknown)
        "failed_checks",  # which DNS lookups failed: "MX, SPF"
        "product",  # who intercepts TLS (client.tls_intercepted), any kind
        "av_product",  # ... when it is security software on the user's computer
        "net_product",  # ... when it is a firewall, proxy or cloud gateway on the network
        "affected_ports",  # the ports a client-side finding concerns: "587" or "587 and 465"
        "found_from",  # where discovered settings came from: "published by the domain (SRV)"
    }
)
# Dated sentences (policies.yaml `phrase`), worded against FixContext.today: always known.
DATED_VARIABLES = frozenset({"m365_smtp_auth_change"})
# Always known: they describe the client, not the diagnosis.
CLIENT_BUILTINS = frozenset(
    {"client_name", "client_link", "label_starttls", "label_ssl", "label_none"}
)

_FORMATTER = string.Formatter()


def placeholders(template: str) -> set[str]:
    """The variable names a template uses; raises ValueError on anything but ``{name}``."""
    names: set[str] = set()
    for _literal, field, spec, conversion in _FORMATTER.parse(template):
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            raise ValueError(f"template {template!r}: only plain {{name}} placeholders allowed")
        names.add(field)
    return names


def alternatives(step: Step) -> tuple[str, ...]:
    return (step,) if isinstance(step, str) else step


def spec_templates(spec: FixSpec) -> Iterable[tuple[Step, bool]]:
    """Every template of a fix spec, with whether it must always be fillable.

    Summary and steps must; the link and the values are dropped when they cannot be filled.
    """
    yield spec.summary, True
    for step in spec.steps:
        yield step, True
    if spec.link is not None:
        yield spec.link, False
    for label, value in spec.values.items():
        yield label, False
        yield value, False


def client_variables(client: ClientSpec) -> dict[str, str | None]:
    return {
        **client.vars,
        "client_name": client.name,
        "client_link": client.link,
        "label_starttls": client.security_labels[Security.STARTTLS],
        "label_ssl": client.security_labels[Security.SSL],
        "label_none": client.security_labels[Security.NONE],
    }


def context_variables(ctx: FixContext, client: ClientSpec) -> dict[str, str | None]:
    """The diagnosis-dependent variables for one client (None = unknown)."""
    labels = client.security_labels
    provider = ctx.provider
    documented = provider.recommended(ctx.provider_params) if provider else None
    rec = ctx.recommended or documented
    if "recommended" in ctx.evidence:
        # The client check makes its own pick (a port that works from the user's computer
        # and from here); when it found none, the report-wide pick may be the blocked port.
        rec = _endpoint(ctx.evidence["recommended"])
    port_security = DEFAULT_SECURITY_FOR_PORT.get(ctx.port) if ctx.port else None
    auth = provider.auth if provider else None
    return {
        "host": ctx.host,
        "port": str(ctx.port) if ctx.port else None,
        "security": labels[ctx.security] if ctx.security else None,
        "email": ctx.email,
        "domain": ctx.email.rpartition("@")[2] if ctx.email else None,
        "user": ctx.user,
        "login": ctx.user or ctx.email,
        "rec_host": rec.host if rec else None,
        "rec_port": str(rec.port) if rec else None,
        "rec_security": labels[rec.security] if rec else None,
        "other_host": rec.host if rec and not _same_host(rec.host, ctx.host) else None,
        "port_security": labels[port_security] if port_security else None,
        "provider_name": provider.name if provider else None,
        "provider_host": documented.host if documented else None,
        "provider_port": str(documented.port) if documented else None,
        "provider_security": labels[documented.security] if documented else None,
        "provider_link": provider.link if provider else None,
        "provider_username": auth.username if auth else None,
        "provider_password": auth.password if auth else None,
        "app_password_link": auth.app_password_link if auth else None,
        "cert_names": _cert_names(ctx.evidence),
        "reply": _text(ctx.evidence.get("reply")),
        **evidence_variables(ctx.evidence),
    }


_CHECK_NAMES = {
    "mx": "MX",
    "spf": "SPF",
    "dmarc": "DMARC",
    "mta_sts": "MTA-STS",
    "tlsrpt": "TLS-RPT",
    "ptr": "reverse DNS",
}


def evidence_variables(evidence: Mapping[str, object]) -> dict[str, str | None]:
    """Variables read from the finding's evidence; None where the evidence does not say."""
    product = _text(evidence.get("product"))
    kind = evidence.get("product_kind")
    checks = evidence.get("checks")
    failed = (
        [_CHECK_NAMES.get(str(c.get("check")), str(c.get("check")))
         for c in checks if isinstance(c, Mapping) and c.get("check")]
        if isinstance(checks, list | tuple)
        else []
    )  # fmt: skip
    return {
        "checked_domain": _text(evidence.get("domain")),
        "checked_host": _text(evidence.get("checked")),
        "failed_checks": ", ".join(dict.fromkeys(failed)) or None,
        "product": product,
        "av_product": product if kind == "antivirus" else None,
        "net_product": product if kind == "network" else None,
        "affected_ports": _port_list(evidence.get("ports")),
        "found_from": _text(evidence.get("from")),  # discovery: the words for the sources
    }


def _same_host(one: str, other: str | None) -> bool:
    return other is not None and one.lower().rstrip(".") == other.lower().rstrip(".")


def _port_list(value: object) -> str | None:
    if not isinstance(value, list | tuple):
        return None
    ports = [str(p) for p in value if isinstance(p, int) and not isinstance(p, bool)]
    if len(ports) < 2:
        return ports[0] if ports else None
    return ", ".join(ports[:-1]) + " and " + ports[-1]


def _endpoint(value: object) -> Endpoint | None:
    if isinstance(value, Endpoint):
        return value
    if not isinstance(value, Mapping):
        return None
    try:
        return Endpoint.model_validate(value)
    except ValueError:
        return None


def _cert_names(evidence: Mapping[str, object]) -> str | None:
    cert = evidence.get("certificate")
    names = cert.get("names") if isinstance(cert, Mapping) else evidence.get("names")
    if isinstance(names, str):
        return names or None
    if isinstance(names, list | tuple) and names:
        return ", ".join(str(n) for n in names)
    return None


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


_PARENTHETICAL = compile_linear(r" ?\([^()]{12,200}\)", ignore_case=False)


def once(text: str, seen: set[str]) -> str:
    """Drop a parenthetical already said in this fix ("(called TLS in Outlook 2016 and
    older)" after each label): the older name is given once, where it first appears."""
    out, last = [], 0
    for match in _PARENTHETICAL.finditer(text):
        key = match.group(0).strip()
        if key in seen:
            out.append(text[last : match.start()])
            last = match.end()
        else:
            seen.add(key)
    out.append(text[last:])
    return "".join(out)


def fill(step: Step, variables: Mapping[str, str | None]) -> str | None:
    """The first alternative whose placeholders are all known, filled; None if none is."""
    for template in alternatives(step):
        names = placeholders(template)
        if all(variables.get(name) is not None for name in names):
            return template.format_map({n: variables[n] for n in names})
    return None


def render_fix(
    spec: FixSpec,
    *,
    client: OutlookClient,
    variables: Mapping[str, str | None],
    lead_steps: tuple[str, ...] = (),
    extra_sources: tuple[str, ...] = (),
) -> Fix:
    """Fill one fix spec; raises KnowledgeError if a required template cannot be filled."""
    summary = fill(spec.summary, variables)
    if not summary:
        raise KnowledgeError(f"fix summary {spec.summary!r} cannot be filled for {client}")
    steps: list[str] = list(lead_steps)
    for step in spec.steps:
        text = fill(step, variables)
        if text is None:
            raise KnowledgeError(f"fix step {step!r} cannot be filled for {client}")
        if text:
            steps.append(text)
    values: dict[str, str] = {}
    for label, value in spec.values.items():
        filled_label, filled_value = fill(label, variables), fill(value, variables)
        if filled_label and filled_value:
            values[filled_label] = filled_value
    link = fill(spec.link, variables) if spec.link is not None else None
    sources = tuple(dict.fromkeys((*spec.sources, *extra_sources)))
    # The older label once per fix: kept in the first step that names it (where the user
    # acts), dropped from later steps and from the summary.
    seen: set[str] = set()
    steps = [once(step, seen) for step in steps]
    summary = once(summary, set(seen))
    return Fix(
        summary=summary,
        steps=tuple(steps),
        values=values,
        link=link or None,
        client=client,
        sources=sources,
    )
