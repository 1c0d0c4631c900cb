"""The `smtpcheck` command as assembled in bot/cli.py: the engine's commands plus `serve`
and `store`, with the terminal commands still free of Slack and the database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

# What the terminal commands must never load: Slack, the web server, the database, metrics.
FRONT_END_ONLY = ("slack_sdk", "slack_bolt", "aiohttp", "sqlalchemy", "prometheus_client")


async def _modules_after(code: str) -> list[str]:
    """The heavy front-end modules loaded after CODE ran in a fresh interpreter."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import contextlib, io, sys\n"
        f"{code}\n"
        f"print(sorted({{m for m in sys.modules if m.split('.')[0] in {FRONT_END_ONLY!r}"
        " or m in ('bot.server', 'bot.app', 'bot.runner', 'bot.store')}))",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SMTPCHECK_NAMESERVERS": "127.0.0.1:9"},
    )
    out, err = await probe.communicate()
    assert probe.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1].replace("'", '"'))


async def test_terminal_commands_load_no_slack_and_no_database():
    # The assembled command: every engine command (check, explain, compare, demo, ...) loads
    # no Slack and no database, even when it runs (here a check refused as bad input).
    from typer.main import get_command

    from diagnostics.cli import app as engine_app

    engine_commands = set(get_command(engine_app).commands) - {"serve", "store"}  # type: ignore[attr-defined]
    assert {"check", "compare", "demo"} <= engine_commands
    runs = [[name, "--help"] for name in sorted(engine_commands)]
    for argv in [*runs, ["check", "mail.example.test:99999"]]:
        loaded = await _modules_after(
            "from bot.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), "
            "contextlib.redirect_stderr(io.StringIO()):\n"
            f"    main({argv!r})"
        )
        assert loaded == [], (argv, loaded)


def _console_script(code: str, *args: str, env: dict[str, str]) -> list[str]:
    """The last line CODE printed after the console script's main ran ARGS in a fresh
    interpreter, as words."""
    result = subprocess.run(
        [sys.executable, "-c", f"import gc, os, sys\n{code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return result.stdout.strip().splitlines()[-1].split()


def test_a_terminal_command_runs_without_the_collector_nor_a_plugin_search():
    code = (
        "from bot.cli import main\n"
        "main()\n"
        "import pydantic.plugin._loader as loader\n"
        "print(gc.isenabled(), os.environ.get('PYDANTIC_DISABLE_PLUGINS') or '-',"
        " 'diagnostics._models' in sys.modules, loader._plugins)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    args = ("check", "mail.example.test:99999")  # a model validates the input, and refuses it
    assert _console_script(code, *args, env=env) == ["False", "__all__", "True", "None"]
    # The user's own setting wins: here plugins are looked for (none is installed).
    user = {**env, "PYDANTIC_DISABLE_PLUGINS": ""}
    assert _console_script(code, *args, env=user) == ["False", "-", "True", "{}"]
    # Called from Python (tests, another program): nothing of the process is changed.
    assert _console_script(code.replace("main()", "main(['--help'])"), env=env)[:2] == ["True", "-"]


def test_serve_runs_with_the_collector_and_pydantic_plugins():
    code = (
        "import bot.server\n"
        "def serve(**options):\n"
        "    print(gc.isenabled(), os.environ.get('PYDANTIC_DISABLE_PLUGINS') or '-')\n"
        "    return 0\n"
        "bot.server.serve = serve\n"
        "from bot.cli import main\n"
        "sys.exit(main())"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    assert _console_script(code, "serve", env=env) == ["True", "-"]


def test_serve_and_store_are_smtpcheck_commands():
    """The console script is the composition root: the engine's commands plus the bot's."""
    import tomllib

    from typer.main import get_command

    from bot.cli import app

    root = Path(__file__).resolve().parents[2]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["smtpcheck"] == "bot.cli:main"
    group = get_command(app)
    assert {"check", "compare", "demo", "serve", "store"} <= set(group.commands)
    store = group.commands["store"]
    assert set(store.commands) == {"upgrade", "check", "purge"}


def test_the_console_script_module_runs_store_and_serve_help(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    top = run("--help")
    assert top.returncode == 0
    assert all(name in top.stdout for name in ("check", "compare", "demo", "serve", "store"))
    purge = run("store", "purge", "--days", "0")
    assert purge.returncode == 2 and purge.stderr.count("\n") == 1, purge.stderr
    assert "Traceback" not in purge.stderr
