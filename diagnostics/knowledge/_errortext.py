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
    ReplyMeaning,
    Stage,
)

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
    r"(?:responded|response|server said|server replied)\s*:?\s*['\"]?([45][0-5]\d)"
    r"(?:[ -]([^\n]*)|\n|$)"
)
# A bare reply pasted on its own line: "535 Authentication failed: Bad username / password".
_REPLY_LINE = compile_linear(r"(?m)^[ \t]*([45][0-5]\d)[ -]([A-Za-z<#(][^\n]*)$")
# Where a quoted reply ends inside Outlook's dialog text: "...relay', Port: 25" or "...'" at end.
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
        """Linear in the text (RE2), bounded by MAX_TEXT characters and MAX_REPLIES replies."""
        text = normalise_newlines(text[:MAX_TEXT])
        return [*self._replies(text), *self._outlook_codes(text), *self._sentences(text)]

    def _probes(self, finding_ids: tuple[str, ...]) -> tuple[str, ...]:
        probes: dict[str, None] = {}
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
                sources=known.sources,
            )
        return list(matches.values())

    def _replies(self, text: str) -> list[ErrorTextMatch]:
        found: dict[tuple[int, str | None], list[str]] = {}
        spans: list[tuple[int, int]] = []
        for match in _first(_REPLY_ENHANCED.finditer(text)):
            code = int(match.group(1))
            if code < 400:
                continue
            key = (code, match.group(2))
            found.setdefault(key, []).append(_clean(match.group(2) + match.group(3)))
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
            label = f"{code} {enhanced}" if enhanced else str(code)
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
                    sources=meaning.sources,
                )
            )
        return results

    def _sentences(self, text: str) -> list[ErrorTextMatch]:
        results = []
        for spec, pattern in self._messages:
            match = pattern.search(text)
            if match:
                results.append(
                    ErrorTextMatch(
                        code=spec.label,
                        kind="message",
                        cause=spec.cause,
                        finding_ids=spec.finding_ids,
                        probes_to_confirm=spec.probes or self._probes(spec.finding_ids),
                        matched=match.group(0),
                        sources=spec.sources,
                    )
                )
        return results


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
