"""One sanitiser for every text that came from the network or from a user.

A server controls every byte of its greeting, its replies and its certificate; a user
controls what they type or paste. Shown as they are, such texts can drive a terminal (ESC
sequences, the 8-bit CSI ``\\x9b``), reorder what a reader sees (bidi overrides and
isolates), hide characters (zero-width and other format characters, the BOM) or forge lines
(U+2028/U+2029, CR). `visible` replaces each such character with a visible escape -
``\\x1b`` for code points up to U+00FF, ``U+202E`` above - and bounds the size.

What is escaped (`hidden`):

* Unicode categories Cc (C0 and C1 controls, DEL), Cf (format: bidi controls U+061C,
  U+200E/F, U+202A-202E, U+2066-2069; zero-width U+200B-200D, U+2060, U+FEFF; soft hyphen,
  tags, ...), Zl and Zp (U+2028, U+2029), Cs (lone surrogates) and Cn (unassigned: a newer
  terminal may know it as a format character);
* a few letters and marks that draw nothing (Hangul fillers, U+034F, U+17B4/5, U+3164,
  U+FFA0).

A tab becomes a space; a line feed is kept only in `multiline` text (a reply of several
lines, a finding's detail) and escaped in a single line (a transcript line, a name).

`visible` is idempotent (escapes are printable ASCII), so applying it where text enters the
report and again where a renderer writes it costs nothing but time.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import BaseModel, model_validator

__all__ = [
    "ELLIPSIS",
    "HIDDEN_CATEGORIES",
    "TEXT_LIMIT",
    "VisibleModel",
    "encodable",
    "hidden",
    "visible",
    "visible_data",
]

ELLIPSIS = "…"
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})
# Not format characters to Unicode, but they draw nothing: used to hide text in names.
_SURROGATE = re.compile("[\ud800-\udfff]")
_BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")


def hidden(char: str, *, multiline: bool = False) -> bool:
    """True when `char` must not reach a terminal or Slack as it is."""
    if char == "\n":
        return not multiline
    return unicodedata.category(char) in HIDDEN_CATEGORIES or char in _BLANK_LETTERS


def encodable(text: str) -> str:
    """`text` without lone surrogates (each becomes U+FFFD): a str decoded with
    surrogateescape, or JSON's "\\udc9b", cannot be encoded, and UTF-8 libraries (RE2, a
    socket, a terminal) raise on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _escape(char: str) -> str:
    number = ord(char)
    return f"\\x{number:02x}" if number <= 0xFF else f"U+{number:04X}"


def visible(text: object, *, limit: int | None = None, multiline: bool = False) -> str:
    """`text` with every hidden character shown as an escape, cut to `limit` characters.

    The cut never splits an escape; a cut text ends with an ellipsis (counted in `limit`).
    """
    text = text if isinstance(text, str) else str(text)
    # Fast path: nothing to escape (str.isprintable is false for every C and Z category
    # but the space; a newline is kept where lines are allowed) and nothing to cut.
    printable = text.replace("\n", "").isprintable() if multiline else text.isprintable()
    if printable and not _BLANK_LETTERS.intersection(text):
        if limit is None or len(text) <= limit:
            return text
    pieces: list[str] = []
    used = 0
    for char in text:
        if char == "\t":
            piece = " "
        elif hidden(char, multiline=multiline):
            piece = _escape(char)
        else:
            piece = char
        if limit is not None and used + len(piece) > limit:
            while pieces and used + len(ELLIPSIS) > limit:  # room for the mark, whole escapes
                used -= len(pieces.pop())
            if limit >= len(ELLIPSIS):
                pieces.append(ELLIPSIS)
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces)


def visible_data(value: Any, *, limit: int | None = None) -> Any:
    """A JSON-like value (dicts, lists, tuples, strings) with every string made `visible`.

    Strings keep their line feeds (details and replies have several lines); other values
    are returned as they are.
    """
    if isinstance(value, str):
        return visible(value, limit=limit, multiline=True)
    if isinstance(value, dict):
        return {
            visible_data(key, limit=limit): visible_data(item, limit=limit)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        cleaned = [visible_data(item, limit=limit) for item in value]
        return tuple(cleaned) if isinstance(value, tuple) else cleaned
    return value


# No one string of a report is longer (a pasted error text is at most 20,000 characters).
TEXT_LIMIT = 20_000


class VisibleModel(BaseModel):
    """A model whose every string passed `visible_data` when it was built.

    The base of the report's models: whatever a string's source (a server, a certificate,
    DNS, a user's paste), no control, bidi or invisible character reaches a renderer, and
    no string is longer than `TEXT_LIMIT`.
    """

    @model_validator(mode="before")
    @classmethod
    def _visible_text(cls, data: Any) -> Any:
        return visible_data(data, limit=TEXT_LIMIT) if isinstance(data, dict) else data
