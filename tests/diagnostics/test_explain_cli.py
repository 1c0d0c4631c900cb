"""`smtpcheck explain TEXT` (or stdin; --client; --json): no probing, exit 0, bad input 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def smtpcheck(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run(
        [sys.executable, "-m", "diagnostics.cli", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_explain_an_argument() -> None:
    done = smtpcheck("explain", "451 5.7.3 STARTTLS is required to send mail")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "STARTTLS" in out and "Login not tested" in out
    assert "smtp.sender.rejected" not in out


def test_explain_stdin_as_json_for_another_outlook() -> None:
    text = b"Receiving reported error (0x800CCC92) : 'Your e-mail server rejected your login.'"
    done = smtpcheck("explain", "--client", "new", "--json", stdin=text)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) >= {"causes", "findings", "fixes", "notes", "not_outgoing_settings"}
    assert data["client"] == "new" and data["not_outgoing_settings"] is True
    assert data["login_tested"] is False
    assert all(f["client"] == "new" for f in data["fixes"])


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("explain",), b"", "no error text"),
        (("explain", "-"), b"   \n", "no error text"),
        (("explain",), b"\xff\xfe535", "not valid UTF-8"),
        (("explain", "--client", "palm", "x"), b"", "palm"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], stdin: bytes, message: str) -> None:
    done = smtpcheck(*args, stdin=stdin)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_hostile_text_is_shown_visibly() -> None:
    done = smtpcheck("explain", "550 5.1.1 \x1b[2J\u202euser unknown")
    assert done.returncode == 0
    assert b"\x1b" not in done.stdout and "\u202e".encode() not in done.stdout
