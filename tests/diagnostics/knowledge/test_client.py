"""Fixes for the client check's findings: what each Outlook is told, from real comparisons.

The findings come from `compare()` on the pasted-output samples (tests/samples/client_check)
and hand-built reports, the fixes from the knowledge base, filled the way the Slack app
fills them (diagnostics/client_check/_fixes.py) and, for the unit cases, with the
finding's evidence only.
"""

from __future__ import annotations

import pytest

from diagnostics._models import (
    Endpoint,
    Finding,
    OutlookClient,
    Report,
    Security,
    Severity,
)
from diagnostics.client_check import (
    FINDING_IDS,
    ComparisonResult,
    attach_fixes,
    compare,
    parse_client_output,
    server_ok_but_user_fails,
)
from diagnostics.knowledge import FixContext, Knowledge, data_dir, load_knowledge_from
from tests.factories import probe, report, starttls_report, unconfirmed_cause
from tests.paths import CLIENT_CHECK_SAMPLES as SAMPLES

LE_R11 = {
    "issuer": "CN=R11,O=Let's Encrypt,C=US",
    "subject": "CN=mail.contoso-mail.de",
    "sha256": "AB" * 32,
}


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge_from(data_dir())


def compared(rep: Report, text: str) -> ComparisonResult:
    return attach_fixes(compare(rep, parse_client_output(text)), rep)


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def one(result: ComparisonResult, finding_id: str) -> Finding:
    [finding] = [f for f in result.findings if f.id == finding_id]
    assert finding.fix is not None, finding_id
    return finding


def text_of(finding: Finding) -> str:
    assert finding.fix is not None
    return " ".join((finding.fix.summary, *finding.fix.steps))


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("client", list(OutlookClient))
def test_every_sample_gets_a_clean_fix_for_every_outlook(client: OutlookClient) -> None:
    rep = report(
        probes=(
            probe(587, cert=LE_R11, starttls_offered=True, greeting="220 mail.contoso-mail.de"),
            probe(465, cert=LE_R11),
            probe(25, "connect_timeout"),
        ),
        client=client,
    )
    seen: set[str] = set()
    for path in sorted(SAMPLES.rglob("*.txt")):
        result = compared(rep, path.read_text(encoding="utf-8"))
        for finding in result.findings:
            seen.add(finding.id)
            assert finding.fix is not None, f"{path.name}: {finding.id}"
            assert finding.fix.client is client
            for text in (finding.fix.summary, *finding.fix.steps):
                assert "{" not in text and "}" not in text, text
    # the samples reach every finding of the comparison itself
    assert seen >= set(FINDING_IDS) - {"client.server_ok_from_here"}


# --------------------------------------------------------------------------- blocked ports


def test_blocked_port_moves_to_the_port_that_works_from_both_sides() -> None:
    rep = report(
        "smtp.exemple-hebergeur.fr", 587, probes=(probe(587, cert=LE_R11), probe(465, cert=LE_R11))
    )
    finding = one(compared(rep, sample("windows/w03_script_blocked_fr.txt")), "client.port_blocked")
    fix = finding.fix
    assert fix.summary.startswith("Use port 465 with SSL/TLS")
    assert "port 587 is blocked between your computer and the server" in fix.summary
    assert "Set the port box *Outgoing server (SMTP)* to 465" in text_of(finding)
    assert fix.values["Outgoing server (SMTP)"] == "465"
    assert "allow outgoing connections to port 587" in fix.steps[-1]
    assert {"S6", "S71"} <= set(fix.sources)


def test_no_port_works_from_both_sides_never_recommends_the_blocked_one() -> None:
    # The report-wide pick is 587, the very port the user's network blocks.
    rep = report(
        probes=(probe(587), probe(465)),
        recommended=Endpoint(host="mail.contoso-mail.de", port=587, security=Security.STARTTLS),
    )
    result = compared(rep, "PORT 587 TCP FAIL timeout\nPORT 465 TCP FAIL timeout\n")
    assert result.recommended is None
    for finding in result.findings:
        text = text_of(finding)
        port = finding.evidence["port"]
        assert f"Use port {port}" not in text and "Set the port box" not in text
        assert f"Port {port} is blocked" in finding.fix.summary
        assert "another port for mail programs" in text
        assert finding.fix.values == {}


