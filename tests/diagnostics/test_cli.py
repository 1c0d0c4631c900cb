"""`smtpcheck` as a user runs it, against loopback servers and DNS: its entry point called in
this process for most tests (the exit code, stdout and stderr are the same, without the start
of an interpreter each), a real process where the process is the point (the console script's
stdout, a password on stdin, what importing the CLI loads)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.diagnostics.support import smtpcheck, smtpcheck_process
from tests.dns_server import DnsServer
from tests.factories import engine_flags
from tests.servers import TEST_PASSWORD, TEST_USER, ServerPool

NAME = "mail.example.test"


def common(dns: DnsServer, ca_bundle: Path) -> list[str]:
    return engine_flags(dns, ca_bundle, timeout=6)


async def test_json_output_is_the_report_and_nothing_else(dns, ca_bundle, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    code, out, err = await smtpcheck_process(
        "check", f"{NAME}:587", "--security", "starttls", "--json", *common(dns, ca_bundle)
    )
    assert code == 0, err
    report = json.loads(out)  # the whole of stdout is one JSON document
    assert report["schema"] == "smtpcheck.report/1"
    assert report["verdict"] in {"pass", "warn"}
    assert report["input"]["port"] == 587 and report["input"]["security"] == "starttls"


async def test_error_finding_exits_1_with_a_readable_report(dns, ca_bundle, smtp_servers):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    code, out, _err = await smtpcheck(
        "check",
        NAME,
        "--port",
        "587",
        "--security",
        "ssl",
        "--client",
        "mac",
        *common(dns, ca_bundle),
    )
    assert code == 1
    assert "FAIL" in out
    assert "tls.mode.ssl_on_starttls_port" in out
    assert "Use these settings" in out and "STARTTLS" in out
    # The fix is written for Outlook for Mac.
    assert "Tools" in out or "Accounts" in out


@pytest.mark.slow
async def test_password_from_stdin_never_reaches_any_output(dns, ca_bundle, smtp_servers):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    for extra in ((), ("--json",), ("--transcript",)):
        code, out, err = await smtpcheck_process(
            "check",
            f"{NAME}:587",
            "--user",
            TEST_USER,
            "--password-stdin",
            *common(dns, ca_bundle),
            *extra,
            stdin=TEST_PASSWORD + "\n",
        )
        assert code == 0, err
        assert TEST_PASSWORD not in out and TEST_PASSWORD not in err
    assert "auth.ok" in out or "accepted" in out
    assert len(server.auth_attempts) == 3


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["check", "mail.example.test", "--port", "70000"], "port"),
        (["check", "mail.example.test:abc"], "port"),
        (["check", "bad host name!"], "not a valid server name"),
        (["check", "a@b@c"], "email"),
        (["check", "mail.example.test", "--security", "tls13"], "security"),
        (["check", "mail.example.test", "--client", "thunderbird"], "client"),
        (["check", "127.0.0.1"], "loopback"),
        (["check", "mail.example.test:8080"], "8080"),
        (["check", "mail.example.test", "--nameserver", "not-an-ip"], "not-an-ip"),
        (["check", "mail.example.test", "--nameserver", ""], "--nameserver"),
        (["check", "mail.example.test", "--ca-bundle", "/nonexistent.pem"], "nonexistent"),
        (["check", "mail.example.test", "--password-stdin"], "--user"),
        (["check"], "TARGET"),
        (["frobnicate"], "frobnicate"),
    ],
)
async def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str):
    code, out, err = await smtpcheck(*args)  # SMTPCHECK_NAMESERVERS: 127.0.0.1:9 (conftest)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in err


@pytest.mark.slow
async def test_help_starts_without_importing_slack():
    code, out, _ = await smtpcheck_process("check", "--help")
    assert code == 0 and "--password-stdin" in out
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys, diagnostics.cli, diagnostics._engine; "
        "print(any(m.startswith(('slack', 'bot')) for m in sys.modules))",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await probe.communicate()
    assert out.decode().strip() == "False"


def test_the_engine_never_imports_the_bot():
    import ast

    root = Path(__file__).resolve().parents[2] / "diagnostics"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path}: {n}" for n in names if n == "bot" or n.startswith("bot.")]
    assert offenders == []
    assert len(list(root.rglob("*.py"))) > 20  # the walk saw the engine


async def test_demo_runs_on_loopback_only():
    code, out, err = await smtpcheck("demo", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert "tls.mode.ssl_on_starttls_port" in {f["id"] for f in report["findings"]}
    assert report["recommended"]["security"] == "starttls"
    assert all(p["address"] in (None, "127.0.0.1") for p in report["probes"])


async def test_client_check_script_is_printed(dns, ca_bundle, smtp_servers: ServerPool):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    code, out, err = await smtpcheck(
        "check", f"{NAME}:587", "--print-client-check", "windows", *common(dns, ca_bundle)
    )
    assert code == 0, err
    assert "Test-NetConnection" in out or "TcpClient" in out
    assert NAME in out


async def test_compare_reads_a_report_and_a_client_paste(
    dns, ca_bundle, smtp_servers: ServerPool, tmp_path: Path
):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    code, out, _ = await smtpcheck(
        "check",
        f"{NAME}:587",
        "--json",
        *common(dns, ca_bundle),
        "--error",
        "0x800CCC0E cannot connect to server",
    )
    report_file = tmp_path / "report.json"
    report_file.write_text(out)
    paste = tmp_path / "paste.txt"
    paste.write_text(
        f"ComputerName     : {NAME}\n"
        "RemoteAddress    : 203.0.113.9\n"
        "RemotePort       : 587\n"
        "InterfaceAlias   : Wi-Fi\n"
        "SourceAddress    : 192.168.1.20\n"
        "TcpTestSucceeded : False\n"
    )
    code, out, err = await smtpcheck("compare", str(report_file), str(paste))
    assert code == 1, (out, err)
    assert "587" in out
    assert "Fix:" in out and "Account Settings" in out  # steps for classic Outlook
    code, _, err = await smtpcheck("compare", str(tmp_path / "missing.json"), str(paste))
    assert code == 2 and len(err.strip().splitlines()) == 1


# What a terminal command imports (issue 16): speed is measured by bench/, never here; these
# say which libraries a command must not load, whatever they cost.
NOT_FOR_CHECK = ("slack_bolt", "slack_sdk", "aiohttp", "sqlalchemy", "rich", "pydantic_settings")


async def imported_by(*args: str, env: dict | None = None) -> tuple[int, str, set[str]]:
    """Run the console script (pyproject's entry point) under -X importtime."""
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    module, _, function = scripts["project"]["scripts"]["smtpcheck"].partition(":")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-X",
        "importtime",
        "-c",
        f"import sys; from {module} import {function} as main; sys.exit(main(sys.argv[1:]))",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in err.decode().splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "diagnostics" in modules or args == ("--help",)  # the parse saw the imports
    return process.returncode, out.decode(), modules


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


async def test_check_json_loads_neither_slack_nor_rich_nor_yaml_once_cached(
    dns, ca_bundle, smtp_servers: ServerPool, tmp_path
):
    server = await smtp_servers.start(port=587, mode="starttls")
    dns.zone.host(NAME, server.host)
    args = ("check", f"{NAME}:587", "--security", "starttls", "--json", *common(dns, ca_bundle))
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    reports = []
    for run in ("validating", "from the cache"):
        code, out, modules = await imported_by(*args, env=env)
        assert code == 0, (run, out)
        reports.append(json.loads(out))
        assert not top_level(modules) & set(NOT_FOR_CHECK), run
        assert "idna.uts46data" not in modules  # an ASCII name needs no IDNA mapping
        # A server is checked, not an address looked up: no ISP database, no XML parser.
        assert not modules & {"diagnostics._ispdb", "diagnostics._autoconfig", "defusedxml"}
    assert "yaml" not in top_level(modules)  # the second run read the validated cache
    assert list((tmp_path / "smtpcheck").glob("knowledge-*.json"))
    first, second = (dict(r, timings_ms=None, started_at=None, id=None) for r in reports)
    assert first["findings"] == second["findings"] and first["verdict"] == second["verdict"]


async def test_help_loads_neither_the_engine_nor_pydantic():
    code, out, modules = await imported_by("--help")
    assert code == 0 and "check" in out
    assert not top_level(modules) & {"pydantic", "pydantic_core", "dns", "cryptography", "yaml"}
    assert not top_level(modules) & set(NOT_FOR_CHECK)
    assert not modules & {"secrets", "hmac"}  # the log ids' randomness starts OpenSSL's hashes
