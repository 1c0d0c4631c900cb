"""The error-text parser on real texts users paste: Outlook dialogs and provider replies.

Each sample notes where its wording comes from: a source ID of
../shared/knowledge/outlook-smtp-facts.md, or "outlook-ui" for Outlook's own long-standing
dialog wording (the send/receive error and Internet Security Warning dialogs).
"""

from __future__ import annotations

import pytest

from diagnostics.knowledge import Knowledge, load_knowledge

TASK = "Task 'mail.example.com - Sending' reported error ({code}) : '{text}'"

# (source, pasted text, codes that must be recognised, findings the matches must point to)
SAMPLES: list[tuple[str, str, set[str], set[str]]] = [
    # ------------------------------------------------------------ Outlook send/receive errors
    ("S33", TASK.format(code="0x800CCC0F", text="The connection to the server was interrupted. "
     "If this problem continues, contact your server administrator or Internet service provider "
     "(ISP)."), {"0x800CCC0F", "connection-interrupted"},
     {"tls.mode.starttls_on_ssl_port", "smtp.connection.dropped"}),
    ("S34", TASK.format(code="0x80042109", text="Outlook cannot connect to your outgoing (SMTP) "
     "e-mail server. If you continue to receive this message, contact your server administrator "
     "or Internet service provider (ISP)."), {"0x80042109", "cannot-connect-smtp"},
     {"tcp.timeout", "settings.port25_blocked_likely"}),
    ("S35", TASK.format(code="0x8004210B", text="The operation timed out waiting for a response "
     "from the sending (SMTP) server. If you continue to receive this message, contact your "
     "server administrator or Internet service provider (ISP)."),
     {"0x8004210B", "operation-timed-out"}, {"tls.mode.starttls_on_ssl_port", "tcp.timeout"}),
    ("S32", "Sending reported error (0x800CCC0E): 'Cannot connect to server.'",
     {"0x800CCC0E", "cannot-connect-smtp"}, {"tcp.refused", "tcp.timeout"}),
    ("S71", "error 800ccc0e", {"0x800CCC0E"}, {"tcp.refused"}),
    ("S31", "The host 'smtp.exmaple.com' could not be found. Please verify that you have entered "
     "the server name correctly. Account: 'ann@example.com', Server: 'smtp.exmaple.com', "
     "Protocol: SMTP, Port: 587, Secure(SSL): No, Socket Error: 11001, Error Number: 0x800CCC0D",
     {"0x800CCC0D", "host-not-found"}, {"dns.host.nxdomain"}),
    ("S32", TASK.format(code="0x800CCC13", text="Cannot connect to the network. Verify your "
     "network connection or modem."), {"0x800CCC13"}, {"input.local_network"}),
    ("S31", TASK.format(code="0x800CCC18", text="Your e-mail server rejected your login."),
     {"0x800CCC18", "login-rejected"}, {"auth.failed.credentials"}),
    ("S31", TASK.format(code="0x800CCC19", text="The operation timed out."),
     {"0x800CCC19", "operation-timed-out"}, {"smtp.banner.timeout"}),
    ("S37", TASK.format(code="0x800CCC1A", text="Your server does not support the connection "
     "encryption type you have specified. Try changing the encryption method. Contact your mail "
     "server administrator or Internet service provider (ISP) for additional assistance."),
     {"0x800CCC1A", "encryption-type-not-supported"},
     {"tls.mode.ssl_on_starttls_port", "tls.version.legacy"}),
    ("S37", "Your server does not support the connection encryption type you have specified. "
     "Try changing the encryption method.", {"encryption-type-not-supported"},
     {"tls.mode.ssl_on_starttls_port", "tls.mode.starttls_on_ssl_port"}),
    ("S37", "Your server has unexpectedly terminated the connection. Possible causes for this "
     "include server problems, network problems, or a long period of inactivity.",
     {"connection-terminated"}, {"smtp.connection.dropped"}),
    ("S36", "Send test e-mail message: Cannot send the message. Verify the e-mail address in "
     "your account properties. The server responded: 530 5.7.57 SMTP; Client was not "
     "authenticated to send anonymous mail during MAIL FROM",
     {"530 5.7.57", "verify-email-address"}, {"auth.required"}),
    ("S36", TASK.format(code="0x800CCC78", text="Unable to send the message. Please verify the "
     "e-mail address in your account properties. The server responded: 530 5.7.0 Must issue a "
     "STARTTLS command first."), {"0x800CCC78", "530 5.7.0"},
     {"tls.starttls.required", "auth.required"}),
    ("S31", "The message could not be sent because one of the recipients was rejected by the "
     "server. The rejected e-mail address was 'bob@other.example'. Subject 'Test', Account: "
     "'mail.example.com', Server: 'mail.example.com', Protocol: SMTP, Server Response: '550 "
     "5.7.1 Unable to relay', Port: 25, Secure(SSL): No, Server Error: 550, Error Number: "
     "0x800CCC79", {"0x800CCC79", "550 5.7.1", "recipient-rejected"}, {"smtp.relay.denied"}),
    ("S31", "One of the recipients was rejected by the server. Server Response: '553 sorry, that "
     "domain isn't in my list of allowed rcpthosts (#5.7.1)', Port: 25, Secure(SSL): No, Server "
     "Error: 553, Error Number: 0x800CCC79", {"0x800CCC79", "553"}, {"smtp.relay.denied"}),
    ("S31", TASK.format(code="0x800CCC7D", text="Your outgoing (SMTP) server does not support "
     "SSL-secured connections. If SSL-secured connections have worked in the past, contact your "
     "server administrator or Internet service provider (ISP)."),
     {"0x800CCC7D", "no-ssl-secured-connections"},
     {"tls.starttls.not_offered", "tls.mode.starttls_on_ssl_port"}),
    ("S31", "Sending reported error (0x800ccc7f)", {"0x800CCC7F"}, {"tls.handshake.failed"}),
    ("S31", "Error 0x800CCC7C while sending", {"0x800CCC7C"}, {"tls.starttls.required"}),
    ("S38", TASK.format(code="0x800CCC80", text="None of the authentication methods supported "
     "by this client are supported by your server."), {"0x800CCC80", "no-common-auth-method"},
     {"auth.not_offered", "auth.oauth_only"}),
    ("S31", TASK.format(code="0x800CCC67", text="Your outgoing (SMTP) e-mail server has reported "
     "an internal error. If you continue to receive this message, contact your server "
     "administrator or Internet service provider (ISP). The server responded: 421 4.7.66 TLS "
     "1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2. "
     "Visit https://aka.ms/smtp_auth_tls."), {"0x800CCC67", "421 4.7.66"},
     {"tls.version.rejected"}),
    ("S31", TASK.format(code="0x800CCC69", text="Your outgoing (SMTP) e-mail server has reported "
     "an internal error. The server responded: 550 5.7.60 SMTP; Client does not have "
     "permissions to send as this sender"), {"0x800CCC69", "550 5.7.60"},
     {"smtp.sender.not_permitted"}),
    ("S31", "Receiving reported error (0x800CCC92) : 'Your e-mail server rejected your login. "
     "Verify your user name and password for this account in Account Settings. The server "
     "responded: -ERR authorization failed'", {"0x800CCC92", "login-rejected"},
     {"auth.failed.credentials"}),
    ("S72", TASK.format(code="0x80042108", text="Outlook is unable to connect to your incoming "
     "(POP3) e-mail server. If you continue to receive this message, contact your server "
     "administrator or ISP."), {"0x80042108"}, {"tcp.timeout"}),
    # ------------------------------------------------------------ certificate dialogs
    ("outlook-ui", "The server you are connected to is using a security certificate that could "
     "not be verified. A certificate chain processed, but terminated in a root certificate which "
     "is not trusted by the trust provider. Do you want to continue using this server?",
     {"certificate-untrusted-root"}, {"tls.cert.untrusted", "tls.cert.self_signed"}),
    ("outlook-ui", "The server you are connected to is using a security certificate that cannot "
     "be verified. The target principal name is incorrect.",
     {"target-principal-name-incorrect"},
     {"tls.cert.hostname_mismatch"}),
    ("outlook-ui", "Internet Security Warning: The name on the security certificate is invalid or "
     "does not match the name of the target site mail.example.com.",
     {"target-principal-name-incorrect"}, {"tls.cert.hostname_mismatch"}),
    ("outlook-ui", "The security certificate has expired or is not yet valid.",
     {"certificate-expired"}, {"tls.cert.expired", "tls.cert.not_yet_valid"}),
    # ------------------------------------------------------------ Microsoft 365 replies
    ("S52a", "The server responded: 535 5.7.139 Authentication unsuccessful, "
     "SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled "
     "for more information. [DB8PR09CA0031.eurprd09.prod.outlook.com]", {"535 5.7.139"},
     {"auth.failed.basic_disabled"}),
    ("S53", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.", {"535 5.7.139"},
     {"auth.failed.basic_disabled"}),
    ("S52d", "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. "
     "[AM6P192CA0071.EURP192.PROD.OUTLOOK.COM]", {"535 5.7.139"}, {"auth.failed.credentials"}),
    ("S53", "535 5.7.139 Authentication unsuccessful, user is locked by your organization's "
     "security defaults policy. Contact your administrator.", {"535 5.7.139"},
     {"auth.failed.basic_disabled"}),
    ("S53", "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be "
     "authenticated successfully. Contact your administrator.", {"535 5.7.139"},
     {"auth.failed.basic_disabled"}),
    ("S52e", "535 5.7.3 Authentication unsuccessful [BN6PR11CA0034.namprd11.prod.outlook.com]",
     {"535 5.7.3"}, {"auth.failed.credentials"}),
    ("S52c", "530 5.7.57 Client not authenticated to send mail. [SN4PR0201CA0048]",
     {"530 5.7.57"}, {"auth.required"}),
    ("S52h", "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException."
     "MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with "
     "message Cannot submit message.", {"554 5.2.0"}, {"smtp.sender.not_permitted"}),
    ("S52i", "554 5.2.252 SendAsDenied; ann@contoso.com not allowed to send as bob@contoso.com; "
     "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
     {"554 5.2.252"}, {"smtp.sender.not_permitted"}),
    ("S6", "550 5.1.8 Access denied, bad outbound sender", {"550 5.1.8"},
     {"smtp.sender.blocked"}),
    ("S1", "550 5.7.30 Basic authentication is not supported for Client Submission.",
     {"550 5.7.30"}, {"auth.failed.basic_retired"}),
    ("S54", "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", {"432 4.3.2"},
     {"smtp.rate_limited"}),
    ("S9", "550 5.7.705 Access denied, tenant has exceeded threshold", {"550 5.7.705"},
     {"smtp.tenant.blocked"}),
    ("S55", "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. "
     "For more information please go to http://go.microsoft.com/fwlink/?LinkId=526653 AS(1000)",
     {"550 5.7.708"}, {"smtp.tenant.blocked"}),
    ("S10", "550 5.7.64 TenantAttribution; Relay Access Denied", {"550 5.7.64"},
     {"smtp.relay.tenant_attribution"}),
    ("S11", "550 5.7.515 Access denied, sending domain example.com does not meet the required "
     "authentication level.", {"550 5.7.515"}, {"smtp.sender.domain_unauthenticated"}),
    ("S68", "503 5.5.2 Send hello first [MW4PR03CA0123.namprd03.prod.outlook.com]",
     {"503 5.5.2"}, {"smtp.command.out_of_sequence"}),
    # ------------------------------------------------------------ Gmail / Google replies
    ("S18", "535-5.7.8 Username and Password not accepted. Learn more at\n535 5.7.8  "
     "https://support.google.com/mail/?p=BadCredentials d9-20020a05600c34c900b003fe1c332810sm1",
     {"535 5.7.8"}, {"auth.failed.credentials"}),
    ("S18", "534-5.7.9 Application-specific password required. Learn more at\n534 5.7.9  "
     "https://support.google.com/mail/?p=InvalidSecondFactor l8-20020a05600c1d0800b0040",
     {"534 5.7.9"}, {"auth.failed.app_password_required"}),
    ("S70", "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbs>\n"
     "534-5.7.14 Please log in via your web browser and\n534-5.7.14 then try again.\n534 5.7.14 "
     "Learn more at https://support.google.com/mail/answer/78754", {"534 5.7.14"},
     {"auth.failed.web_login_required"}),
    ("S17", "530-5.7.0 Authentication Required. Learn more at\n530 5.7.0  "
     "https://support.google.com/mail/?p=WantAuthError", {"530 5.7.0"}, {"auth.required"}),
    ("S17", "530 5.7.0 Must issue a STARTTLS command first. x5sm1234567wrs.12 - gsmtp",
     {"530 5.7.0"}, {"tls.starttls.required"}),
    ("S17", "454 4.7.0 Too many login attempts, please try again later. - gsmtp",
     {"454 4.7.0"}, {"auth.failed.temporary"}),
    # ------------------------------------------------------------ other providers
    ("S22", "554 Message rejected: Email address is not verified. The following identities "
     "failed the check in region US-EAST-1: ann@example.com", {"554"},
     {"smtp.sender.not_permitted"}),
    ("S22", "535 Authentication Credentials Invalid", {"535"}, {"auth.failed.credentials"}),
    ("S23", "535 Authentication failed: Bad username / password", {"535"},
     {"auth.failed.credentials"}),
    ("S29", "553 Sender is not allowed to relay emails", {"553"},
     {"smtp.sender.not_permitted"}),
    ("S52j", "550 5.7.1 Client does not have permissions to send as this sender",
     {"550 5.7.1"}, {"smtp.sender.not_permitted"}),
    ("S48", "554 5.7.1 <bob@other.example>: Relay access denied", {"554 5.7.1"},
     {"smtp.relay.denied"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge()


def test_there_are_at_least_forty_real_samples() -> None:
    assert len(SAMPLES) >= 40
    assert len({text for _, text, _, _ in SAMPLES}) == len(SAMPLES)


@pytest.mark.parametrize(("source", "text", "codes", "findings"), SAMPLES)
def test_error_text_sample(
    kb: Knowledge, source: str, text: str, codes: set[str], findings: set[str]
) -> None:
    matches = kb.parse_error_text(text)
    got_codes = {m.code for m in matches}
    assert codes <= got_codes, f"[{source}] expected {codes}, got {got_codes}"
    got_findings = {f for m in matches for f in m.finding_ids}
    assert findings <= got_findings, f"[{source}] expected {findings}, got {got_findings}"
    for match in matches:
        assert match.cause and match.matched
        assert set(match.finding_ids) <= set(kb.finding_ids)
        if any(kb.finding(f).probes for f in match.finding_ids):
            assert match.probes_to_confirm, match.code  # how the engine confirms the cause


def test_smtp_reply_matches_carry_the_classification(kb: Knowledge) -> None:
    text = (
        "Send test e-mail message: Your outgoing (SMTP) e-mail server has reported an internal "
        "error. The server responded: 535 5.7.139 Authentication unsuccessful, user is locked by "
        "your organization's security defaults policy. Contact your administrator."
    )
    [reply] = [m for m in kb.parse_error_text(text) if m.kind == "smtp_reply"]
    assert reply.code == "535 5.7.139"
    assert reply.reply is not None and reply.reply.variant == "security_defaults"
    assert reply.probes_to_confirm == ("auth",)
    assert "security defaults" in reply.cause
    assert reply.matched.startswith("535 5.7.139 Authentication unsuccessful")
    assert reply.matched.endswith("Contact your administrator.")


def test_multiline_google_reply_is_one_match(kb: Knowledge) -> None:
    text = "535-5.7.8 Username and Password not accepted. Learn more at\n535 5.7.8 https://x"
    replies = [m for m in kb.parse_error_text(text) if m.kind == "smtp_reply"]
    assert len(replies) == 1
    assert replies[0].reply.variant == "gmail_bad_credentials"


def test_outlook_codes_in_any_spelling(kb: Knowledge) -> None:
    for spelling in ("0x800CCC0E", "0x800ccc0e", "800CCC0E", "(0X800CCC0E)", "error:800ccc0e."):
        codes = [m.code for m in kb.parse_error_text(spelling)]
        assert codes == ["0x800CCC0E"], spelling
    # part of a longer hex number is not a code
    assert kb.parse_error_text("0x800CCC0E1234") == []
    unknown = kb.parse_error_text("Sending reported error (0x800CCCFF)")
    assert [m.code for m in unknown] == ["0x800CCCFF"] and unknown[0].finding_ids == ()


def test_receive_side_codes_are_flagged(kb: Knowledge) -> None:
    [match] = [m for m in kb.parse_error_text("0x800CCC92") if m.kind == "outlook_code"]
    assert match.receive_side
    [send] = kb.parse_error_text("0x80042109")
    assert not send.receive_side


def test_port_numbers_and_plain_text_are_not_replies(kb: Knowledge) -> None:
    for text in (
        "Outgoing server (SMTP): 465\n465 SSL/TLS",
        "587 STARTTLS does not work either",
        "I changed the port to 587 and the server to smtp.example.com",
        "Everything was fine until yesterday",
        "",
    ):
        assert [m for m in kb.parse_error_text(text) if m.kind == "smtp_reply"] == [], text


def test_probes_come_from_the_catalog(kb: Knowledge) -> None:
    [timeout] = [m for m in kb.parse_error_text("0x8004210B") if m.kind == "outlook_code"]
    assert {"entered", "465/ssl"} <= set(timeout.probes_to_confirm)
    [relay] = [
        m for m in kb.parse_error_text("550 5.7.1 Unable to relay") if m.kind == "smtp_reply"
    ]
    assert set(relay.probes_to_confirm) == {"relay", "auth"}


def test_huge_paste_is_bounded(kb: Knowledge) -> None:
    text = "x" * 50_000 + " 0x800CCC0E"
    assert kb.parse_error_text(text) == []  # only the first 20,000 characters are read
    assert [m.code for m in kb.parse_error_text("0x800CCC0E " + "y" * 50_000)] == ["0x800CCC0E"]
