"""The database handle the store's query classes share: the engine, its dialect, and a
transaction serialized across replicas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store._url import describe


class StoreError(Exception):
    """The store cannot do what was asked (schema, database, or a missing row)."""


class NotFound(StoreError, LookupError):
    """No row with that ID."""


class Database:
    """An async SQLAlchemy engine for one database URL."""

    def __init__(self, engine: AsyncEngine, url: URL) -> None:
        self._engine = engine
        self._url = url

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (the Slack OAuth stores share it)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return describe(self._url)

    async def ping(self) -> None:
        """Raise if the database does not answer (a /health readiness check)."""
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    @asynccontextmanager
    async def _serialized(self, lock: str) -> AsyncIterator[AsyncConnection]:
        """A transaction that holds LOCK across all replicas until it ends."""
        async with self._engine.begin() as conn:
            if self.dialect == "sqlite":
                # The database-wide write lock, taken before the first read.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))"),
                    {"lock": lock},
                )
            yield conn
