"""Regular expressions that run in linear time, for text that users and servers control.

Python's `re` backtracks: a pattern such as ``response\\s*:?\\s*`` over 20,000 spaces takes
seconds. Every pattern the knowledge base runs on pasted or received text is compiled here
with RE2 (google-re2), whose automata match in time linear in the text whatever the pattern.
RE2 refuses what it cannot run that way (backreferences, lookaround), so compiling a data
file's pattern with `compile_linear` is also the load-time proof that it is safe.
"""

from __future__ import annotations

from typing import Any

import re2  # type: ignore[import-untyped]

# Pasted text beyond this is not read (an Outlook dialog plus a bounce fits in a few KB).
MAX_TEXT = 20_000
# At most this many server replies are read from one paste, and this much of each.
MAX_REPLIES = 40
MAX_DISTINCT_REPLIES = 8  # different (code, enhanced code) pairs explained per paste
MAX_REPLY_TEXT = 1_000

Pattern = Any  # re2._Regexp: search/match/finditer/fullmatch with re-like Match objects


class UnsafePatternError(ValueError):
    """A pattern RE2 cannot run in linear time (backreference, lookaround) or cannot parse."""


def compile_linear(pattern: str, *, ignore_case: bool = True, dot_all: bool = True) -> Pattern:
    """Compile with RE2: case-insensitive and "." matching newlines unless told otherwise."""
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.dot_nl = dot_all
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise UnsafePatternError(
            f"bad regex {pattern!r}: {detail} (patterns are RE2 syntax, matched in linear "
            "time: no lookaround, no backreferences)"
        ) from None


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR (Mac paste) become LF, so line patterns see one kind of line end."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
