"""The background task that keeps the store within its retention and drains the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Awaitable, Callable

from bot.observability.metrics import METRICS
from bot.store._store import Store
from bot.store.base import BotStore

_log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90


def retention_days() -> int:
    """SMTPCHECK_RETENTION_DAYS (default 90; at least 1)."""
    raw = os.environ.get("SMTPCHECK_RETENTION_DAYS", "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"SMTPCHECK_RETENTION_DAYS: '{raw}' is not a whole number") from None
    if days < 1:
        raise ValueError("SMTPCHECK_RETENTION_DAYS: must be at least 1")
    return days


async def run_store_command(command: str, *, url: str | None, days: int | None) -> str:
    """`smtpcheck store upgrade|check|purge`: what to print on success (raises StoreError,
    or ValueError for a bad SMTPCHECK_RETENTION_DAYS)."""
    store = await Store.open(url, create=command == "upgrade")
    try:
        if command == "purge":
            keep = dt.timedelta(days=days or retention_days())
            count = await store.purge(older_than=dt.datetime.now(dt.UTC) - keep)
            return f"purged {count} rows older than {keep.days} days from {store.url}"
        return f"{store.url}: schema is current"
    finally:
        await store.close()


async def run_maintenance_once(
    store: BotStore,
    *,
    retention: dt.timedelta,
    outbox: Callable[[BotStore], Awaitable[object]] | None = None,
) -> int:
    """One round: purge what is older than RETENTION, then let OUTBOX retry; rows purged."""
    purged = await store.purge(older_than=dt.datetime.now(dt.UTC) - retention)
    if outbox is not None:
        await outbox(store)
    return purged


def start_maintenance(
    store: BotStore,
    interval: float,
    *,
    retention: dt.timedelta | None = None,
    outbox: Callable[[BotStore], Awaitable[object]] | None = None,
    purge_every: float = 3600.0,
) -> asyncio.Task[None]:
    """Start the maintenance loop; cancel the returned task to stop it.

    Every INTERVAL seconds OUTBOX (if given) is awaited with the store, to post what Slack
    could not take, and the smtpcheck_outbox_pending gauge is updated; every PURGE_EVERY
    seconds (and once at start) old rows are purged. A failing round is logged and the loop
    goes on.
    """
    if interval <= 0:
        raise ValueError("the maintenance interval must be positive")
    keep = retention or dt.timedelta(days=retention_days())
    return asyncio.create_task(
        _loop(store, interval=interval, retention=keep, outbox=outbox, purge_every=purge_every),
        name="smtpcheck-store-maintenance",
    )


async def _loop(
    store: BotStore,
    *,
    interval: float,
    retention: dt.timedelta,
    outbox: Callable[[BotStore], Awaitable[object]] | None,
    purge_every: float,
) -> None:
    loop = asyncio.get_running_loop()
    next_purge = loop.time()
    while True:
        if loop.time() >= next_purge:
            next_purge = loop.time() + purge_every
            try:
                await store.purge(older_than=dt.datetime.now(dt.UTC) - retention)
            except Exception:
                _log.exception("store maintenance: purge failed; will try again")
        if outbox is not None:
            try:
                await outbox(store)
            except Exception:
                _log.exception("store maintenance: outbox round failed; will try again")
        try:
            METRICS.outbox_pending.set(await store.outbox_backlog())
        except Exception:
            _log.warning("store maintenance: could not count the outbox", exc_info=True)
        await asyncio.sleep(interval)
