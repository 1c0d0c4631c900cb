"""The engine's terminal commands (check, explain, compare, demo) as a typer command group.

The `smtpcheck` console script is assembled in the outer layer, where the Slack front end
adds `serve` and `store` to this group: the engine does not know its front ends.
`python -m diagnostics.cli` runs the engine's commands alone.

Exit status (contract): 0 no error finding, 1 at least one error finding, 2 bad input (one
line on stderr), 3 internal failure.
"""

from __future__ import annotations

import enum
import gc
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click import exceptions as click_errors  # typer vendors its own click

if TYPE_CHECKING:  # the engine loads when a command runs, not for --help
    from diagnostics import CheckRequest, EngineConfig, Report

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3

app = typer.Typer(
    name="smtpcheck",
    help="Diagnose why Outlook cannot send: SMTP submission checks with Outlook fix steps.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
)


class SecurityChoice(enum.StrEnum):
    starttls = "starttls"
    ssl = "ssl"
    none = "none"
    auto = "auto"


class ClientChoice(enum.StrEnum):
    classic = "classic"
    new = "new"
    mac = "mac"
    ios = "ios"
    android = "android"


class PlatformChoice(enum.StrEnum):
    windows = "windows"
    mac = "mac"


class BadInput(Exception):
    """Input the CLI refuses: printed as one line, exit 2."""


@app.command()
def check(
    target: Annotated[
        str, typer.Argument(help="host, host:port, [v6addr]:port or an email address")
    ],
    port: Annotated[int | None, typer.Option(help="port as entered in Outlook")] = None,
    security: Annotated[
        SecurityChoice | None, typer.Option(help="Outlook's encryption choice")
    ] = None,
    email: Annotated[str | None, typer.Option(help="sender address configured in Outlook")] = None,
    user: Annotated[str | None, typer.Option(help="user name for the credential test")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
    client: Annotated[
        ClientChoice, typer.Option(help="which Outlook the fix steps are for")
    ] = ClientChoice.classic,
    connect: Annotated[
        str | None, typer.Option(help="connect here instead of resolving TARGET")
    ] = None,
    nameserver: Annotated[
        list[str] | None, typer.Option(help="DNS server IP[:PORT] (repeatable)")
    ] = None,
    ca_bundle: Annotated[
        Path | None, typer.Option(help="extra trusted CA certificates (PEM)")
    ] = None,
    allow_private: Annotated[
        bool, typer.Option("--allow-private", help="permit private and loopback targets")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="budget for the whole diagnosis, seconds (default 20)")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="print the JSON report and nothing else")
    ] = False,
    error: Annotated[
        str | None, typer.Option("--error", help="the error text Outlook showed")
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth", help="'My outgoing server requires authentication' is not ticked"
        ),
    ] = False,
    print_client_check: Annotated[
        PlatformChoice | None,
        typer.Option(help="also print a read-only check for the user's computer"),
    ] = None,
    transcript: Annotated[
        bool, typer.Option("--transcript", help="show the SMTP transcript and timings")
    ] = False,
) -> None:
    """Run a diagnosis of the outgoing-mail settings and print a report."""
    from diagnostics import CheckRequest

    if password_stdin and not user:
        raise BadInput("--password-stdin needs --user")
    password = _read_password() if password_stdin else None
    config = _engine_config(
        nameserver=nameserver, ca_bundle=ca_bundle, allow_private=allow_private, timeout=timeout
    )
    fields = {"target": target, "port": port, "security": security, "email": email,
              "user": user, "password": password, "requires_auth": not no_auth,
              "client": client, "error_text": error, "connect": connect}  # fmt: skip
    try:
        request = CheckRequest.model_validate(fields)
    except ValueError as exc:
        raise BadInput(_first_error(exc)) from None
    report = _diagnose_and_print(request, config, json_output=json_output, transcript=transcript)
    if print_client_check is not None and not json_output:
        from diagnostics import InputError
        from diagnostics.client_check import client_check_script

        try:
            print(client_check_script(report, print_client_check.value))
        except InputError as exc:
            # The report stands (no server was found, say); only the extra script cannot be made.
            print(f"smtpcheck: no check for the user's computer: {exc}", file=sys.stderr)
    raise typer.Exit(EXIT_FINDINGS if report.verdict == "fail" else EXIT_OK)


