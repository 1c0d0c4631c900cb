"""The threaded report: verdict, findings by severity, fix steps, recommended settings."""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    SectionBlock,
)

from bot.views.labels import NOTHING_CHECKED_LINE, SEVERITY_ICON, VERDICT_LINE, VERDICT_WORD
from bot.views.text import (
    CONTEXT_TEXT_MAX,
    HEADER_MAX,
    MESSAGE_BLOCKS_MAX,
    SECTION_TEXT_MAX,
    clip,
    clip_escaped,
    code,
    escape,
    md,
    one_line,
    plain,
)
from diagnostics import SEVERITY_ORDER, Endpoint, Finding, Report, Severity
from diagnostics._models import ReportInput
from diagnostics.labels import client_label, security_label
from diagnostics.recommend import Advice, advice_for, nothing_checked
from diagnostics.wording import duration_text, shown_code

RERUN_ACTION = "report_rerun"
DETAILS_ACTION = "report_details"
ESCALATE_ACTION = "report_escalate"
# No outgoing server found for the address: open the form with the address filled in.
ENTER_SERVER_ACTION = "report_enter_server"
NO_SERVER_FOUND = "settings.no_server_found"  # the engine's finding ID
# The client-side check: show the script for one platform, or open the paste form.
CLIENT_SCRIPT_WINDOWS_ACTION = "client_check_windows"
CLIENT_SCRIPT_MAC_ACTION = "client_check_mac"
CLIENT_PASTE_ACTION = "client_check_paste"
CLIENT_CHECK_BLOCK = "client_check_actions"
SERVER_OK_FROM_HERE = "client.server_ok_from_here"  # the engine's finding ID
ERROR_TEXT_CAUSE = "input.error_text.cause"  # the engine's finding per cause of a pasted error
_SAFE_LINK = re.compile(r"^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]*)?$")


