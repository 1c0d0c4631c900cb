"""The read-only check the user runs on their own computer (PowerShell or macOS shell).

Both scripts only connect to the one server the user named, on the candidate ports, and
print what they saw between our marker lines. Nothing is installed or written, nothing is
sent anywhere else, and nothing is sent over a TLS session: the certificate is only read.
"""

from __future__ import annotations

import re

from diagnostics._errors import InputError
from diagnostics._models import (
    DEFAULT_SECURITY_FOR_PORT,
    Report,
    Security,
    normalize_hostname,
)
from diagnostics.client_check._model import (
    BEGIN_MARKER,
    END_MARKER,
    ClientTargets,
    Platform,
    TargetPort,
)

# What may appear inside the quotes of the generated scripts: a normalized host name or IP
# literal. Checked again here (defence in depth) even though normalize_hostname ran, because
# an IPv6 scope ID ("fe80::1%anything") passes normalize_hostname with arbitrary text.
_SAFE_HOST = re.compile(r"[a-z0-9][a-z0-9.:-]{0,252}")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
# Ports the check tries besides the one entered: the submission ports Outlook can use.
CANDIDATE_PORTS = (587, 465)
EXTRA_PORTS = (2525, 25)  # only when the report shows they matter


def safe_host(value: str) -> str:
    """Return the normalized host, or raise InputError for anything that is not plainly one."""
    if not isinstance(value, str) or _CONTROL_OR_SPACE.search(value.strip()) or "\n" in value:
        raise InputError("the server name contains a space, line break or control character")
    try:
        host = normalize_hostname(value)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if "%" in host or not _SAFE_HOST.fullmatch(host):
        raise InputError(f"'{value.strip()}' is not a plain server name or IP address")
    return host


def _check_security(
    port: int, *, working: dict[int, Security], entered: Security | None
) -> Security:
    """How the check reaches TLS on a port: as seen working from here, else the convention."""
    if port in working:
        return working[port]
    if port in DEFAULT_SECURITY_FOR_PORT:
        return DEFAULT_SECURITY_FOR_PORT[port]
    if entered in (Security.SSL, Security.STARTTLS):
        return entered
    return Security.STARTTLS


def targets_for(report: Report) -> ClientTargets:
    """The server and candidate ports the user's computer should test, from a report."""
    host = report.input.host or (report.recommended.host if report.recommended else None)
    if not host:
        raise InputError("the report names no server to test from the user's computer")
    # Probes of the provider's documented host test another server; leave them out.
    probes = [p for p in report.probes if p.role != "provider"]
    working: dict[int, Security] = {}
    for probe in probes:
        if probe.outcome == "ok" and probe.security in (Security.SSL, Security.STARTTLS):
            working.setdefault(probe.port, probe.security)
    entered = report.input.security
    ports: list[int] = []
    if report.input.port:
        ports.append(report.input.port)
    ports.extend(CANDIDATE_PORTS)
    mentioned = {p.port for p in probes}
    if report.recommended:
        mentioned.add(report.recommended.port)
    ports.extend(p for p in EXTRA_PORTS if p in mentioned)
    ports.extend(sorted(mentioned))
    unique = list(dict.fromkeys(ports))[:8]
    return ClientTargets(
        host=safe_host(host),
        ports=tuple(
            TargetPort(port=p, security=_check_security(p, working=working, entered=entered))
            for p in unique
        ),
    )


def _targets(report_or_targets: Report | ClientTargets | str) -> ClientTargets:
    if isinstance(report_or_targets, Report):
        return targets_for(report_or_targets)
    if isinstance(report_or_targets, ClientTargets):
        safe_host(report_or_targets.host)
        return report_or_targets
    if isinstance(report_or_targets, str):
        return ClientTargets(
            host=safe_host(report_or_targets),
            ports=tuple(
                TargetPort(port=p, security=DEFAULT_SECURITY_FOR_PORT[p]) for p in CANDIDATE_PORTS
            ),
        )
    raise TypeError(
        f"expected a Report, ClientTargets or host name, not {type(report_or_targets)!r}"
    )


