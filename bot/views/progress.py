"""The parent message: a live checklist while a diagnosis runs, then a one-line outcome."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from slack_sdk.models.blocks import Block, ContextBlock, SectionBlock

from bot.views.labels import VERDICT_LINE, VERDICT_WORD
from bot.views.text import CONTEXT_TEXT_MAX, SECTION_TEXT_MAX, clip_escaped, escape, md
from diagnostics import Verdict
from diagnostics._models import Progress
from diagnostics.labels import security_label
from diagnostics.wording import duration_text

STATE_ICON = {
    "running": ":hourglass_flowing_sand:",
    "done": ":white_check_mark:",
    "failed": ":x:",
    "skipped": ":heavy_minus_sign:",
}
# A setting the user did not enter (the other mode, the alternatives) is context: when it
# does not work, that is information, not the user's failure.
CONTEXT_FAILED_ICON = ":white_circle:"
USERS_OWN = frozenset({None, "entered", "credentials"})  # roles of the user's own steps
Phase = Literal["queued", "running", "finished", "refused", "interrupted", "error"]
MAX_STEPS_SHOWN = 25


@dataclasses.dataclass(slots=True)
class Step:
    step: str
    label: str
    state: str
    elapsed_ms: float = 0.0  # since the check started
    note: str = ""
    duration_ms: float | None = None  # how long this step took, once it ended
    role: str | None = None  # for probes: entered, mode_check, alternative, provider, ...

    @classmethod
    def from_event(cls, event: Progress) -> Step:
        return cls(
            step=event.step,
            label=event.label,
            state=event.state,
            elapsed_ms=event.elapsed_ms,
            note=event.note,
            duration_ms=event.duration_ms,
            role=event.role,
        )

    @property
    def icon(self) -> str:
        if self.state == "failed" and self.role not in USERS_OWN:
            return CONTEXT_FAILED_ICON
        return STATE_ICON.get(self.state, ":grey_question:")


def target_label(fields: dict[str, Any]) -> str:
    """What was checked, in one line: host:port security, or the address."""
    host = fields.get("host") or fields.get("target") or "?"
    parts = [f"{host}:{fields['port']}" if fields.get("port") else str(host)]
    if fields.get("security"):
        parts.append(security_label(fields["security"]))  # Outlook's word, not the value
    if fields.get("email") and fields.get("email") != host:
        parts.append(f"({fields['email']})")
    return " ".join(parts)


def progress_message(
    *,
    user_id: str,
    target: str,
    steps: list[Step],
    phase: Phase,
    verdict: Verdict | None = None,
    message: str = "",
    total_ms: float | None = None,
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for the parent message in its current phase."""
    who = f"<@{user_id}>" if user_id else "someone"
    title = f"*Outlook sending check* for {who}: `{clip_escaped(target, 300)}`"
    if phase == "queued":
        status = ":hourglass: Waiting for a free slot…"
    elif phase == "running":
        status = ":mag: Checking…"
    elif phase == "finished" and verdict is not None:
        took = f" · checked in {duration_text(total_ms)}" if total_ms is not None else ""
        status = f"{VERDICT_LINE[verdict]}{took}. Full report in the thread."
    elif phase == "refused":
        status = f":no_entry: {clip_escaped(message, 1500)}"
    elif phase == "interrupted":
        status = ":warning: The check was interrupted (the bot restarted). Please run it again."
    else:
        status = f":warning: {clip_escaped(message or 'The check failed unexpectedly.', 1500)}"
    blocks: list[Block] = [SectionBlock(text=md(title + "\n" + status))]
    lines = []
    shown = steps[-MAX_STEPS_SHOWN:]
    for step in shown:
        timing = ""
        if step.state != "running" and step.duration_ms is not None:
            timing = f" _{duration_text(step.duration_ms)}_"
        note = f" — {escape(step.note)}" if step.note else ""
        lines.append(f"{step.icon} {escape(step.label)}{note}{timing}")
    if lines:
        text = "\n".join(lines)
        if len(steps) > len(shown):
            text = f"_{len(steps) - len(shown)} earlier steps not shown_\n" + text
        blocks.append(SectionBlock(text=md(_fit(text, SECTION_TEXT_MAX))))
    if phase in {"queued", "running"}:
        blocks.append(
            ContextBlock(
                elements=[md(_fit("Results will appear in the thread.", CONTEXT_TEXT_MAX))]
            )
        )
    words = {
        "queued": "waiting",
        "running": "checking",
        "finished": VERDICT_WORD[verdict] if verdict is not None else "finished",
        "refused": "not checked",
        "interrupted": "interrupted",
        "error": "failed",
    }
    fallback = f"Outlook sending check of {clip_escaped(target, 200)}: {words.get(phase, phase)}"
    for block in blocks:
        block.validate_json()
    return fallback, blocks


def _fit(text: str, limit: int) -> str:
    """Cut an already escaped multi-line text at a line boundary."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 2]
    newline = cut.rfind("\n")
    return (cut[:newline] if newline > 0 else cut) + "\n…"
