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


@pytest.mark.parametrize("client", list(OutlookClient))
def test_icloud_gets_an_app_specific_password_never_a_sign_in_window(
    kb: Knowledge, client: OutlookClient
) -> None:
    ctx = FixContext(host="smtp.mail.icloud.com", port=587, provider=kb.provider("icloud"))
    fix = kb.fix_for("provider.policy.app_password_required", client, ctx)
    text = " ".join([fix.summary, *fix.steps])
    assert "app-specific password" in text
    assert "use it: no app password is needed" not in text  # the generic sign-in advice


@pytest.mark.parametrize("client", list(OutlookClient))
def test_outlookcom_basic_auth_answer_speaks_to_the_user_not_an_admin(
    kb: Knowledge, client: OutlookClient
) -> None:
    ctx = FixContext(host="smtp-mail.outlook.com", port=587, provider=kb.provider("outlookcom"))
    fix = kb.fix_for("auth.failed.basic_disabled", client, ctx)
    text = " ".join([fix.summary, *fix.steps])
    assert "admin center" not in text and "an admin switches" not in text
    assert "sign" in text.lower()  # the Microsoft sign-in window is the way