def _engine_config(
    *,
    nameserver: list[str] | None,
    ca_bundle: Path | None,
    allow_private: bool,
    timeout: float | None,
) -> EngineConfig:
    """The engine's configuration: the environment's, with what the options override."""
    from diagnostics import EngineConfig

    overrides: dict[str, object] = {}
    if nameserver is not None:
        if not all(entry.strip() for entry in nameserver):
            # An empty value must not quietly fall back to the system's resolver.
            raise BadInput("--nameserver needs an address (IP[:PORT])")
        overrides["nameservers"] = ",".join(nameserver)
    if ca_bundle is not None:
        overrides["ca_bundle"] = ca_bundle
    if allow_private:
        overrides["allow_private"] = True
    if timeout is not None:
        overrides["budget"] = timeout
    try:
        return EngineConfig(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise BadInput(_first_error(exc)) from None


def _diagnose_and_print(
    request: CheckRequest, config: EngineConfig, *, json_output: bool, transcript: bool
) -> Report:
    """Run the diagnosis (with live progress on a terminal) and print its report."""
    import asyncio  # here, not at the top: --help needs no event loop

    from diagnostics import InputError
    from diagnostics._engine import diagnose

    try:
        if json_output:  # rich (~60 ms of imports) only for the terminal display
            report = asyncio.run(diagnose(request, config))
        else:
            from diagnostics import _render

            with _render.ProgressDisplay() as progress:
                report = asyncio.run(diagnose(request, config, on_progress=progress.update))
    except InputError as exc:
        # The CLI's user runs it on their own machine: the operator. A refusal's detail
        # (which private addresses a name resolves to) is theirs to see; Slack's users get
        # only the message (issue 12 item 6).
        raise BadInput(getattr(exc, "detail", None) or str(exc)) from None
    if json_output:
        sys.stdout.write(report.to_json() + "\n")
    else:
        _render.print_report(report, transcript=transcript)
    return report


@app.command()
def compare(
    report_json: Annotated[Path, typer.Argument(help="REPORT.json from smtpcheck check --json")],
    client_output: Annotated[
        Path, typer.Argument(help="what the client check printed on the user's computer")
    ],
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Compare the bot's view of the server with what the user's computer saw."""
    import json

    from diagnostics.client_check import (
        attach_fixes,
        load_report_json,
        parse_client_output,
        render_comparison_text,
    )
    from diagnostics.client_check import (
        compare as compare_views,
    )

    try:
        report = load_report_json(report_json)
        text = client_output.read_bytes()  # PowerShell 5.1's `>` writes UTF-16
    except (OSError, ValueError) as exc:
        raise BadInput(_first_error(exc)) from None
    # Fix steps for the Outlook named in the report, as the engine gives its own findings.
    result = attach_fixes(compare_views(report, parse_client_output(text)), report)
    if json_output:
        sys.stdout.write(json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
    else:
        print(render_comparison_text(result))
    failed = any(f.severity == "error" for f in result.findings)
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


@app.command()
def demo(
    json_output: Annotated[bool, typer.Option("--json", help="print the JSON report")] = False,
) -> None:
    """Check a deliberately misconfigured local server (loopback only; nothing to set up)."""
    import asyncio

    from diagnostics import _demo

    report = asyncio.run(_demo.run_demo())
    if json_output:
        sys.stdout.write(report.to_json() + "\n")
    else:
        from diagnostics import _render

        _render.print_report(report)


@app.command()
def explain(
    text: Annotated[
        str | None,
        typer.Argument(help="the error text Outlook showed; '-' or nothing reads it from stdin"),
    ] = None,
    client: Annotated[
        ClientChoice, typer.Option(help="which Outlook the fix steps are for")
    ] = ClientChoice.classic,
    json_output: Annotated[
        bool, typer.Option("--json", help="print causes, findings and fixes as JSON")
    ] = False,
) -> None:
    """Explain a pasted Outlook error or server reply, without probing anything."""
    from diagnostics import _explain_cli

    try:
        output = _explain_cli.run(
            text, client=client.value, json_output=json_output, stdin=_explain_cli.main_stdin()
        )
    except _explain_cli.ExplainInputError as exc:
        raise BadInput(str(exc)) from None
    sys.stdout.write(output)


NOT_UTF8 = "the password on stdin is not valid UTF-8 text (save it as UTF-8 and try again)"


def _read_password() -> str:
    """One line from stdin (a prompt on a terminal), decoded strictly as UTF-8.

    Bytes that are not UTF-8 are bad input (exit 2) with a message that names neither the
    byte nor where it was: they are part of the password.
    """
    try:
        if sys.stdin.isatty():
            import getpass

            return getpass.getpass("Password: ")
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream without bytes (tests replace stdin)
            return sys.stdin.readline().rstrip("\r\n")
        raw: bytes = stream.readline()
        line = raw.decode("utf-8")
    except UnicodeError:  # the decoder's message quotes the byte and its position
        raise BadInput(NOT_UTF8) from None
    return line.rstrip("\r\n")


def _first_error(exc: BaseException) -> str:
    """One plain line from a pydantic ValidationError or any other exception."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
        except (IndexError, TypeError):
            return str(exc).splitlines()[0]
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        location = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
        return f"{location}: {message}" if location and location not in message else message
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"
_set_for_a_short_run: set[str] = set()


def _short_lived() -> None:
    """The console script is a short-lived process (issue 16, measured on a check):

    - the cyclic collector would scan the objects of every module again and again while
      they are imported (~60-90 ms), and once more when the interpreter exits (~100 ms);
    - pydantic would look for plugins, reading the entry points of every installed
      distribution (~10 ms) when the first model is built (typer builds its own models
      with plugins off). A value the user set, even empty, is kept.

    A command that keeps running (serve) undoes both with `long_running`.
    """
    gc.disable()
    if _PLUGINS not in os.environ:
        os.environ[_PLUGINS] = "__all__"
        _set_for_a_short_run.add(_PLUGINS)


def long_running() -> None:
    """`_short_lived` undone: the collector on again, pydantic plugins looked for again.

    What lives after start-up is frozen once it has started, by a collection first
    (bot.server.settle_heap): frozen here, the garbage of the imports would be kept for good."""
    gc.enable()
    for name in _set_for_a_short_run:
        os.environ.pop(name, None)
    _set_for_a_short_run.clear()


def main(
    argv: list[str] | None = None, *, setup_logging: Callable[[], object] | None = None
) -> int:
    """Console-script entry point; never lets a traceback reach the user.

    SETUP_LOGGING installs the process's one log handler (the front end's); without it, a
    plain one at WARNING.
    """
    if argv is None:
        _short_lived()
    if setup_logging is None:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    else:
        setup_logging()
    try:
        return _main(argv)
    finally:
        if argv is None:
            gc.freeze()  # no collection at exit either (serve may have turned it on)


def _main(argv: list[str] | None) -> int:
    """`main` without the exit-time housekeeping."""
    try:
        # Without standalone mode, click returns typer.Exit's code instead of raising it.
        result = app(args=argv, standalone_mode=False)
    except BadInput as exc:
        print(f"smtpcheck: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("smtpcheck: aborted", file=sys.stderr)
        return EXIT_INPUT
    except click_errors.ClickException as exc:
        message = " ".join(exc.format_message().split())
        print(f"smtpcheck: error: {message}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the contract's exit 3: our failure, said in one line
        logging.getLogger("smtpcheck").debug("internal failure", exc_info=True)
        print(f"smtpcheck: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