def report_message(
    report: Report,
    *,
    diagnosis_id: str,
    changes: list[str] | None = None,
    escalation: bool = True,
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the report posted in the thread."""
    host = report.input.host or report.input.target
    head = f"{VERDICT_WORD[report.verdict]}: {one_line(host)}"
    if report.input.port:
        head += f":{report.input.port}"
    top: list[Block] = [
        HeaderBlock(text=plain(head, HEADER_MAX)),
        SectionBlock(text=md(clip(_verdict_text(report), SECTION_TEXT_MAX))),
    ]
    top.append(SectionBlock(text=md(clip(_recommended_text(report), SECTION_TEXT_MAX))))
    if changes is not None:
        top.append(SectionBlock(text=md(_changes_text(changes))))
    if report.error_text_causes:
        top.append(SectionBlock(text=md(_causes_text(report))))
    hint = client_side_hint(report)
    if hint is not None:
        top += client_check_blocks(hint, diagnosis_id=diagnosis_id)
    bottom: list[Block] = [
        ContextBlock(
            elements=[
                md(
                    clip(
                        f"Fix steps for {escape(client_label(report.input.client))}"
                        f" · {len(report.probes)} connection tests"
                        f" · checked in {duration_text(report.timings_ms.get('total'))}"
                        f" · check {diagnosis_id[:8]}",
                        CONTEXT_TEXT_MAX,
                    )
                )
            ]
        ),
        # PASS too: it may still fail for them.
        _buttons(diagnosis_id, escalation=escalation, enter_server=report.has(NO_SERVER_FOUND)),
    ]
    room = MESSAGE_BLOCKS_MAX - len(top) - len(bottom) - 2  # a divider, an overflow note
    middle = _finding_blocks(report, room, skip=SERVER_OK_FROM_HERE if hint else None)
    blocks = [*top, DividerBlock(), *middle, *bottom]
    for block in blocks:
        block.validate_json()
    assert len(blocks) <= MESSAGE_BLOCKS_MAX
    fallback = f"smtpcheck: {VERDICT_WORD[report.verdict]} for {escape(one_line(host))[:200]}"
    return fallback, blocks


def checked_settings(entered: ReportInput) -> list[str]:
    """The entered settings that were checked, in the report's words: server, port, encryption."""
    # An address alone for which no server was found: the address is the only setting.
    server = entered.host or (None if entered.target == entered.email else entered.target)
    settings = [f"server {code(server)}"] if server else []
    if entered.port:
        settings.append(f"port {code(entered.port)}")
    if entered.security:
        settings.append(f"encryption {code(security_label(entered.security))}")
    return settings


def _verdict_text(report: Report) -> str:
    line = f"*{NOTHING_CHECKED_LINE if nothing_checked(report) else VERDICT_LINE[report.verdict]}*"
    entered = report.input
    settings = checked_settings(entered)
    if entered.email:
        settings.append(f"address {code(entered.email)}")
    text = f"{line}\nChecked: " + ", ".join(settings)
    if report.provider is not None:
        text += f"\nProvider: {escape(report.provider.name)}"
    return text


def _recommended_text(report: Report) -> str:
    """What to do with the settings entered: from the verdict and the probes (settings_advice),
    never from `recommended` alone, which is null both when they work and when nothing did."""
    said = advice_for(report)
    rec = said.settings
    if rec is None:
        tail = {Advice.NONE_WORKED: " The problems below say why."}.get(said.advice, "")
        return f"*{said.heading}.*{tail}"
    text = settings_text(rec, heading=said.heading)
    if said.source:
        text += f"\n_Where from:_ {escape(said.source)}"
    if said.after:
        text += f"\n*{said.after}*"
    if report.alternatives:
        others = "; ".join(
            (f"{code(alt.host)} " if alt.host != rec.host else "")
            + f"port {code(alt.port)} with {code(security_label(alt.security))}"
            for alt in report.alternatives
        )
        text += f"\n_Also works:_ {others}"
    return text


def settings_text(rec: Endpoint, *, heading: str = "Use these settings in Outlook") -> str:
    """The settings to enter in Outlook, as escaped mrkdwn."""
    return (
        f"*{heading}:*\n"
        f"• Outgoing server (SMTP): {code(rec.host)}\n"
        f"• Port: {code(rec.port)}\n"
        f"• Encryption: {code(security_label(rec.security))}"
    )


def _changes_text(changes: list[str]) -> str:
    if not changes:
        return "*Since the last run:* nothing changed."
    lines = [f"• {escape(c)}" for c in changes[:15]]
    if len(changes) > 15:
        lines.append(f"• …and {len(changes) - 15} more")
    return clip("*Since the last run:*\n" + "\n".join(lines), SECTION_TEXT_MAX)


def _causes_text(report: Report) -> str:
    lines = ["*About the error you pasted:*"]
    for cause in report.error_text_causes[:10]:
        mark = {
            True: "confirmed by the test",
            False: "not what the test saw",
            None: "could not tell",
        }
        shown = shown_code(cause.code)  # Outlook's and SMTP's codes, never the data's labels
        code_part = f"{code(shown)} " if shown else ""
        state = cause.note or mark[cause.confirmed]
        lines.append(f"• {code_part}{escape(cause.cause)} _({state})_")
    return clip("\n".join(lines), SECTION_TEXT_MAX)


def client_side_hint(report: Report) -> Finding | None:
    """The engine's "works from here, fails on your computer" finding, if it made one.

    The engine makes it from a pasted Outlook error or the form's "It fails on my computer"
    box (CheckRequest.user_reports_failure), with its fix attached.
    """
    return next((f for f in report.findings if f.id == SERVER_OK_FROM_HERE), None)


def client_check_blocks(hint: Finding, *, diagnosis_id: str) -> list[Block]:
    """The plain statement that the server works from here, and the client-check buttons."""
    # Said plainly whatever the engine's wording (once: not when its detail says it too);
    # its detail and any fix follow.
    plainly = "*The problem lies between your computer and the server.* "
    if _said(plainly, hint):
        plainly = ""
    tail = (
        f"{plainly}Press the button for your system, run the short read-only check it shows,"
        " then press *Paste the result*."
    )
    titled = hint.model_copy(update={"title": "The server is reachable and working from here"})
    text = finding_text(titled, limit=SECTION_TEXT_MAX - len(tail) - 1) + "\n" + tail
    buttons = [
        ButtonElement(
            text=plain("Check from my computer (Windows)", 75),
            action_id=CLIENT_SCRIPT_WINDOWS_ACTION,
            value=diagnosis_id,
        ),
        ButtonElement(
            text=plain("Check from my computer (Mac)", 75),
            action_id=CLIENT_SCRIPT_MAC_ACTION,
            value=diagnosis_id,
        ),
        ButtonElement(
            text=plain("Paste the result", 75),
            action_id=CLIENT_PASTE_ACTION,
            value=diagnosis_id,
            style="primary",
        ),
    ]
    return [
        SectionBlock(text=md(clip(text, SECTION_TEXT_MAX))),
        ActionsBlock(block_id=CLIENT_CHECK_BLOCK, elements=buttons),
    ]


def _said(sentence: str, finding: Finding) -> bool:
    """Does the finding's own text already say `sentence` (markup and case aside)?"""
    words = " ".join(sentence.strip(" *_.").lower().split())
    fix = finding.fix
    own = [finding.title, finding.detail, *([fix.summary, *fix.steps] if fix else [])]
    return any(words in " ".join(text.replace("*", "").lower().split()) for text in own)


def _finding_blocks(report: Report, room: int, *, skip: str | None = None) -> list[Block]:
    # The pasted error's causes have a section of their own (_causes_text): said once.
    hidden = {skip, ERROR_TEXT_CAUSE} if report.error_text_causes else {skip}
    findings = sorted(
        (f for f in report.findings if f.id not in hidden),
        key=lambda f: SEVERITY_ORDER[f.severity],
    )
    serious = [f for f in findings if f.severity is not Severity.INFO]
    notes = [f for f in findings if f.severity is Severity.INFO]
    blocks: list[Block] = []
    budget = room - (1 if notes else 0)
    shown = serious[: max(0, budget)]
    blocks += [SectionBlock(text=md(finding_text(f))) for f in shown]
    if notes:
        lines = [
            f"{SEVERITY_ICON[Severity.INFO]} {clip_escaped(one_line(f.title), 300)}" for f in notes
        ]
        blocks.append(SectionBlock(text=md(_fit_lines("*Notes*", lines, SECTION_TEXT_MAX))))
    left = len(serious) - len(shown)
    if left > 0:
        blocks.append(
            ContextBlock(
                elements=[md(f"{left} more findings: press *Technical details* to see them all.")]
            )
        )
    if not findings:
        where = " on the server's side" if skip else ""
        blocks.append(SectionBlock(text=md(f"No problems found{where}.")))
    return blocks


def finding_text(finding: Finding, *, limit: int = SECTION_TEXT_MAX) -> str:
    """One finding with its fix, as escaped mrkdwn within `limit` characters."""
    head = f"{SEVERITY_ICON[finding.severity]} *{clip_escaped(one_line(finding.title), 300)}*"
    parts = [head]
    if finding.detail:
        parts.append(clip_escaped(finding.detail, 900))
    fix = finding.fix
    if fix is None:
        return _fit_lines("", parts, limit)
    # The values to enter and the link must survive; long step lists give way first.
    tail = [
        f"• {clip_escaped(k, 80)}: {code(clip(v, 200))}" for k, v in list(fix.values.items())[:8]
    ]
    if fix.link and _SAFE_LINK.match(fix.link) and "|" not in fix.link and len(fix.link) < 500:
        tail.append(f"<{fix.link}|More help>")
    tail_text = clip("\n".join(tail), 1000) if tail else ""
    parts.append(f"*Fix:* {clip_escaped(fix.summary, 500)}")
    head_text = "\n".join(parts)
    steps = [f"{i}. {clip_escaped(step, 400)}" for i, step in enumerate(fix.steps, 1)]
    room = limit - len(head_text) - len(tail_text) - 2
    steps_text = _fit_lines("", steps, room) if steps else ""
    return "\n".join(p for p in (head_text, steps_text, tail_text) if p)


def _fit_lines(title: str, lines: list[str], limit: int) -> str:
    """Join lines under a title, dropping whole lines (never half an entity) past `limit`."""
    out = [title] if title else []
    size = len(title)
    for i, line in enumerate(lines):
        extra = len(line) + 1
        if size + extra > limit - 40:
            out.append(f"_…{len(lines) - i} more lines in Technical details_")
            break
        out.append(line)
        size += extra
    return "\n".join(out)


def _buttons(diagnosis_id: str, *, escalation: bool, enter_server: bool = False) -> ActionsBlock:
    elements = [
        ButtonElement(text=plain("Re-run", 75), action_id=RERUN_ACTION, value=diagnosis_id),
        ButtonElement(
            text=plain("Technical details", 75), action_id=DETAILS_ACTION, value=diagnosis_id
        ),
    ]
    if enter_server:  # what the user needs next comes first
        button = ButtonElement(
            text=plain("Enter the server name", 75),
            action_id=ENTER_SERVER_ACTION,
            value=diagnosis_id,
            style="primary",
        )
        elements.insert(0, button)
    if escalation:
        elements.append(
            ButtonElement(
                text=plain("Escalate to the help desk", 75),
                action_id=ESCALATE_ACTION,
                value=diagnosis_id,
                style="danger",
            )
        )
    return ActionsBlock(block_id="report_actions", elements=elements)


def changes_between(before: dict[str, Any], after: Report) -> list[str]:
    """What differs between an earlier report (JSON) and this one, in plain words."""
    changes: list[str] = []
    old_verdict = str(before.get("verdict", "")).upper()
    new_verdict = VERDICT_WORD[after.verdict]
    if old_verdict and old_verdict != new_verdict:
        changes.append(f"Verdict: {old_verdict} → {new_verdict}")
    old = {f.get("id"): f for f in before.get("findings", []) if isinstance(f, dict)}
    new = {f.id: f for f in after.findings}
    for finding_id, finding in old.items():
        if finding_id not in new:
            changes.append(f"Gone: {one_line(finding.get('title', finding_id))}")
    for finding_id, added in new.items():
        if finding_id not in old:
            changes.append(f"New: {one_line(added.title)}")
    old_rec = before.get("recommended") or None
    new_rec = after.recommended.model_dump(mode="json") if after.recommended else None
    if old_rec != new_rec:

        def show(rec: dict[str, Any] | None) -> str:
            if not rec:
                return "none"
            return f"{rec['host']}:{rec['port']} {security_label(rec['security'])}"

        changes.append(f"Recommended settings: {show(old_rec)} → {show(new_rec)}")
    return changes
