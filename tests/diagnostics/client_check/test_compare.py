"""compare(), server_ok_but_user_fails() and the CLI round trip, on hand-built reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diagnostics import InputError
from diagnostics._models import (
    Endpoint,
    ErrorTextCause,
    Finding,
    Security,
    Severity,
)
from diagnostics.client_check import (
    ClientObservation,
    compare,
    load_report_json,
    parse_client_output,
    render_comparison_text,
    server_ok_but_user_fails,
)
from tests.factories import probe, report, starttls_report, unconfirmed_cause
from tests.paths import CLIENT_CHECK_SAMPLES as SAMPLES

LE_R11 = {
    "issuer": "CN=R11,O=Let's Encrypt,C=US",
    "subject": "CN=mail.contoso-mail.de",
    "sha256": "AB" * 32,
}


def sample(name: str) -> ClientObservation:
    return parse_client_output((SAMPLES / name).read_text(encoding="utf-8"))


def ids(result) -> list[str]:
    return [f.id for f in result.findings]


# ------------------------------------------------------------------ blocking


def test_port_blocked_names_the_port_that_works_and_recommends_it() -> None:
    obs = sample("windows/w03_script_blocked_fr.txt")  # 25 and 587 time out, 465 works
    rep = report(
        "smtp.exemple-hebergeur.fr", 587, probes=(probe(587, cert=LE_R11), probe(465, cert=LE_R11))
    )
    result = compare(rep, obs)
    blocked = [f for f in result.findings if f.id == "client.port_blocked"]
    assert [f.evidence["port"] for f in blocked] == [587]
    assert blocked[0].severity is Severity.ERROR  # the port entered in Outlook
    assert blocked[0].evidence["reachable_instead"] == [465]
    assert "port 465 does answer" in blocked[0].detail
    assert blocked[0].fix is None
    assert result.recommended == Endpoint(
        host="smtp.exemple-hebergeur.fr", port=465, security=Security.SSL
    )
    assert "port 465 with SSL/TLS" in result.verdict_text
    assert "client.same_as_server" not in ids(result)


def test_blocked_alternative_port_is_a_warning_only() -> None:
    obs = parse_client_output("PORT 587 TCP OK\nPORT 465 TCP FAIL timeout\n")
    rep = report(probes=(probe(587), probe(465)))
    result = compare(rep, obs)
    (blocked,) = result.findings
    assert blocked.id == "client.port_blocked" and blocked.severity is Severity.WARN
    assert result.recommended == Endpoint(
        host="mail.contoso-mail.de", port=587, security=Security.STARTTLS
    )


def test_nothing_reachable_recommends_nothing() -> None:
    obs = parse_client_output("PORT 587 TCP FAIL timeout\nPORT 465 TCP FAIL timeout\n")
    result = compare(report(probes=(probe(587), probe(465))), obs)
    assert ids(result) == ["client.port_blocked", "client.port_blocked"]
    assert result.recommended is None
    assert "None of the other mail ports answered" in result.findings[0].detail


def test_only_ports_seen_working_from_here_are_recommended() -> None:
    # 2525 answers for the user but the bot never saw it work: not recommended.
    obs = parse_client_output("PORT 587 TCP FAIL timeout\nPORT 2525 TCP OK\n")
    result = compare(report(probes=(probe(587), probe(2525, "connect_timeout"))), obs)
    assert result.recommended is None
    assert any("2525 answers on your computer but not from here" in n for n in result.notes)


def test_port25_blocked_moves_to_587() -> None:
    obs = sample("windows/w05_tnc_fail_de.txt")  # 25 fails, 587 works
    rep = report("smtp.office365.com", 25, probes=(probe(25, "connect_timeout"), probe(587)))
    result = compare(rep, obs)
    (finding,) = result.findings
    assert finding.id == "client.port25_blocked"
    assert finding.severity is Severity.ERROR
    assert "587" in finding.detail and "block" in finding.detail
    assert result.recommended == Endpoint(
        host="smtp.office365.com", port=587, security=Security.STARTTLS
    )


def test_port25_not_entered_is_info() -> None:
    obs = sample("windows/w08_tnc_quiet.txt")  # 587 True, 25 False
    result = compare(report("smtp.gmail.com", 587, probes=(probe(587),)), obs)
    by_id = {f.id: f for f in result.findings}
    assert by_id["client.port25_blocked"].severity is Severity.INFO


def test_closed_on_both_sides_is_the_same() -> None:
    obs = parse_client_output("PORT 2525 TCP FAIL SocketException ConnectionRefused: x\n")
    result = compare(report(port=2525, probes=(probe(2525, "refused"),)), obs)
    assert ids(result) == ["client.same_as_server"]
    assert result.findings[0].severity is Severity.INFO
    assert "closed from both sides" in result.findings[0].detail


# ------------------------------------------------------------------ interception


def test_avast_interception_is_named() -> None:
    obs = sample("windows/w02_script_avast_de_wrapped.txt")
    rep = report(probes=(probe(587, cert=LE_R11), probe(465, cert=LE_R11), probe(2525, "refused")))
    result = compare(rep, obs)
    (finding,) = [f for f in result.findings if f.id == "client.tls_intercepted"]
    assert finding.severity is Severity.ERROR
    assert finding.evidence["product"] == "Avast"
    assert finding.evidence["product_kind"] == "antivirus"
    assert finding.evidence["ports"] == [465, 587]
    assert "Avast Web/Mail Shield Root" in finding.detail and "R11" in finding.detail
    assert finding.title.startswith("Avast intercepts")
    assert "Windows trusts that certificate" in finding.detail  # windows_check=None
    assert "Avast intercepts" in result.verdict_text
    assert "client.same_as_server" not in ids(result)
    text = render_comparison_text(result)
    assert "Where to look: Avast" in text


def test_unknown_interceptor_mentions_internal_dns() -> None:
    obs = parse_client_output(
        "PORT 587 TCP OK\nCERT 587 issuer=CN=Corp Inspection CA, O=Example Corp\n"
        "CERT 587 subject=CN=mail.contoso-mail.de\n"
    )
    result = compare(report(probes=(probe(587, cert=LE_R11),)), obs)
    (finding,) = [f for f in result.findings if f.id == "client.tls_intercepted"]
    assert finding.evidence["product"] is None
    assert "internal DNS" in finding.detail
    assert "Outlook then warns" in finding.detail


def test_known_product_without_server_cert_is_still_interception() -> None:
    obs = sample("mac/m08_s_client_full_libressl_zscaler.txt")
    result = compare(report("mail.example.org", 587, probes=(probe(587),)), obs)
    (finding,) = result.findings
    assert finding.id == "client.tls_intercepted"
    assert finding.evidence["product"] == "Zscaler"
    assert finding.evidence["product_kind"] == "network"


def test_loose_certificate_is_compared_with_the_servers() -> None:
    obs = sample("windows/w10_cert_formatlist_de.txt")  # ESET, no port
    result = compare(report(probes=(probe(587, cert=LE_R11),)), obs)
    assert ids(result) == ["client.tls_intercepted"]
    assert result.findings[0].evidence["product"] == "ESET"


def test_same_issuer_other_certificate_is_not_interception() -> None:
    obs = parse_client_output(
        "PORT 587 TCP OK\nCERT 587 issuer=C = US, O = Let's Encrypt, CN = R11\n"
        f"CERT 587 sha256={'CD' * 32}\n"
    )
    result = compare(report(probes=(probe(587, cert=LE_R11),)), obs)
    assert "client.tls_intercepted" not in ids(result)
    assert any("same issuer" in n for n in result.notes)


# ------------------------------------------------------------------ the same on both sides


def test_same_on_both_sides() -> None:
    obs = sample("mac/m01_script_ok_libressl.txt")
    gmail = {
        "issuer": "CN=WR2,O=Google Trust Services,C=US",
        "sha256": "3F:9A:1B:22:C4:5D:E6:07:F8:19:2A:3B:4C:5D:6E:7F:80:91:A2:B3:C4:D5:E6:F7:"
        "08:19:2A:3B:4C:5D:6E:7F",
    }
    rep = report(
        "smtp.gmail.com",
        587,
        probes=(probe(587, cert=gmail), probe(465, cert=gmail)),
        findings=(
            Finding(
                id="auth.failed.app_password_required",
                severity=Severity.ERROR,
                title="App password needed",
            ),
        ),
    )
    result = compare(rep, obs)
    assert ids(result) == ["client.same_as_server"]
    finding = result.findings[0]
    assert finding.evidence["server_findings"] == ["auth.failed.app_password_required"]
    assert "certificate on port 587 is the server's own" in finding.detail
    assert result.recommended is None
    assert "look at the server-side findings" in result.verdict_text


# ------------------------------------------------------------------ other differences


def test_starttls_stripped_by_a_firewall() -> None:
    obs = sample("windows/w12_script_starttls_stripped_en.txt")
    rep = starttls_report()
    result = compare(rep, obs)
    assert "client.starttls_stripped" in ids(result)
    assert any("465" in n and "encrypted connection failed" in n for n in result.notes)


def test_name_not_resolved_on_the_users_side() -> None:
    obs = sample("windows/w07_tnc_name_failed_en.txt")
    result = compare(report("smtp.gmial.com", 587, probes=(probe(587),)), obs)
    assert ids(result) == ["client.name_unresolved"]
    assert "cannot look up" in result.verdict_text


def test_empty_paste_says_so() -> None:
    result = compare(report(probes=(probe(587),)), parse_client_output("hello, it still fails"))
    assert result.findings == ()
    assert "Nothing could be read" in result.verdict_text


def test_other_host_is_noted() -> None:
    obs = sample("windows/w04_tnc_ok_en.txt")  # smtp.office365.com
    result = compare(report("mail.contoso-mail.de", 587, probes=(probe(587),)), obs)
    assert any("about smtp.office365.com" in n for n in result.notes)


def test_provider_probes_are_another_server() -> None:
    obs = parse_client_output("PORT 587 TCP FAIL timeout\n")
    rep = report(probes=(probe(587, "connect_timeout"), probe(587, role="provider")))
    result = compare(rep, obs)
    assert ids(result) == ["client.same_as_server"]  # both sides: closed


# ------------------------------------------------------------------ server_ok_but_user_fails


def test_server_ok_but_outlook_cannot_connect() -> None:
    rep = report(
        probes=(probe(587),),
        error_text_causes=(
            unconfirmed_cause(
                "0x800CCC0E", "Outlook could not connect to the server.", "tcp.timeout"
            ),
        ),
    )
    finding = server_ok_but_user_fails(rep)
    assert finding is not None
    assert finding.id == "client.server_ok_from_here" and finding.severity is Severity.WARN
    assert "between your computer and the server" in finding.detail
    assert "port 587 with STARTTLS" in finding.detail
    assert finding.evidence["error_codes"] == ["0x800CCC0E"]


def test_server_ok_but_certificate_warning() -> None:
    rep = report(
        probes=(probe(465),),
        port=465,
        error_text_causes=(
            ErrorTextCause(
                code=None, cause="The server's security certificate is not trusted", confirmed=None
            ),
        ),
    )
    assert server_ok_but_user_fails(rep) is not None


def test_server_side_failure_explains_it() -> None:
    rep = report(
        probes=(probe(587, "connect_timeout"), probe(465)),
        findings=(Finding(id="tcp.timeout", severity=Severity.ERROR, title="t"),),
        error_text_causes=(
            ErrorTextCause(code="0x800CCC0E", cause="cannot connect", confirmed=True),
        ),
    )
    assert server_ok_but_user_fails(rep) is None


def test_no_user_failure_no_finding() -> None:
    rep = report(probes=(probe(587),))
    assert server_ok_but_user_fails(rep) is None
    assert server_ok_but_user_fails(rep, user_reports_failure=True) is not None
    auth_only = report(
        probes=(probe(587),),
        error_text_causes=(
            unconfirmed_cause(
                "0x800CCC78", "Sender rejected: authentication needed", "auth.not_offered"
            ),
        ),
    )
    assert server_ok_but_user_fails(auth_only) is None


# ------------------------------------------------------------------ CLI round trip


def test_report_json_round_trip(tmp_path: Path) -> None:
    rep = report(probes=(probe(587, cert=LE_R11),))
    path = tmp_path / "report.json"
    path.write_text(rep.to_json(), encoding="utf-8")
    assert load_report_json(path) == rep
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + rep.to_json().encode())
    assert load_report_json(bom) == rep


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not a JSON report"),
        ('{"schema": "other/1"}', "not a smtpcheck.report/1 report"),
        ("[1, 2]", "not a smtpcheck.report/1 report"),
        ('{"schema": "smtpcheck.report/1", "verdict": "pass"}', "invalid report at input"),
    ],
)
def test_report_json_errors_are_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_report_json(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_render_comparison_text() -> None:
    obs = sample("windows/w03_script_blocked_fr.txt")
    rep = report("smtp.exemple-hebergeur.fr", 587, probes=(probe(587), probe(465)))
    text = render_comparison_text(compare(rep, obs))
    assert "[ERROR] Port 587 is blocked" in text
    assert "Outgoing mail server (SMTP): smtp.exemple-hebergeur.fr" in text
    assert "Port: 465" in text and "Encrypted connection: SSL/TLS" in text
    assert json.dumps(text)  # plain str
