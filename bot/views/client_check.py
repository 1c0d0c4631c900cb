"""The check from the user's computer: the script modal, the paste form, the verdict message."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.views import text as t
from bot.views.escalation import mention
from bot.views.labels import SEVERITY_ICON
from bot.views.report import CLIENT_PASTE_ACTION, checked_settings, finding_text, settings_text
from diagnostics import SEVERITY_ORDER, Finding, Report, Severity
from diagnostics.client_check import (
    BEGIN_MARKER,
    END_MARKER,
    ClientObservation,
    ComparisonResult,
    Platform,
    client_check_script,
    targets_for,
)
from diagnostics.labels import client_label

SCRIPT_CALLBACK = "smtpcheck_client_script"
PASTE_CALLBACK = "smtpcheck_client_paste"
OUTPUT_BLOCK = "client_output"  # the paste form's input; its action_id is "value"
VALUE = "value"
OUTPUT_MAX = 3000  # Slack's limit for a plain_text_input
SAME_AS_SERVER = "client.same_as_server"
PLATFORM_LABEL = {"windows": "Windows", "mac": "macOS", "unknown": "an unknown system"}

_HOW_TO = {
    "windows": (
        "1. Open *Windows PowerShell*: press the Windows key, type `powershell` and press"
        " Enter.\n"
        "2. Copy the whole block below, paste it into the PowerShell window (right-click"
        " pastes) and press Enter. It takes up to a minute.\n"
        f"3. Copy what it printed, the lines `{BEGIN_MARKER}` to `{END_MARKER}` (mark them"
        " with the mouse, then press Enter), and press *Paste the result*."
    ),
    "mac": (
        "1. Open *Terminal*: Finder → Applications → Utilities → Terminal.\n"
        "2. Copy the whole block below, paste it into the Terminal window and press"
        " Return. It takes up to a minute.\n"
        f"3. Copy what it printed, the lines `{BEGIN_MARKER}` to `{END_MARKER}` (mark them"
        " with the mouse, then press ⌘C), and press *Paste the result*."
    ),
}


class ScriptTooLong(ValueError):
    """The script would not fit one code block, and a cut script must never be shown."""


def script_view(report: Report, platform: Platform, *, diagnosis_id: str) -> View:
    """The read-only check for `platform`, ready to copy; raises InputError for a bad host."""
    targets = targets_for(report)
    script = client_check_script(targets, platform)
    # Escaped as any text (Slack shows &lt; as <, so the copy is exact), never cut.
    body = t.escape(script).replace("```", "ˋˋˋ")
    block = f"```\n{body}\n```"
    if len(block) > t.SECTION_TEXT_MAX:
        raise ScriptTooLong(f"the {platform} check is {len(block)} characters")
    ports = [target.port for target in targets.ports]
    port_words = (
        f"port {ports[0]}"
        if len(ports) == 1
        else "ports " + ", ".join(map(str, ports[:-1])) + f" and {ports[-1]}"
    )
    safety = (
        f"Read-only: it only connects to {t.code(targets.host)} on {port_words} and prints what"
        " it saw. Nothing is installed or changed on your computer, no password is asked for,"
        " and nothing is sent anywhere else."
    )
    blocks: list[Block] = [
        SectionBlock(text=t.md(_HOW_TO[platform])),
        SectionBlock(block_id="client_script", text=t.md(block)),
        ContextBlock(elements=[t.md(t.clip(safety, t.CONTEXT_TEXT_MAX))]),
        _paste_button("client_script_actions", "Paste the result", diagnosis_id, primary=True),
    ]
    return t.modal(
        SCRIPT_CALLBACK,
        "Check from Windows" if platform == "windows" else "Check from a Mac",
        blocks,
        close="Close",
        private_metadata=diagnosis_id,
    )


def paste_view(*, diagnosis_id: str) -> View:
    """The form for the check's output; the diagnosis rides along in private_metadata."""
    return t.modal(
        PASTE_CALLBACK,
        "Paste the result",
        [
            SectionBlock(
                text=t.md(
                    "Paste what the check printed on your computer, from"
                    f" `{BEGIN_MARKER}` to `{END_MARKER}`. I compare it with what I saw"
                    " from here and post the answer in your thread."
                )
            ),
            InputBlock(
                block_id=OUTPUT_BLOCK,
                label=t.plain("The check's output", 2000),
                hint=t.plain(
                    "If it is longer than the box allows, paste as much as fits, starting at"
                    " the first line.",
                    2000,
                ),
                element=PlainTextInputElement(
                    action_id=VALUE,
                    multiline=True,
                    max_length=OUTPUT_MAX,
                    placeholder=t.plain(BEGIN_MARKER + " …", 150),
                ),
            ),
        ],
        submit="Compare",
        close="Cancel",
        private_metadata=diagnosis_id,
    )


