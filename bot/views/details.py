"""The "Technical details" modal: probes, timings and the SMTP transcript, in pages."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.views.labels import SEVERITY_ICON
from bot.views.report import finding_text
from bot.views.text import (
    SECTION_TEXT_MAX,
    clip_escaped,
    code,
    code_block,
    escape,
    fit_lines,
    md,
    modal,
    plain,
)
from diagnostics import Severity
from diagnostics.labels import security_label

DETAILS_CALLBACK = "smtpcheck_details"
PAGE_ACTION = "details_page"
CHUNK_CHARS = SECTION_TEXT_MAX - 100
CHUNKS_PER_PAGE = 12  # keeps a page near 35 kB, far below the view size limit
LINE_CHARS = 600


def transcript_chunks(report: dict[str, Any]) -> list[str]:
    """The transcript as escaped code blocks, each within a section's 3000 characters."""
    lines = []
    # The events ("connected to ...", "TLS established") between the lines, in time order.
    events = ({**event, "dir": "*"} for event in report.get("events", []))
    entries = [*report.get("transcript", []), *events]
    entries.sort(key=lambda entry: float(entry.get("t_ms", 0)))
    for entry in entries:
        line = str(entry.get("line", ""))
        if len(line) > LINE_CHARS:
            line = line[:LINE_CHARS] + f" …(+{len(line) - LINE_CHARS} chars)"
        probe = f"[{entry.get('probe')}] " if entry.get("probe") else ""
        lines.append(f"{float(entry.get('t_ms', 0)):8.1f} {probe}{entry.get('dir', '*')} {line}")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        cost = len(escape(line)) + 1
        if current and size + cost > CHUNK_CHARS - 10:
            chunks.append(code_block("\n".join(current), CHUNK_CHARS))
            current, size = [], 0
        current.append(line)
        size += cost
    if current:
        chunks.append(code_block("\n".join(current), CHUNK_CHARS))
    return chunks


def details_view(report: dict[str, Any], *, diagnosis_id: str, page: int = 0) -> View:
    """Page `page` of the details: page 0 starts with probes, timings and all findings."""
    chunks = transcript_chunks(report)
    pages = max(1, -(-len(chunks) // CHUNKS_PER_PAGE))
    page = min(max(0, page), pages - 1)
    blocks: list[Block] = []
    if page == 0:
        blocks += _overview(report)
    page_chunks = chunks[page * CHUNKS_PER_PAGE : (page + 1) * CHUNKS_PER_PAGE]
    blocks.append(
        SectionBlock(
            text=md(
                f"*Transcript* (page {page + 1} of {pages}; passwords are never recorded)"
                if chunks
                else "*Transcript:* nothing was exchanged with the server."
            )
        )
    )
    blocks += [SectionBlock(text=md(chunk)) for chunk in page_chunks]
    if pages > 1:
        buttons = []
        if page > 0:
            buttons.append(
                ButtonElement(
                    text=plain("Previous page", 75),
                    action_id=f"{PAGE_ACTION}_prev",
                    value=f"{diagnosis_id}:{page - 1}",
                )
            )
        if page < pages - 1:
            buttons.append(
                ButtonElement(
                    text=plain("Next page", 75),
                    action_id=f"{PAGE_ACTION}_next",
                    value=f"{diagnosis_id}:{page + 1}",
                )
            )
        blocks.append(ActionsBlock(block_id="details_pages", elements=buttons))
    return modal(
        DETAILS_CALLBACK,
        "Technical details",
        blocks[:100],
        close="Close",
        private_metadata=diagnosis_id,
    )


def _overview(report: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    probe_lines = []
    for probe in report.get("probes", [])[:30]:
        where = f"{probe.get('host')}:" if probe.get("host") else ""
        tls = f", {probe['tls_version']}" if probe.get("tls_version") else ""
        greeting = (
            f"\n    greeting {code(str(probe['greeting'])[:200])}" if probe.get("greeting") else ""
        )
        port = f"{where}{probe.get('port')}"
        address = probe.get("address") or "-"
        elapsed = float(probe.get("elapsed_ms", 0))
        probe_lines.append(
            f"• {code(port)} {escape(security_label(probe.get('security')))}"
            f" → *{escape(probe.get('outcome', '?'))}*{escape(tls)}"
            f" via {code(address)} in {elapsed:.0f} ms{greeting}"
        )
    blocks.append(SectionBlock(text=md(fit_lines("*Connection tests*", probe_lines))))
    timings = report.get("timings_ms", {})
    if timings:
        lines = [f"• {escape(k)}: {float(v):.0f} ms" for k, v in list(timings.items())[:40]]
        blocks.append(SectionBlock(text=md(fit_lines("*Timings*", lines))))
    blocks.append(DividerBlock())
    findings = report.get("findings", [])
    from diagnostics import Finding

    for raw in findings[:40]:
        try:
            finding = Finding.model_validate(raw)
        except ValueError:
            continue
        blocks.append(SectionBlock(text=md(finding_text(finding))))
        evidence = raw.get("evidence") or {}
        if evidence:
            text = ", ".join(f"{k}={v}" for k, v in list(evidence.items())[:20])
            blocks.append(ContextBlock(elements=[md(clip_escaped(text, 1900))]))
    if len(findings) > 40:
        blocks.append(ContextBlock(elements=[md(f"{len(findings) - 40} more findings not shown")]))
    if not findings:
        blocks.append(SectionBlock(text=md(f"{SEVERITY_ICON[Severity.INFO]} No findings.")))
    blocks.append(DividerBlock())
    return blocks[:85]
