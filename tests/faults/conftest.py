"""Fault-suite fixtures; prints the measured numbers at the end of the run."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines: list[str] = []
    # Only modules that ran have numbers; never import one just for the summary.
    for name in ("test_hostile_servers", "test_slack_faults", "test_http_endpoint"):
        module = sys.modules.get(f"tests.faults.{name}")
        lines += list(getattr(module, "MEASURED", []))
    fuzz = sys.modules.get("tests.faults.test_fuzz")
    for what, seconds in sorted(getattr(fuzz, "SLOWEST", {}).items()):
        lines.append(f"fuzz     slowest {what}: {seconds * 1000:.0f} ms")
    if lines:
        terminalreporter.section("fault suite measurements")
        for line in lines:
            terminalreporter.write_line(line)