def client_check_script(report_or_targets: Report | ClientTargets | str, platform: Platform) -> str:
    """A short read-only script for the user's own computer; its output feeds the parser."""
    targets = _targets(report_or_targets)
    host = safe_host(targets.host)
    if platform == "windows":
        return _windows(host, targets.ports)
    if platform == "mac":
        return _mac(host, targets.ports)
    raise InputError(f"unknown platform {platform!r} (expected windows or mac)")


# --------------------------------------------------------------------------- Windows

# Windows PowerShell 5.1 compatible, built-ins only. Paste into a PowerShell window.
# The certificate callback returns $true only so the handshake completes and the
# certificate can be read; nothing is ever written to the TLS stream. `rd` returns its
# lines with `,$r` and callers wrap it in @(): PowerShell unrolls a one-line reply to a bare
# string, and $g[-1] would then be its last character.
_WINDOWS = r"""& {
$h = '__HOST__'
$ports = @(__PORTS__)
$implicit = @(__IMPLICIT__)
'__BEGIN__'; "HOST $h"; 'CLIENT windows'
function rd($s) { $r = @(); do { $b = ''; while (($c = $s.ReadByte()) -ge 0 -and $c -ne 10) { if ($c -ne 13) { $b += [char]$c } }; $r += $b } while ($c -ge 0 -and $b -match '^\d{3}-' -and $r.Count -lt 100); ,$r }
function wr($s, $t) { $d = [Text.Encoding]::ASCII.GetBytes("$t`r`n"); $s.Write($d, 0, $d.Length) }
function why($e) { $x = $e.Exception; while ($x.InnerException) { $x = $x.InnerException }; ('' + $x.GetType().Name + ' ' + $x.SocketErrorCode + ': ' + $x.Message) -replace '\s+', ' ' }
foreach ($p in $ports) {
  $t = New-Object Net.Sockets.TcpClient; $st = 'SMTP'
  try {
    $a = $t.BeginConnect($h, $p, $null, $null)
    if (-not $a.AsyncWaitHandle.WaitOne(5000)) { "PORT $p TCP FAIL timeout"; continue }
    try { $t.EndConnect($a) } catch { "PORT $p TCP FAIL $(why $_)"; continue }
    "PORT $p TCP OK $($t.Client.RemoteEndPoint)"
    $s = $t.GetStream(); $s.ReadTimeout = 10000
    if ($implicit -notcontains $p) {
      $g = @(rd $s); "SMTP $p greeting=$($g[-1])"
      wr $s 'EHLO smtpcheck.invalid'; $e = @(rd $s)
      if (-not ($e -match '^250[ -]STARTTLS')) { "SMTP $p starttls=no"; continue }
      wr $s 'STARTTLS'; $r = @(rd $s)
      if ($r[-1] -notmatch '^220') { "SMTP $p starttls=refused $($r[-1])"; continue }
    }
    $st = 'TLS'; $v = @{ e = '' }
    $cb = [Net.Security.RemoteCertificateValidationCallback]{ $v.e = [string]$args[3]; $true }
    $l = New-Object Net.Security.SslStream($s, $false, $cb)
    $l.AuthenticateAsClient($h, $null, [Security.Authentication.SslProtocols]'Tls, Tls11, Tls12', $false)
    $c = New-Object Security.Cryptography.X509Certificates.X509Certificate2 $l.RemoteCertificate
    "TLS $p OK $($l.SslProtocol)"
    "CERT $p subject=$($c.Subject)"
    "CERT $p issuer=$($c.Issuer)"
    "CERT $p notafter=" + $c.NotAfter.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ', [Globalization.CultureInfo]::InvariantCulture)
    "CERT $p sha256=" + (-join ([Security.Cryptography.SHA256]::Create().ComputeHash($c.RawData) | % { $_.ToString('X2') }))
    "CERT $p windows_check=$($v.e)"
  } catch { "$st $p FAIL $(why $_)" } finally { $t.Close() }
}
'__END__'
}
"""  # noqa: E501 (PowerShell lines are kept whole for readability)


