"""Read what the user pasted: our script's output, or the plain tools run by hand.

Understood: our marker lines (both platforms); Test-NetConnection's list output (property
names are English on every Windows; the WARNING prefix and dates are localized);
Format-List of a certificate; Windows telnet's failure line; macOS and OpenBSD `nc -vz`;
`openssl s_client` (OpenSSL 1.1/3 and LibreSSL) and `openssl x509 -noout ...`, including
the PEM block, which is read with `cryptography` when present. Partial pastes give what
they contain; nothing here raises on garbage.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from diagnostics.client_check._dn import dn_display, dn_key, parse_date
from diagnostics.client_check._model import (
    BEGIN_MARKER,
    END_MARKER,
    CertSeen,
    ClientObservation,
    Reason,
)

log = logging.getLogger(__name__)

MAX_INPUT_CHARS = 200_000
_MAX_LINE = 4_000
_MAX_NOTES = 20

# --------------------------------------------------------------------------- patterns

_OUR_LINE = re.compile(r"^(PORT|CERT|TLS|SMTP|NC|HOST|CLIENT)\b")
_PORT = re.compile(r"^PORT (\d{1,5}) TCP (OK|FAIL)\b\s*(.*)$")
_CERT = re.compile(r"^CERT (\d{1,5}) (.*)$")
_TLS = re.compile(r"^TLS (\d{1,5}) (OK|FAIL)\b\s*(.*)$")
_SMTP = re.compile(r"^SMTP (\d{1,5}) (?:(greeting|starttls)=(.*)|FAIL\b\s*(.*))$")
_NC_PREFIXED = re.compile(r"^NC (\d{1,5}) (.*)$")
_HOST = re.compile(r"^HOST\s+(\S+)\s*$")
_CLIENT = re.compile(r"^CLIENT\s+(windows|mac)\s*$", re.IGNORECASE)

# Test-NetConnection and Format-List: "Name : value" (padding varies with the longest name).
_KV = re.compile(r"^([A-Za-z][A-Za-z ()]{1,40}?)\s*:\s?(.*)$")
_TNC_CMD = re.compile(r"(?:^|[\s>])(?:Test-NetConnection|tnc)\b(.*)$", re.IGNORECASE)
_TNC_PORT = re.compile(r"-(?:Port|p|RemotePort)\s+(\d{1,5})\b", re.IGNORECASE)
_TNC_COMMON = re.compile(r"-CommonTCPPort\s+(\w+)", re.IGNORECASE)
_TNC_QUIET = re.compile(r"-(?:InformationLevel|InformationLe\w*|i\w*)\s+Quiet\b", re.IGNORECASE)
_TNC_HOST = re.compile(r"-(?:ComputerName|cn|RemoteAddress)\s+['\"]?([^\s'\"]+)", re.IGNORECASE)
_TNC_POSITIONAL = re.compile(r"^\s+['\"]?([A-Za-z0-9][A-Za-z0-9.:-]*)['\"]?(?:\s|$)")
# The warning prefix PowerShell writes, in the languages Windows ships with.
_WARNING = re.compile(
    r"^(?:WARNING|WARNUNG|AVERTISSEMENT|ADVERTENCIA|AVVISO|WAARSCHUWING|AVISO|OSTRZEŻENIE"
    r"|VAROVÁNÍ|VAROVANIE|UYARI|ПРЕДУПРЕЖДЕНИЕ|VARNING|ADVARSEL|VAROITUS|FIGYELMEZTETÉS"
    r"|AVERTIZARE|ΠΡΟΕΙΔΟΠΟΙΗΣΗ|警告|경고)\s*:\s*(.*)$",
    re.IGNORECASE,
)
_TNC_FAILED_PAIR = re.compile(r"\(\s*([0-9A-Fa-f.:%]+?)\s*:\s*(\d{1,5})\s*\)")
_TNC_NAME_FAILED = re.compile(r"Name resolution of (\S+) failed", re.IGNORECASE)
_TELNET_FAILED = re.compile(
    r"(?:port|Port|puerto|porta|poort)\s+(\d{1,5})\s*:\s*(?:Connect failed|Verbinden "
    r"fehlgeschlagen|Échec de la connexion|Error al conectar|Falha na conexão|Connessione non "
    r"riuscita|Verbinding mislukt)",
)

# nc: macOS "Connection to H port 587 [tcp/submission] succeeded!",
# OpenBSD/Debian "Connection to H (1.2.3.4) 587 port [tcp/submission] succeeded!".
_NC_OK = re.compile(
    r"Connection to (\S+?)(?: \(([^)]*)\))? (?:port (\d{1,5})|(\d{1,5}) port) "
    r"\[(?:tcp|udp)/[^\]]*\] succeeded!?"
)
_NC_FAIL = re.compile(
    r"nc: connectx? to (\S+) port (\d{1,5}) \((?:tcp|udp)\) (?:failed|timed out): (.*)$"
)
_NC_DNS = re.compile(r"nc: getaddrinfo(?: for host \"([^\"]*)\" port (\d{1,5}))?: (.*)$")
_NC_CMD = re.compile(r"(?:^|[\s%$#>])nc\s+(?:-[A-Za-z]+(?:\s+\d+)?\s+)*([^\s-]\S*)\s+(\d{1,5})\b")

# openssl
_OSSL_CMD = re.compile(r"openssl\s+s_client\b(.*)$")
_OSSL_CONNECT = re.compile(r"-connect\s+['\"]?(\[[^\]]+\]|[^\s:'\"]+):(\d{1,5})")
_OSSL_FIELD = re.compile(r"^(issuer|subject)\s*=\s*(.*)$", re.IGNORECASE)
_OSSL_NOTAFTER = re.compile(r"^notAfter\s*=\s*(.*)$", re.IGNORECASE)
_OSSL_FPR = re.compile(
    r"^(SHA256|SHA-256|SHA1|SHA-1) Fingerprint\s*=\s*([0-9A-Fa-f:]+)\s*$", re.IGNORECASE
)
_OSSL_CHAIN_S = re.compile(r"^(\d+) s:\s?(.*)$")
_OSSL_CHAIN_I = re.compile(r"^i:\s?(.*)$")
_OSSL_CHAIN_V = re.compile(r"^v:NotBefore:.*?;\s*NotAfter:\s*(.*)$")
_OSSL_VERIFY = re.compile(r"^Verify return code:\s*(\d+)\s*\((.*)\)")
_OSSL_NO_STARTTLS = re.compile(r"Didn't find STARTTLS in server response", re.IGNORECASE)
_OSSL_NO_CERT = re.compile(
    r"unable to load certificate|Could not read certificate|no peer certificate available"
    r"|Could not find certificate|Expecting: TRUSTED CERTIFICATE",
    re.IGNORECASE,
)
_OSSL_TLS_ERR = re.compile(
    r"wrong version number|handshake failure|sslv3 alert|tlsv1 alert|unexpected eof|"
    r"write:errno=|packet length too long|unknown protocol|record layer failure|"
    r"ssl handshake has read 0 bytes",
    re.IGNORECASE,
)
_OSSL_CONNECT_ERR = re.compile(
    r"connect:\s*(Connection refused|Operation timed out|Connection timed out|No route to host"
    r"|Network is unreachable)|connect:errno=(\d+)|BIO_connect:([^:]+)|"
    r"(nodename nor servname provided|Name or service not known|gethostbyname failure"
    r"|BIO_lookup\w*:[^:]*|No address associated with hostname)",
    re.IGNORECASE,
)
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"

# Socket error words as .NET (SocketErrorCode), nc and openssl print them.
_REASONS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (
        re.compile(
            r"HostNotFound|NoData|TryAgain|getaddrinfo|nodename nor servname|"
            r"Name or service not known|not known|gethostbyname|BIO_lookup",
            re.I,
        ),
        "name_unresolved",
    ),
    (re.compile(r"refused|ECONNREFUSED|errno=(?:61|111)\b|ConnectionRefused", re.I), "refused"),
    (re.compile(r"timed? ?out|TimedOut|errno=(?:60|110)\b|\btimeout\b", re.I), "timeout"),
    (
        re.compile(
            r"unreachable|No route|Host is down|HostDown|NetworkDown|errno=(?:51|65|101|113)", re.I
        ),
        "unreachable",
    ),
)


def _reason(text: str) -> Reason:
    for pattern, reason in _REASONS:
        if pattern.search(text):
            return reason
    return "failed"


def _port(text: str) -> int | None:
    try:
        port = int(text)
    except ValueError:
        return None
    return port if 1 <= port <= 65535 else None


def _hex(text: str) -> str | None:
    value = re.sub(r"[\s:]", "", text).upper()
    return value if re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", value) else None


# --------------------------------------------------------------------------- input hygiene


def decode_output(data: bytes | str) -> str:
    """Text from a paste or a saved file (PowerShell 5.1's `>` writes UTF-16 with a BOM)."""
    if isinstance(data, str):
        return data
    data = data[: MAX_INPUT_CHARS * 4 + 4]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    # UTF-16 without a BOM: every other byte of ASCII text is NUL.
    sample = data[:400]
    if len(sample) >= 8 and sample[1::2].count(0) > len(sample) // 4:
        return data.decode("utf-16-le", errors="replace")
    return data.decode("utf-8", errors="replace")


def _clean(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    # Slack message text escapes these three; a modal value does not, either is fine.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = text.replace("\u00a0", " ").replace("\u202f", " ")
    lines = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("```"):
            stripped = stripped.strip("`").strip()
        lines.append(stripped[:_MAX_LINE])
    return _join_wrapped(lines)


def _join_wrapped(lines: list[str]) -> list[str]:
    """Re-join our lines that a narrow console wrapped when the user copied them."""
    out: list[str] = []
    inside = False
    for line in lines:
        if line == BEGIN_MARKER:
            inside = True
        elif line == END_MARKER:
            inside = False
        elif (
            inside
            and line
            and out
            and not _OUR_LINE.match(line)
            and not line.startswith("==")
            and _OUR_LINE.match(out[-1])
        ):
            out[-1] += line
            continue
        out.append(line)
    return out


# --------------------------------------------------------------------------- parser


@dataclasses.dataclass
class _PendingCert:
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)

    def set(self, key: str, value: Any) -> bool:
        """Set a field; False when it already holds a different value (a new certificate)."""
        if value is None or value == "":
            return True
        old = self.fields.get(key)
        if old is not None and not _same(key, old, value):
            return False
        self.fields[key] = value
        return True


def _same(key: str, old: Any, new: Any) -> bool:
    if key in ("issuer", "subject"):
        return dn_key(old) == dn_key(new)
    return bool(old == new)


class _Parser:
    def __init__(self, text: str) -> None:
        self.truncated = len(text) > MAX_INPUT_CHARS
        self.lines = _clean(text[:MAX_INPUT_CHARS])
        self.reachable: dict[int, bool | None] = {}
        self.reasons: dict[int, Reason] = {}
        self.addresses: dict[int, str] = {}
        self.greetings: dict[int, str] = {}
        self.starttls: dict[int, bool] = {}
        self.tls_errors: dict[int, str] = {}
        self.certs: dict[int, CertSeen] = {}
        self.loose: list[CertSeen] = []
        self.pending: dict[int | None, _PendingCert] = {}
        self.name_unresolved = False
        self.notes: list[str] = []
        self.hosts: list[str] = []
        self.platform_votes = {"windows": 0, "mac": 0}
        self.declared_platform: str | None = None
        self.from_script = False
        self.ctx_port: int | None = None  # the port the raw output at hand is about
        self.tnc_quiet = False
        self.tnc_port: int | None = None  # the port of the Test-NetConnection block at hand
        self.tnc_cmd_port: int | None = None  # the -Port of the last command line seen
        self.chain_depth: int | None = None
        self.pem: list[str] | None = None
        self.pem_done: set[int | None] = set()
        self.recognized = 0

    # -- results

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < _MAX_NOTES:
            self.notes.append(text)

    def saw_host(self, host: str | None) -> None:
        host = (host or "").strip().strip("'\"[]").rstrip(".").lower()
        if host and re.fullmatch(r"[a-z0-9.:-]{1,253}", host) and host not in self.hosts:
            self.hosts.append(host)

    def port_result(
        self,
        port: int | None,
        ok: bool | None,
        reason: Reason | None = None,
        *,
        what: str = "a connection result",
    ) -> None:
        if port is None:
            self.note(f"Found {what} but not which port it was for; it was left out.")
            return
        # Success wins: nc tries every address, and one that connects is enough.
        if self.reachable.get(port) is True and ok is not True:
            return
        self.reachable[port] = ok
        if ok is False and reason and (reason != "failed" or port not in self.reasons):
            self.reasons[port] = reason
        if ok:
            self.reasons.pop(port, None)

    def cert_field(self, port: int | None, key: str, value: Any) -> None:
        pending = self.pending.setdefault(port, _PendingCert())
        if not pending.set(key, value):
            self.flush(port)
            self.pending.setdefault(port, _PendingCert()).set(key, value)

    def flush(self, port: int | None) -> None:
        pending = self.pending.pop(port, None)
        if not pending or (not pending.fields.get("issuer") and not pending.fields.get("sha256")):
            if pending and pending.fields:
                self.note("Found part of a certificate without its issuer; it was left out.")
            return
        cert = CertSeen(**pending.fields)
        if port is None:
            if cert not in self.loose:
                self.loose.append(cert)
        elif port in self.certs and self.certs[port] != cert:
            self.note(f"Several certificates for port {port}; the first one is used.")
        else:
            self.certs.setdefault(port, cert)

    # -- driver

    def run(self) -> ClientObservation:
        for line in self.lines:
            if self.pem is not None:
                _pem_line(self, line)
                continue
            if line and self.line(line):
                self.recognized += 1
        for port in list(self.pending):
            self.flush(port)
        return self.result()

    def result(self) -> ClientObservation:
        notes = list(self.notes)
        if self.truncated:
            notes.insert(
                0,
                f"The text is longer than {MAX_INPUT_CHARS // 1000} KB; only the first "
                f"{MAX_INPUT_CHARS // 1000} KB were read.",
            )
        if len(self.hosts) > 1:
            notes.append("The output mentions several servers: " + ", ".join(self.hosts[:5]))
        platform: Any = self.declared_platform
        if platform is None:
            win, mac = self.platform_votes["windows"], self.platform_votes["mac"]
            platform = "windows" if win > mac else "mac" if mac else "unknown"
        obs = ClientObservation(
            platform=platform,
            from_script=self.from_script,
            host=self.hosts[0] if self.hosts else None,
            reachable=self.reachable,
            reasons=self.reasons,
            addresses=self.addresses,
            greetings=self.greetings,
            starttls_offered=self.starttls,
            certs=self.certs,
            loose_certs=tuple(self.loose),
            tls_errors=self.tls_errors,
            name_unresolved=self.name_unresolved,
            notes=tuple(notes),
            truncated=self.truncated,
        )
        if obs.empty:
            notes.append(
                "Nothing in the text looks like the output of the smtpcheck client check, "
                "Test-NetConnection, nc or openssl."
            )
            obs = obs.model_copy(update={"notes": tuple(notes)})
        return obs

    def line(self, line: str) -> bool:
        """Handle one line; True when it was understood."""
        return (
            self.ours(line)
            or _windows(self, line)
            or _nc(self, line, self.ctx_port)
            or _openssl(self, line)
        )

    # -- our script

    def ours(self, line: str) -> bool:
        if line == BEGIN_MARKER:
            self.from_script = True
            return True
        if line == END_MARKER:
            self.ctx_port = None
            return True
        if m := _HOST.match(line):
            self.saw_host(m[1])
            return True
        if m := _CLIENT.match(line):
            self.declared_platform = m[1].lower()
            return True
        if m := _PORT.match(line):
            port = _port(m[1])
            if port is None:
                return False
            detail = m[3]
            if m[2] == "OK":
                self.port_result(port, True)
                if addr := re.match(r"^\[?([0-9A-Fa-f.:]+?)\]?:\d{1,5}$", detail):
                    self.addresses[port] = addr[1]
            else:
                self.port_result(port, False, _reason(detail) if detail else "failed")
            return True
        if m := _NC_PREFIXED.match(line):
            _nc(self, m[2], _port(m[1]))
            return True
        if m := _CERT.match(line):
            port = _port(m[1])
            return port is not None and self.cert_line(m[2], port, ours=True)
        if m := _TLS.match(line):
            port = _port(m[1])
            if port is None:
                return False
            if m[2] == "FAIL":
                self.tls_errors[port] = m[3] or "the TLS handshake failed"
            else:
                self.tls_errors.pop(port, None)
            return True
        if m := _SMTP.match(line):
            port = _port(m[1])
            if port is None:
                return False
            if m[2] == "greeting":
                self.greetings[port] = m[3][:300]
            elif m[2] == "starttls":
                value = m[3].strip().lower()
                self.starttls[port] = not value.startswith("no")
                if value.startswith("refused"):
                    self.tls_errors[port] = "STARTTLS was refused: " + m[3][7:].strip()
            else:
                self.tls_errors[port] = "before TLS: " + (m[4] or "the SMTP dialogue failed")
            return True
        return False

    def cert_line(self, text: str, port: int | None, *, ours: bool = False) -> bool:
        text = text.strip()
        if m := _OSSL_FIELD.match(text):
            self.cert_field(port, m[1].lower(), dn_display(m[2]) or None)
            return True
        if m := _OSSL_NOTAFTER.match(text):
            when = parse_date(m[1])
            if when is None:
                self.note(f"Could not read the date '{m[1][:60]}'.")
            self.cert_field(port, "not_after", when)
            return True
        if m := _OSSL_FPR.match(text):
            key = "sha256" if "256" in m[1] else "sha1"
            self.cert_field(port, key, _hex(m[2]))
            return True
        if ours:
            key, sep, value = text.partition("=")
            key = key.strip().lower()
            if sep and key == "sha256":
                self.cert_field(port, "sha256", _hex(value))
                return True
            if sep and key == "windows_check":
                value = value.strip()
                self.cert_field(port, "trusted", value == "None")
                self.cert_field(port, "trust_detail", f"Windows: {value or 'unknown'}")
                return True
        return False

    # -- Windows by hand


# The readers of each tool's output: functions of the parser's state.


def _windows(parser: _Parser, line: str) -> bool:
    if re.match(r"^PS [A-Za-z]:\\", line) or re.match(r"^PS>", line):
        parser.platform_votes["windows"] += 1
    if m := _TNC_CMD.search(line):
        parser.platform_votes["windows"] += 1
        args = m[1]
        port = None
        if p := _TNC_PORT.search(args):
            port = _port(p[1])
        elif c := _TNC_COMMON.search(args):
            port = {"SMTP": 25, "HTTP": 80, "RDP": 3389, "SMB": 445, "WINRM": 5985}.get(
                c[1].upper()
            )
        parser.tnc_port = parser.tnc_cmd_port = parser.ctx_port = port
        parser.tnc_quiet = bool(_TNC_QUIET.search(args))
        if h := _TNC_HOST.search(args) or _TNC_POSITIONAL.match(args):
            parser.saw_host(h[1])
        return True
    if m := _WARNING.match(line):
        parser.platform_votes["windows"] += 1
        body = m[1]
        if pair := _TNC_FAILED_PAIR.search(body):
            port = _port(pair[2])
            parser.port_result(port, False, "failed")
            if port:
                parser.addresses.setdefault(port, pair[1])
            return True
        if name := _TNC_NAME_FAILED.search(body):
            parser.saw_host(name[1])
            _unresolved(parser, parser.tnc_port)
            return True
        return True  # other warnings (ping failed, ...) say nothing about the ports
    if line in ("True", "False") and parser.tnc_quiet:
        parser.port_result(
            parser.tnc_port,
            line == "True",
            "failed",
            what="a Test-NetConnection -InformationLevel Quiet result",
        )
        return True
    if m := _TELNET_FAILED.search(line):
        parser.platform_votes["windows"] += 1
        parser.port_result(_port(m[1]), False, "failed")
        return True
    if m := _KV.match(line):
        return _key_value(parser, m[1].strip(), m[2].strip())
    return False


def _unresolved(parser: _Parser, port: int | None) -> None:
    parser.name_unresolved = True
    if port is not None:
        parser.port_result(port, False, "name_unresolved")


def _key_value(parser: _Parser, key: str, value: str) -> bool:
    lowered = key.lower()
    if lowered == "computername":
        parser.platform_votes["windows"] += 1
        parser.saw_host(value)
        # A new result block; its port is the command's, until RemotePort says.
        parser.tnc_port = parser.ctx_port = parser.tnc_cmd_port
        parser.tnc_cmd_port = None
        return True
    if lowered == "remoteport":
        parser.tnc_port = parser.ctx_port = _port(value)
        return True
    if lowered == "remoteaddress":
        if not value:
            _unresolved(parser, parser.tnc_port)
        elif parser.tnc_port is not None:
            parser.addresses.setdefault(parser.tnc_port, value)
        return True
    if lowered == "tcptestsucceeded":
        parser.platform_votes["windows"] += 1
        if value.lower() in ("true", "false"):
            parser.port_result(
                parser.tnc_port, value.lower() == "true", "failed", what="TcpTestSucceeded"
            )
        return True
    if lowered == "nameresolutionsucceeded" and value.lower() == "false":
        _unresolved(parser, parser.tnc_port)
        return True
    if lowered in (
        "interfacealias",
        "sourceaddress",
        "pingsucceeded",
        "ping reply details (rtt)",
        "pingreplydetails (rtt)",
        "nameresolutionresults",
        "netroute (nexthop)",
        "basicnamresolution",
        "isadmin",
        "networkisolationcontext",
        "matchingipsecrules",
        "detailedinformation",
        "allnamresolutionresults",
    ):
        return True
    # Format-List of an X509Certificate2 ($cert | Format-List).
    if lowered in ("subject", "issuer"):
        parser.platform_votes["windows"] += 1
        parser.cert_field(parser.ctx_port, lowered, dn_display(value) or None)
        return True
    if lowered == "thumbprint":
        parser.cert_field(parser.ctx_port, "sha1", _hex(value))
        return True
    if lowered == "notafter":
        when = parse_date(value)
        if when is None:
            parser.note(f"Could not read the date '{value[:60]}'.")
        parser.cert_field(parser.ctx_port, "not_after", when)
        return True
    return False


# -- nc by hand (or behind our NC prefix)


def _nc(parser: _Parser, line: str, port_hint: int | None) -> bool:
    if m := _NC_OK.search(line):
        parser.platform_votes["mac"] += 1
        parser.saw_host(m[1])
        port = _port(m[3] or m[4])
        parser.port_result(port, True)
        if port and m[2]:
            parser.addresses.setdefault(port, m[2])
        return True
    if m := _NC_FAIL.search(line):
        parser.platform_votes["mac"] += 1
        parser.saw_host(m[1])
        parser.port_result(_port(m[2]), False, _reason(m[3]))
        return True
    if m := _NC_DNS.search(line):
        parser.platform_votes["mac"] += 1
        if m[1]:
            parser.saw_host(m[1])
        _unresolved(parser, _port(m[2]) if m[2] else port_hint)
        return True
    if m := _NC_CMD.search(line):
        parser.saw_host(m[1])
        parser.ctx_port = _port(m[2])
        return True
    return False


# -- openssl by hand


def _openssl(parser: _Parser, line: str) -> bool:
    if m := _OSSL_CMD.search(line):
        parser.platform_votes["mac"] += 1
        parser.flush(parser.ctx_port)
        parser.chain_depth = None
        if c := _OSSL_CONNECT.search(m[1]):
            parser.saw_host(c[1])
            parser.ctx_port = _port(c[2])
        else:
            parser.ctx_port = None
        return True
    port = parser.ctx_port
    if line.startswith("CONNECTED("):
        # A new s_client session: its certificate is a new one.
        parser.platform_votes["mac"] += 1
        parser.flush(port)
        parser.pem_done.discard(port)
        parser.chain_depth = None
        if port is not None:
            parser.port_result(port, True)
        return True
    if line == _PEM_BEGIN:
        parser.pem = []
        return True
    if m := _OSSL_CHAIN_S.match(line):
        parser.chain_depth = int(m[1])
        if parser.chain_depth == 0:
            _slash_vote(parser, m[2])
            parser.cert_field(port, "subject", dn_display(m[2]) or None)
        return True
    if m := _OSSL_CHAIN_I.match(line):
        if parser.chain_depth == 0:
            _slash_vote(parser, m[1])
            parser.cert_field(port, "issuer", dn_display(m[1]) or None)
        return True
    if m := _OSSL_CHAIN_V.match(line):
        if parser.chain_depth == 0:
            parser.cert_field(port, "not_after", parse_date(m[1]))
        return True
    if m := _OSSL_FIELD.match(line):
        _slash_vote(parser, m[2])
        return parser.cert_line(line, port)
    if _OSSL_NOTAFTER.match(line) or _OSSL_FPR.match(line):
        return parser.cert_line(line, port)
    if m := _OSSL_VERIFY.match(line):
        code = int(m[1])
        # openssl's own trust store, not the Keychain Outlook uses: a detail only.
        parser.cert_field(port, "trust_detail", f"openssl verify {code} ({m[2][:80]})")
        return True
    if _OSSL_NO_STARTTLS.search(line):
        if port is not None:
            parser.starttls[port] = False
        return True
    if _OSSL_NO_CERT.search(line):
        if port is not None and port not in parser.certs:
            parser.tls_errors.setdefault(port, "no certificate was received")
        return True
    if m := _OSSL_CONNECT_ERR.search(line):
        reason = _reason(line)
        if reason == "name_unresolved":
            _unresolved(parser, port)
        else:
            parser.port_result(port, False, reason, what="an openssl connection error")
        return True
    if _OSSL_TLS_ERR.search(line):
        if port is not None:
            parser.tls_errors.setdefault(port, line[:200])
        return True
    return False


def _slash_vote(parser: _Parser, dn: str) -> None:
    # LibreSSL (macOS) prints "/C=US/O=..."; OpenSSL 1.1/3 "C = US, O = ...".
    if dn.strip().startswith("/"):
        parser.platform_votes["mac"] += 1


def _pem_line(parser: _Parser, line: str) -> None:
    assert parser.pem is not None
    if line != _PEM_END:
        if len(parser.pem) < 400:
            parser.pem.append(line)
        return
    body, parser.pem = "".join(parser.pem), None
    port = parser.ctx_port
    if port in parser.pem_done:
        return  # later certificates of -showcerts are the chain, not the server's
    parser.pem_done.add(port)
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(body, validate=False))
    except (ValueError, binascii.Error):
        parser.note("A certificate block could not be decoded.")
        return
    parser.cert_field(port, "subject", dn_display(cert.subject.rfc4514_string()))
    parser.cert_field(port, "issuer", dn_display(cert.issuer.rfc4514_string()))
    parser.cert_field(port, "not_after", cert.not_valid_after_utc)
    parser.cert_field(port, "sha256", cert.fingerprint(hashes.SHA256()).hex().upper())


def parse_client_output(text: str | bytes) -> ClientObservation:
    """What the user's computer saw, from a pasted output; never raises on garbage."""
    try:
        return _Parser(decode_output(text)).run()
    except Exception:  # a parser bug must not break the bot's reply; the paste is not secret
        log.exception("client-check output could not be parsed")
        return ClientObservation(notes=("The text could not be read (parser error).",))
