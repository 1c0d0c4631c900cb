"""History, audit, escalations, shared rate limits and the Slack outbox (SQLAlchemy 2 async).

SQLite (aiosqlite) by default, PostgreSQL (asyncpg) for several replicas; the schema is
managed by the packaged Alembic migrations, applied at `Store.open()`.
"""

from bot.store._database import NotFound, StoreError
from bot.store._maintenance import (
    DEFAULT_RETENTION_DAYS,
    retention_days,
    run_maintenance_once,
    start_maintenance,
)
from bot.store._outbox import OUTBOX_LEASE, OUTBOX_MAX_ATTEMPTS, OutboxRow
from bot.store._store import (
    AlreadyClaimed,
    DiagnosisRow,
    EscalationRow,
    Store,
    settings_key,
)
from bot.store._url import DEFAULT_URL, database_url
from bot.store.base import BotStore

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_URL",
    "OUTBOX_LEASE",
    "OUTBOX_MAX_ATTEMPTS",
    "AlreadyClaimed",
    "BotStore",
    "DiagnosisRow",
    "EscalationRow",
    "NotFound",
    "OutboxRow",
    "Store",
    "StoreError",
    "database_url",
    "retention_days",
    "run_maintenance_once",
    "settings_key",
    "start_maintenance",
]
