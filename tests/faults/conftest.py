"""Fault-suite fixtures; prints the measured numbers at the end of the run (pytest -s or -rA)."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.faults import test_hostile_servers

    lines = list(test_hostile_servers.MEASURED)
    if lines:
        terminalreporter.section("fault suite measurements")
        for line in lines:
            terminalreporter.write_line(line)
