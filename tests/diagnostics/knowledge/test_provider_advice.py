"""Issue 14's provider corrections, each held by a test: Zoho's hosts and regions, iCloud's
app-specific password, and Outlook.com's 5.7.139 answer (no admin to ask)."""

from __future__ import annotations

import pytest

from diagnostics._models import OutlookClient, Security
from diagnostics.knowledge import FixContext, Knowledge, load_knowledge


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge()


@pytest.mark.parametrize(
    "host, key",
    [
        ("smtppro.zoho.com", "zoho"),
        ("smtp.zoho.com.cn", "zoho_cn"),
        ("smtppro.zoho.com.cn", "zoho_cn"),
        ("smtp.zoho.sa", "zoho_sa"),
        ("smtp.zohocloud.ca", "zoho_ca"),
    ],
)
def test_zoho_hosts_and_regions_are_known(kb: Knowledge, host: str, key: str) -> None:
    provider = kb.provider_by_host(host, port=587)
    assert provider is not None and provider.key == key


@pytest.mark.parametrize("host", ["smtppro.zoho.com", "smtppro.zoho.eu", "smtp.zoho.com.cn"])
def test_zoho_documents_587_starttls_beside_465(kb: Knowledge, host: str) -> None:
    provider = kb.provider_by_host(host)
    assert provider is not None
    on_host = {(e.port, e.security) for e in provider.submission if e.host == host}
    assert {(587, Security.STARTTLS), (465, Security.SSL)} <= on_host


ADVICE = [
    # finding, provider, host, words the fix must say, words it must not say
    pytest.param(
        "provider.policy.app_password_required", "icloud", "smtp.mail.icloud.com",
        ["app-specific password"], ["use it: no app password is needed"],  # generic sign-in
        id="icloud-app-specific-password-never-a-sign-in-window",
    ),
    pytest.param(
        "auth.failed.basic_disabled", "outlookcom", "smtp-mail.outlook.com",
        ["sign"], ["admin center", "an admin switches"],  # no admin to ask for Outlook.com
        id="outlookcom-5.7.139-speaks-to-the-user-not-an-admin",
    ),
]  # fmt: skip


@pytest.mark.parametrize("client", list(OutlookClient))
@pytest.mark.parametrize("finding_id, key, host, must, must_not", ADVICE)
def test_provider_advice_for_every_outlook(
    kb: Knowledge,
    client: OutlookClient,
    finding_id: str,
    key: str,
    host: str,
    must: list[str],
    must_not: list[str],
) -> None:
    ctx = FixContext(host=host, port=587, provider=kb.provider(key))
    fix = kb.fix_for(finding_id, client, ctx)
    text = " ".join([fix.summary, *fix.steps])
    assert all(word in text for word in must), text
    assert not any(word in text for word in must_not), text
