"""Pure parsing of `/smtpcheck` text into what the user asked for (no Slack, no I/O)."""

from __future__ import annotations

import dataclasses
import re

from pydantic import ValidationError

from diagnostics import CheckRequest, OutlookClient, Security

USAGE_EXAMPLES = (
    "/smtpcheck",
    "/smtpcheck you@contoso.com",
    "/smtpcheck smtp.office365.com:587 starttls",
    "/smtpcheck mail.example.com 465 ssl mac",
    "/smtpcheck help",
)

SECURITY_WORDS = {
    "starttls": Security.STARTTLS,
    "tls": Security.STARTTLS,  # older Outlook builds call STARTTLS "TLS"
    "ssl": Security.SSL,
    "ssl/tls": Security.SSL,
    "implicit": Security.SSL,
    "none": Security.NONE,
    "plain": Security.NONE,
    "auto": Security.AUTO,
    "automatic": Security.AUTO,
}
CLIENT_WORDS = {client.value: client for client in OutlookClient}
NO_AUTH_WORDS = {"noauth", "no-auth"}

# Slack may wrap what looks like a link or an address: <mailto:a@b.c|a@b.c>, <http://h|h>.
_SLACK_LINK = re.compile(r"<(?:mailto:|https?://)?([^|<>]*)(?:\|([^<>]*))?>")


class ParseError(ValueError):
    """Text we cannot act on; the message says why in plain words."""


@dataclasses.dataclass(frozen=True, slots=True)
class OpenModal:
    """No text: open the form."""


@dataclasses.dataclass(frozen=True, slots=True)
class ShowHelp:
    """`help`."""


@dataclasses.dataclass(frozen=True, slots=True)
class ShowHistory:
    """`history HOST`: past checks of a server or domain (help-desk agents)."""

    host: str


@dataclasses.dataclass(frozen=True, slots=True)
class RunCheck:
    """Settings given inline: run at once."""

    request: CheckRequest


Command = OpenModal | ShowHelp | ShowHistory | RunCheck


def unwrap_slack_text(text: str) -> str:
    """Undo Slack's escaping and link wrapping of command text."""
    text = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_command(text: str) -> Command:
    """Turn the text after `/smtpcheck` into a command, or raise ParseError."""
    text = unwrap_slack_text(text or "").strip()
    if not text:
        return OpenModal()
    words = text.split()
    head = words[0].lower()
    if head in {"help", "-h", "--help", "?"}:
        return ShowHelp()
    if head == "history":
        if len(words) != 2:
            raise ParseError(
                "`history` takes one server or domain, e.g. `history smtp.example.com`"
            )
        try:
            return ShowHistory(host=_history_target(words[1]))
        except ValidationError as exc:
            raise ParseError(plain_validation_message(exc)) from None
    return RunCheck(request=_check_request(words))


def _history_target(value: str) -> str:
    request = CheckRequest(target=value.rpartition("@")[2] if "@" in value else value)
    assert request.host is not None
    return request.host


def _check_request(words: list[str]) -> CheckRequest:
    target, *rest = words
    port: int | None = None
    security: Security | None = None
    client: OutlookClient | None = None
    requires_auth = True
    for word in rest:
        lower = word.lower().strip(",")
        # ASCII digits only: str.isdigit() is also true for '²' or '⑤', which int() refuses.
        if lower.isascii() and lower.isdigit():
            if port is not None:
                raise ParseError(f"two ports given ({port} and {lower}); give one")
            port = int(lower)
            if not 1 <= port <= 65535:
                raise ParseError(f"port {port} is out of range (1-65535)")
        elif lower in SECURITY_WORDS:
            if security is not None:
                raise ParseError("give one encryption type: starttls, ssl, none or auto")
            security = SECURITY_WORDS[lower]
        elif lower in CLIENT_WORDS:
            client = CLIENT_WORDS[lower]
        elif lower in NO_AUTH_WORDS:
            requires_auth = False
        else:
            raise ParseError(
                f"I don't understand '{word}'. After the server you can give a port, an"
                " encryption type (starttls, ssl, none, auto) and which Outlook"
                " (classic, new, mac, ios, android)"
            )
    try:
        return CheckRequest(
            target=target,
            port=port,
            security=security,
            client=client or OutlookClient.CLASSIC,
            requires_auth=requires_auth,
        )
    except ValidationError as exc:
        raise ParseError(plain_validation_message(exc)) from None


def plain_validation_message(exc: ValidationError) -> str:
    """One plain sentence from a pydantic error (no 'Value error,' noise, no URLs)."""
    messages = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if error.get("type") in {"less_than_equal", "greater_than_equal"}:
            message = "the port must be between 1 and 65535"
        messages.append(" ".join(message.split()))  # one line, whatever the validator said
    return "; ".join(dict.fromkeys(m for m in messages if m)) or "invalid settings"
