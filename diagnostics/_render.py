"""The human report in a terminal (rich): verdict, what to enter, findings with their fixes.

Laid out for 80 columns first and wider when the terminal has room (up to MAX_WIDTH): text
wraps between words with a hanging indent, finding IDs are a dim suffix (never inside a
sentence), and the "What was tried" table is in plain words that fit its columns.
"""

from __future__ import annotations

import re
import sys

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.status import Status
from rich.style import Style
from rich.table import Table
from rich.text import Text

from diagnostics._assess import OAUTH_MECHANISMS
from diagnostics._models import Finding, ProbeSummary, Progress, Report, Severity
from diagnostics.labels import security_label
from diagnostics.recommend import Advice, advice_for, nothing_checked
from diagnostics.wording import (
    ROLE_WORDS,
    duration_text,
    probe_result_words,
    shown_code,
    tls_words,
)

MAX_WIDTH = 120
# Findings whose words a section of their own already shows (said once, not twice).
SHOWN_ELSEWHERE = frozenset({"input.error_text.cause"})
VERDICT_STYLE = {
    "pass": ("PASS", "bold green", "Sending works with these settings."),
    "warn": ("WARN", "bold yellow", "Sending works, with warnings."),
    "fail": ("FAIL", "bold red", "Outlook cannot send with these settings."),
}
NOTHING_CHECKED_WORDS = "No outgoing mail server was found for this address."
SEVERITY_STYLE = {
    Severity.ERROR: ("✗", "red", "Problems"),
    Severity.WARN: ("!", "yellow", "Warnings"),
    Severity.INFO: ("i", "cyan", "Information"),
}
CAUSE_STATE = {
    True: ("confirmed by the checks", "green"),
    False: ("not seen from here", "yellow"),
    None: ("could not be checked", "dim"),
}


def report_console(width: int | None = None) -> Console:
    """A console for the report: the terminal's width up to MAX_WIDTH (80 when piped)."""
    console = Console(highlight=False, soft_wrap=False, width=width)
    if width is None:
        console.width = min(console.width, MAX_WIDTH)
    return console


def print_report(
    report: Report, *, transcript: bool = False, console: Console | None = None
) -> None:
    """Print `report` for a person at a terminal."""
    console = console or report_console()
    for part in report_parts(report, transcript=transcript):
        console.print(part)


def report_parts(report: Report, *, transcript: bool = False) -> list[RenderableType]:
    """The report's pieces, top to bottom (a blank Text between sections)."""
    parts: list[RenderableType] = [*_headline(report), Text()]
    parts += _advice(report)
    for severity in (Severity.ERROR, Severity.WARN, Severity.INFO):
        findings = [
            f for f in report.findings if f.severity is severity and f.id not in SHOWN_ELSEWHERE
        ]
        if findings:
            parts += [_findings(severity, findings), Text()]
    if report.error_text_causes:
        parts += [_causes(report), Text()]
    if report.probes:
        parts.append(_probe_table(report))
        other = _other_servers(report)
        if other is not None:
            parts.append(other)
    if transcript:
        parts += [Text(), _transcript(report)]
    return parts


def _headline(report: Report) -> list[RenderableType]:
    inp = report.input
    name, style, words = VERDICT_STYLE[report.verdict]
    if nothing_checked(report):  # there are no settings to speak of
        words = NOTHING_CHECKED_WORDS
    host = inp.host or inp.target
    headline = Text.assemble(
        (f" {name} ", f"{style} reverse"),
        "  ",
        (f"{host}:{inp.port}" if inp.port else host, "bold"),
        f"  {security_label(inp.security)}" if inp.security else "",
        ("  · checked in " + duration_text(report.timings_ms.get("total")), "dim"),
    )
    lines: list[RenderableType] = [headline, Text("  " + words)]
    if report.provider:
        lines.append(Text.assemble("  Provider: ", (report.provider.name, "bold")))
    return lines


