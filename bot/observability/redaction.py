"""Secrets out of text and structures, before anything is logged, shown or stored.

Three nets, each for what the others cannot see:

- by key, at any depth: a value (string, object or list) under a key that names a secret
  (`password`, `client_secret`, `access_token`, ...) goes whole, in a Python structure
  (`redact_data`) and in text that holds JSON or a Python repr (Slack's view state
  `"password": {"value": {"type": ..., "value": "..."}}` inside a logged WebSocket frame);
- by value: the configured secrets (bot token, signing secret, client and state secrets, app
  token, the database password) and those met at run time (tokens an OAuth install returns,
  a password typed in the credential step), also percent- and JSON-escaped;
- by shape: Slack tokens, `Bearer`/`Basic` values, SMTP AUTH initial responses, URL passwords.

Every pattern here runs in linear time on hostile text.
"""

from __future__ import annotations

import collections
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

REDACTED = "[redacted]"

# Key names whose value is a secret, whatever its shape.
_SECRET_WORD = r"passw(?:or)?d|passphrase|secret|token|api[_-]?key|credential"  # noqa: S105
# In a structure, also the whole of an Authorization header or a credentials object (in text,
# `Authorization: Bearer ...` keeps its scheme: see _PATTERNS).
_SECRET_KEY = re.compile(rf"(?i){_SECRET_WORD}|authorization")

_MECHANISMS = (
    r"(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER|CRAM-MD5|DIGEST-MD5|GSSAPI|NTLM|SCRAM-[A-Z0-9-]+)"
)
# A key naming a secret, then `:` or `=`. The lookbehind starts a key only where a run of
# key characters starts, which keeps the search linear.
_KEY = rf"""(\\*["']?)((?<![\w.-])[\w.-]*?(?:{_SECRET_WORD})[\w.-]*)\1(\s*[=:]\s*)"""
# ... whose value is an object or a list: redacted up to its matching bracket.
_NESTED = re.compile(rf"(?ix){_KEY}(?=[{{\[])")

_Replacement = str | Callable[[re.Match[str]], str]
_PATTERNS: tuple[tuple[re.Pattern[str], _Replacement], ...] = (
    # Slack tokens: bot, user, refresh, rotated (xoxe.xoxb-), app-level. Keep the kind.
    (re.compile(r"\b(xox[a-z](?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]+"), r"\1-" + REDACTED),
    # SMTP AUTH with an initial response; never a capability list ("AUTH PLAIN LOGIN").
    (
        re.compile(
            rf"(?i)\b(AUTH\s+{_MECHANISMS})\s+(?!{_MECHANISMS}\b)[A-Za-z0-9+/]{{4,}}={{0,2}}"
        ),
        r"\1 " + REDACTED,
    ),
    # HTTP Authorization values.
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*"), r"\1 " + REDACTED),
    # user:password@ in URLs (database URLs).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    # password=..., "client_secret": "...", signing_secret: ..., token=...
    (
        re.compile(
            rf"""(?ix){_KEY}
            ( \\+"(?:[^"\\]|\\[^"])*\\+"   # \"escaped\" (JSON inside a JSON string)
            | "(?:[^"\\]|\\.)*" | '[^']*'   # "quoted", 'quoted'
            | [^\s,;&'"{{}})\]]+              # bare
            )"""
        ),
        lambda m: m[1] + m[2] + m[1] + m[3] + _keep_quotes(m[4]),
    ),
)


def _keep_quotes(value: str) -> str:
    """[redacted], quoted (and escaped) as the value was: JSON stays JSON."""
    opening = value[: len(value) - len(value.lstrip("\\"))]
    quote = value[len(opening) : len(opening) + 1]
    if quote in ('"', "'"):
        return opening + quote + REDACTED + opening + quote
    return REDACTED


# --------------------------------------------------------------------------- known values

_SECRET_ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_SECRET",
    "SLACK_STATE_SECRET",
)
# Values met at run time (install tokens, typed passwords): the newest are kept.
MAX_RUNTIME_SECRETS = 512
MIN_SECRET_LENGTH = 6


class _Literals:
    """Exact secret values, matched by one compiled alternation (rebuilt on change)."""

    def __init__(self) -> None:
        self._configured: set[str] = set()
        self._runtime: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str, *, runtime: bool) -> None:
        forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        forms.add(json.dumps(value)[1:-1])
        with self._lock:
            for form in forms:
                if runtime and form not in self._configured:
                    self._runtime[form] = None
                    self._runtime.move_to_end(form)
                elif not runtime:
                    self._configured.add(form)
            while len(self._runtime) > MAX_RUNTIME_SECRETS:
                self._runtime.popitem(last=False)
            self._pattern = None

    def sub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                values = sorted({*self._configured, *self._runtime}, key=len, reverse=True)
                pattern = re.compile("|".join(map(re.escape, values))) if values else _NEVER
                self._pattern = pattern
        return pattern.sub(REDACTED, text)


_NEVER = re.compile(r"(?!x)x")
_literals = _Literals()


def register_secret(value: str | None, *, runtime: bool = False) -> None:
    """Redact this exact value (and its escaped forms) wherever it shows up; short values
    are ignored. RUNTIME: met while serving (kept among the newest MAX_RUNTIME_SECRETS)."""
    if value and len(value.strip()) >= MIN_SECRET_LENGTH:
        _literals.add(value.strip(), runtime=runtime)


def register_env_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register the Slack secrets and the database password from the environment."""
    environ = os.environ if environ is None else environ
    for name in _SECRET_ENV:
        register_secret(environ.get(name))
    url = environ.get("SMTPCHECK_DATABASE_URL") or ""
    match = re.search(r"://[^/\s:@]+:([^@\s/]+)@", url)
    if match:
        register_secret(match.group(1))


# --------------------------------------------------------------------------- redaction


def redact(text: str) -> str:
    """TEXT with secret-keyed values (at any depth), known secrets, Slack tokens, passwords
    and SMTP AUTH payloads replaced."""
    if not text:
        return text
    text = _literals.sub(_redact_nested(text))
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(value: Any, *, _depth: int = 0) -> Any:
    """A copy of a JSON-like VALUE with every secret-keyed entry replaced, at any depth, and
    every string redacted. Other objects are returned as they are."""
    if _depth > 64:
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEY.search(key)
            else redact_data(item, _depth=_depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_data(item, _depth=_depth + 1) for item in value)
    return value


def is_secret_key(name: str) -> bool:
    """Whether a key of this name holds a secret (its value is never shown)."""
    return _SECRET_KEY.search(name) is not None


def _redact_nested(text: str) -> str:
    """Objects and lists under a secret key in JSON or repr text, each replaced whole."""
    if "{" not in text and "[" not in text:
        return text
    parts: list[str] = []
    pos = 0
    while (match := _NESTED.search(text, pos)) is not None:
        parts.append(text[pos : match.end()])
        parts.append(REDACTED)
        pos = _after_closing_bracket(text, match.end())
    parts.append(text[pos:])
    return "".join(parts)


def _after_closing_bracket(text: str, start: int) -> int:
    """The index after the bracket that closes text[start] (the end if none does)."""
    depth = 0
    quote: str | None = None
    index = start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(text)
