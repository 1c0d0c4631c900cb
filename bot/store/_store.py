"""The history, audit, escalation, rate-limit and outbox store (SQLite or PostgreSQL).

`Store` is the one implementation of `bot.store.base.BotStore`: this module holds history,
audit, escalations and retention; `_outbox` the rate limits and the outbox; `_database`
the engine they share.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from bot.observability.redaction import redact
from bot.store import _migrate
from bot.store._database import NotFound, StoreError
from bot.store._outbox import OutboxAndLimits
from bot.store._schema import (
    audit_log,
    diagnoses,
    diagnosis_findings,
    escalations,
    outbox,
    rate_limit_hits,
)
from bot.store._scrub import scrub, scrub_off_loop
from bot.store._url import database_url, describe, ensure_sqlite_dir

_log = logging.getLogger(__name__)


class AlreadyClaimed(StoreError):
    """Another agent claimed (or someone resolved) the escalation first."""

    def __init__(self, escalation: EscalationRow) -> None:
        who = escalation.claimed_by or escalation.resolved_by
        by = f" by <@{who}>" if who else ""
        super().__init__(f"This escalation was already {escalation.state}{by}.")
        self.escalation = escalation
        self.claimed_by = escalation.claimed_by


@dataclasses.dataclass(frozen=True, slots=True)
class DiagnosisRow:
    """One stored diagnosis: who asked, where it was posted, the settings and the report."""

    diagnosis_id: str
    created_at: dt.datetime
    team_id: str
    user_id: str
    channel_id: str
    thread_ts: str | None
    host: str | None
    sender_domain: str | None
    port: int | None
    security: str | None
    settings_key: str
    verdict: str | None
    request: dict[str, Any]
    report: dict[str, Any]

    @property
    def finding_ids(self) -> list[str]:
        return [f.get("id", "") for f in self.report.get("findings") or ()]


@dataclasses.dataclass(frozen=True, slots=True)
class EscalationRow:
    """An escalation to the help desk and where it stands."""

    id: int
    diagnosis_id: str
    team_id: str
    requester_id: str
    channel_id: str
    thread_ts: str | None
    summary: str
    state: str  # open | claimed | resolved
    created_at: dt.datetime
    claimed_by: str | None
    claimed_at: dt.datetime | None
    resolved_by: str | None
    resolved_at: dt.datetime | None
    note: str | None
    message_channel_id: str | None
    message_ts: str | None


def settings_key(request: Mapping[str, Any]) -> str:
    """What makes two diagnoses "the same settings" for a re-run diff.

    host | sender (target email or --email) | port | encryption | user, lower-cased: the same
    string as bot.forms.settings_key() gives for the CheckRequest these fields came from.
    """
    parts = (
        request.get("host") or "",
        request.get("target_email") or request.get("email") or "",
        str(request.get("port") or ""),
        request.get("security") or "",
        request.get("user") or "",
    )
    return "|".join(str(part) for part in parts).lower()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lower(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower().rstrip(".")


def _domain_of(address: object) -> str | None:
    if isinstance(address, str) and "@" in address:
        return _lower(address.rpartition("@")[2])
    return None


def _extract(request: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """The indexed columns, from the request first and the report's echo of it second."""
    echo = report.get("input") or {}
    host = _lower(request.get("host")) or _lower(echo.get("host"))
    if host is None:  # an email target: the provider's endpoint that was probed
        recommended = report.get("recommended") or {}
        probed = [p.get("host") for p in report.get("probes") or () if p.get("host")]
        host = _lower(recommended.get("host")) or (_lower(probed[0]) if probed else None)
    domain = None
    for address in (
        request.get("email"),
        request.get("target_email"),
        echo.get("email"),
        request.get("target"),
        echo.get("target"),
    ):
        domain = _domain_of(address)
        if domain:
            break
    port = request.get("port") or echo.get("port")
    port_text = str(port) if isinstance(port, int | str) else ""
    security = request.get("security") or echo.get("security")
    return {
        "host": host,
        "sender_domain": domain,
        "port": int(port_text) if port_text.isascii() and port_text.isdigit() else None,
        "security": str(security) if security else None,
        "verdict": report.get("verdict"),
    }


