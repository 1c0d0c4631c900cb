"""The store's shared work queue: per-user rate limits and the Slack outbox (calls that
failed, retried with backoff by whichever replica leases them first)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import sqlalchemy as sa

from bot.observability.redaction import redact
from bot.store._database import Database, NotFound
from bot.store._schema import outbox, rate_limit_hits
from bot.store._scrub import scrub_off_loop

# A replica that took outbox rows has this long to post them before another may retry.
OUTBOX_LEASE = dt.timedelta(seconds=120)
OUTBOX_MAX_ATTEMPTS = 20
_OUTBOX_BACKOFF_MAX_S = 3600.0


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxRow:
    """A Slack API call that could not be made, kept until Slack answers again."""

    id: int
    created_at: dt.datetime
    team_id: str
    method: str
    payload: dict[str, Any]
    state: str  # pending | sent | dead
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime


def _outbox(row: Any) -> OutboxRow:
    m = row._mapping
    return OutboxRow(**{f.name: m[f.name] for f in dataclasses.fields(OutboxRow)})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OutboxAndLimits(Database):
    """Rate-limit counters and outbox rows, shared by every replica."""

    # ------------------------------------------------------------------ rate limit

    async def rate_limit_hit(self, key: str, *, limit: int, window_s: float) -> bool:
        """Count one hit for KEY; True if it is within LIMIT hits in the last WINDOW_S seconds.

        A sliding window shared by every replica: the check and the insert happen under one
        lock per key (PostgreSQL advisory lock; SQLite's write lock), so two replicas can never
        both take the last slot. A refused hit is not counted.
        """
        if limit < 1:
            return False
        h = rate_limit_hits.c
        async with self._serialized(f"rate:{key}") as conn:
            now = time.time()
            cutoff = now - window_s
            # Expired hits of this key go now: the table stays small without the purge.
            await conn.execute(rate_limit_hits.delete().where(h.key == key, h.at <= cutoff))
            used = (
                await conn.execute(sa.select(sa.func.count()).where(h.key == key, h.at > cutoff))
            ).scalar_one()
            if used >= limit:
                return False
            await conn.execute(rate_limit_hits.insert().values(key=key, at=now))
            return True

    # ------------------------------------------------------------------ outbox

    async def enqueue_outbox(self, *, team_id: str, method: str, payload: dict[str, Any]) -> int:
        """Keep a Slack call for later; returns its ID."""
        now = _now()
        payload = await scrub_off_loop(payload, where="the outbox payload")
        async with self._engine.begin() as conn:
            result = await conn.execute(
                outbox.insert()
                .values(
                    created_at=now,
                    team_id=team_id,
                    method=method,
                    payload=payload,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
                .returning(outbox.c.id)
            )
            return int(result.scalar_one())

    async def pending_outbox(self, *, limit: int = 50) -> list[OutboxRow]:
        """Due calls, oldest first, leased to this caller for OUTBOX_LEASE.

        While leased, no other replica gets the same rows, so a message is not posted twice.
        """
        o = outbox.c
        async with self._serialized("outbox") as conn:
            now = _now()
            rows = (
                await conn.execute(
                    sa.select(*[o[f.name] for f in dataclasses.fields(OutboxRow)])
                    .where(o.state == "pending", o.next_attempt_at <= now)
                    .order_by(o.id)
                    .limit(max(1, limit))
                )
            ).all()
            if rows:
                await conn.execute(
                    outbox.update()
                    .where(o.id.in_([row.id for row in rows]))
                    .values(next_attempt_at=now + OUTBOX_LEASE)
                )
        return [_outbox(row) for row in rows]

    async def mark_outbox_sent(self, outbox_id: int) -> None:
        """The call went through."""
        async with self._engine.begin() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == outbox_id)
                .values(state="sent", sent_at=_now(), next_attempt_at=_now())
            )

    async def mark_outbox_failed(
        self, outbox_id: int, *, error: str, permanent: bool = False
    ) -> None:
        """The call failed again: back off exponentially; give up after OUTBOX_MAX_ATTEMPTS.

        PERMANENT (e.g. channel_not_found) gives up at once.
        """
        async with self._engine.begin() as conn:
            attempts = (
                await conn.execute(sa.select(outbox.c.attempts).where(outbox.c.id == outbox_id))
            ).scalar()
            if attempts is None:
                raise NotFound(f"no outbox entry {outbox_id}")
            attempts += 1
            delay = min(30.0 * 2 ** (attempts - 1), _OUTBOX_BACKOFF_MAX_S)
            dead = permanent or attempts >= OUTBOX_MAX_ATTEMPTS
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == outbox_id)
                .values(
                    attempts=attempts,
                    last_error=redact(error)[:500],
                    state="dead" if dead else "pending",
                    next_attempt_at=_now() + dt.timedelta(seconds=delay),
                )
            )

    async def outbox_backlog(self) -> int:
        """How many Slack calls wait to be posted (due now or backing off)."""
        async with self._engine.connect() as conn:
            query = sa.select(sa.func.count()).where(outbox.c.state == "pending")
            return int((await conn.execute(query)).scalar_one())

    async def outbox_entry(self, outbox_id: int) -> OutboxRow | None:
        """One outbox entry by ID, whatever its state."""
        o = outbox.c
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*[o[f.name] for f in dataclasses.fields(OutboxRow)]).where(
                        o.id == outbox_id
                    )
                )
            ).first()
        return _outbox(row) if row else None
