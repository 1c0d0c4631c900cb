"""What one probe said and heard, as the report shows it: every line timed, visible (controls,
bidi and invisible characters escaped), bounded, and with every form of the password removed."""

from __future__ import annotations

import asyncio
import base64

from diagnostics._models import Credentials, Reply, TranscriptLine, ms
from diagnostics.sanitize import visible

MAX_LINES_PER_REPLY = 60  # transcript lines kept from one reply
MAX_LINE_CHARS = 500  # characters kept from one transcript line
REDACTED = "[redacted]"
# A reply to AUTH can repeat the password in any encoding (split over lines, base64, hex,
# ...): it is kept as its codes only; the engine learns its meaning from the full reply.
AUTH_TEXT_WITHHELD = "[text withheld: a reply to AUTH can repeat the password]"


class Transcript:
    """The transcript of one probe (`lines`), and the text filter every line goes through."""

    def __init__(self, label: str, t0: float, secrets: tuple[str, ...]) -> None:
        self.label = label  # the probe's, on every line
        self.t0 = t0  # the diagnosis's start: lines from concurrent probes interleave by time
        self.secrets = secrets
        self.in_auth = False  # replies now answer AUTH: their text is never recorded
        self.loop = asyncio.get_running_loop()
        self.lines: list[TranscriptLine] = []

    def text(self, text: str) -> str:
        """Encodable text with every form of the password removed, and every control, bidi
        and invisible character shown as an escape (line feeds kept)."""
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return visible(text, multiline=True)

    def reply(self, code: int, message: str) -> Reply:
        lines = self.text(message).split("\n")
        kept = [visible(line, limit=MAX_LINE_CHARS) for line in lines[:MAX_LINES_PER_REPLY]]
        if len(lines) > MAX_LINES_PER_REPLY:
            kept.append(f"... {len(lines) - MAX_LINES_PER_REPLY} more lines")
        return Reply(code=code, message="\n".join(kept))

    def line(self, direction: str, text: str, *, at: float | None = None) -> None:
        text = visible(self.text(text), limit=MAX_LINE_CHARS + 1)  # the cut mark: 1 more
        self.lines.append(
            TranscriptLine(
                t_ms=ms((at or self.loop.time()) - self.t0),
                dir=direction,  # type: ignore[arg-type]
                line=text,
                probe=self.label,
            )
        )

    def sent(self, text: str) -> None:
        self.line(">", text)

    def received(self, reply: Reply, *, at: float | None = None) -> None:
        if self.in_auth:
            codes = " ".join(part for part in (str(reply.code), reply.enhanced) if part)
            self.line("<", f"{codes} {AUTH_TEXT_WITHHELD}", at=at)
            return
        lines = reply.message.split("\n")
        for index, line in enumerate(lines):
            if line.startswith("... ") and index == len(lines) - 1 and index:
                self.line("<", line, at=at)
                continue
            separator = " " if index == len(lines) - 1 else "-"
            self.line("<", f"{reply.code}{separator}{line}", at=at)

    def event(self, text: str) -> None:
        self.line("*", text)


def secret_forms(credentials: Credentials | None) -> tuple[str, ...]:
    """The password as it could appear in anything a server echoes back."""
    if credentials is None:
        return ()
    password = credentials.password.get_secret_value()
    if not password:
        return ()
    raw = password.encode("utf-8")
    user = credentials.user.encode("utf-8")
    forms = {
        password,
        base64.b64encode(raw).decode("ascii"),
        base64.b64encode(b"\0" + user + b"\0" + raw).decode("ascii"),
    }
    return tuple(sorted(forms, key=len, reverse=True))
