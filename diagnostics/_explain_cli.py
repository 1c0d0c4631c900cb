"""`smtpcheck explain`: what a pasted Outlook error or server reply means, probing nothing.

The text comes as the argument or on stdin; `--json` prints the Explanation (causes,
findings with their fixes, notes). Everything shown passed the sanitiser (the paste is the
user's, quoted replies a server's). Exit 0 whatever the text says; 2 for bad input.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from diagnostics.knowledge._explain import Explanation, explain_text
from diagnostics.knowledge._linear import MAX_TEXT
from diagnostics.sanitize import visible

# Read a little more than the parser uses, so "the text was cut" can be said.
_READ_LIMIT = MAX_TEXT * 4 + 1


class ExplainInputError(ValueError):
    """Text that cannot be explained (none given, not UTF-8): one line, exit 2."""


def read_text(argument: str | None, stdin: TextIO) -> str:
    """The error text from the argument, or from stdin when it is absent or "-"."""
    if argument is not None and argument != "-":
        text = argument
    else:
        try:
            text = stdin.read(_READ_LIMIT)
        except UnicodeDecodeError:
            raise ExplainInputError("the error text on stdin is not valid UTF-8") from None
    if not text.strip():
        raise ExplainInputError("no error text: give it as an argument or on stdin")
    return text


def to_json(result: Explanation) -> str:
    """The explanation as JSON: causes, findings (each with its fix), fixes, notes."""
    data = result.model_dump(mode="json")
    data["fixes"] = [fix.model_dump(mode="json") for fix in result.fixes]
    data["not_outgoing_settings"] = result.not_outgoing_settings
    return json.dumps(data, indent=2, ensure_ascii=False)


def to_text(result: Explanation) -> str:
    """Plain lines for a terminal, one idea per line."""
    lines: list[str] = []
    if not result.recognised:
        lines += [
            "Nothing in this text is a known Outlook error or server reply.",
            "Paste the whole message, including any code (0x800CCC0E) or reply (535 5.7.8 ...).",
        ]
    else:
        lines.append("What the error says:")
        for cause in result.causes:
            code = f"{visible(cause.code)}: " if cause.code else ""
            unconfirmed = "" if cause.status == "verified" else " (not confirmed by a vendor)"
            lines.append(f"  - {code}{visible(cause.cause)}{unconfirmed}")
    for note in result.notes:
        lines.append(f"Note: {visible(note)}")
    for finding in result.findings:
        fix = finding.fix
        if fix is None:
            continue
        lines += ["", f"{visible(finding.title)}", f"  {visible(fix.summary)}"]
        lines += [f"  {n}. {visible(step)}" for n, step in enumerate(fix.steps, 1)]
        if fix.link:
            lines.append(f"  More: {visible(fix.link)}")
    if result.truncated:
        lines.append(f"(Only the first {MAX_TEXT} characters were read.)")
    lines += [
        "",
        "Login not tested: explain probes nothing. To test the settings, run "
        "`smtpcheck check <server or address>`.",
    ]
    return "\n".join(lines) + "\n"


def run(argument: str | None, *, client: str, json_output: bool, stdin: TextIO) -> str:
    """The output for `smtpcheck explain`; raises ExplainInputError for bad input."""
    result = explain_text(read_text(argument, stdin), client=client)
    return to_json(result) + "\n" if json_output else to_text(result)


def main_stdin() -> TextIO:
    """stdin that refuses bytes that are not UTF-8 instead of guessing."""
    return open(sys.stdin.fileno(), encoding="utf-8", errors="strict", closefd=False)