def _advice(report: Report) -> list[RenderableType]:
    said = advice_for(report)
    rec = said.settings
    if rec is None:
        colour = {Advice.KEEP: "green", Advice.KEEP_FIX_OTHER: "yellow"}.get(said.advice, "red")
        return [_hanging("→", colour, Text(said.heading + ".", style="bold")), Text()]
    table = Table.grid(padding=(0, 2))
    table.add_row("Outgoing server (SMTP)", Text(rec.host, style="bold"))
    table.add_row("Port", Text(str(rec.port), style="bold"))
    table.add_row("Encryption", Text(security_label(rec.security), style="bold"))
    if said.source:
        table.add_row("Where from", said.source)
    border = "yellow" if said.after else "green"
    parts: list[RenderableType] = [
        Panel(table, title=said.heading, border_style=border, expand=False)
    ]
    if said.after:
        parts.append(Text(said.after, style="bold"))
    if report.alternatives:
        others = "; ".join(
            (f"{alt.host} " if alt.host != rec.host else "")
            + f"port {alt.port} with {security_label(alt.security)}"
            for alt in report.alternatives
        )
        parts.append(Text(f"  Also works: {others}.", style="dim"))
    return [*parts, Text()]


def _role_words(role: str, *, found: bool) -> str:
    """Why a probe was tried; the setting of an address-only check was found, not entered."""
    if found and role == "entered":
        return "found"
    return ROLE_WORDS.get(role, role.replace("_", " "))


def _hanging(mark: str, colour: str, body: RenderableType) -> Table:
    """`mark` in its own narrow column, so wrapped lines align under the text."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=2, justify="right", no_wrap=True)
    grid.add_column(ratio=1)
    grid.add_row(Text(mark, style=colour), body)
    return grid


def _findings(severity: Severity, findings: list[Finding]) -> Group:
    mark, colour, heading = SEVERITY_STYLE[severity]
    parts: list[RenderableType] = [Text(heading, style=f"bold {colour}")]
    for finding in findings:
        parts.append(_hanging(mark, colour, _finding_body(finding, severity)))
    return Group(*parts)


def _finding_body(finding: Finding, severity: Severity) -> Group:
    title = Text(finding.title, style="bold")
    title.append(f"  {finding.id}", style="dim")  # the ID: only ever this dim suffix
    parts: list[RenderableType] = [title]
    if finding.detail:
        parts.append(Text(finding.detail))
    fix = finding.fix
    if fix is not None and severity is not Severity.INFO:
        parts.append(Text.assemble(("Fix: ", "green"), _emphasis(fix.summary)))
        if fix.steps:
            steps = Table.grid(padding=(0, 1))
            steps.add_column(justify="right", no_wrap=True)
            steps.add_column(ratio=1)
            for number, step in enumerate(fix.steps, 1):
                steps.add_row(f"{number}.", _emphasis(step))
            parts.append(steps)
        if fix.link:
            # A link a terminal can open even when folded (OSC 8), whatever the width.
            parts.append(Text(fix.link, style=Style(dim=True, link=fix.link), overflow="fold"))
    return Group(*parts)


def _emphasis(text: str) -> Text:
    """The knowledge base's *field names* in bold; everything else literal."""
    return Text.from_markup(re.sub(r"\*([^*\n]+)\*", r"[bold]\1[/]", escape(text)))


def _causes(report: Report) -> Group:
    parts: list[RenderableType] = [Text("The error the user saw", style="bold")]
    for cause in report.error_text_causes:
        state, colour = CAUSE_STATE[cause.confirmed]
        state = cause.note or state
        code = shown_code(cause.code)
        body = Text.assemble(
            (f"{code}: " if code else ""), cause.cause, " ", (f"({state})", colour)
        )
        parts.append(_hanging("•", colour, body))
    return Group(*parts)


