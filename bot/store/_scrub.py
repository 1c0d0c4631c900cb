"""Defence in depth: no secret is ever written to the store, whatever the caller passes.

Scrubbing walks every string of a report through the redaction patterns: CPU work that
grows with the report, so the store calls `scrub_off_loop`, which does it in a worker
thread and leaves the event loop to the acks.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from bot.observability.redaction import redact

_log = logging.getLogger(__name__)

# Key names whose values are never stored (case-insensitive, anywhere in the name).
_SECRET_KEY = re.compile(
    r"passw(or)?d|passphrase|^pass$|^pwd$|secret|token|credential|api_?key", re.I
)
REDACTED = "[redacted]"


def is_secret_key(key: object) -> bool:
    """True for keys such as password, client_secret, bot_token, apiKey."""
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def scrub(value: Any, *, where: str) -> Any:
    """A copy of VALUE without secret-named keys and with token-like strings redacted."""
    dropped: list[str] = []
    clean = _scrub(value, dropped)
    if dropped:
        # The key names are safe to log, the values never.
        _log.warning("store: dropped secret-named keys from %s: %s", where, ", ".join(dropped))
    return clean


async def scrub_off_loop(value: Any, *, where: str) -> Any:
    """`scrub` in a worker thread (the event loop serves Slack's acks meanwhile)."""
    return await asyncio.to_thread(scrub, value, where=where)


def _scrub(value: Any, dropped: list[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if is_secret_key(key):
                dropped.append(str(key))
                continue
            out[key] = _scrub(item, dropped)
        return out
    if isinstance(value, list | tuple):
        return [_scrub(item, dropped) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value
