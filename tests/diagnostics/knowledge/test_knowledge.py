"""The knowledge base loads, covers every finding for every Outlook, and says the right thing."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from diagnostics._errors import KnowledgeError
from diagnostics._models import Endpoint, Finding, OutlookClient, Security, Severity
from diagnostics.knowledge import (
    FixContext,
    Knowledge,
    data_dir,
    load_knowledge,
    load_knowledge_from,
)
from tests.paths import SHARED, known_source_ids

CONTRACT = SHARED / "spec" / "contract.md"

# The contract's minimum set (checked against the contract file below when it is present).
CONTRACT_IDS = {
    "dns.host.nxdomain", "dns.host.no_address", "dns.timeout", "tcp.refused", "tcp.timeout",
    "smtp.banner.timeout", "smtp.banner.rejected", "smtp.ehlo.timeout", "smtp.reply.too_long",
    "smtp.connection.dropped", "tls.mode.ssl_on_starttls_port", "tls.mode.starttls_on_ssl_port",
    "tls.starttls.not_offered", "tls.none.selected", "tls.handshake.failed", "tls.version.legacy",
    "tls.cert.expired", "tls.cert.not_yet_valid", "tls.cert.expiring_soon",
    "tls.cert.hostname_mismatch", "tls.cert.self_signed", "tls.cert.untrusted",
    "tls.cert.chain_incomplete", "auth.not_offered", "auth.offered_before_tls", "auth.oauth_only",
    "auth.ok", "auth.failed.credentials", "auth.failed.basic_disabled",
    "auth.failed.app_password_required", "smtp.relay.denied", "provider.detected",
    "settings.differ_from_provider", "dns.mx.missing", "dns.spf.missing", "dns.spf.multiple",
    "dns.spf.too_many_lookups", "dns.dmarc.missing", "dns.dmarc.invalid",
}  # fmt: skip
# IDs the engine emits beyond the contract (its own list, shared with the engine's author).
ENGINE_IDS = {
    "dns.mx.null", "dns.mx.cname", "dns.mx.unresolvable", "dns.spf.invalid", "dns.spf.ok",
    "dns.dmarc.ok", "dns.mta_sts.present", "dns.mta_sts.invalid", "dns.tlsrpt.missing",
    "dns.ptr.missing", "dns.ptr.mismatch", "tcp.unreachable", "smtp.ehlo.rejected",
    "tls.starttls.rejected", "tls.handshake.timeout", "tls.ok", "tls.cert.ok", "auth.required",
    "auth.failed.basic_retired", "auth.failed.temporary", "auth.failed.web_login_required",
    "auth.mechanisms.insecure_only", "smtp.sender.not_permitted", "settings.ok",
    "settings.port25_blocked_likely", "provider.microsoft365.classic_uses_exchange",
    "provider.policy.m365_basic_auth_retirement", "provider.policy.app_password_required",
    "probe.budget_exhausted", "input.error_text.cause",
    # emitted by diagnostics/_assess.py before the knowledge base maps them
    "auth.failed", "smtp.relay.open", "smtp.relay.refused", "probe.error",
}  # fmt: skip

PLACEHOLDER = re.compile(r"\{[a-z_]*\}")


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    # Load from disk, not the cached instance, so a schema error fails right here.
    return load_knowledge_from(data_dir())


# --------------------------------------------------------------------------- loading


def test_load_knowledge_is_cached_and_complete(kb: Knowledge) -> None:
    assert load_knowledge() is load_knowledge()
    assert len(kb.findings) == len(set(kb.finding_ids))
    assert {p.key for p in kb.providers} >= {"microsoft365", "gmail", "amazon_ses"}


@pytest.mark.skipif(not CONTRACT.exists(), reason="contract file not checked out")
def test_contract_list_matches_the_contract_file() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("## Finding IDs", 1)[1]
    ids = {
        token
        for line in section.splitlines()
        if line.startswith("| `")
        for token in re.findall(r"`([a-z0-9_.]+)`", line.split("|")[1])
    }
    assert ids == CONTRACT_IDS


def test_catalog_holds_every_contract_and_engine_id(kb: Knowledge) -> None:
    catalog = set(kb.finding_ids)
    assert CONTRACT_IDS <= catalog, CONTRACT_IDS - catalog
    assert ENGINE_IDS <= catalog, ENGINE_IDS - catalog
    flagged = {f.id for f in kb.findings if f.contract}
    assert flagged == CONTRACT_IDS


def test_every_source_id_exists_in_the_facts_file_or_the_repository(kb: Knowledge) -> None:
    known = known_source_ids()
    if known is None:
        pytest.skip("facts file not checked out")
    used = set()
    for path in data_dir().glob("*.yaml"):
        used |= set(re.findall(r"\bS\d{1,3}[a-z]?\b", path.read_text(encoding="utf-8")))
    assert used, "the data cites no sources"
    assert used <= known, sorted(used - known)


# --------------------------------------------------------------------------- fix coverage


def full_context(kb: Knowledge, provider_key: str | None = "gmail", **kw: object) -> FixContext:
    provider = kb.provider(provider_key) if provider_key else None
    values: dict = {
        "host": "mail.example.com",
        "port": 465,
        "security": Security.STARTTLS,
        "recommended": Endpoint(host="smtp.example.com", port=587, security=Security.STARTTLS),
        "provider": provider,
        "provider_params": {"region": "eu-west-1", "tenant": "contoso-com"},
        "user": "ann@example.com",
        "email": "ann@example.com",
        "evidence": {
            "reply": "535 5.7.8 Authentication failed",
            "certificate": {"names": ["mx.hosting.example", "*.hosting.example"]},
        },
    }
    values.update(kw)
    return FixContext(**values)


def spec_combinations(kb: Knowledge):
    """Every (finding, provider override, reply variant) the data defines."""
    for finding_id in kb.finding_ids:
        entry = kb.fix_entry(finding_id)
        assert entry is not None, finding_id
        yield finding_id, None, None
        for provider_key in entry.providers:
            yield finding_id, provider_key, None
        for variant in entry.variants:
            yield finding_id, None, variant


def assert_clean(fix, finding_id: str, client: OutlookClient) -> None:
    texts = [fix.summary, *fix.steps, *fix.values, *fix.values.values(), fix.link or ""]
    for text in texts:
        assert not PLACEHOLDER.search(text), f"{finding_id}/{client}: unfilled {text!r}"
        assert "<" not in text, f"{finding_id}/{client}: Slack reads <...> as markup: {text!r}"
        assert text == text.strip() and "  " not in text, f"{finding_id}/{client}: {text!r}"
    assert fix.summary
    assert fix.client is client
    if fix.link:
        assert fix.link.startswith("https://"), fix.link


@pytest.mark.parametrize("client", list(OutlookClient))
def test_every_finding_has_a_fix_for_every_client(kb: Knowledge, client: OutlookClient) -> None:
    for finding_id in sorted(CONTRACT_IDS | ENGINE_IDS | set(kb.finding_ids)):
        for ctx in (full_context(kb), FixContext()):
            fix = kb.fix_for(finding_id, client, ctx)
            assert fix is not None, f"no fix for {finding_id} on {client}"
            assert_clean(fix, finding_id, client)


@pytest.mark.parametrize("client", list(OutlookClient))
def test_every_override_and_variant_renders_with_full_and_minimal_context(
    kb: Knowledge, client: OutlookClient
) -> None:
    count = 0
    for finding_id, provider_key, variant in spec_combinations(kb):
        contexts = [
            full_context(kb, provider_key or "gmail", variant=variant),
            FixContext(variant=variant),
            FixContext(provider=kb.provider(provider_key) if provider_key else None),
        ]
        for ctx in contexts:
            fix = kb.fix_for(finding_id, client, ctx)
            assert fix is not None
            assert_clean(fix, finding_id, client)
            count += 1
    assert count > 3 * len(kb.finding_ids)


@pytest.mark.parametrize("provider", ["microsoft365", "outlookcom", "gmail", "amazon_ses",
                                      "proton_bridge", "sendgrid", None])  # fmt: skip
def test_fixes_render_for_every_provider(kb: Knowledge, provider: str | None) -> None:
    for finding_id in kb.finding_ids:
        for client in OutlookClient:
            fix = kb.fix_for(finding_id, client, full_context(kb, provider, recommended=None))
            assert fix is not None
            assert_clean(fix, finding_id, client)


def test_unknown_finding_has_no_fix(kb: Knowledge) -> None:
    assert kb.fix_for("no.such.finding", OutlookClient.CLASSIC, FixContext()) is None


def test_fix_is_filled_with_the_recommended_values(kb: Knowledge) -> None:
    ctx = FixContext(
        host="smtp.gmail.com",
        port=465,
        security=Security.STARTTLS,
        recommended=Endpoint(host="smtp.gmail.com", port=465, security=Security.SSL),
        provider=kb.provider("gmail"),
    )
    fix = kb.fix_for("tls.mode.starttls_on_ssl_port", OutlookClient.CLASSIC, ctx)
    assert fix is not None
    text = " ".join(fix.steps)
    assert (
        "the list *Use the following type of encrypted connection* right below it (not the one"
        " for the incoming server) choose SSL/TLS" in text
    )
    assert "Set the port box *Outgoing server (SMTP)* to 465" in text
    assert "(called SSL in Outlook 2016 and older)" in text
    # Control Panel > Mail has the tabs in every build (issue 14: newer builds' own
    # Account Settings window may have no More Settings).
    assert "*Control Panel* > *Mail (Microsoft Outlook)* > *Email" in text
    assert "*More Settings…*" in text and "*Advanced*" in text
    assert fix.values["Outgoing server (SMTP)"] == "465"
    assert fix.values["Use the following type of encrypted connection"].startswith("SSL/TLS")
    assert fix.link == kb.provider("gmail").link
    assert "S47" in fix.sources


def test_fix_without_recommendation_uses_the_entered_port(kb: Knowledge) -> None:
    ctx = FixContext(host="mail.example.com", port=587, security=Security.SSL)
    fix = kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.CLASSIC, ctx)
    assert fix is not None
    assert "Leave the port box *Outgoing server (SMTP)* at 587" in fix.steps[1]
    assert fix.steps[1].endswith("choose STARTTLS (called TLS in Outlook 2016 and older).")
    assert "Why: port 587 starts in plain text" in fix.steps[2]
    assert fix.values == {}  # nothing recommended, so no values to type


def test_minimal_context_falls_back_to_generic_wording(kb: Knowledge) -> None:
    fix = kb.fix_for("tcp.refused", OutlookClient.CLASSIC, FixContext())
    assert fix is not None
    assert "587" in " ".join(fix.steps) and "465" in " ".join(fix.steps)
    assert fix.link and "support.microsoft.com" in fix.link  # the client's help page


def test_each_client_gets_its_own_menu_path(kb: Knowledge) -> None:
    ctx = full_context(kb)
    steps = {
        client: " ".join(kb.fix_for("tcp.refused", client, ctx).steps) for client in OutlookClient
    }
    assert "*More Settings…*" in steps[OutlookClient.CLASSIC]
    assert "*Settings* > *Accounts* > *Email accounts*" in steps[OutlookClient.NEW]
    assert "*Tools* > *Accounts…*" in steps[OutlookClient.MAC]
    assert "*Override default port*" in steps[OutlookClient.MAC]
    for mobile in (OutlookClient.IOS, OutlookClient.ANDROID):
        assert "smtp.example.com:587" in steps[mobile]
        assert "no separate port field" in steps[mobile]


def test_classic_outlook_with_microsoft365_is_told_it_needs_no_smtp_settings(
    kb: Knowledge,
) -> None:
    m365 = kb.provider("microsoft365")
    ctx = FixContext(host="smtp.office365.com", port=465, security=Security.SSL, provider=m365)
    classic = kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.CLASSIC, ctx)
    assert classic is not None
    assert "does not use any outgoing-server (SMTP) settings" in classic.steps[0]
    assert "S4" in classic.sources
    # the rest of the fix still uses Microsoft 365's documented endpoint
    assert "587" in classic.steps[2]
    for client in (OutlookClient.NEW, OutlookClient.MAC, OutlookClient.IOS):
        other = kb.fix_for("tls.mode.ssl_on_starttls_port", client, ctx)
        assert "only matter if it was added as IMAP or POP" in other.steps[0]
    # other providers get no such note
    gmail = ctx.model_copy(update={"provider": kb.provider("gmail"), "host": "smtp.gmail.com"})
    plain = kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.CLASSIC, gmail)
    assert plain.steps[0].startswith("Close Outlook and open Windows *Control Panel*")
    # not for findings that are not about Outlook's SMTP fields
    cert = kb.fix_for("tls.cert.expired", OutlookClient.CLASSIC, ctx)
    assert "outgoing-server (SMTP) settings" not in " ".join(cert.steps)
    exchange = kb.fix_for("provider.microsoft365.classic_uses_exchange", OutlookClient.CLASSIC, ctx)
    assert "Exchange, not SMTP" in exchange.steps[0]


def test_reply_variant_selects_the_precise_fix(kb: Knowledge) -> None:
    base = FixContext(provider=kb.provider("microsoft365"))
    plain = kb.fix_for("auth.failed.basic_disabled", OutlookClient.CLASSIC, base)
    defaults = kb.fix_for(
        "auth.failed.basic_disabled",
        OutlookClient.CLASSIC,
        base.model_copy(update={"variant": "security_defaults"}),
    )
    assert plain.summary != defaults.summary
    assert "security defaults" in " ".join(defaults.steps)
    gmail = kb.fix_for(
        "auth.failed.credentials",
        OutlookClient.IOS,
        FixContext(provider=kb.provider("gmail"), variant="gmail_bad_credentials"),
    )
    assert "app password" in gmail.summary
    assert "https://myaccount.google.com/apppasswords" in " ".join(gmail.steps)


def test_provider_override_applies_only_to_that_provider(kb: Knowledge) -> None:
    ses = FixContext(provider=kb.provider("amazon_ses"))
    fix = kb.fix_for("smtp.sender.not_permitted", OutlookClient.MAC, ses)
    assert "Amazon SES" in fix.summary
    other = kb.fix_for("smtp.sender.not_permitted", OutlookClient.MAC, FixContext())
    assert "Amazon SES" not in other.summary
    bridge = kb.fix_for(
        "tls.cert.self_signed",
        OutlookClient.CLASSIC,
        FixContext(provider=kb.provider("proton_bridge")),
    )
    assert "Proton Mail Bridge" in bridge.summary


def test_not_applicable_entries_say_what_to_do_instead(kb: Knowledge) -> None:
    fix = kb.fix_for("tls.none.selected", OutlookClient.ANDROID, FixContext())
    assert fix.summary.startswith("Not applicable")
    assert fix.steps, "a not-applicable entry must still say what to do instead"
    spec = kb.fix_spec("tls.none.selected", OutlookClient.ANDROID)
    assert spec is not None and spec.applicable is False


def test_info_findings_say_nothing_to_change(kb: Knowledge) -> None:
    for finding in kb.findings:
        if finding.severity is Severity.INFO and finding.category not in {"provider", "policy"}:
            fix = kb.fix_for(finding.id, OutlookClient.CLASSIC, FixContext())
            assert "Nothing to change" in fix.summary, finding.id


def test_data_text_uses_no_html_or_angle_brackets(kb: Knowledge) -> None:
    for path in data_dir().glob("*.yaml"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("#") or "<<: *" in line:
                continue
            assert not re.search(r"<[a-z /]+>", line), f"{path.name}:{number}: {line}"


# --------------------------------------------------------------------------- providers

MX_CASES = [
    (["contoso-com.mail.protection.outlook.com"], "microsoft365"),
    (["eur.olc.protection.outlook.com"], "outlookcom"),
    (["mx1.hotmail.com"], "outlookcom"),
    (["gmail-smtp-in.l.google.com", "alt1.gmail-smtp-in.l.google.com"], "gmail"),
    (["aspmx.l.google.com", "alt1.aspmx.l.google.com"], "google_workspace"),
    (["smtp.google.com"], "google_workspace"),
    (["alt2.aspmx.l.google.com."], "google_workspace"),
    (["mta5.am0.yahoodns.net"], "yahoo"),
    (["mx-eu.mail.am0.yahoodns.net"], "yahoo"),
    (["mail.gm0.yahoodns.net"], "aol"),
    (["mx-aol.mail.gm0.yahoodns.net"], "aol"),
    (["mailin-01.mx.aol.com"], "aol"),
    (["mx01.mail.icloud.com", "mx02.mail.icloud.com"], "icloud"),
    (["mx.zoho.com", "mx2.zoho.com"], "zoho"),
    (["mx.zoho.eu"], "zoho_eu"),
    (["mx.zoho.in"], "zoho_in"),
    (["mx.zoho.com.au"], "zoho_au"),
    (["mx.zoho.jp"], "zoho_jp"),
    (["in1-smtp.messagingengine.com", "in2-smtp.messagingengine.com"], "fastmail"),
    (["mail.protonmail.ch", "mailsec.protonmail.ch"], "proton_bridge"),
    (["mailstore1.secureserver.net", "smtp.secureserver.net"], "godaddy"),
    (["mailstore1.europe.secureserver.net"], "godaddy"),
    (["mx00.gmx.net", "mx01.gmx.net"], "gmx_de"),
    (["mx00.gmx.com"], "gmx"),
    (["mx.yandex.ru"], "yandex"),
    (["mx.yandex.net"], "yandex"),
    (["inbound-smtp.eu-west-1.amazonaws.com"], "amazon_ses"),
    (["mx.sendgrid.net"], "sendgrid"),
    (["mxa.mailgun.org", "mxb.mailgun.org"], "mailgun"),
    (["mxa.eu.mailgun.org"], "mailgun_eu"),
    # the first MX host that matches wins (by preference order)
    (["mx.unknown.example", "aspmx.l.google.com"], "google_workspace"),
]


@pytest.mark.parametrize(("mx", "key"), MX_CASES)
def test_provider_by_mx(kb: Knowledge, mx: list[str], key: str) -> None:
    provider = kb.provider_by_mx(mx)
    assert provider is not None and provider.key == key


def test_provider_by_mx_unknown_and_gateways(kb: Knowledge) -> None:
    assert kb.provider_by_mx(["mx.example.net"]) is None
    assert kb.provider_by_mx([]) is None
    assert kb.provider_by_mx(["notmail.protection.outlook.com.evil.example"]) is None
    assert kb.provider_by_mx(["eu-smtp-inbound-1.mimecast.com"]) is None


HOST_CASES = [
    ("smtp.office365.com", None, "microsoft365", ("smtp.office365.com", 587, "starttls")),
    ("SMTP.Office365.com.", None, "microsoft365", ("smtp.office365.com", 587, "starttls")),
    ("smtp-legacy.office365.com", None, "microsoft365", ("smtp.office365.com", 587, "starttls")),
    ("contoso-com.mail.protection.outlook.com", None, "microsoft365_relay",
     ("contoso-com.mail.protection.outlook.com", 25, "starttls")),
    ("smtp-mail.outlook.com", None, "outlookcom", ("smtp-mail.outlook.com", 587, "starttls")),
    ("smtp.gmail.com", None, "gmail", ("smtp.gmail.com", 465, "ssl")),
    ("smtp-relay.gmail.com", None, "google_relay", ("smtp-relay.gmail.com", 587, "starttls")),
    ("smtp.mail.yahoo.com", None, "yahoo", ("smtp.mail.yahoo.com", 465, "ssl")),
    ("smtp.aol.com", None, "aol", ("smtp.aol.com", 465, "ssl")),
    ("smtp.mail.me.com", None, "icloud", ("smtp.mail.me.com", 587, "starttls")),
    ("smtp.zoho.com", None, "zoho", ("smtp.zoho.com", 465, "ssl")),
    ("smtppro.zoho.eu", None, "zoho_eu", ("smtp.zoho.eu", 465, "ssl")),
    ("smtp.zoho.in", None, "zoho_in", ("smtp.zoho.in", 465, "ssl")),
    ("smtp.zoho.com.au", None, "zoho_au", ("smtp.zoho.com.au", 465, "ssl")),
    ("smtp.zoho.jp", None, "zoho_jp", ("smtp.zoho.jp", 465, "ssl")),
    ("smtp.fastmail.com", None, "fastmail", ("smtp.fastmail.com", 465, "ssl")),
    ("127.0.0.1", 1025, "proton_bridge", ("127.0.0.1", 1025, "starttls")),
    ("smtpout.secureserver.net", None, "godaddy", ("smtpout.secureserver.net", 465, "ssl")),
    ("mail.gmx.com", None, "gmx", ("mail.gmx.com", 587, "starttls")),
    ("mail.gmx.net", None, "gmx_de", ("mail.gmx.net", 587, "starttls")),
    ("smtp.yandex.com", None, "yandex", ("smtp.yandex.com", 465, "ssl")),
    ("email-smtp.us-east-1.amazonaws.com", None, "amazon_ses",
     ("email-smtp.us-east-1.amazonaws.com", 587, "starttls")),
    ("smtp.sendgrid.net", None, "sendgrid", ("smtp.sendgrid.net", 587, "starttls")),
    ("smtp.mailgun.org", None, "mailgun", ("smtp.mailgun.org", 587, "starttls")),
    ("smtp.eu.mailgun.org", None, "mailgun_eu", ("smtp.eu.mailgun.org", 587, "starttls")),
]  # fmt: skip


@pytest.mark.parametrize(("host", "port", "key", "endpoint"), HOST_CASES)
def test_provider_by_host_and_its_recommended_endpoint(
    kb: Knowledge, host: str, port: int | None, key: str, endpoint: tuple
) -> None:
    match = kb.match_host(host, port=port)
    assert match is not None and match.provider.key == key
    assert kb.provider_by_host(host, port=port) is match.provider
    first = match.endpoints()[0]
    assert (first.host, first.port, str(first.security)) == endpoint
    assert match.provider.documents(first.host, first.port, first.security)


def test_provider_by_host_negative_cases(kb: Knowledge) -> None:
    assert kb.provider_by_host("mail.example.com") is None
    assert kb.provider_by_host("smtp.gmail.com.evil.example") is None
    # loopback is Proton Bridge only on Bridge's port (the test servers use loopback too)
    assert kb.provider_by_host("127.0.0.1") is None
    assert kb.provider_by_host("127.0.0.1", port=587) is None


def test_regional_endpoint_needs_the_region(kb: Knowledge) -> None:
    ses = kb.provider("amazon_ses")
    assert ses.recommended() is None
    assert ses.recommended({"region": "ap-south-1"}).host == "email-smtp.ap-south-1.amazonaws.com"
    match = kb.match_mx(["inbound-smtp.us-west-2.amazonaws.com"])
    assert match.region == "us-west-2"
    assert match.endpoints()[0].host == "email-smtp.us-west-2.amazonaws.com"
    assert ses.documents("email-smtp.us-west-2.amazonaws.com", 2465, Security.SSL)
    assert not ses.documents("email-smtp.us-west-2.amazonaws.com", 2465, Security.STARTTLS)


def test_every_provider_is_described_with_sources(kb: Knowledge) -> None:
    for provider in kb.providers:
        assert provider.sources, provider.key
        assert provider.auth.username and provider.auth.password
        assert provider.host_patterns or provider.mx_patterns, provider.key
        for endpoint in provider.submission:
            assert endpoint.sources, (provider.key, endpoint.host)
    gmail = kb.provider("gmail")
    assert gmail.auth.app_password_required and gmail.auth.oauth
    assert kb.provider("sendgrid").auth.username.startswith("the word apikey")
    with pytest.raises(KeyError, match="unknown provider"):
        kb.provider("nope")


# --------------------------------------------------------------------------- reply codes

REPLIES = [
    # facts §2b (Exchange Online)
    ("auth", 535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
     "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
     "auth.failed.basic_disabled", "tenant_disabled"),
    ("auth", 535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
     "the Mailbox. Visit https://aka.ms/smtp_auth_disabled", "auth.failed.basic_disabled",
     "mailbox_disabled"),
    ("auth", 535, "5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
     "auth.failed.credentials", "m365_credentials_incorrect"),
    ("auth", 535, "5.7.139 Authentication unsuccessful, user is locked by your organization's "
     "security defaults policy. Contact your administrator.", "auth.failed.basic_disabled",
     "security_defaults"),
    ("auth", 535, "5.7.139 Authentication unsuccessful, the request did not meet the criteria to "
     "be authenticated successfully. Contact your administrator.",
     "auth.failed.basic_disabled", "conditional_access"),
    ("auth", 535, "5.7.139 Authentication unsuccessful", "auth.failed.basic_disabled", None),
    ("auth", 535, "5.7.3 Authentication unsuccessful", "auth.failed.credentials", "m365_5_7_3"),
    ("mail", 530, "5.7.57 Client not authenticated to send mail. [AM0PR01CA0001.eurprd01]",
     "auth.required", None),
    ("mail", 550, "5.7.57 SMTP; Client was not authenticated to send anonymous mail during MAIL "
     "FROM", "auth.required", None),
    ("mail", 550, "5.7.60 SMTP; Client does not have permissions to send as this sender",
     "smtp.sender.not_permitted", None),
    ("mail", 554, "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException."
     "MapiExceptionSendAsDenied; Failed to process message", "smtp.sender.not_permitted", None),
    ("mail", 554, "5.2.252 SendAsDenied; ann@contoso.com not allowed to send as bob@contoso.com",
     "smtp.sender.not_permitted", None),
    ("mail", 550, "5.1.8 Access denied, bad outbound sender", "smtp.sender.blocked", None),
    ("auth", 550, "5.7.30 Basic authentication is not supported for Client Submission.",
     "auth.failed.basic_retired", None),
    ("greeting", 421, "4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your "
     "client to support TLS 1.2.", "tls.version.rejected", None),
    ("mail", 432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
     "smtp.rate_limited", None),
    ("mail", 550, "5.7.705 Access denied, tenant has exceeded threshold", "smtp.tenant.blocked",
     None),
    ("mail", 550, "5.7.708 Service unavailable. Access denied, traffic not accepted from this IP",
     "smtp.tenant.blocked", None),
    ("rcpt", 550, "5.7.64 TenantAttribution; Relay Access Denied",
     "smtp.relay.tenant_attribution", None),
    ("rcpt", 550, "5.7.1 Unable to relay", "smtp.relay.denied", None),
    ("mail", 550, "5.7.1 Client does not have permissions to send as this sender",
     "smtp.sender.not_permitted", None),
    # facts §3b (generic and Gmail)
    ("greeting", 421, "Service not available, closing transmission channel",
     "smtp.banner.rejected", None),
    ("auth", 454, "4.7.0 Too many login attempts, please try again later.",
     "auth.failed.temporary", None),
    ("starttls", 454, "4.7.0 TLS not available due to local problem", "tls.starttls.rejected",
     None),
    ("mail", 503, "5.5.1 Bad sequence of commands", "smtp.command.out_of_sequence", None),
    ("mail", 503, "5.5.2 Send hello first", "smtp.command.out_of_sequence", None),
    ("auth", 530, "5.7.0 Must issue a STARTTLS command first.", "tls.starttls.required", None),
    ("mail", 530, "5.7.0 Authentication Required. Learn more at", "auth.required", None),
    ("mail", 530, "5.5.1 Authentication Required.", "auth.required", None),
    ("auth", 535, "5.7.8 Username and Password not accepted. Learn more at\n5.7.8 "
     "https://support.google.com/mail/?p=BadCredentials", "auth.failed.credentials",
     "gmail_bad_credentials"),
    ("auth", 535, "5.7.8 Error: authentication failed: authentication failure",
     "auth.failed.credentials", None),
    ("auth", 534, "5.7.9 Application-specific password required. Learn more at",
     "auth.failed.app_password_required", None),
    ("auth", 534, "5.7.14 <https://accounts.google.com/signin/continue?sarp=1> Please log in via "
     "your web browser and then try again.", "auth.failed.web_login_required", None),
    ("auth", 534, "5.7.10 Please log in via your web browser and then try again.",
     "auth.failed.web_login_required", None),
    ("rcpt", 554, "5.7.1 <bob@other.example>: Relay access denied", "smtp.relay.denied", None),
    ("rcpt", 550, "5.7.1 Message rejected by policy", "smtp.relay.denied", None),
    ("mail", 550, "5.7.515 Access denied, sending domain example.com does not meet the required "
     "authentication level.", "smtp.sender.domain_unauthenticated", None),
    ("auth", 535, "Authentication Credentials Invalid", "auth.failed.credentials", None),
    ("auth", 538, "5.7.11 Encryption required for requested authentication mechanism",
     "tls.starttls.required", None),
]  # fmt: skip


@pytest.mark.parametrize(("stage", "code", "message", "finding_id", "variant"), REPLIES)
def test_classify_reply(
    kb: Knowledge, stage: str, code: int, message: str, finding_id: str, variant: str | None
) -> None:
    meaning = kb.classify_reply(code, message, stage=stage)
    assert meaning is not None
    assert (meaning.finding_id, meaning.variant) == (finding_id, variant)
    assert meaning.meaning and meaning.sources
    assert meaning.transient is (code < 500)
    assert meaning.finding_id in kb.finding_ids


def test_classify_reply_success_is_none(kb: Knowledge) -> None:
    assert kb.classify_reply(235, "2.7.0 Authentication successful", stage="auth") is None
    assert kb.classify_reply(334, "VXNlcm5hbWU6", stage="auth") is None


def test_unknown_replies_are_decoded_from_their_structure(kb: Knowledge) -> None:
    meaning = kb.classify_reply(550, "5.7.13 Account disabled for you", stage="auth")
    assert meaning.rule is None
    assert meaning.finding_id == "auth.failed"
    assert "permanent failure" in meaning.meaning
    assert "security or policy" in meaning.meaning
    assert "account is disabled" in meaning.meaning
    assert "S48" in meaning.sources
    transient = kb.classify_reply(
        451, "4.3.0 Mail server temporarily rejected message", stage="mail"
    )
    assert transient.transient and transient.finding_id == "smtp.sender.rejected"
    assert "temporary failure" in transient.meaning
    rcpt = kb.classify_reply(550, "5.1.1 <x@example.com>: Recipient address rejected", stage="rcpt")
    assert rcpt.finding_id == "smtp.relay.refused"
    assert "mailbox does not exist" in rcpt.meaning
    plain = kb.classify_reply(554, "go away", stage="greeting")
    assert plain.finding_id == "smtp.banner.rejected" and "554" in plain.meaning


def test_stage_and_provider_narrow_the_match(kb: Knowledge) -> None:
    # 5.7.1 at RCPT is a relay refusal; at MAIL it is a sender problem
    assert kb.classify_reply(550, "5.7.1 Rejected", stage="rcpt").finding_id == "smtp.relay.denied"
    assert kb.classify_reply(550, "5.7.1 Rejected", stage="mail").finding_id == (
        "smtp.sender.rejected"
    )
    # a 454 at STARTTLS is not a login problem
    assert kb.classify_reply(454, "4.7.0 Try later", stage="starttls").finding_id == (
        "tls.starttls.rejected"
    )
    gmail = kb.classify_reply(
        535, "5.7.8 Username and Password not accepted", stage="auth", provider_key="gmail"
    )
    assert gmail.variant == "gmail_bad_credentials"


# --------------------------------------------------------------------------- policies


def test_m365_policy_is_worded_against_today(kb: Knowledge) -> None:
    before = kb.policy_findings("microsoft365", today=dt.date(2026, 11, 26), uses_password=True)
    after = kb.policy_findings("microsoft365", today=dt.date(2027, 1, 15), uses_password=True)
    assert [f.id for f in before] == ["provider.policy.m365_basic_auth_retirement"]
    assert [f.id for f in after] == ["provider.policy.m365_basic_auth_retirement"]
    assert "switches off" in before[0].title and "31 December 2026" in before[0].title
    assert before[0].evidence["in_effect"] is False
    # Microsoft rolls the change out in stages: "began", not "has switched off since".
    assert "began switching off" in after[0].title and "31 December 2026" in after[0].title
    on = kb.policy_findings("microsoft365", today=dt.date(2026, 12, 31), uses_password=True)
    assert "today" in on[0].title
    assert after[0].evidence["in_effect"] is True
    assert before[0].fix is None and after[0].severity is Severity.WARN
    assert "S2" in before[0].evidence["sources"]
    # OAuth users are not affected
    assert kb.policy_findings("microsoft365", today=dt.date(2027, 1, 1), uses_password=False) == []


def test_policy_boundary_is_the_effective_date(kb: Knowledge) -> None:
    [on_day] = kb.policy_findings("microsoft365", today=dt.date(2026, 12, 31), uses_password=True)
    [day_before] = kb.policy_findings(
        "microsoft365", today=dt.date(2026, 12, 30), uses_password=True
    )
    assert on_day.evidence["in_effect"] and not day_before.evidence["in_effect"]


def test_app_password_and_outlookcom_policies(kb: Knowledge) -> None:
    today = dt.date(2026, 11, 26)
    [gmail] = kb.policy_findings("gmail", today=today, uses_password=True)
    assert gmail.id == "provider.policy.app_password_required"
    assert "since 30 May 2022" in gmail.title
    [workspace] = kb.policy_findings("google_workspace", today=today, uses_password=True)
    assert "30 September 2024" in workspace.title
    old = kb.policy_findings("google_workspace", today=dt.date(2024, 6, 1), uses_password=True)
    assert "stops accepting" in old[0].title
    [ocom] = kb.policy_findings("outlookcom", today=today, uses_password=True)
    assert ocom.id == "provider.policy.outlookcom_basic_auth_removed"
    assert "16 September 2024" in ocom.title
    [icloud] = kb.policy_findings("icloud", today=today, uses_password=True)
    assert icloud.title == "iCloud Mail needs an app password for Outlook"
    assert kb.policy_findings("sendgrid", today=today, uses_password=True) == []
    assert kb.policy_findings(None, today=today, uses_password=True) == []


# --------------------------------------------------------------------------- schema errors


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(data_dir(), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_broken_data_fails_with_a_precise_message(broken: Path) -> None:
    edit(broken / "providers.yaml", "    kind: mailbox\n", "    kind: mailbox\n    colour: red\n")
    with pytest.raises(KnowledgeError, match=r"providers\.yaml: providers\.0\.colour: Extra"):
        load_knowledge_from(broken)


def test_missing_client_coverage_is_an_error(broken: Path) -> None:
    edit(
        broken / "fixes_auth.yaml",
        "      android: *authreq_mobile\n\n  - finding: smtp.relay",
        "\n  - finding: smtp.relay",
    )
    with pytest.raises(KnowledgeError, match=r"no fix for client\(s\) \['android'\]"):
        load_knowledge_from(broken)


def test_missing_fix_entry_and_unknown_variable_are_errors(broken: Path) -> None:
    edit(
        broken / "findings.yaml",
        "  - {id: probe.error,",
        "  - {id: probe.new_thing, severity: info, category: probe, title: x}\n"
        "  - {id: probe.error,",
    )
    edit(broken / "fixes_tls.yaml", "{test}", "{tset}")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge_from(broken)
    message = str(info.value)
    assert "no entry for finding 'probe.new_thing'" in message
    assert "unknown variable(s) ['tset']" in message


def test_unfillable_last_alternative_is_an_error(broken: Path) -> None:
    edit(
        broken / "fixes_connection.yaml",
        '"Run the check again in a few minutes."',
        '"Run the check on {host} again."',
    )
    with pytest.raises(KnowledgeError, match=r"dns\.timeout.*needs \['host'\]"):
        load_knowledge_from(broken)


def test_duplicate_keys_and_bad_regex_are_errors(broken: Path, tmp_path: Path) -> None:
    edit(
        broken / "replies.yaml",
        "    pattern: disabled for the tenant\n",
        "    pattern: disabled for the (tenant\n",
    )
    with pytest.raises(KnowledgeError, match=r"replies\.yaml: rules\.0\.pattern.*bad regex"):
        load_knowledge_from(broken)
    shutil.copy(data_dir() / "replies.yaml", broken / "replies.yaml")
    edit(
        broken / "policies.yaml",
        "    effective_text: 16 September 2024\n",
        "    effective_text: 16 September 2024\n    effective_text: again\n",
    )
    with pytest.raises(
        KnowledgeError, match=r"policies\.yaml: not valid YAML.*duplicate key 'effective_text'"
    ):
        load_knowledge_from(broken)


def test_dangling_references_are_errors(broken: Path) -> None:
    edit(
        broken / "replies.yaml",
        "    finding_id: auth.failed.basic_retired\n",
        "    finding_id: auth.failed.gone\n",
    )
    edit(broken / "policies.yaml", "    providers: [outlookcom]\n", "    providers: [hotmail]\n")
    with pytest.raises(KnowledgeError) as info:
        load_knowledge_from(broken)
    assert "rule basic_retired: finding 'auth.failed.gone' is not in findings.yaml" in str(
        info.value
    )
    assert "unknown provider 'hotmail'" in str(info.value)


# --------------------------------------------------------------------------- engine helpers


def test_refine_turns_a_generic_reply_finding_into_the_precise_one(kb: Knowledge) -> None:
    generic = Finding(
        id="auth.failed",
        severity=Severity.ERROR,
        title="The server rejected the login",
        evidence={
            "reply": "535 5.7.139 Authentication unsuccessful, user is locked by your "
            "organization's security defaults policy. Contact your administrator.",
            "stage": "auth",
            "port": 587,
        },
    )
    precise = kb.refine(generic, provider_key="microsoft365")
    assert precise.id == "auth.failed.basic_disabled"
    assert precise.title == kb.finding("auth.failed.basic_disabled").title
    assert precise.evidence["variant"] == "security_defaults"
    assert precise.evidence["port"] == 587 and precise.evidence["enhanced"] == "5.7.139"
    assert "security defaults" in precise.detail
    # A reply to AUTH leaves with its codes only (issue 12: its words can carry the password).
    assert "The server answered 535 5.7.139." in precise.detail
    assert "administrator" not in precise.detail and precise.evidence["reply"] == "535 5.7.139"
    fixed = kb.with_fix(precise, OutlookClient.CLASSIC, FixContext())
    assert fixed.fix is not None and "Security defaults" in fixed.fix.summary
    relay = Finding(
        id="smtp.relay.refused",
        severity=Severity.ERROR,
        title="x",
        evidence={"reply": "554 5.7.1 <b@other.example>: Relay access denied", "stage": "rcpt"},
    )
    assert kb.refine(relay).id == "smtp.relay.denied"
    # nothing to classify: unchanged
    plain = Finding(id="auth.failed", severity=Severity.ERROR, title="x", evidence={"error": "x"})
    assert kb.refine(plain) is plain
    success = plain.model_copy(update={"evidence": {"reply": "235 2.7.0 OK", "stage": "auth"}})
    unchanged = kb.refine(success)  # nothing to classify; the AUTH reply's words still go
    assert unchanged.id == success.id and unchanged.evidence["reply"] == "235 2.7.0"


def test_with_fix_uses_the_finding_evidence(kb: Knowledge) -> None:
    finding = Finding(
        id="tls.cert.hostname_mismatch",
        severity=Severity.ERROR,
        title="x",
        evidence={"host": "mail.example.com", "certificate": {"names": ["srv1.host.example"]}},
    )
    fixed = kb.with_fix(finding, OutlookClient.MAC, FixContext(host="mail.example.com"))
    assert fixed.fix is not None and fixed.fix.client is OutlookClient.MAC
    assert "srv1.host.example" in fixed.fix.summary
    assert fixed.id == finding.id and fixed.evidence == finding.evidence


def test_provider_detected_shows_the_documented_endpoint(kb: Knowledge) -> None:
    ctx = FixContext(
        provider=kb.provider("microsoft365"),
        recommended=Endpoint(host="smtp.office365.com", port=25, security=Security.STARTTLS),
    )
    fix = kb.fix_for("provider.detected", OutlookClient.NEW, ctx)
    assert fix.summary == "Microsoft 365: outgoing server smtp.office365.com, port 587, STARTTLS"
    differ = kb.fix_for("settings.differ_from_provider", OutlookClient.NEW, ctx)
    assert differ.values == {
        "SMTP outgoing server": "smtp.office365.com",
        "Port": "587",
        "Secure connection type": "STARTTLS",
    }


def test_outlookcom_in_classic_outlook_is_told_to_use_automatic_setup(kb: Knowledge) -> None:
    ctx = FixContext(host="smtp-mail.outlook.com", port=465, provider=kb.provider("outlookcom"))
    fix = kb.fix_for("tcp.refused", OutlookClient.CLASSIC, ctx)
    assert "classic Outlook uses no outgoing-server (SMTP) settings" in fix.steps[0]
    assert "smtp-mail.outlook.com" in fix.values.values()
    assert "S45" in fix.sources
    # Outlook for Mac, new Outlook and the phone apps add Outlook.com natively (issue 14):
    # no SMTP settings to change, and never "re-add it as IMAP with a password".
    for client in (OutlookClient.MAC, OutlookClient.NEW, OutlookClient.IOS, OutlookClient.ANDROID):
        other = kb.fix_for("tcp.refused", client, ctx)
        assert other.summary.startswith("Add the Outlook.com account with the Microsoft sign-in")
        assert "do not choose IMAP or POP" in " ".join(other.steps)
        assert "16 September 2024" in " ".join(other.steps)
