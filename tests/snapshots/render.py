"""Every rendering of one report, as text a reviewer reads: Slack blocks and the terminal.

Slack blocks become lines (a header as `# …`, buttons as `[ … ]`, context as `(…)`), so a
snapshot shows what the user sees, in order. `user_words` is the same without what is
allowed to be technical: the terminal's dim finding-ID suffix.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from bot.escalation import summarize
from bot.views.escalation import EscalationInfo, escalation_message
from bot.views.progress import Step, progress_message, target_label
from bot.views.report import report_message
from diagnostics import _render
from diagnostics._models import Progress, Report
from tests.snapshots.scenarios import stable_text

DIAGNOSIS_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
USER_ID = "U0REQUESTER"
PERMALINK = "https://example.slack.com/archives/C0THREAD/p1760000000000100"
SECTIONS = (
    ("slack_report", "Slack: the report in the thread"),
    ("progress", "Slack: the progress message, finished"),
    ("escalation", "Slack: the escalation post in the help desk's channel"),
    ("terminal_80", "Terminal, 80 columns"),
    ("terminal_120", "Terminal, 120 columns"),
)


def blocks_text(blocks: list[Any]) -> str:
    lines: list[str] = []
    for block in blocks:
        data = block.to_dict() if hasattr(block, "to_dict") else block
        kind = data["type"]
        if kind == "header":
            lines.append(f"# {data['text']['text']}")
        elif kind == "section":
            if "text" in data:
                lines.append(data["text"]["text"])
            lines += [field["text"] for field in data.get("fields", [])]
        elif kind == "context":
            lines.append("(" + " ".join(e.get("text", "") for e in data["elements"]) + ")")
        elif kind == "divider":
            lines.append("----")
        elif kind == "actions":
            lines.append(" ".join(f"[ {e['text']['text']} ]" for e in data["elements"]))
        else:
            lines.append(f"<{kind}>")
        lines.append("")
    return "\n".join(lines)


def steps_from(events: list[Progress]) -> list[Step]:
    """The checklist as the bot's progress board keeps it: the latest event per step."""
    steps: dict[str, Step] = {}
    for event in events:
        steps[event.step] = Step.from_event(event)
    return list(steps.values())


def terminal_text(report: Report, width: int, *, dim: bool = True) -> str:
    """The terminal report at `width` columns; without the dim parts when `dim` is False."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, highlight=False)
    for part in _render.report_parts(report):
        for segment in console.render(part, console.options):
            if dim or segment.style is None or not segment.style.dim:
                out.write(segment.text)
    return out.getvalue()


def renderings(report: Report, events: list[Progress]) -> dict[str, str]:
    """Every rendering of the report, stable (see scenarios.stable_text)."""
    _, report_blocks = report_message(report, diagnosis_id=DIAGNOSIS_ID)
    _, progress_blocks = progress_message(
        user_id=USER_ID,
        target=target_label(report.input.model_dump(mode="json")),
        steps=steps_from(events),
        phase="finished",
        verdict=report.verdict,
        total_ms=report.timings_ms["total"],
    )
    summary, _ = summarize(report.to_json_dict())
    _, escalation_blocks = escalation_message(
        EscalationInfo(
            escalation_id="1", requester_id=USER_ID, summary=summary, permalink=PERMALINK
        )
    )
    texts = {
        "slack_report": blocks_text(report_blocks),
        "progress": blocks_text(progress_blocks),
        "escalation": blocks_text(escalation_blocks),
        "terminal_80": terminal_text(report, 80),
        "terminal_120": terminal_text(report, 120),
    }
    return {key: stable_text(text) for key, text in texts.items()}


def user_words(report: Report, events: list[Progress]) -> dict[str, str]:
    """What a user reads: the renderings, less the terminal's dim ID suffixes."""
    texts = renderings(report, events)
    for width in (80, 120):
        texts[f"terminal_{width}"] = stable_text(terminal_text(report, width, dim=False))
    return texts


def snapshot_file_text(title: str, texts: dict[str, str]) -> str:
    parts = [f"# {title}\n"]
    for key, heading in SECTIONS:
        parts.append(f"\n=== {key}: {heading} ===\n\n{texts[key]}")
    return "".join(parts)


def parse_snapshot(text: str) -> tuple[str, dict[str, str]]:
    """(title, renderings by key) of a snapshot file (the inverse of snapshot_file_text)."""
    head, *rest = text.split("\n=== ")
    texts = {}
    for chunk in rest:
        header, _, body = chunk.partition(" ===\n\n")
        texts[header.split(":")[0]] = body
    return head.removeprefix("# ").strip(), texts
