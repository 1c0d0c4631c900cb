"""Where the repository's files are, for tests that read them (wherever the test file sits)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "samples"
CLIENT_CHECK_SAMPLES = SAMPLES / "client_check"
