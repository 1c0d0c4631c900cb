"""Pure parsing of `/smtpcheck` text into what the user asked for (no Slack, no I/O)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pydantic import ValidationError

from diagnostics import CheckRequest, OutlookClient, Security
from diagnostics._models import normalize_email, split_target

USAGE_EXAMPLES = (
    "/smtpcheck",
    "/smtpcheck you@contoso.com",
    "/smtpcheck smtp.office365.com:587 starttls",
    "/smtpcheck me@example.com smtp.example.com 465 ssl mac",
    "/smtpcheck explain 0x800CCC0F",
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
CLIENT_WORDS = {client.value: client for client in OutlookClient} | {
    "macos": OutlookClient.MAC,
    "iphone": OutlookClient.IOS,
    "ipad": OutlookClient.IOS,
}
NO_AUTH_WORDS = {"noauth", "no-auth"}
FILLER_WORDS = {"outlook"}  # "mac outlook", "outlook ios": the word adds nothing
HELP_WORDS = {"help", "-h", "--help", "?"}
MAX_WORDS = 12  # settings are a handful of words; more is a paste, not settings
WORD_SHOWN = 60  # how much of a word we do not understand is quoted back

# Slack may wrap what looks like a link or an address: <mailto:a@b.c|a@b.c>, <http://h|h>.
_SLACK_LINK = re.compile(r"<(?:mailto:|https?://)?([^|<>]*)(?:\|([^<>]*))?>")


class ParseError(ValueError):
    """Text we cannot act on; the message says why in plain words."""


@dataclasses.dataclass(frozen=True, slots=True)
class OpenModal:
    """Open the form: pre-filled with what was understood (`initial`, the form's field
    names), and saying what was not (`problems`, plain sentences)."""

    initial: dict[str, Any] = dataclasses.field(default_factory=dict)
    problems: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ShowHelp:
    """`help`."""


@dataclasses.dataclass(frozen=True, slots=True)
class ShowHistory:
    """`history HOST`: past checks of a server or domain (help-desk agents)."""

    host: str


@dataclasses.dataclass(frozen=True, slots=True)
class Explain:
    """`explain [outlook] <pasted error>`: what an Outlook or server error means, with the
    fix steps for the Outlook named first or last (classic Outlook when none is)."""

    error_text: str
    client: OutlookClient = OutlookClient.CLASSIC


@dataclasses.dataclass(frozen=True, slots=True)
class RunCheck:
    """Settings given inline: run at once."""

    request: CheckRequest


Command = OpenModal | ShowHelp | ShowHistory | Explain | RunCheck


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
    if head in HELP_WORDS:
        return ShowHelp()
    if head == "explain":
        return _explain(text[len(words[0]) :].strip())
    if head == "history":
        if len(words) != 2:
            raise ParseError(
                "`history` takes one server or domain, e.g. `history smtp.example.com`"
            )
        try:
            return ShowHistory(host=_history_target(words[1]))
        except ValidationError as exc:
            raise ParseError(plain_validation_message(exc)) from None
    return _settings(words)


def _explain(pasted: str) -> Explain:
    """The pasted error, and the Outlook if its first or last word names one alone
    (`explain mac 0x800CCC0F`, `explain 0x800CCC0F mac`)."""
    words = pasted.split()
    client = OutlookClient.CLASSIC
    if words and words[0].lower() in CLIENT_WORDS:
        client = CLIENT_WORDS[words[0].lower()]
        pasted = pasted[len(words[0]) :].strip()
    elif len(words) > 1 and words[-1].lower() in CLIENT_WORDS:
        client = CLIENT_WORDS[words[-1].lower()]
        pasted = pasted[: -len(words[-1])].strip()
    if not pasted:
        raise ParseError("Paste the error after `explain`, e.g. `/smtpcheck explain 0x800CCC0F`")
    return Explain(error_text=pasted, client=client)


def _history_target(value: str) -> str:
    request = CheckRequest(target=value.rpartition("@")[2] if "@" in value else value)
    assert request.host is not None
    return request.host


@dataclasses.dataclass(slots=True)
class _Settings:
    """What the words of an inline command said so far, and what they left unclear."""

    email: str | None = None
    host: str | None = None
    host_text: str | None = None  # as typed, to pre-fill the form when it is not valid
    port: int | None = None
    security: Security | None = None
    client: OutlookClient | None = None
    requires_auth: bool = True
    problems: list[str] = dataclasses.field(default_factory=list)

    def form_fields(self) -> dict[str, Any]:
        """The form's initial values (bot.views.modal.check_modal)."""
        fields = {
            "email": self.email,
            "host": self.host or self.host_text,
            "port": self.port,
            "security": self.security.value if self.security else None,
            "client": self.client.value if self.client else None,
            "requires_auth": self.requires_auth,
        }
        return {k: v for k, v in fields.items() if v is not None}


