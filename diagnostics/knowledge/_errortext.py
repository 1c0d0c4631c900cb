"""Recognise what users paste from Outlook: error numbers, quoted server replies, sentences."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any

from diagnostics.knowledge._linear import (
    MAX_DISTINCT_REPLIES,
    MAX_REPLIES,
    MAX_REPLY_TEXT,
    MAX_TEXT,
    compile_linear,
    normalise_newlines,
)
from diagnostics.knowledge._models import (
    ErrorTextMatch,
    ErrorTextsFile,
    FindingSpec,
    MessagePattern,
    ProbeLabel,
    ReplyMeaning,
    Stage,
)
from diagnostics.sanitize import encodable

# All compiled with RE2 (linear time on any text: the paste is the user's, its replies a
# server's). Where Python's re would use lookaround, the pattern consumes the neighbour.
# 0x800CCC0E, 800ccc0e, 0x8004210B: the transport (IMNXPORT) codes and Outlook's own.
_OUTLOOK_CODE = compile_linear(r"\b(?:0x)?(800ccc[0-9a-f]{2}|8004[0-9a-f]{4})\b")
# "535 5.7.139 Authentication ...", "535-5.7.8 Username ..." (enhanced code makes it certain).
_REPLY_ENHANCED = compile_linear(
    r"(?:^|[^\d.])([2-5][0-5]\d)[ -]([245]\.\d{1,3}\.\d{1,3})\b([^\n]*)"
)
# "The server responded: 554 Message rejected ...", "Server Response: '553 sorry ...'".
_REPLY_QUOTED = compile_linear(
    r"(?:responded|response|server said|server replied|message|error|exception)\s*:?\s*"
    r"['\"]?([45][0-5]\d)"
    r"(?:[ -]([^\n]*)|\n|$)"
)
# An enhanced code without its basic code: "main.CRITICAL: 5.7.0 (#AUTH005) ...",
# "(421, b'4.7.0 Temporary System Problem ...')" (Python's smtplib), "4.3.0 Temporary ...".
_BARE_ENHANCED = compile_linear(r"(?:^|[^\d.])([45])\.(\d{1,3})\.(\d{1,3})[ \t]+([A-Za-z(#][^\n]*)")
# A bare reply pasted on its own line: "535 Authentication failed: Bad username / password".
_REPLY_LINE = compile_linear(r"(?m)^[ \t]*([45][0-5]\d)[ -]([A-Za-z<#(][^\n]*)$")
# Where a quoted reply ends inside Outlook's dialog text: "...relay', Port: 25" or "...'" at end.
# Words that put a paste on the sending side (Outlook's "Sending reported error", the Test
# Account Settings "Send test e-mail message" line, "outgoing (SMTP)").
_SENDING = compile_linear(r"sending|outgoing|\bsmtp\b|send test|\bsend(ing)? (the )?message")
_QUOTE_END = compile_linear(r"['\"][ \t]*(?:[,)]|$)")

Classify = Callable[[int, str, Stage | None], ReplyMeaning | None]


class ErrorTextParser:
    """Turn pasted text into ErrorTextMatch values, server replies first (the most precise)."""

    def __init__(
        self, data: ErrorTextsFile, *, classify: Classify, findings: Mapping[str, FindingSpec]
    ) -> None:
        self._codes = {c.code: c for c in data.codes}
        self._messages = [(m, compile_linear(m.pattern)) for m in data.messages]
        self._classify = classify
        self._findings = findings

    def parse(self, text: str) -> list[ErrorTextMatch]:
        """Linear in the text (RE2), bounded by MAX_TEXT characters and MAX_REPLIES replies.

        The most specific reading wins: a sentence inside a quoted reply (the reply's own
        words) is not read again, and when the server answered at all, causes that say it
        could not be reached are dropped (they contradict the reply).
        """
        text = normalise_newlines(encodable(text[:MAX_TEXT]))  # a lone surrogate breaks RE2
        spans: list[tuple[int, int]] = []
        replies = self._replies(text, spans)
        answered = any(r.scope != "this_computer" for r in replies)
        others = [
            *self._codes_read_with(self._outlook_codes(text), replies),
            *self._sentences(text, spans, answered),
        ]
        if answered:
            others = [m for m in (_without_unreachable(m) for m in others) if m is not None]
        if any(m.scope == "receiving" for m in others) and not _SENDING.search(text):
            # Nothing in the paste is about sending: its generic sentences ("rejected your
            # login") describe the incoming server too.
            others = [_as_receiving(m) if m.kind == "message" else m for m in others]
        return [*replies, *others]

    def _probes(self, finding_ids: tuple[str, ...]) -> tuple[ProbeLabel, ...]:
        probes: dict[ProbeLabel, None] = {}
        for finding_id in finding_ids:
            spec = self._findings.get(finding_id)
            if spec:
                probes.update(dict.fromkeys(spec.probes))
        return tuple(probes)

    def _outlook_codes(self, text: str) -> list[ErrorTextMatch]:
        matches: dict[str, ErrorTextMatch] = {}
        for found in _first(_OUTLOOK_CODE.finditer(text)):
            code = "0x" + found.group(1).upper()
            if code in matches:
                continue
            known = self._codes.get(code)
            if known is None:
                matches[code] = ErrorTextMatch(
                    code=code,
                    kind="outlook_code",
                    cause=(
                        "An Outlook send/receive error number this tool does not know; the "
                        "sentence next to it, or the server's reply, says more."
                    ),
                    probes_to_confirm=("entered",),
                    matched=found.group(0),
                    scope="unknown",
                )
                continue
            matches[code] = ErrorTextMatch(
                code=code,
                kind="outlook_code",
                cause=known.cause,
                finding_ids=known.finding_ids,
                probes_to_confirm=known.probes or self._probes(known.finding_ids),
                matched=found.group(0),
                receive_side=known.receive_side,
                scope=known.about,
                status=known.status,
                sources=known.sources,
            )
        return list(matches.values())

    def _replies(self, text: str, spans: list[tuple[int, int]]) -> list[ErrorTextMatch]:
        found: dict[tuple[int, str | None], list[str]] = {}
        for match in _first(_REPLY_ENHANCED.finditer(text)):
            code = int(match.group(1))
            if code < 400:
                continue
            key = (code, match.group(2))
            found.setdefault(key, []).append(_clean(match.group(2) + match.group(3)))
            spans.append(match.span())
        for match in _first(_BARE_ENHANCED.finditer(text)):
            if any(start <= match.start(1) < end for start, end in spans):
                continue
            klass, bare = int(match.group(1)), ".".join(match.group(1, 2, 3))
            found.setdefault((klass * 100, bare), []).append(_clean(f"{bare} {match.group(4)}"))
            spans.append(match.span())
        for pattern in (_REPLY_QUOTED, _REPLY_LINE):
            for match in _first(pattern.finditer(text)):
                if any(start <= match.start(1) < end for start, end in spans):
                    continue
                code, rest = int(match.group(1)), _clean(match.group(2) or "")
                known_same_code = [k for k in found if k[0] == code]
                if known_same_code and not rest:
                    continue  # "Server Error: 550" repeats a reply already read in full
                found.setdefault((code, None), []).append(rest)
                spans.append(match.span())
        results = []
        for (code, enhanced), texts in islice(found.items(), MAX_DISTINCT_REPLIES):
            message = " ".join(t for t in dict.fromkeys(texts) if t)[:MAX_REPLY_TEXT]
            meaning = self._classify(code, message, None)
            if meaning is None:
                continue
            label = (f"{code} {enhanced}" if code % 100 else enhanced) if enhanced else str(code)
            results.append(
                ErrorTextMatch(
                    code=label,
                    kind="smtp_reply",
                    cause=meaning.meaning
                    + (f" {meaning.variant_detail}" if meaning.variant_detail else ""),
                    finding_ids=(meaning.finding_id,),
                    probes_to_confirm=self._probes((meaning.finding_id,)),
                    matched=f"{code} {message}".strip(),
                    reply=meaning,
                    scope=meaning.scope,
                    sources=meaning.sources,
                )
            )
        return results

    def _codes_read_with(
        self, codes: list[ErrorTextMatch], replies: list[ErrorTextMatch]
    ) -> list[ErrorTextMatch]:
        """An Outlook code that wraps a quoted reply (0x800CCC6C = 452) says what it says."""
        by_code = {r.reply.code: r for r in replies if r.reply is not None}
        result = []
        for match in codes:
            spec = self._codes.get(match.code or "")
            reply = by_code.get(spec.smtp_code) if spec and spec.smtp_code else None
            if reply is not None:
                match = match.model_copy(
                    update={"scope": reply.scope, "finding_ids": reply.finding_ids}
                )
            result.append(match)
        return result

    def _sentences(
        self, text: str, spans: list[tuple[int, int]], answered: bool
    ) -> list[ErrorTextMatch]:
        found = self._sentence_matches(text, spans, answered)
        specific = {f for spec, m in found if not spec.generic for f in m.finding_ids}
        return [m for spec, m in found if not (spec.generic and specific & set(m.finding_ids))]

    def _sentence_matches(
        self, text: str, spans: list[tuple[int, int]], answered: bool
    ) -> list[tuple[MessagePattern, ErrorTextMatch]]:
        results = []
        for spec, pattern in self._messages:
            if answered and spec.connection_only:
                continue
            match = next(
                (m for m in _first(pattern.finditer(text)) if not _inside(m.span(), spans)),
                None,
            )
            if match:
                results.append((spec,
                    ErrorTextMatch(
                        code=spec.label,
                        kind="message",
                        cause=spec.cause,
                        finding_ids=spec.finding_ids,
                        probes_to_confirm=spec.probes or self._probes(spec.finding_ids),
                        matched=match.group(0),
                        receive_side=spec.scope == "receiving",
                        scope=spec.scope,
                        status=spec.status,
                        sources=spec.sources,
                    ),
                ))  # fmt: skip
        return results


# Causes that say the server could not be reached: a quoted server reply contradicts them.
_UNREACHABLE = frozenset(
    {"tcp.refused", "tcp.timeout", "tcp.unreachable", "dns.host.nxdomain", "dns.host.no_address",
     "dns.timeout", "settings.port25_blocked_likely"}
)  # fmt: skip


def _without_unreachable(match: ErrorTextMatch) -> ErrorTextMatch | None:
    if not set(match.finding_ids) & _UNREACHABLE:
        return match
    kept = tuple(f for f in match.finding_ids if f not in _UNREACHABLE)
    if not kept:
        return None
    return match.model_copy(update={"finding_ids": kept})


def _as_receiving(match: ErrorTextMatch) -> ErrorTextMatch:
    if match.scope == "receiving":
        return match
    return match.model_copy(
        update={
            "scope": "receiving",
            "receive_side": True,
            "finding_ids": ("input.incoming_server",),
            "probes_to_confirm": (),
        }
    )


def _inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(start <= span[0] and span[1] <= end for start, end in spans)


def _first(matches: Iterator[Any]) -> Iterator[Any]:
    """No more than MAX_REPLIES matches of one pattern are read from a paste."""
    return islice(matches, MAX_REPLIES)


def _clean(text: str) -> str:
    """Cut a quoted reply where Outlook's dialog text resumes, and tidy the spaces."""
    text = text[:MAX_REPLY_TEXT]
    end = _QUOTE_END.search(text)
    if end:
        text = text[: end.start()]
    return " ".join(text.strip(" '\"").split())
