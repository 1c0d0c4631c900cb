"""Fix text says only what is true for the values at hand, in words a user can follow.

Ports and host names in a fix come from the diagnosis (the port entered, the one that
works, the server entered); a fixed number may appear only as a hedged convention
("usually 465", "for example smtp.example.com:587") or where the finding is about that
port by definition (port 25).
"""

from __future__ import annotations

import re

import pytest

from diagnostics._models import Endpoint, OutlookClient, Security
from diagnostics.knowledge import FixContext, Knowledge, data_dir, load_knowledge_from

# bot/views/report.py clips each step at 400 characters and the summary at 500.
STEP_MAX = 400
SUMMARY_MAX = 500
ODD_PORT = 2526  # a port no template could know by heart
WELL_KNOWN = re.compile(r"\b(25|465|587|2525|1025)\b")
HEDGED = re.compile(
    r"usually[^)]*"  # "(usually 465)", "usually 587, or 465", "usually expects ... as 465 does"
    r"|usual port for (?:that|it) is \d+"
    r"|for example [\w.-]+(?::\d+)?"
    r"|such as \d+(?: or \d+)?"
)
ABOUT_PORT_25 = {"settings.port25_blocked_likely", "client.port25_blocked"}


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge_from(data_dir())


def odd_port_context(**kw: object) -> FixContext:
    """A diagnosis on an unusual port, where the engine recommends that same odd port."""
    values: dict = {
        "host": "mail.example.net",
        "port": ODD_PORT,
        "security": Security.SSL,
        "recommended": Endpoint(host="mail.example.net", port=ODD_PORT, security=Security.STARTTLS),
        "email": "ann@example.net",
        "evidence": {
            "port": ODD_PORT,
            "ports": [ODD_PORT],
            "recommended": {"host": "mail.example.net", "port": ODD_PORT, "security": "starttls"},
            "domain": "example.net",
            "checked": "smtp.example.net",
            "product": "Avast",
            "product_kind": "antivirus",
        },
    }
    values.update(kw)
    return FixContext(**values)


def rendered(kb: Knowledge, ctx: FixContext):
    for finding in kb.findings:
        for client in OutlookClient:
            fix = kb.fix_for(finding.id, client, ctx)
            assert fix is not None
            yield finding.id, client, fix


def test_no_fix_states_a_port_the_diagnosis_did_not_find(kb: Knowledge) -> None:
    wrong = []
    for finding_id, client, fix in rendered(kb, odd_port_context()):
        for text in (fix.summary, *fix.steps, *fix.values.values()):
            bare = HEDGED.sub("", text)
            ports = set(WELL_KNOWN.findall(bare))
            if finding_id in ABOUT_PORT_25:
                ports -= {"25"}
            if ports:
                wrong.append(f"{finding_id} [{client.value}]: {text}")
    assert not wrong, "\n".join(wrong)


def test_the_mode_trap_explains_itself_with_the_ports_entered(kb: Knowledge) -> None:
    ctx = FixContext(host="mail.example.net", port=42817, security=Security.SSL)
    fix = kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.CLASSIC, ctx)
    assert fix.summary.startswith("Set the encryption to STARTTLS") and "42817" in fix.summary
    assert "Leave the port box *Outgoing server (SMTP)* at 42817" in fix.steps[1]
    assert fix.steps[2].startswith("Why: port 42817 starts in plain text")
    assert "587" not in " ".join(fix.steps)
    reverse = kb.fix_for(
        "tls.mode.starttls_on_ssl_port",
        OutlookClient.NEW,
        FixContext(host="mail.example.net", port=4650, security=Security.STARTTLS),
    )
    assert "Port 4650 is encrypted from the first byte" in " ".join(reverse.steps)
    assert "keep *Port* at 4650 and set *Secure connection type* to SSL/TLS" in reverse.steps[1]
    # without any port, no port is claimed
    bare = kb.fix_for("tls.mode.ssl_on_starttls_port", OutlookClient.CLASSIC, FixContext())
    assert bare.steps[2].startswith("Why: this port starts in plain text")