def _diagnosis(row: Any) -> DiagnosisRow:
    m = row._mapping
    return DiagnosisRow(**{f.name: m[f.name] for f in dataclasses.fields(DiagnosisRow)})


def _escalation(row: Any) -> EscalationRow:
    m = row._mapping
    return EscalationRow(**{f.name: m[f.name] for f in dataclasses.fields(EscalationRow)})


_DIAGNOSIS_COLUMNS = [diagnoses.c[f.name] for f in dataclasses.fields(DiagnosisRow)]


class Store(OutboxAndLimits):
    """Async access to the store; one per process, shared by every handler."""

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, url: str | None = None, *, create: bool = True) -> Store:
        """Connect; with CREATE, bring the schema to head (a new SQLite file needs no setup)."""
        parsed = database_url(url)
        engine = _engine_for(parsed)
        store = cls(engine, parsed)
        try:
            if parsed.drivername.startswith("sqlite") and create:
                await _sqlite_wal(engine)
            async with engine.begin() as conn:
                if create:
                    await conn.run_sync(_migrate.upgrade)
                else:
                    current = await conn.run_sync(_migrate.current_revision)
                    if current != _migrate.head_revision():
                        raise StoreError(
                            f"database {describe(parsed)} is at schema {current or 'none'}, "
                            f"not {_migrate.head_revision()}: run `smtpcheck store upgrade`"
                        )
        except StoreError:
            await engine.dispose()
            raise
        except Exception as exc:
            await engine.dispose()
            # Driver messages can echo the DSN: say which database, never the password.
            raise StoreError(
                f"cannot open the store at {describe(parsed)}: "
                f"{redact(type(exc).__name__ + ': ' + str(exc))[:300]}"
            ) from None
        _log.info("store: opened %s", describe(parsed))
        return store

    # ------------------------------------------------------------------ diagnoses

    async def save_diagnosis(
        self,
        *,
        team_id: str,
        user_id: str,
        channel_id: str,
        thread_ts: str | None,
        request: dict[str, Any],
        report: dict[str, Any],
        diagnosis_id: str,
    ) -> None:
        """Keep a diagnosis and its findings (saving the same ID twice keeps the first)."""
        request = await scrub_off_loop(request, where="the diagnosis request")
        report = await scrub_off_loop(report, where="the diagnosis report")
        now = _now()
        columns = _extract(request, report)
        # A finding's row repeats its diagnosis's keys and host (the "same server, same
        # failure" query reads the findings table alone).
        keys = {
            "diagnosis_id": diagnosis_id,
            "created_at": now,
            "team_id": team_id,
            "user_id": user_id,
        }
        findings = [
            {
                **keys,
                "host": columns["host"],
                "finding_id": str(f.get("id")),
                "severity": str(f.get("severity")),
            }
            for f in report.get("findings") or ()
            if f.get("id")
        ]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    diagnoses.insert().values(
                        **keys,
                        channel_id=channel_id,
                        thread_ts=thread_ts,
                        settings_key=settings_key(request),
                        request=request,
                        report=report,
                        **columns,
                    )
                )
                if findings:
                    await conn.execute(diagnosis_findings.insert(), findings)
        except IntegrityError:
            _log.warning("store: diagnosis %s was already saved; kept the first", diagnosis_id)

    async def get_diagnosis(self, diagnosis_id: str) -> DiagnosisRow | None:
        """One diagnosis by ID."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*_DIAGNOSIS_COLUMNS).where(diagnoses.c.diagnosis_id == diagnosis_id)
                )
            ).first()
        return _diagnosis(row) if row else None

    async def previous_diagnosis(
        self, *, team_id: str, user_id: str, settings_key: str, before_id: str
    ) -> DiagnosisRow | None:
        """The same user's last diagnosis of the same settings before BEFORE_ID (re-run diff)."""
        query = (
            sa.select(*_DIAGNOSIS_COLUMNS)
            .where(
                diagnoses.c.team_id == team_id,
                diagnoses.c.user_id == user_id,
                diagnoses.c.settings_key == settings_key,
                diagnoses.c.diagnosis_id != before_id,
            )
            .order_by(diagnoses.c.seq.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            before_seq = (
                await conn.execute(
                    sa.select(diagnoses.c.seq).where(diagnoses.c.diagnosis_id == before_id)
                )
            ).scalar()
            if before_seq is not None:
                query = query.where(diagnoses.c.seq < before_seq)
            row = (await conn.execute(query)).first()
        return _diagnosis(row) if row else None

    async def recent_for_user(
        self, *, team_id: str, user_id: str, limit: int = 10
    ) -> list[DiagnosisRow]:
        """A user's latest diagnoses, newest first (App Home)."""
        query = (
            sa.select(*_DIAGNOSIS_COLUMNS)
            .where(diagnoses.c.team_id == team_id, diagnoses.c.user_id == user_id)
            .order_by(diagnoses.c.seq.desc())
            .limit(max(1, limit))
        )
        async with self._engine.connect() as conn:
            return [_diagnosis(row) for row in await conn.execute(query)]

    async def history(
        self, *, team_id: str, host_or_domain: str, limit: int = 20
    ) -> list[DiagnosisRow]:
        """Diagnoses of a server or sender domain, newest first.

        Matches the host exactly, a host under the domain (smtp.contoso.com for contoso.com),
        or the sender's email domain; an email address is taken as its domain.
        """
        needle = _lower(host_or_domain.rpartition("@")[2]) or ""
        if not needle:
            return []
        query = (
            sa.select(*_DIAGNOSIS_COLUMNS)
            .where(
                diagnoses.c.team_id == team_id,
                sa.or_(
                    diagnoses.c.host == needle,
                    diagnoses.c.sender_domain == needle,
                    diagnoses.c.host.endswith("." + needle, autoescape=True),
                ),
            )
            .order_by(diagnoses.c.seq.desc())
            .limit(max(1, limit))
        )
        async with self._engine.connect() as conn:
            return [_diagnosis(row) for row in await conn.execute(query)]

    async def same_failure_count(
        self,
        *,
        team_id: str,
        host: str,
        finding_id: str,
        since: dt.datetime,
        exclude_user: str | None,
    ) -> int:
        """How many distinct users saw FINDING_ID on HOST since SINCE (incident hint)."""
        f = diagnosis_findings.c
        conditions = [
            f.team_id == team_id,
            f.host == _lower(host),
            f.finding_id == finding_id,
            f.created_at >= since,
        ]
        if exclude_user is not None:
            conditions.append(f.user_id != exclude_user)
        query = sa.select(sa.func.count(sa.distinct(f.user_id))).where(*conditions)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar() or 0)

    # ------------------------------------------------------------------ escalations

    async def create_escalation(
        self,
        *,
        diagnosis_id: str,
        team_id: str,
        requester_id: str,
        channel_id: str,
        thread_ts: str | None,
        summary: str,
    ) -> EscalationRow:
        """Open an escalation."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    escalations.insert()
                    .values(
                        diagnosis_id=diagnosis_id,
                        team_id=team_id,
                        requester_id=requester_id,
                        channel_id=channel_id,
                        thread_ts=thread_ts,
                        summary=redact(summary),
                        state="open",
                        created_at=_now(),
                    )
                    .returning(*escalations.c)
                )
            ).one()
        return _escalation(row)

    async def get_escalation(self, escalation_id: int) -> EscalationRow | None:
        """One escalation by ID."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(escalations.select().where(escalations.c.id == escalation_id))
            ).first()
        return _escalation(row) if row else None

    async def claim_escalation(self, escalation_id: int, *, agent_id: str) -> EscalationRow:
        """Claim an open escalation; AlreadyClaimed if another agent was first.

        Claiming again by the agent who holds it returns the row (Slack retries clicks).
        """
        async with self._engine.begin() as conn:
            # One conditional UPDATE: of two agents clicking at once, exactly one wins.
            result = await conn.execute(
                escalations.update()
                .where(escalations.c.id == escalation_id, escalations.c.state == "open")
                .values(state="claimed", claimed_by=agent_id, claimed_at=_now())
                .returning(*escalations.c)
            )
            row = result.first()
        if row is not None:
            return _escalation(row)
        current = await self.get_escalation(escalation_id)
        if current is None:
            raise NotFound(f"no escalation {escalation_id}")
        if current.state == "claimed" and current.claimed_by == agent_id:
            return current
        raise AlreadyClaimed(current)

    async def resolve_escalation(
        self, escalation_id: int, *, agent_id: str, note: str | None
    ) -> EscalationRow:
        """Mark an escalation resolved (resolving it again keeps the first resolution)."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    escalations.update()
                    .where(escalations.c.id == escalation_id, escalations.c.state != "resolved")
                    .values(
                        state="resolved",
                        resolved_by=agent_id,
                        resolved_at=_now(),
                        note=redact(note) if note else None,
                        # An escalation resolved without a claim counts as claimed by the resolver.
                        claimed_by=sa.func.coalesce(escalations.c.claimed_by, agent_id),
                        claimed_at=sa.func.coalesce(escalations.c.claimed_at, _now()),
                    )
                    .returning(*escalations.c)
                )
            ).first()
        if row is not None:
            return _escalation(row)
        current = await self.get_escalation(escalation_id)
        if current is None:
            raise NotFound(f"no escalation {escalation_id}")
        return current

    async def set_escalation_message(self, escalation_id: int, *, channel_id: str, ts: str) -> None:
        """Remember where the escalation was posted (to update that message later)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                escalations.update()
                .where(escalations.c.id == escalation_id)
                .values(message_channel_id=channel_id, message_ts=ts)
            )
        if result.rowcount == 0:
            raise NotFound(f"no escalation {escalation_id}")

    # ------------------------------------------------------------------ audit

    async def audit(
        self,
        *,
        team_id: str,
        user_id: str,
        action: str,
        host: str | None,
        port: int | None,
        address: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record who probed which host and port (and other security-relevant actions)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                audit_log.insert().values(
                    created_at=_now(),
                    team_id=team_id,
                    user_id=user_id,
                    action=action,
                    host=_lower(host),
                    port=port,
                    address=address,
                    detail=scrub(detail, where="the audit detail") if detail else None,
                )
            )

    async def audit_entries(
        self, *, team_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The latest audit entries, newest first (for operators and tests)."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, limit))
        if team_id is not None:
            query = query.where(audit_log.c.team_id == team_id)
        async with self._engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    # ------------------------------------------------------------------ retention

    async def purge(self, *, older_than: dt.datetime) -> int:
        """Delete what is older than OLDER_THAN; returns how many rows went.

        Diagnoses and their findings, audit entries, resolved escalations, outbox entries,
        rate-limit hits, and expired OAuth states. Open escalations and installations stay.
        """
        deleted = 0
        statements: Sequence[sa.Delete] = (
            diagnosis_findings.delete().where(diagnosis_findings.c.created_at < older_than),
            diagnoses.delete().where(diagnoses.c.created_at < older_than),
            audit_log.delete().where(audit_log.c.created_at < older_than),
            escalations.delete().where(
                escalations.c.created_at < older_than, escalations.c.state == "resolved"
            ),
            outbox.delete().where(outbox.c.created_at < older_than),
            rate_limit_hits.delete().where(rate_limit_hits.c.at < older_than.timestamp()),
        )
        async with self._engine.begin() as conn:
            for statement in statements:
                deleted += (await conn.execute(statement)).rowcount or 0
            deleted += await _purge_oauth_states(conn)
        if deleted:
            _log.info("store: purged %d rows older than %s", deleted, older_than.isoformat())
        return deleted


async def _purge_oauth_states(conn: AsyncConnection) -> int:
    """Expired Slack OAuth states (slack_sdk stores naive UTC)."""
    states = sa.table("slack_oauth_states", sa.column("expire_at", sa.DateTime))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return (await conn.execute(states.delete().where(states.c.expire_at < now))).rowcount or 0


def _engine_for(url: URL) -> AsyncEngine:
    """An engine with the pool and connection settings each database needs."""
    if url.drivername.startswith("sqlite"):
        ensure_sqlite_dir(url)
        # Writers wait for each other instead of failing with "database is locked".
        options: dict[str, Any] = {"connect_args": {"timeout": 30}}
        if url.database in (None, "", ":memory:"):
            # An in-memory database exists once per connection: share one.
            options["poolclass"] = StaticPool
        engine = create_async_engine(url, **options)
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


async def _sqlite_wal(engine: AsyncEngine, *, patience: float = 30.0) -> None:
    """Switch the file to WAL once: readers then never block the writer, nor it them.

    The switch needs the file to itself and SQLite does not wait for that, so a replica
    starting alongside another retries for a while.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
