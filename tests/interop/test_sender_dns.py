"""Sender-domain health and server-name lookups answered by a real authoritative server
(Knot) serving the test zones in scripts/peers/zones/.
"""

from __future__ import annotations

import pytest

from diagnostics import Severity
from tests.interop.conftest import Diagnose
from tests.interop.helpers import explain as _explain

pytestmark = pytest.mark.interop

# Each zone carries exactly one defect.
DEFECTS = {
    "nomx.test": "dns.mx.missing",
    "twospf.test": "dns.spf.multiple",
    "toomany.test": "dns.spf.too_many_lookups",
    "baddmarc.test": "dns.dmarc.invalid",
    "mxcname.test": "dns.mx.cname",
    "mxmissing.test": "dns.mx.unresolvable",
}


@pytest.mark.parametrize(("domain", "finding_id"), sorted(DEFECTS.items()))
async def test_sender_domain_defect(check: Diagnose, domain: str, finding_id: str) -> None:
    report = await check(target="smtp.good.test:587", security="starttls", email=f"alice@{domain}")
    ids = set(report.finding_ids)
    assert finding_id in ids, _explain(report)
    others = set(DEFECTS.values()) - {finding_id}
    assert not (ids & others), _explain(report)
    (finding,) = report.by_id(finding_id)
    assert finding.severity in {Severity.WARN, Severity.ERROR}
    # The server itself is fine: the domain's DNS is a separate matter.
    assert report.recommended is None
    assert not report.has("auth.not_offered")


async def test_healthy_sender_domain_has_no_defect(check: Diagnose) -> None:
    report = await check(target="smtp.good.test:587", security="starttls", email="alice@good.test")
    bad = [
        f.id
        for f in report.findings
        if f.id.startswith(("dns.mx.", "dns.spf.", "dns.dmarc."))
        and f.severity is not Severity.INFO
    ]
    assert bad == [], _explain(report)
    assert str(report.verdict) == "pass", _explain(report)


async def test_email_target_finds_the_server_from_the_domain(check: Diagnose) -> None:
    report = await check(target="alice@good.test")
    assert report.input.host == "smtp.good.test", _explain(report)
    assert report.input.port == 587
    assert not [f.id for f in report.findings if f.severity is Severity.ERROR], _explain(report)


@pytest.mark.parametrize(
    ("target", "finding_id"),
    [
        ("nothere.good.test:587", "dns.host.nxdomain"),
        ("good.test:587", "dns.host.no_address"),  # the zone apex has MX and TXT, no A/AAAA
    ],
)
async def test_server_name_lookup_failures(check: Diagnose, target: str, finding_id: str) -> None:
    report = await check(target=target, security="starttls")
    assert report.has(finding_id), _explain(report)
    assert str(report.verdict) == "fail"
    assert report.probes == ()  # nothing to connect to