async def test_the_demo_fix_names_the_demo_port() -> None:
    from diagnostics._demo import run_demo

    report = await run_demo()
    [finding] = report.by_id("tls.mode.ssl_on_starttls_port")
    port = str(finding.evidence["port"])
    assert port not in {"465", "587"}
    fix = finding.fix
    assert fix is not None and port in fix.summary
    text = " ".join(fix.steps)
    assert f"port {port} starts in plain text" in text
    assert not WELL_KNOWN.findall(HEDGED.sub("", text))


def test_classic_outlook_is_told_which_box_and_which_list(kb: Knowledge) -> None:
    ctx = FixContext(
        host="mail.example.net",
        port=465,
        recommended=Endpoint(host="mail.example.net", port=587, security=Security.STARTTLS),
    )
    step = kb.fix_for("tcp.refused", OutlookClient.CLASSIC, ctx).steps[1]
    # "Outgoing server (SMTP)" is the port box, "Outgoing mail server (SMTP)" the host field:
    # say which one is meant, and that the incoming server's list is not it.
    assert step.startswith("Set the port box *Outgoing server (SMTP)* to 587")
    assert "(not the one for the incoming server)" in step


def test_use_another_server_only_when_it_is_another_server(kb: Knowledge) -> None:
    same = FixContext(
        host="smtp.example.net",
        recommended=Endpoint(host="SMTP.example.net.", port=587, security=Security.STARTTLS),
    )
    for finding_id in ("dns.host.nxdomain", "tls.cert.hostname_mismatch", "tls.version.legacy"):
        fix = kb.fix_for(finding_id, OutlookClient.CLASSIC, same)
        text = " ".join((fix.summary, *fix.steps))
        assert "with SMTP.example.net" not in text and "to SMTP.example.net" not in text, text
        assert "Use SMTP.example.net as" not in text
    other = same.model_copy(
        update={
            "recommended": Endpoint(
                host="smtp.provider.example", port=587, security=Security.STARTTLS
            )
        }
    )
    fix = kb.fix_for("dns.host.nxdomain", OutlookClient.CLASSIC, other)
    assert "replace smtp.example.net with smtp.provider.example" in fix.steps[1]
    assert fix.values == {"Outgoing mail server (SMTP)": "smtp.provider.example"}


def test_microsoft_365_only_advice_stays_with_microsoft_365(kb: Knowledge) -> None:
    generic = kb.fix_for("tls.version.rejected", OutlookClient.CLASSIC, FixContext())
    assert "smtp-legacy.office365.com" not in " ".join(generic.steps)
    assert generic.link and "learn.microsoft.com" not in generic.link
    m365 = kb.fix_for(
        "tls.version.rejected",
        OutlookClient.CLASSIC,
        FixContext(provider=kb.provider("microsoft365")),
    )
    assert "smtp-legacy.office365.com" in " ".join(m365.steps)
    assert "S7" in m365.sources


@pytest.mark.parametrize("ctx_name", ["odd", "long", "empty"])
def test_steps_fit_what_slack_shows_and_read_as_sentences(kb: Knowledge, ctx_name: str) -> None:
    long = odd_port_context(
        host="smtp.a-rather-long-hosting-company-name.example",
        email="firstname.lastname@a-rather-long-company-domain.example",
        provider=kb.provider("microsoft365"),
    )
    ctx = {"odd": odd_port_context(), "long": long, "empty": FixContext()}[ctx_name]
    for finding_id, client, fix in rendered(kb, ctx):
        assert len(fix.summary) <= SUMMARY_MAX, (finding_id, client)
        for step in fix.steps:
            where = f"{finding_id} [{client.value}]: {step}"
            assert len(step) <= STEP_MAX, where
            assert step[0].isupper() or step[0] in "*_", where
            assert step.endswith((".", ")", "?", ":")) or step.endswith("*"), where
            # "... click *Change…* and retype": two "and"s in a row read as one long blur
            assert "*Change…* and " not in step, where
