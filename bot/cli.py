"""The `smtpcheck` command: the engine's terminal commands (check, compare, demo, ...) plus
the Slack app's `serve` and the store's operator commands (`store upgrade|check|purge`).

This is the composition root of the command line. Importing it loads neither Slack nor the
database: `serve` and `store` import what they need when they run, so `smtpcheck check`
starts as fast as the engine alone.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from bot.observability.logs import configure_logging
from diagnostics import cli as engine_cli

app = engine_cli.app
EXIT_STORE_FAILED = 1

store_app = typer.Typer(
    name="store",
    help="The bot's database: create or migrate the schema, check it, purge old rows.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(store_app)

UrlOption = Annotated[
    str | None, typer.Option(help="database URL (default: $SMTPCHECK_DATABASE_URL)")
]


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="HTTP port for POST /slack/events")] = 3000,
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="connect with Socket Mode (SLACK_APP_TOKEN)")
    ] = False,
) -> None:
    """Run the Slack app (HTTP mode, or Socket Mode)."""
    from bot.server import serve as serve_bot

    engine_cli.long_running()  # a terminal command runs without the collector, and more

    raise typer.Exit(serve_bot(port=port, socket_mode=socket_mode))


@store_app.command("upgrade")
def store_upgrade(url: UrlOption = None) -> None:
    """Create the database, or migrate it to the current schema."""
    _run_store_command("upgrade", url)


@store_app.command("check")
def store_check(url: UrlOption = None) -> None:
    """Say whether the database is at the current schema (exit 1 if not)."""
    _run_store_command("check", url)


@store_app.command("purge")
def store_purge(
    url: UrlOption = None,
    days: Annotated[
        int | None,
        typer.Option(min=1, help="keep this many days (default: $SMTPCHECK_RETENTION_DAYS, 90)"),
    ] = None,
) -> None:
    """Delete history, audit and outbox rows older than the retention."""
    _run_store_command("purge", url, days=days)


def _run_store_command(command: str, url: str | None, *, days: int | None = None) -> None:
    import asyncio

    from bot.store import StoreError
    from bot.store._maintenance import run_store_command

    try:
        print(asyncio.run(run_store_command(command, url=url, days=days)))
    except (StoreError, ValueError) as exc:
        print(f"smtpcheck store {command}: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_STORE_FAILED) from None


def main(argv: list[str] | None = None) -> int:
    """The console script: one redacting log handler for the whole process (WARNING unless
    SMTPCHECK_LOG_LEVEL says otherwise; `serve` makes it INFO), then the command."""

    def setup_logging() -> None:
        configure_logging(default_level=logging.WARNING)

    return engine_cli.main(argv, setup_logging=setup_logging)


if __name__ == "__main__":
    sys.exit(main())