def _probe_table(report: Report) -> Table:
    table = Table(
        title="What was tried",
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    # Short cells never wrap; only the details may, and only between words.
    table.add_column("Setting", no_wrap=True)
    table.add_column("Why", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Details", ratio=1)
    table.add_column("Time", justify="right", no_wrap=True)
    refused = _login_refused_on(report)
    for probe in report.probes:
        login_refused = probe.role in {"entered", "credentials"} and (
            (probe.port, str(probe.security)) in refused
        )
        table.add_row(
            f"{probe.port} {security_label(probe.security)}" + (" *" if probe.host else ""),
            _role_words(probe.role, found=report.discovery is not None),
            Text("login refused", style="red")
            if login_refused
            else Text(
                probe_result_words(probe, requires_auth=report.input.requires_auth),
                style=_result_style(probe),
            ),
            _probe_details(probe),
            duration_text(probe.elapsed_ms),
        )
    return table


def _login_refused_on(report: Report) -> set[tuple[object, str]]:
    """(port, security) of the settings on which the login test was refused."""
    return {
        (f.evidence.get("port"), str(f.evidence.get("security")))
        for f in report.findings
        if f.id.startswith("auth.failed")
    }


def _other_servers(report: Report) -> Text | None:
    """Probes of another server (the provider's documented one), said below the table: a
    long host name would squeeze its columns."""
    hosts = list(dict.fromkeys(p.host for p in report.probes if p.host))
    if not hosts:
        return None
    return Text("* on " + ", ".join(hosts) + ", not on the server entered", style="dim")


def _result_style(probe: ProbeSummary) -> str:
    if probe.outcome == "ok" and not (probe.certificate or {}).get("problems"):
        return "green"
    # Context probes (the other mode, the alternatives) are not the user's failures.
    return "red" if probe.role == "entered" else "dim"


def _probe_details(probe: ProbeSummary) -> str:
    parts = []
    if probe.tls_version:
        parts.append(tls_words(probe.tls_version))
    mechanisms = set(probe.auth_after_tls or probe.auth_before_tls)
    if mechanisms:  # which ones is for the JSON and --transcript
        parts.append("OAuth only" if mechanisms <= OAUTH_MECHANISMS else "login offered")
    return ", ".join(parts)


def _transcript(report: Report) -> Group:
    lines = [Text("Transcript", style="bold")]
    for t_ms, probe, direction, text in report.exchange():
        lines.append(
            Text.assemble(
                (f"{t_ms:8.1f} ", "dim"),
                (f"{probe or '':<16} ", "dim"),
                (f"{direction} ", "bold"),
                text,
            )
        )
    timings = ", ".join(f"{k} {duration_text(v)}" for k, v in report.timings_ms.items())
    lines.append(Text(f"Timings: {timings}", style="dim"))
    return Group(*lines)


def progress_line(event: Progress) -> Text:
    """One finished step: ✓ or ✗ for what the user entered, a neutral mark for context."""
    if event.state == "done":
        mark, colour = "✓", "green"
    elif event.state == "failed" and event.role in {None, "entered", "credentials"}:
        mark, colour = "✗", "red"
    else:  # the other mode or an alternative did not work: information, not a failure
        mark, colour = "·", "dim"
    line = Text.assemble((mark, colour), " ", event.label)
    if event.note:
        line.append(f": {event.note}")
    if event.duration_ms is not None:
        line.append(f" ({duration_text(event.duration_ms)})", style="dim")
    return line


class ProgressDisplay:
    """A spinner on stderr naming the steps still running; silent when stderr is no terminal."""

    def __init__(self) -> None:
        self.console = Console(file=sys.stderr)
        self.enabled = self.console.is_terminal
        self.running: dict[str, str] = {}
        self.status: Status | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            self.status = self.console.status("Starting…")
            self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(None, None, None)

    def update(self, event: Progress) -> None:
        if not self.enabled or self.status is None:
            return
        if event.state == "running":
            self.running[event.step] = event.label
        else:
            self.running.pop(event.step, None)
            self.console.print(progress_line(event))
        current = ", ".join(self.running.values()) or "Finishing…"
        self.status.update(escape(current))
