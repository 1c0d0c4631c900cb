"""The human report in a terminal (rich): verdict, findings by severity with their fixes."""

from __future__ import annotations

import re
import sys

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from diagnostics._models import Progress, Report, Security, Severity

VERDICT_STYLE = {
    "pass": ("PASS", "bold green", "These settings work."),
    "warn": ("WARN", "bold yellow", "These settings work, with warnings."),
    "fail": ("FAIL", "bold red", "Outlook cannot send with these settings."),
}
SEVERITY_STYLE = {
    Severity.ERROR: ("✗", "red", "Problems"),
    Severity.WARN: ("!", "yellow", "Warnings"),
    Severity.INFO: ("i", "cyan", "Information"),
}
SECURITY_LABEL = {
    Security.STARTTLS: "STARTTLS",
    Security.SSL: "SSL/TLS",
    Security.NONE: "None",
    Security.AUTO: "Auto",
}


def print_report(
    report: Report, *, transcript: bool = False, console: Console | None = None
) -> None:
    """Print `report` for a person at a terminal."""
    console = console or Console(highlight=False, soft_wrap=False)
    inp = report.input
    name, style, words = VERDICT_STYLE[report.verdict]
    where = f"{inp.host or inp.target}:{inp.port}" if inp.port else (inp.host or inp.target)
    security = SECURITY_LABEL.get(inp.security, "?") if inp.security else "?"
    headline = Text.assemble(
        (f" {name} ", f"{style} reverse"),
        "  ",
        (escape(where), "bold"),
        f"  {security}",
        f"  ({report.timings_ms.get('total', 0) / 1000:.1f} s)",
    )
    console.print(headline)
    console.print(f"  {words}")
    if report.provider:
        console.print(f"  Provider: [bold]{escape(report.provider.name)}[/]")
    console.print()
    if report.recommended:
        rec = report.recommended
        table = Table.grid(padding=(0, 2))
        table.add_row("Outgoing server (SMTP)", f"[bold]{escape(rec.host)}[/]")
        table.add_row("Port", f"[bold]{rec.port}[/]")
        table.add_row("Encryption", f"[bold]{SECURITY_LABEL[rec.security]}[/]")
        console.print(Panel(table, title="Use these settings", border_style="green", expand=False))
        console.print()
    for severity in (Severity.ERROR, Severity.WARN, Severity.INFO):
        findings = [f for f in report.findings if f.severity is severity]
        if not findings:
            continue
        mark, colour, heading = SEVERITY_STYLE[severity]
        console.print(f"[bold {colour}]{heading}[/]")
        for finding in findings:
            console.print(
                f" [{colour}]{mark}[/] [bold]{escape(finding.title)}[/] [dim]({finding.id})[/]"
            )
            if finding.detail:
                console.print(f"   {escape(finding.detail)}")
            if finding.fix and severity is not Severity.INFO:
                console.print(f"   [green]Fix:[/] {_emphasis(finding.fix.summary)}")
                for number, step in enumerate(finding.fix.steps, 1):
                    console.print(f"     {number}. {_emphasis(step)}")
                if finding.fix.link:
                    console.print(f"     [dim]{escape(finding.fix.link)}[/]")
        console.print()
    if report.error_text_causes:
        console.print("[bold]The error the user saw[/]")
        for cause in report.error_text_causes:
            state = {True: "[green]confirmed[/]", False: "[yellow]not seen from here[/]"}.get(
                cause.confirmed, "[dim]not checked[/]"
            )
            console.print(f"  {escape(cause.code or '')} {escape(cause.cause)}: {state}")
        console.print()
    console.print(_probe_table(report))
    if transcript:
        console.print()
        console.print(_transcript(report))


def _emphasis(text: str) -> str:
    """Escape for rich markup, then show the knowledge base's *field names* in bold."""
    return re.sub(r"\*([^*\n]+)\*", r"[bold]\1[/]", escape(text))


def _probe_table(report: Report) -> Table:
    table = Table(title="What was tried", title_justify="left", show_edge=False)
    table.add_column("Port", justify="right")
    table.add_column("Encryption")
    table.add_column("Why")
    table.add_column("Result")
    table.add_column("TLS")
    table.add_column("AUTH")
    table.add_column("ms", justify="right")
    for probe in report.probes:
        ok = probe.outcome == "ok"
        table.add_row(
            (f"{escape(probe.host)}:" if probe.host else "") + str(probe.port),
            SECURITY_LABEL.get(probe.security, str(probe.security)),
            probe.role.replace("_", " "),
            f"[{'green' if ok else 'red'}]{probe.outcome.replace('_', ' ')}[/]",
            probe.tls_version or "-",
            escape(" ".join(probe.auth_after_tls or probe.auth_before_tls) or "-"),
            f"{probe.elapsed_ms:.0f}",
        )
    return table


def _transcript(report: Report) -> Group:
    lines = [Text("Transcript", style="bold")]
    for line in report.transcript:
        lines.append(
            Text.assemble(
                (f"{line.t_ms:8.1f} ", "dim"),
                (f"{line.probe or '':<16} ", "dim"),
                (f"{line.dir} ", "bold"),
                line.line,
            )
        )
    timings = ", ".join(f"{k} {v:.0f} ms" for k, v in report.timings_ms.items())
    lines.append(Text(f"Timings: {timings}", style="dim"))
    return Group(*lines)


class ProgressDisplay:
    """A spinner on stderr naming the steps still running; silent when stderr is no terminal."""

    def __init__(self) -> None:
        self.console = Console(file=sys.stderr)
        self.enabled = self.console.is_terminal
        self.running: dict[str, str] = {}
        self.status = None

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
            mark = "[green]✓[/]" if event.state == "done" else "[red]✗[/]"
            self.console.print(f"{mark} {escape(event.label)}: {escape(event.note)}")
        current = ", ".join(self.running.values()) or "Finishing…"
        self.status.update(escape(current))
