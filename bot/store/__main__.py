"""Operator commands: `python -m bot.store upgrade|check|purge [--url URL] [--days N]`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from bot.store._maintenance import retention_days
from bot.store._store import Store, StoreError


async def _run(command: str, url: str | None, days: int | None) -> str:
    store = await Store.open(url, create=command == "upgrade")
    try:
        if command == "purge":
            keep = dt.timedelta(days=days or retention_days())
            count = await store.purge(older_than=dt.datetime.now(dt.UTC) - keep)
            return f"purged {count} rows older than {keep.days} days from {store.url}"
        return f"{store.url}: schema is current"
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 with a one-line message otherwise."""
    parser = argparse.ArgumentParser(prog="python -m bot.store", description=__doc__)
    parser.add_argument("command", choices=["upgrade", "check", "purge"])
    parser.add_argument("--url", help="database URL (default: $SMTPCHECK_DATABASE_URL)")
    parser.add_argument("--days", type=int, help="purge: keep this many days")
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(_run(args.command, args.url, args.days)))
    except (StoreError, ValueError) as exc:
        print(f"bot.store {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
