"""Where the repository's files are, for tests that read them (wherever the test file sits)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "samples"
CLIENT_CHECK_SAMPLES = SAMPLES / "client_check"
# The shared research checked out beside the repository (CI has it; a bare clone may not).
SHARED = REPO.parent / "shared"
FACTS = SHARED / "knowledge" / "outlook-smtp-facts.md"
REPO_SOURCES = REPO / "diagnostics" / "knowledge" / "data" / "sources.yaml"


def known_source_ids() -> set[str] | None:
    """Every source ID the data may cite: the shared facts file's plus the repository's own.

    None when the shared facts file is not checked out (the caller skips rather than guess).
    """
    if not FACTS.exists():
        return None
    shared = set(re.findall(r"^\* (S\d+[a-z]?) ", FACTS.read_text(encoding="utf-8"), re.M))
    own = set(yaml.safe_load(REPO_SOURCES.read_text(encoding="utf-8"))["sources"])
    return shared | own