def _settings(words: list[str]) -> Command:
    """Server, port, encryption, Outlook and address, in any order."""
    found = _Settings()
    if len(words) > MAX_WORDS:
        found.problems.append(
            f"That is {len(words)} words; I expected a few settings. To ask what an error"
            " means, start with `explain`"
        )
        words = words[:MAX_WORDS]
    for index, word in enumerate(words):
        if index == 0 and _bare_name(word, words):
            _set_server(found, word)  # an intranet name without a dot: "exchange01 587"
        else:
            _read_word(found, word)
    if not found.problems and found.host is None and found.email is None:
        found.problems.append("Give the outgoing server or your email address")
    if found.problems:
        return OpenModal(initial=found.form_fields(), problems=tuple(found.problems))
    try:
        request = CheckRequest(
            target=found.host or found.email or "",
            port=found.port,
            security=found.security,
            email=found.email if found.host else None,
            client=found.client or OutlookClient.CLASSIC,
            requires_auth=found.requires_auth,
        )
    except ValidationError as exc:  # nothing left should fail here; if it does, the form
        found.problems.append(plain_validation_message(exc))
        return OpenModal(initial=found.form_fields(), problems=tuple(found.problems))
    return RunCheck(request=request)


def _read_word(found: _Settings, word: str) -> None:
    lower = word.lower().strip(",;")
    # ASCII digits only: str.isdigit() is also true for '²' or '⑤', which int() refuses.
    if lower.isascii() and lower.isdigit():
        _set_port(found, int(lower))
    elif lower in SECURITY_WORDS:
        security = SECURITY_WORDS[lower]
        if found.security not in (None, security):
            found.problems.append("Give one encryption type: starttls, ssl, none or auto")
        found.security = security
    elif lower in CLIENT_WORDS:
        found.client = CLIENT_WORDS[lower]
    elif lower in NO_AUTH_WORDS:
        found.requires_auth = False
    elif lower in FILLER_WORDS:
        pass
    elif "@" in lower:
        _set_email(found, word.strip(",;"))
    elif _looks_like_a_server(lower):
        _set_server(found, word.strip(",;"))
    else:
        found.problems.append(
            f"I don't understand '{_shown(word)}'. Give the server (with :port if you like),"
            " a port, an encryption type (starttls, ssl, none, auto), which Outlook"
            " (classic, new, mac, ios, android) and your email address, in any order"
        )


def _bare_name(word: str, words: list[str]) -> bool:
    """WORD comes first, is no keyword, and nothing else in WORDS names a server."""
    lower = word.lower()
    keywords = SECURITY_WORDS.keys() | CLIENT_WORDS.keys() | NO_AUTH_WORDS | FILLER_WORDS
    if lower in keywords or "@" in lower or lower.isdigit() or _looks_like_a_server(lower):
        return False
    return not any(_looks_like_a_server(w.lower()) for w in words[1:])


def _looks_like_a_server(word: str) -> bool:
    """A name with a dot, an IP literal, [v6] or host:port: meant as the server, even when
    it is not a valid one (its own message then says why)."""
    return "." in word or word.startswith("[") or ":" in word or word == "localhost"


def _set_port(found: _Settings, port: int) -> None:
    if not 1 <= port <= 65535:
        found.problems.append(f"Port {port} is out of range (1-65535)")
    elif found.port not in (None, port):
        found.problems.append(f"Two ports given ({found.port} and {port}); give one")
    else:
        found.port = port


def _set_email(found: _Settings, word: str) -> None:
    if found.email is not None:
        found.problems.append("Two email addresses given; give one")
        return
    try:
        found.email = normalize_email(word)
    except ValueError as exc:
        found.problems.append(_sentence(str(exc)))


def _set_server(found: _Settings, word: str) -> None:
    if found.host is not None or found.host_text is not None:
        found.problems.append(f"Two servers given; give one (I also read '{_shown(word)}')")
        return
    try:
        _, host, port = split_target(word)
    except ValueError as exc:
        found.problems.append(_sentence(str(exc)))
        if not _CONTROL.search(word):
            found.host_text = word[:253]
        return
    found.host = host
    if port is not None:
        _set_port(found, port)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _shown(word: str) -> str:
    """A word quoted back: visible characters only, and not too long."""
    word = _CONTROL.sub("", word)
    return word if len(word) <= WORD_SHOWN else word[: WORD_SHOWN - 1] + "…"


def _sentence(message: str) -> str:
    message = " ".join(message.split())
    return message[:1].upper() + message[1:] if message else "Invalid value"


def plain_validation_message(exc: ValidationError) -> str:
    """One plain sentence from a pydantic error (no 'Value error,' noise, no URLs)."""
    messages = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if error.get("type") in {"less_than_equal", "greater_than_equal"}:
            message = "the port must be between 1 and 65535"
        messages.append(" ".join(message.split()))  # one line, whatever the validator said
    return "; ".join(dict.fromkeys(m for m in messages if m)) or "invalid settings"
