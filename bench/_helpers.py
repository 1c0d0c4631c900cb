"""Helper processes the rows start: each prints one JSON line when ready and stops by itself."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench._core import REPO, BenchError, child_env


class Helper:
    """`with Helper("bench._netdelay", "--rtt-ms", "50") as helper:`; helper.info: its JSON line."""

    def __init__(self, module: str, *args: str, ready_timeout: float = 60.0) -> None:
        self.command = [sys.executable, "-m", module, *args]
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> Helper:
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=child_env(),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the helper's own --lifetime bounds this
        if not line:
            self.process.wait(5)
            raise BenchError(f"{self.command[2]} did not start (exit {self.process.returncode})")
        self.info = json.loads(line)
        return self

    def ask(self, command: str) -> dict[str, Any]:
        """Send one line, read the helper's one-line JSON answer."""
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"{self.command[2]} stopped while asked {command!r}")
        return json.loads(line)

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()  # the helper stops when its stdin closes
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