def paste_error(text: str | None, observation: ClientObservation | None) -> str | None:
    """What is wrong with the paste, in plain words for the form; None when it can be used."""
    if not text or not text.strip():
        return f"Paste the output of the check, from {BEGIN_MARKER} to {END_MARKER}."
    if observation is None or not observation.empty:
        return None
    why = " ".join(t.one_line(note) for note in observation.notes)
    message = (
        "I could not read this as the output of the check. "
        + (why + " " if why else "")
        + f"Paste the lines from {BEGIN_MARKER} to {END_MARKER}."
    )
    return t.clip(message, 500)


def comparison_message(
    result: ComparisonResult,
    *,
    report: Report,
    observation: ClientObservation,
    diagnosis_id: str,
    user_id: str,
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the verdict posted in the user's thread; all text escaped."""
    findings = sorted(result.findings, key=lambda f: SEVERITY_ORDER[f.severity])
    blocks: list[Block] = [
        HeaderBlock(text=t.plain("Your computer compared with the check from here", t.HEADER_MAX)),
        SectionBlock(text=t.md(t.clip(f"*{t.clip_escaped(result.verdict_text, 2500)}*", 3000))),
    ]
    bottom = 4  # recommended, notes, context, buttons
    for finding in findings[: t.MESSAGE_BLOCKS_MAX - len(blocks) - bottom - 2]:
        blocks.append(SectionBlock(text=t.md(_finding_with_hint(finding))))
        if finding.id == SAME_AS_SERVER:
            blocks.append(SectionBlock(text=t.md(_server_side_text(report))))
    if result.recommended is not None:
        blocks.append(SectionBlock(text=t.md(t.clip(settings_text(result.recommended), 3000))))
    if result.notes:
        lines = [f"• {t.clip_escaped(t.one_line(note), 400)}" for note in result.notes[:10]]
        blocks.append(SectionBlock(text=t.md(t.fit_lines("*Notes*", lines))))
    blocks.append(
        ContextBlock(
            elements=[
                t.md(
                    t.clip(
                        f"Pasted by {mention(user_id)}"
                        f" · from {PLATFORM_LABEL.get(observation.platform, 'an unknown system')}"
                        f" · fix steps for {t.escape(client_label(report.input.client))}"
                        f" · check {t.escape(diagnosis_id[:8])}",
                        t.CONTEXT_TEXT_MAX,
                    )
                )
            ]
        )
    )
    blocks.append(_paste_button("client_compare_actions", "Paste another result", diagnosis_id))
    for block in blocks:
        block.validate_json()
    assert len(blocks) <= t.MESSAGE_BLOCKS_MAX
    fallback = "smtpcheck: " + t.clip_escaped(t.one_line(result.verdict_text), 1000)
    return fallback, blocks


def _finding_with_hint(finding: Finding) -> str:
    """The finding and its fix; for interception, where the product's switch usually is."""
    hint = finding.evidence.get("product_hint")
    if not isinstance(hint, str) or not hint:
        return finding_text(finding)
    where = f"*Where to look:* {t.clip_escaped(t.one_line(hint), 600)}"
    return finding_text(finding, limit=t.SECTION_TEXT_MAX - len(where) - 1) + "\n" + where


def _server_side_text(report: Report) -> str:
    """Back to the server-side findings: what the check from here found, or the settings."""
    serious = sorted(
        (
            f
            for f in report.findings
            if f.severity is not Severity.INFO and not f.id.startswith("client.")
        ),
        key=lambda f: SEVERITY_ORDER[f.severity],
    )
    same = "*Same result on both sides*, so back to the server-side findings."
    if serious:
        lines = [
            f"{SEVERITY_ICON[f.severity]} {t.clip_escaped(t.one_line(f.title), 300)}"
            for f in serious
        ]
        return t.fit_lines(
            f"{same} The check from here found (the report above has the fix steps):", lines
        )
    checked = checked_settings(report.input)
    text = (
        f"{same}\n*The check from here found nothing wrong with the server.* Compare Outlook's"
        " outgoing server settings with the ones checked (" + ", ".join(checked) + "), and"
        " check the user name and password."
    )
    if report.recommended is not None:
        text += "\n" + settings_text(report.recommended)
    return t.clip(text, t.SECTION_TEXT_MAX)


def _paste_button(block_id: str, text: str, diagnosis_id: str, *, primary: bool = False) -> Block:
    """The button that opens the paste form for DIAGNOSIS_ID."""
    button = ButtonElement(
        text=t.plain(text, 75),
        action_id=CLIENT_PASTE_ACTION,
        value=diagnosis_id,
        style="primary" if primary else None,
    )
    return ActionsBlock(block_id=block_id, elements=[button])