def test_port_25_is_replaced_by_the_submission_port(kb: Knowledge) -> None:
    rep = report("smtp.office365.com", 25, probes=(probe(25, "connect_timeout"), probe(587)))
    finding = one(compared(rep, sample("windows/w05_tnc_fail_de.txt")), "client.port25_blocked")
    assert finding.fix.summary.startswith("Use port 587 with STARTTLS")
    assert "not port 25" in finding.fix.summary
    assert "*My outgoing server (SMTP) requires authentication* is ticked" in text_of(finding)
    # info when 25 was not the port entered: the fix still says to keep port 25 out of Outlook
    rep = report("smtp.gmail.com", 587, probes=(probe(587),))
    info = one(compared(rep, sample("windows/w08_tnc_quiet.txt")), "client.port25_blocked")
    assert info.severity is Severity.INFO
    assert "not port 25" in info.fix.summary


def port_blocked_on_windows(client: OutlookClient) -> Finding:
    """The server answers on 587 and 465; the user's Windows computer reaches neither."""
    rep = report(
        "smtp.exemple-hebergeur.fr",
        587,
        client=client,
        probes=(probe(587, cert=LE_R11), probe(465, cert=LE_R11)),
    )
    return one(compared(rep, sample("windows/w03_script_blocked_fr.txt")), "client.port_blocked")


def test_new_outlook_is_told_the_block_is_not_its_problem() -> None:
    finding = port_blocked_on_windows(OutlookClient.NEW)
    assert finding.fix.summary.startswith("Not what stops new Outlook")
    assert "Microsoft's cloud" in finding.fix.steps[0]
    assert "S43" in finding.fix.sources


def test_phone_apps_are_told_the_computers_block_is_not_theirs() -> None:
    # Issue 14: the Outlook app sends IMAP/SMTP mail from Microsoft's cloud, so "a phone on
    # the same Wi-Fi meets the same block" and "try mobile data" do not apply.
    finding = port_blocked_on_windows(OutlookClient.IOS)
    assert finding.fix.summary.startswith("Not what stops the Outlook app")
    assert "Microsoft's cloud" in text_of(finding)
    assert "same Wi-Fi" not in text_of(finding)
    assert "not yet confirmed" in finding.fix.steps[-1]  # the claim is unverified


# --------------------------------------------------------------------------- interception


def test_antivirus_interception_says_how_to_exempt_outlook() -> None:
    rep = report(probes=(probe(587, cert=LE_R11), probe(465, cert=LE_R11), probe(2525, "refused")))
    result = compared(rep, sample("windows/w02_script_avast_de_wrapped.txt"))
    finding = one(result, "client.tls_intercepted")
    fix = finding.fix
    assert fix.summary == "Stop Avast from scanning mail: it replaces the mail server's certificate"
    assert fix.steps[0].startswith("Avast, security software on your computer,")
    assert "Open Avast" in fix.steps[1] and "*Mail Shield*" in fix.steps[1]
    assert "add Outlook as an exception" in fix.steps[1]
    assert "Ask IT" not in text_of(finding)
    assert "S50" in fix.sources


def test_network_interception_sends_the_user_to_it() -> None:
    result = compared(
        report("mail.example.org", 587, probes=(probe(587),)),
        sample("mac/m08_s_client_full_libressl_zscaler.txt"),
    )
    finding = one(result, "client.tls_intercepted")
    assert finding.evidence["product_kind"] == "network"
    assert finding.fix.summary == "Ask IT to exempt the mail server from Zscaler's SSL inspection"
    ports = finding.evidence["ports"]
    where = f"mail.example.org (port {ports[0]})" if ports else "the mail server"
    assert f"Ask IT to exempt {where} from Zscaler's SSL/TLS inspection" in text_of(finding)
    assert "Open Zscaler" not in text_of(finding)


