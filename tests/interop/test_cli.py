"""`smtpcheck check ... --json` against the real peers: exit status, JSON, secrets."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.interop.conftest import Peers

pytestmark = pytest.mark.interop


def _smtpcheck(peers: Peers, *args: str, stdin: str | None = None) -> tuple[int, dict, str]:
    exe = shutil.which("smtpcheck")
    assert exe, "the smtpcheck console script is not installed (pip install -e .)"
    result = subprocess.run(
        [
            exe,
            "check",
            *args,
            "--nameserver",
            peers.dns,
            "--ca-bundle",
            str(peers.ca_bundle),
            "--allow-private",
            "--timeout",
            "10",
            "--json",
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    try:
        report = json.loads(result.stdout)  # --json: stdout is the report and nothing else
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not JSON:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.returncode, report, result.stdout + result.stderr


def _ids(report: dict) -> set[str]:
    return {f["id"] for f in report["findings"]}


def test_cli_good_server_exits_0(peers: Peers) -> None:
    code, report, out = _smtpcheck(peers, "smtp.good.test:587", "--security", "starttls")
    assert code == 0, out
    assert report["schema"] == "smtpcheck.report/1"
    assert report["verdict"] == "pass"
    assert report["input"]["host"] == "smtp.good.test"
    assert report["recommended"] is None
    entered = next(p for p in report["probes"] if p.get("role", "entered") == "entered")
    assert entered["address"] == "127.0.20.1"
    assert entered["tls_version"] == "TLSv1.3"


def test_cli_ipv6_implicit_tls(peers: Peers) -> None:
    code, report, out = _smtpcheck(peers, "smtp6.good.test:465", "--security", "ssl")
    assert code == 0, out
    entered = next(p for p in report["probes"] if p.get("role", "entered") == "entered")
    assert entered["address"] == "::1"
    assert entered["tls_version"] == "TLSv1.3"
    # Probes that connected at all connected over IPv6 (the name has only an AAAA record).
    assert {p["address"] for p in report["probes"] if p["address"]} == {"::1"}


def test_cli_expired_certificate_exits_1(peers: Peers) -> None:
    code, report, out = _smtpcheck(peers, "expired.good.test:587", "--security", "starttls")
    assert code == 1, out
    assert "tls.cert.expired" in _ids(report)
    (finding,) = [f for f in report["findings"] if f["id"] == "tls.cert.expired"]
    assert finding["severity"] == "error"
    assert finding["fix"] is not None and finding["fix"]["summary"]


def test_cli_ssl_on_starttls_port_recommends_starttls(peers: Peers) -> None:
    code, report, out = _smtpcheck(peers, "smtp.good.test:587", "--security", "ssl")
    assert code == 1, out
    assert "tls.mode.ssl_on_starttls_port" in _ids(report)
    assert report["recommended"] == {"host": "smtp.good.test", "port": 587, "security": "starttls"}


@pytest.mark.parametrize("right", [False, True], ids=["wrong-password", "right-password"])
def test_cli_password_from_stdin_never_echoed(peers: Peers, right: bool) -> None:
    password = peers.password if right else "Cli-Canary-Password-5150"
    code, report, out = _smtpcheck(
        peers,
        "smtp.good.test:587",
        "--security", "starttls",
        "--user", peers.user,
        "--password-stdin",
        stdin=password + "\n",
    )  # fmt: skip
    assert code == (0 if right else 1), out
    assert ("auth.ok" if right else "auth.failed.credentials") in _ids(report)
    assert password not in out
