"""docs/findings.md is generated from the catalog and kept up to date."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from diagnostics._models import OutlookClient
from diagnostics.knowledge import Knowledge, data_dir, load_knowledge_from
from diagnostics.knowledge.reference import COMMAND, render_reference
from tests.paths import REPO as ROOT

DOC = ROOT / "docs" / "findings.md"


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge_from(data_dir())


def rows(text: str) -> dict[str, list[str]]:
    """Table rows by finding ID: the cells after the ID column."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([a-z0-9_.]+)` \|(.*)\|$", line)
        if match:
            found[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return found


def test_docs_findings_md_is_up_to_date(kb: Knowledge) -> None:
    expected = render_reference(kb)
    assert DOC.exists(), f"docs/findings.md is missing: run `{COMMAND}`"
    assert DOC.read_text(encoding="utf-8") == expected, (
        f"docs/findings.md is out of date with the knowledge base: run `{COMMAND}`"
    )


def test_the_module_prints_the_reference() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "diagnostics.knowledge.reference"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == DOC.read_text(encoding="utf-8")
    assert done.stderr == ""


def test_every_finding_has_one_row_with_its_facts(kb: Knowledge) -> None:
    table = rows(render_reference(kb))
    assert list(table) == list(kb.finding_ids)  # catalog order, each once
    clients = list(OutlookClient)
    for finding in kb.findings:
        severity, category, title, *cells = table[finding.id]
        per_client, overrides, origin = cells[: len(clients)], cells[-2], cells[-1]
        assert severity.split(" / ") == [s.value for s in finding.severities]
        assert category == finding.category
        assert title == finding.title.replace("|", "\\|")
        assert origin == ("contract" if finding.contract else "extension")
        for client, cell in zip(clients, per_client, strict=True):
            spec = kb.fix_spec(finding.id, client)
            assert cell.rstrip("?") in {"steps", "instead", "note"}, cell
            assert (cell.rstrip("?") == "steps") is spec.applicable
            # the fix's own status, or (issue 14) the client's when the steps use its menus
            client_unverified = kb.client(client).status == "unverified"
            unverified = spec.status != "verified" or (
                client_unverified and spec.applicable and bool(spec.steps)
            )
            assert cell.endswith("?") is unverified
        entry = kb.fix_entry(finding.id)
        for key in (*entry.providers, *entry.variants):
            assert key in overrides


def test_reference_shows_the_client_findings_and_their_origin(kb: Knowledge) -> None:
    table = rows(render_reference(kb))
    assert table["client.tls_intercepted"][-1] == "extension"
    assert table["tcp.refused"][-1] == "contract"
    # new Outlook sends from Microsoft's cloud: a blocked port on the PC is not its problem
    new_column = 3 + list(OutlookClient).index(OutlookClient.NEW)
    assert table["client.port_blocked"][new_column] == "instead?"
    assert table["client.port_blocked"][0] == "error / warn"
    assert "providers: microsoft365" in table["tls.version.rejected"][-2]
