"""docs/report.md: each named scenario as the user sees it, generated from the snapshots.

    python -m tests.snapshots.report_doc > docs/report.md

tests/snapshots/test_snapshots.py fails when the committed file differs from this output
(and rewrites it along with the snapshots under SNAPSHOT_UPDATE=1).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.paths import REPO
from tests.snapshots.render import parse_snapshot
from tests.snapshots.scenarios import SCENARIOS

COMMAND = "python -m tests.snapshots.report_doc > docs/report.md"
DOC = REPO / "docs" / "report.md"
DATA = Path(__file__).parent / "data"
SHOWN = (
    ("slack_report", "In the Slack thread"),
    ("progress", "The progress message, once finished"),
)
TERMINAL_EXAMPLE = "ssl_on_starttls_port"  # the one scenario also shown in a terminal


def render_doc(data: Path = DATA) -> str:
    """The whole Markdown document (ends with a newline)."""
    lines = [
        "# The report, as the user sees it",
        "",
        f"<!-- Generated from tests/snapshots/data by `{COMMAND}`. Do not edit by hand. -->",
        "",
        "Each scenario below is a real diagnosis of local test servers (see",
        "`tests/snapshots/scenarios.py`), shown as the Slack report in the thread and the",
        "progress message above it; the last section shows one of them in a terminal.",
        "Slack's formatting is shown as its markup (`*bold*`, `_italic_`, `` `code` ``);",
        "buttons as `[ Label ]`; context lines in parentheses. Durations, addresses and",
        "dates are fixed so that the text is stable. The escalation post and the terminal",
        "report at 80 and 120 columns of every scenario are in `tests/snapshots/data/`.",
        "",
    ]
    lines += [f"- [{s.title}](#{s.name.replace('_', '-')})" for s in SCENARIOS]
    lines.append("- [In a terminal](#terminal)")
    for scenario in SCENARIOS:
        path = data / f"{scenario.name}.txt"
        if not path.exists():
            continue
        title, texts = parse_snapshot(path.read_text(encoding="utf-8"))
        lines += ["", f'<a id="{scenario.name.replace("_", "-")}"></a>', "", f"## {title}", ""]
        for key, heading in SHOWN:
            lines += [f"**{heading}**", "", "```text", texts[key].rstrip("\n"), "```", ""]
        lines.pop()
    example = data / f"{TERMINAL_EXAMPLE}.txt"
    if example.exists():
        title, texts = parse_snapshot(example.read_text(encoding="utf-8"))
        lines += ["", '<a id="terminal"></a>', "", "## In a terminal", ""]
        lines += [f"`smtpcheck check` at 80 columns: {title[0].lower()}{title[1:]}.", ""]
        lines += ["```text", texts["terminal_80"].rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_doc())
