"""Snapshots of every rendering of every named scenario, and the rules their words follow.

Each scenario is a real diagnosis of loopback servers (scenarios.py), rendered as the Slack
report, the progress message, the escalation post and the terminal report at 80 and 120
columns (render.py). The text is compared with tests/snapshots/data/<scenario>.txt;

    SNAPSHOT_UPDATE=1 python -m pytest tests/snapshots

rewrites the files (then read them: that is the review), and docs/report.md with them.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from diagnostics._models import ProbeOutcome
from diagnostics.knowledge import data_dir, load_knowledge_from
from tests.certs import CertFactory
from tests.dns_server import DnsServer, Zone
from tests.snapshots import report_doc
from tests.snapshots.render import (
    parse_snapshot,
    renderings,
    snapshot_file_text,
    user_words,
)
from tests.snapshots.scenarios import SCENARIOS, Scenario, run_scenario

DATA = Path(__file__).parent / "data"
UPDATE = os.environ.get("SNAPSHOT_UPDATE") == "1"
# Sentences seen on real runs that were false or leaked the machinery (issue 17).
FORBIDDEN_PHRASES = (
    "Recommended settings: none of the settings tried worked",
    'set the encryption to STARTTLS for port 587" on 465',
    "plaintext on tls",
    "The error encryption-type-not-supported",
    "in 0.0 s",
    "0.0 s",
)


@pytest.fixture
async def dns() -> AsyncIterator[DnsServer]:
    async with DnsServer(Zone()) as server:
        yield server


def machine_words() -> set[str]:
    """Finding IDs, outcome values (also with blanks for underscores), template slugs."""
    kb = load_knowledge_from(data_dir())
    words = {spec.id for spec in kb.findings}
    for outcome in ProbeOutcome:
        if "_" in outcome.value:
            words |= {outcome.value, outcome.value.replace("_", " ")}
    words |= {"mode_check", "mode check"}
    errortexts = (data_dir() / "errortexts.yaml").read_text(encoding="utf-8")
    words |= set(re.findall(r"^\s+label: ([a-z0-9-]+-[a-z0-9-]+)\s*$", errortexts, re.M))
    return words


@pytest.fixture(scope="module")
def forbidden_words() -> set[str]:
    return machine_words()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario_snapshot(
    scenario: Scenario,
    dns: DnsServer,
    ca_bundle: Path,
    cert_factory: CertFactory,
    forbidden_words: set[str],
) -> None:
    report, events = await run_scenario(scenario, dns=dns, ca_bundle=ca_bundle, certs=cert_factory)
    expected = snapshot_file_text(scenario.title, renderings(report, events))
    path = DATA / f"{scenario.name}.txt"
    if UPDATE:
        DATA.mkdir(exist_ok=True)
        path.write_text(expected, encoding="utf-8")
    # The words users read never name the machinery (the terminal's dim ID suffix aside).
    for where, text in user_words(report, events).items():
        leaked = sorted(w for w in forbidden_words if _contains_word(text, w))
        leaked += re.findall(r"(?<![\w./-])(?:starttls|ssl)(?![\w/-])", text)  # enum values
        assert not leaked, f"{scenario.name} {where} shows {leaked}:\n{text}"
    assert path.exists(), f"no snapshot for {scenario.name}: run with SNAPSHOT_UPDATE=1"
    assert path.read_text(encoding="utf-8") == expected, (
        f"{path.name} differs from this run: read the difference; if it is right, "
        "rerun with SNAPSHOT_UPDATE=1"
    )


def _contains_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w-]|\.\w)", text, re.I) is not None


def stored() -> dict[str, tuple[str, dict[str, str]]]:
    return {p.stem: parse_snapshot(p.read_text(encoding="utf-8")) for p in DATA.glob("*.txt")}


def test_every_scenario_has_a_snapshot_and_no_other_file_is_there() -> None:
    assert set(stored()) == {s.name for s in SCENARIOS}


def test_snapshots_show_none_of_the_phrases_the_issue_quotes() -> None:
    for name, (_, texts) in stored().items():
        for where, text in texts.items():
            for phrase in FORBIDDEN_PHRASES:
                assert phrase.lower() not in text.lower(), f"{name} {where}: {phrase!r}"


def test_no_sentence_twice_in_one_finding() -> None:
    """Slack shows each finding as one section: no sentence of it is said twice."""
    for name, (_, texts) in stored().items():
        for section in texts["slack_report"].split("\n\n"):
            sentences = [
                s.strip(" *_.:") for s in re.split(r"(?<=[.!?])\s+|\n", section) if len(s) > 25
            ]
            repeated = {s for s in sentences if sentences.count(s) > 1}
            assert not repeated, f"{name}: {repeated} twice in\n{section}"


def test_one_total_duration_everywhere() -> None:
    """The footer, the progress message and the terminal give the same total, in ms."""
    for name, (_, texts) in stored().items():
        totals = {
            where: re.findall(r"\b(\d+ ms|\d+\.\d s)\b", texts[where])
            for where in ("slack_report", "progress", "terminal_80")
        }
        assert totals["slack_report"] and totals["progress"] and totals["terminal_80"], name
        assert "412 ms" in totals["slack_report"], name
        assert "412 ms" in totals["progress"], name
        assert "412 ms" in totals["terminal_80"], name


def test_docs_report_md_is_up_to_date() -> None:
    expected = report_doc.render_doc(DATA)
    if UPDATE:
        report_doc.DOC.write_text(expected, encoding="utf-8")
    assert report_doc.DOC.exists(), f"docs/report.md is missing: run `{report_doc.COMMAND}`"
    assert report_doc.DOC.read_text(encoding="utf-8") == expected, (
        f"docs/report.md is out of date with the snapshots: run `{report_doc.COMMAND}`"
    )


def test_an_address_alone_says_where_the_server_came_from_and_what_to_enter() -> None:
    """Nothing was entered: no "keep them"; the server found, its source, Outlook's fields."""
    _, texts = stored()["address_only"]
    report, terminal = texts["slack_report"], texts["terminal_80"]
    assert "keep them" not in report.lower() and "keep them" not in terminal.lower()
    assert "*Enter these settings in Outlook (found for the address; they work):*" in report
    assert "• Outgoing server (SMTP): `mail.example.test`" in report
    assert "_Where from:_ published by the domain (SRV)" in report
    assert "Where from              published by the domain (SRV)" in terminal
    assert "587 STARTTLS  found" in terminal  # not "as entered": nothing was
    assert "found in: SRV" in texts["progress"]
    _, missing = stored()["no_server_found"]
    assert "Checked: address `adele@fabrikam.test`" in missing["slack_report"]
    assert "server `adele@" not in missing["slack_report"]
    assert "not given" not in missing["escalation"]
    assert "found by: nothing" not in missing["progress"]
