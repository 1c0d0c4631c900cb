"""The finding reference (docs/findings.md), generated from the knowledge base's catalog.

    python -m diagnostics.knowledge.reference > docs/findings.md

One row per finding ID in findings.yaml, in catalog order: severity, title, what each
Outlook gets from fixes_*.yaml, provider and reply-variant overrides, and whether the ID is
in the contract's minimum set or an extension. tests/diagnostics/knowledge/test_reference.py
fails when the committed file differs from this output.
"""

from __future__ import annotations

import sys

from diagnostics._models import OutlookClient
from diagnostics.knowledge._kb import Knowledge
from diagnostics.knowledge._loader import load_knowledge
from diagnostics.knowledge._models import ClientSpec, FindingSpec, FixSpec

COMMAND = "python -m diagnostics.knowledge.reference > docs/findings.md"

_LEGEND = """\
Cells per Outlook (classic = classic Outlook for Windows, new = new Outlook for Windows,
mac, ios, android), from the fix that applies when no provider or reply variant is known:

- **steps**: what to change in that Outlook, step by step;
- **instead**: not applicable to that Outlook (or not an Outlook setting); the steps say
  what to do instead;
- **note**: nothing to do; a one-line explanation only;
- a trailing **?** marks text whose menu paths or claims are not verified in the facts base
  (status `unverified` or `third_party` in the data, or steps through the menus of an
  Outlook whose field names are unverified); users see "menu names may differ in your
  version" (or "not yet confirmed") under every unverified fix.

*Overrides* lists the providers and reply variants with a fix of their own. *Origin* says
whether the ID is in the contract's minimum set (`../shared/spec/contract.md`: never
renamed) or an extension of it."""


def _cell(spec: FixSpec | None, client: ClientSpec) -> str:
    if spec is None:
        return "—"
    unverified = spec.status != "verified" or (
        client.status == "unverified" and spec.applicable and bool(spec.steps)
    )
    if spec.applicable:
        word = "steps"
    elif spec.steps:
        word = "instead"
    else:
        word = "note"
    return word + ("?" if unverified else "")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _overrides(kb: Knowledge, finding: FindingSpec) -> str:
    entry = kb.fix_entry(finding.id)
    if entry is None:
        return ""
    parts = []
    if entry.providers:
        parts.append("providers: " + ", ".join(sorted(entry.providers)))
    if entry.variants:
        parts.append("variants: " + ", ".join(sorted(entry.variants)))
    return "; ".join(parts)


def render_reference(kb: Knowledge) -> str:
    """The whole Markdown document (ends with a newline)."""
    clients = list(OutlookClient)
    findings = kb.findings
    contract = sum(1 for f in findings if f.contract)
    header = ["ID", "Severity", "Category", "Title", *(c.value for c in clients), "Overrides",
              "Origin"]  # fmt: skip
    lines = [
        "# Finding IDs",
        "",
        f"<!-- Generated from diagnostics/knowledge/data by `{COMMAND}`. Do not edit by hand. -->",
        "",
        f"Every finding ID smtpcheck can report: {len(findings)} in all, {contract} from the"
        f" contract's minimum set and {len(findings) - contract} extensions. The severity is"
        " the usual one; where the code gives another in some cases, it follows after a slash.",
        "",
        _LEGEND,
        "",
        "Outlooks whose field names and menus are not confirmed by a source: "
        + (", ".join(c.value for c in clients if kb.client(c).status == "unverified") or "none")
        + ".",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for finding in findings:
        row = [
            f"`{finding.id}`",
            " / ".join(s.value for s in finding.severities),
            finding.category,
            _escape(finding.title),
            *(_cell(kb.fix_spec(finding.id, c), kb.client(c)) for c in clients),
            _overrides(kb, finding),
            "contract" if finding.contract else "extension",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Print the reference for the bundled knowledge base."""
    sys.stdout.write(render_reference(load_knowledge()))


if __name__ == "__main__":
    main()
