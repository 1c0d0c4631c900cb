"""Which database: SMTPCHECK_DATABASE_URL, normalized to an async driver."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url

DEFAULT_URL = "sqlite+aiosqlite:///./smtpcheck.db"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
}
SUPPORTED = ("sqlite+aiosqlite", "postgresql+asyncpg")


def database_url(url: str | None = None) -> URL:
    """The URL to open: URL, else $SMTPCHECK_DATABASE_URL, else a SQLite file here."""
    text = (url or os.environ.get("SMTPCHECK_DATABASE_URL") or DEFAULT_URL).strip()
    try:
        parsed = make_url(text)
    except (
        Exception
    ):  # sqlalchemy raises ArgumentError; never echo the URL (it may hold a password)
        raise ValueError("SMTPCHECK_DATABASE_URL is not a database URL") from None
    drivername = _ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername)
    if drivername not in SUPPORTED:
        raise ValueError(
            f"SMTPCHECK_DATABASE_URL: unsupported database '{parsed.drivername}' "
            "(use sqlite+aiosqlite:///path or postgresql://user@host/db)"
        )
    parsed = parsed.set(drivername=drivername)
    if drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
        # libpq spells it sslmode; asyncpg takes the same values as `ssl`.
        query = dict(parsed.query)
        query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(query=query)
    return parsed


def describe(url: URL) -> str:
    """The URL for logs and messages: never the password."""
    return url.render_as_string(hide_password=True)


def ensure_sqlite_dir(url: URL) -> None:
    """Create the SQLite file's folder, so a first start needs no setup."""
    database = url.database
    if url.drivername.startswith("sqlite") and database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