def _windows(host: str, ports: tuple[TargetPort, ...]) -> str:
    implicit = [t.port for t in ports if t.security is Security.SSL]
    return (
        _WINDOWS.replace("__HOST__", host)
        .replace("__PORTS__", ", ".join(str(t.port) for t in ports))
        .replace("__IMPLICIT__", ", ".join(str(p) for p in implicit))
        .replace("__BEGIN__", BEGIN_MARKER)
        .replace("__END__", END_MARKER)
    )


# --------------------------------------------------------------------------- macOS

# POSIX sh that also runs unchanged when pasted into zsh (macOS' default shell): no comments
# (interactive zsh does not allow them), ${...} braces everywhere (zsh reads "$H:h" as a
# modifier), no unquoted word splitting, and no variable names zsh reserves (HOST, status).
# `nc -G` is macOS' connect timeout; perl's alarm bounds openssl, which has no timeout of its
# own; openssl x509 reads the certificate from s_client's output (LibreSSL accepts these flags).
_MAC = r"""SC_H='__HOST__'
sc_t() { if command -v perl >/dev/null 2>&1; then perl -e 'alarm shift; exec @ARGV' 15 "$@"; else "$@"; fi; }
printf '%s\nHOST %s\nCLIENT mac\n' '__BEGIN__' "${SC_H}"
for SC_P in __PORTS__; do
  if SC_R=$(nc -vz -G 5 "${SC_H}" "${SC_P}" 2>&1); then SC_OK=OK; else SC_OK=FAIL; fi
  printf 'PORT %s TCP %s\n' "${SC_P}" "${SC_OK}"
  printf '%s\n' "${SC_R}" | grep -E 'succeeded|failed|refused|timed out|getaddrinfo' | sed "s/^/NC ${SC_P} /"
  if [ "${SC_OK}" = OK ]; then
    case " __IMPLICIT__ " in
      *" ${SC_P} "*) SC_O=$(sc_t openssl s_client -connect "__CONNECT__:${SC_P}" __SNI__</dev/null 2>&1) ;;
      *) SC_O=$(sc_t openssl s_client -starttls smtp -connect "__CONNECT__:${SC_P}" __SNI__</dev/null 2>&1) ;;
    esac
    SC_C=$(printf '%s\n' "${SC_O}" | openssl x509 -noout -issuer -subject -enddate -fingerprint -sha256 2>/dev/null)
    if [ -n "${SC_C}" ]; then printf '%s\n' "${SC_C}" | sed "s/^/CERT ${SC_P} /"
    else printf 'TLS %s FAIL %s\n' "${SC_P}" "$(printf '%s\n' "${SC_O}" | grep -iE 'error|errno|STARTTLS|refused|timed out' | head -n 1)"; fi
  fi
done
printf '%s\n' '__END__'
"""  # noqa: E501 (shell lines are kept whole for readability)


def _mac(host: str, ports: tuple[TargetPort, ...]) -> str:
    implicit = " ".join(str(t.port) for t in ports if t.security is Security.SSL)
    is_ip = ":" in host or host.replace(".", "").isdigit()
    connect = f"[{host}]" if ":" in host else host
    # SNI carries names only; an IP literal is sent without it.
    sni = "" if is_ip else f"-servername '{host}' "
    return (
        _MAC.replace("__HOST__", host)
        .replace("__PORTS__", " ".join(str(t.port) for t in ports))
        .replace("__IMPLICIT__", implicit)
        .replace("__CONNECT__", connect)
        .replace("__SNI__", sni)
        .replace("__BEGIN__", BEGIN_MARKER)
        .replace("__END__", END_MARKER)
    )
