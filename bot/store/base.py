"""`BotStore`: what the bot needs from its store, as an explicit interface.

The runner, the listeners, escalations and the server depend on this Protocol, not on the
SQLAlchemy class (`bot.store.Store`, the one implementation), so a newcomer sees in one page
what the bot keeps, and a test can hand in a fake that has only these methods.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bot.store._outbox import OutboxRow
    from bot.store._store import DiagnosisRow, EscalationRow


class BotStore(Protocol):
    """History, audit, escalations, shared rate limits and the Slack outbox."""

    @property
    def engine(self) -> AsyncEngine:
        """The database engine (Bolt's OAuth installation and state stores share it)."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot be reached (readiness)."""

    async def close(self) -> None: ...

    # ------------------------------------------------------------------ history

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
    ) -> None: ...

    async def get_diagnosis(self, diagnosis_id: str) -> DiagnosisRow | None: ...

    async def recent_for_user(
        self, *, team_id: str, user_id: str, limit: int = 10
    ) -> list[DiagnosisRow]: ...

    async def history(
        self, *, team_id: str, host_or_domain: str, limit: int = 20
    ) -> list[DiagnosisRow]: ...

    async def same_failure_count(
        self,
        *,
        team_id: str,
        host: str,
        finding_id: str,
        since: dt.datetime,
        exclude_user: str | None,
    ) -> int: ...

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
    ) -> None: ...

    async def purge(self, *, older_than: dt.datetime) -> int: ...

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
    ) -> EscalationRow: ...

    async def claim_escalation(self, escalation_id: int, *, agent_id: str) -> EscalationRow: ...

    async def resolve_escalation(
        self, escalation_id: int, *, agent_id: str, note: str | None
    ) -> EscalationRow: ...

    async def set_escalation_message(
        self, escalation_id: int, *, channel_id: str, ts: str
    ) -> None: ...

    # ------------------------------------------------------------------ limits and outbox

    async def rate_limit_hit(self, key: str, *, limit: int, window_s: float) -> bool:
        """Count one hit on KEY; False when it is over LIMIT within WINDOW_S seconds."""
        ...

    async def enqueue_outbox(
        self, *, team_id: str, method: str, payload: dict[str, Any]
    ) -> int: ...

    async def pending_outbox(self, *, limit: int = 50) -> list[OutboxRow]: ...

    async def mark_outbox_sent(self, outbox_id: int) -> None: ...

    async def mark_outbox_failed(
        self, outbox_id: int, *, error: str, permanent: bool = False
    ) -> None: ...

    async def outbox_backlog(self) -> int: ...
