"""The store's tables (SQLAlchemy Core); the migrations create exactly these."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()

# JSONB on PostgreSQL (compact, indexable later), JSON text on SQLite.
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Stored as naive UTC (the same on SQLite and PostgreSQL), returned timezone-aware."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stored: dt.datetime = value
        return stored.replace(tzinfo=dt.UTC)


diagnoses = sa.Table(
    "diagnoses",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("diagnosis_id", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32)),
    sa.Column("host", sa.String(255)),
    sa.Column("sender_domain", sa.String(255)),
    sa.Column("port", sa.Integer),
    sa.Column("security", sa.String(16)),
    sa.Column("settings_key", sa.Text, nullable=False),
    sa.Column("verdict", sa.String(8)),
    sa.Column("request", JSONDoc, nullable=False),
    sa.Column("report", JSONDoc, nullable=False),
    sa.Index("ix_diagnoses_user", "team_id", "user_id", "seq"),
    sa.Index("ix_diagnoses_settings", "team_id", "user_id", "settings_key", "seq"),
    sa.Index("ix_diagnoses_host", "team_id", "host", "seq"),
    sa.Index("ix_diagnoses_domain", "team_id", "sender_domain", "seq"),
    sa.Index("ix_diagnoses_created", "created_at"),
)

# One row per finding of a diagnosis: the "several users, same server, same failure" query.
diagnosis_findings = sa.Table(
    "diagnosis_findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "diagnosis_id",
        sa.String(64),
        sa.ForeignKey("diagnoses.diagnosis_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("host", sa.String(255)),
    sa.Column("finding_id", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Index("ix_findings_host", "team_id", "host", "finding_id", "created_at"),
    sa.Index("ix_findings_diagnosis", "diagnosis_id"),
    sa.Index("ix_findings_created", "created_at"),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("diagnosis_id", sa.String(64), nullable=False),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("requester_id", sa.String(32), nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32)),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | claimed | resolved
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.String(32)),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("resolved_by", sa.String(32)),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("note", sa.Text),
    sa.Column("message_channel_id", sa.String(32)),
    sa.Column("message_ts", sa.String(32)),
    sa.Index("ix_escalations_diagnosis", "diagnosis_id"),
    sa.Index("ix_escalations_state", "team_id", "state"),
    sa.Index("ix_escalations_created", "created_at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255)),
    sa.Column("port", sa.Integer),
    sa.Column("address", sa.String(64)),
    sa.Column("detail", JSONDoc),
    sa.Index("ix_audit_created", "created_at"),
    sa.Index("ix_audit_user", "team_id", "user_id", "created_at"),
    sa.Index("ix_audit_host", "host", "created_at"),
)

# Sliding-window log: one row per allowed hit; `at` is epoch seconds.
rate_limit_hits = sa.Table(
    "rate_limit_hits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_rate_limit_key_at", "key", "at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("team_id", sa.String(32), nullable=False),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | sent | dead
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    # Not before this time: the retry back-off, and the lease a replica takes while posting.
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Index("ix_outbox_due", "state", "next_attempt_at"),
    sa.Index("ix_outbox_created", "created_at"),
)
