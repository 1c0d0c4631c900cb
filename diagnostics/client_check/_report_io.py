"""The CLI's round trip: a saved JSON report in, the comparison as plain text out."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from diagnostics._errors import InputError
from diagnostics._models import REPORT_SCHEMA, Report
from diagnostics.client_check._model import ComparisonResult
from diagnostics.labels import security_label

MAX_REPORT_BYTES = 10 * 1024 * 1024


def load_report_json(path: str | Path) -> Report:
    """A report saved with `smtpcheck check --json`, validated; InputError with one plain line."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_REPORT_BYTES:
        raise InputError(f"{path} is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MB")
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a JSON report ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schema") != REPORT_SCHEMA:
        found = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise InputError(f"{path} is not a {REPORT_SCHEMA} report (found {found!r})")
    try:
        return Report.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{path}: invalid report at {where}: {first['msg']}") from None


def render_comparison_text(result: ComparisonResult) -> str:
    """The comparison for a terminal: the verdict, each finding, the setting to use, notes."""
    lines = [result.verdict_text, ""]
    for finding in result.findings:
        lines.append(f"[{finding.severity.upper()}] {finding.title}  ({finding.id})")
        if finding.detail:
            lines.append(f"    {finding.detail}")
        hint = finding.evidence.get("product_hint")
        if hint:
            lines.append(f"    Where to look: {hint}")
        if finding.fix:
            lines.append(f"    Fix: {finding.fix.summary}")
            lines.extend(f"      {n}. {step}" for n, step in enumerate(finding.fix.steps, 1))
        lines.append("")
    if result.recommended:
        r = result.recommended
        label = security_label(r.security)
        lines += [
            "Outlook settings to use:",
            f"    Outgoing mail server (SMTP): {r.host}",
            f"    Port: {r.port}",
            f"    Encrypted connection: {label}",
            "",
        ]
    if result.notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in result.notes)
    return "\n".join(lines).rstrip() + "\n"