def test_unknown_interceptor_covers_both_possibilities() -> None:
    result = compared(
        report(probes=(probe(587, cert=LE_R11),)),
        "PORT 587 TCP OK\nCERT 587 issuer=CN=Corp Inspection CA, O=Example Corp\n",
    )
    finding = one(result, "client.tls_intercepted")
    assert finding.fix.summary.startswith("Something replaces the mail server's certificate")
    assert "security software" in finding.fix.steps[1] and "ask IT" in finding.fix.steps[1]


@pytest.mark.parametrize("kind", ["antivirus", "network"])
def test_phones_are_told_the_interception_does_not_reach_them(kb: Knowledge, kind: str) -> None:
    # The Outlook app sends IMAP/POP mail from Microsoft's cloud (issue 14): neither the
    # computer's antivirus nor its network's inspection is in its way.
    ctx = FixContext(evidence={"product": "Avast", "product_kind": kind, "ports": [587]})
    for client in (OutlookClient.IOS, OutlookClient.ANDROID):
        fix = kb.fix_for("client.tls_intercepted", client, ctx)
        assert fix.summary.startswith("Not what stops the Outlook app")
        assert "not yet confirmed" in fix.steps[-1]  # unverified, and said so
    new = kb.fix_for("client.tls_intercepted", OutlookClient.NEW, ctx)
    assert new.summary == "Not what stops new Outlook: it sends from Microsoft's cloud, past Avast"
    assert kb.fix_spec("client.tls_intercepted", OutlookClient.NEW).applicable is False


# --------------------------------------------------------------------------- the rest


def test_stripped_starttls_moves_to_implicit_tls_and_never_to_none() -> None:
    rep = starttls_report(
        recommended=Endpoint(host="mail.example-corp.com", port=587, security=Security.STARTTLS),
    )
    finding = one(
        compared(rep, sample("windows/w12_script_starttls_stripped_en.txt")),
        "client.starttls_stripped",
    )
    text = text_of(finding)
    assert "usually 465" in finding.fix.summary
    assert "STARTTLS) on port 587; from your computer it does not" in text
    assert "choose SSL/TLS" in text
    assert "Do not set the encryption to None" in text
    assert "Set the port box *Outgoing server (SMTP)* to 587" not in text  # the stripped port


def test_name_not_resolved_checks_the_exact_name(kb: Knowledge) -> None:
    rep = report("smtp.gmial.com", 587, probes=(probe(587),))
    finding = one(
        compared(rep, sample("windows/w07_tnc_name_failed_en.txt")), "client.name_unresolved"
    )
    assert "Your computer cannot look up smtp.gmial.com" in finding.fix.summary
    assert "*Outgoing mail server (SMTP)* is exactly smtp.gmial.com" in text_of(finding)
    assert "DNS filter" in text_of(finding)


def test_same_on_both_sides_changes_nothing(kb: Knowledge) -> None:
    rep = report(port=2525, probes=(probe(2525, "refused"),))
    result = compared(rep, "PORT 2525 TCP FAIL SocketException ConnectionRefused: x\n")
    finding = one(result, "client.same_as_server")
    assert finding.fix.summary.startswith("Nothing to change on your computer")
    assert "other findings" in finding.fix.steps[0]


def test_server_ok_from_here_repeats_the_working_settings(kb: Knowledge) -> None:
    rep = report(
        probes=(probe(587),),
        security=Security.STARTTLS,
        error_text_causes=(
            unconfirmed_cause("0x800CCC0E", "Outlook could not connect.", "tcp.timeout"),
        ),
    )
    finding = server_ok_but_user_fails(rep)
    assert finding is not None
    ctx = FixContext(
        host="mail.contoso-mail.de", port=587, security=Security.STARTTLS, evidence=finding.evidence
    )
    classic = kb.with_fix(finding, OutlookClient.CLASSIC, ctx).fix
    assert "server mail.contoso-mail.de, port 587, encryption STARTTLS" in classic.steps[0]
    assert "client check" in classic.steps[1]
    new = kb.with_fix(finding, OutlookClient.NEW, ctx).fix
    assert "Microsoft's cloud" in new.steps[0]
