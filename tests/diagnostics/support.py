"""`smtpcheck` run by the tests: through its entry point in the test's own process (the exit
code, stdout and stderr are the same, without an interpreter's start each time), or as a real
process where the process is the point (the console script's stdout, stdin, imports)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from unittest import mock

from diagnostics import cli

PLAIN_TERMINAL = {"NO_COLOR": "1", "COLUMNS": "120"}


async def smtpcheck(*args: str) -> tuple[int, str, str]:
    """`smtpcheck ARGS` through its entry point, here: (exit code, stdout, stderr). It runs in a
    worker thread, so that the loopback servers on this test's event loop keep answering."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with (
            mock.patch.dict(os.environ, PLAIN_TERMINAL),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = cli.main(list(args))
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(run)


async def smtpcheck_process(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> tuple[int | None, str, str]:
    """Run the console script in its own process; return (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "diagnostics.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **PLAIN_TERMINAL, **(env or {})},
    )
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), timeout=60
    )
    return process.returncode, out.decode(), err.decode()
