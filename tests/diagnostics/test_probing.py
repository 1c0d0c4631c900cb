"""What the probes tell the user while they run, and what the engine recommends after them.

Real diagnoses of loopback servers (the named scenarios of tests/snapshots/scenarios.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from diagnostics._models import ProbeOutcome, Progress, Report
from diagnostics.recommend import Advice, settings_advice
from tests.certs import CertFactory
from tests.dns_server import DnsServer, Zone
from tests.snapshots.scenarios import BY_NAME, run_scenario


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    async with DnsServer(Zone()) as server:
        yield server


@pytest.fixture
def run(dns: DnsServer, ca_bundle: Path, cert_factory: CertFactory):
    async def go(name: str) -> tuple[Report, list[Progress]]:
        return await run_scenario(
            BY_NAME[name], dns=dns, ca_bundle=ca_bundle, certs=cert_factory, stable=False
        )

    return go


async def test_context_probes_say_why_they_run_in_plain_words(run) -> None:
    _, events = await run("pass")
    finished = {e.step: e for e in events if e.state != "running"}
    mode_check = finished["587/ssl"]
    assert mode_check.role == "mode_check"
    assert mode_check.label == "Checking the other encryption mode (587 SSL/TLS)"
    assert mode_check.state == "failed" and mode_check.note == "answered unencrypted"
    alternative = finished["465/ssl"]
    assert (alternative.role, alternative.label) == ("alternative", "Trying 465 SSL/TLS too")
    entered = finished["587/starttls"]
    assert entered.role == "entered" and entered.state == "done"
    assert entered.note == "works, TLS 1.3, login accepted"
    machine = {o.value.replace("_", " ") for o in ProbeOutcome if "_" in o.value}
    for event in finished.values():
        assert "_" not in event.note and not machine & set(event.note.split(", ")), event
        assert "TLSv" not in event.note and "AUTH" not in event.note, event
        assert event.duration_ms is not None and event.duration_ms >= 0, event


async def test_one_total_from_the_same_start_as_the_progress(run) -> None:
    report, events = await run("warn")
    total = report.timings_ms["total"]
    assert all(e.elapsed_ms <= total for e in events)
    probes = [e for e in events if e.role is not None and e.state != "running"]
    assert all(e.duration_ms is not None and e.duration_ms <= total for e in probes)


async def test_a_certificate_problem_is_no_green_tick(run) -> None:
    _, events = await run("expired_certificate")
    entered = next(e for e in events if e.role == "entered" and e.state != "running")
    assert (entered.state, entered.note) == ("failed", "certificate expired")


@pytest.mark.parametrize(
    ("name", "recommended", "alternatives", "advice"),
    [
        # Only the encryption changes, with the other working setting named as well.
        ("starttls_on_ssl_port", (465, "ssl"), [(587, "starttls")], Advice.CHANGE),
        ("ssl_on_starttls_port", (587, "starttls"), [(465, "ssl")], Advice.CHANGE),
        ("port_25", (587, "starttls"), [], Advice.CHANGE),
        ("pass", None, [], Advice.KEEP),
        ("warn", None, [], Advice.KEEP),
        ("wrong_password", None, [], Advice.KEEP_FIX_OTHER),
        ("nothing_reachable", None, [], Advice.NONE_WORKED),
        ("expired_certificate", None, [], Advice.NONE_WORKED),
    ],
)
async def test_the_engine_recommends_the_closest_working_setting(
    run, name: str, recommended, alternatives, advice: Advice
) -> None:
    report, _ = await run(name)
    rec = report.recommended
    assert ((rec.port, rec.security) if rec else None) == recommended, report.finding_ids
    assert [(a.port, a.security) for a in report.alternatives] == alternatives
    assert settings_advice(report) is advice
    data = report.to_json_dict()
    assert "recommended" in data and "alternatives" in data  # the contract's field kept


async def test_port_25_with_a_login_is_not_told_to_turn_the_login_on(run) -> None:
    """The relay test without a login is refused, as it should be: the user logs in."""
    report, _ = await run("port_25")
    assert not report.has("smtp.relay.denied") and not report.has("smtp.relay.refused")
    assert report.has("settings.port25_blocked_likely")
