"""One log handler per process: every record redacted, then written once, as JSON lines or
readable text, carrying the request and diagnosis ids of the work that logged it.

`configure_logging` is the only place a handler is installed (the `smtpcheck` command calls
it for every subcommand; `serve` calls it again with its own default level, which replaces
the handler rather than adding one).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json as jsonlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, TextIO

from bot.observability.redaction import redact, redact_data, register_env_secrets

_CONTEXT: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "smtpcheck_log_context", default=MappingProxyType({})
)
CONTEXT_FIELDS = ("request_id", "diagnosis_id", "team_id", "user_id")
HANDLER_MARK = "_smtpcheck_handler"


def new_request_id() -> str:
    """A short random id for one Slack request or diagnosis."""
    import secrets  # here: its hmac/OpenSSL start is ~8 ms of every `smtpcheck --help`

    return secrets.token_hex(6)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[Mapping[str, str]]:
    """Add FIELDS (request_id, diagnosis_id, ...) to every record logged inside the block.

    Tasks created inside inherit them (asyncio copies the context), so a background
    diagnosis keeps its request's id.
    """
    token = _CONTEXT.set(_merged(fields))
    try:
        yield _CONTEXT.get()
    finally:
        _CONTEXT.reset(token)


def bind_log_context(**fields: str | None) -> None:
    """Add FIELDS to the current context for the rest of this task (no block needed)."""
    _CONTEXT.set(_merged(fields))


def current_log_context() -> Mapping[str, str]:
    """The fields every record gets right now."""
    return _CONTEXT.get()


def _merged(fields: Mapping[str, str | None]) -> Mapping[str, str]:
    return {**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}}


class RedactingFilter(logging.Filter):
    """Redacts message, args (structures by key, at any depth) and tracebacks, and adds the
    context fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.args, Mapping | tuple):
                record.args = redact_data(record.args)
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        context = _CONTEXT.get()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, context.get(name))
        for name, value in context.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


# Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", *CONTEXT_FIELDS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the context ids, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = _jsonable(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return jsonlib.dumps(entry, ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    value = redact_data(value)
    try:
        jsonlib.dumps(value)
    except (TypeError, ValueError):
        return redact(repr(value))
    return value


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal: time, level, logger, [ids], message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(ids)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        ids = [getattr(record, n, None) for n in ("request_id", "diagnosis_id")]
        record.ids = " [" + " ".join(i for i in ids if i) + "]" if any(ids) else ""
        return super().format(record)


def configure_logging(
    json: bool | None = None,
    level: int | str | None = None,
    *,
    stream: TextIO | None = None,
    default_level: int | str = logging.INFO,
) -> logging.Handler:
    """Make the root logger's handler the one redacting handler, to STREAM (stderr).

    JSON when asked, or SMTPCHECK_LOG_FORMAT=json, or STREAM is not a terminal; the level
    from LEVEL, else SMTPCHECK_LOG_LEVEL, else DEFAULT_LEVEL. Any other handler on the root
    logger that writes to a stream is removed (a `basicConfig` one would print every line a
    second time, unredacted); calling it again replaces the handler.
    """
    target = stream or sys.stderr
    if json is None:
        wanted = os.environ.get("SMTPCHECK_LOG_FORMAT", "").strip().lower()
        if wanted in ("json", "text", "console"):
            json = wanted == "json"
        else:
            json = not (hasattr(target, "isatty") and target.isatty())
    level = level or os.environ.get("SMTPCHECK_LOG_LEVEL", "").strip().upper() or default_level
    register_env_secrets()
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, HANDLER_MARK, True)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json else ConsoleFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if _writes_to_a_stream(h)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


def _writes_to_a_stream(handler: logging.Handler) -> bool:
    # Ours, or a plain one (basicConfig's). Test frameworks' capture handlers are subclasses
    # that write nowhere a user sees: they stay.
    return getattr(handler, HANDLER_MARK, False) or type(handler) is logging.StreamHandler


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (as logging's last resort does),
    never to a stream that was replaced and closed since."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass
