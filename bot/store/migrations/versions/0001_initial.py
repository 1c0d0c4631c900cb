"""Initial schema: diagnoses, findings, escalations, audit log, rate limits, outbox, Slack OAuth.

Revision ID: 0001
Revises:
Create Date: 2025-11-26

The Slack tables match slack_sdk's SQLAlchemy installation and state stores (written out
here, not built from slack_sdk, so a later slack_sdk cannot silently change a past migration).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create every table."""
    _create_history_tables()
    _create_escalation_and_audit_tables()
    _create_work_tables()
    _create_slack_tables()


def _create_history_tables() -> None:
    op.create_table(
        "diagnoses",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("diagnosis_id", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
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
    )
    op.create_index("ix_diagnoses_user", "diagnoses", ["team_id", "user_id", "seq"])
    op.create_index(
        "ix_diagnoses_settings", "diagnoses", ["team_id", "user_id", "settings_key", "seq"]
    )
    op.create_index("ix_diagnoses_host", "diagnoses", ["team_id", "host", "seq"])
    op.create_index("ix_diagnoses_domain", "diagnoses", ["team_id", "sender_domain", "seq"])
    op.create_index("ix_diagnoses_created", "diagnoses", ["created_at"])

    op.create_table(
        "diagnosis_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "diagnosis_id",
            sa.String(64),
            sa.ForeignKey("diagnoses.diagnosis_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("finding_id", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
    )
    op.create_index(
        "ix_findings_host", "diagnosis_findings", ["team_id", "host", "finding_id", "created_at"]
    )
    op.create_index("ix_findings_diagnosis", "diagnosis_findings", ["diagnosis_id"])
    op.create_index("ix_findings_created", "diagnosis_findings", ["created_at"])


def _create_escalation_and_audit_tables() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("diagnosis_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("requester_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("thread_ts", sa.String(32)),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("claimed_by", sa.String(32)),
        sa.Column("claimed_at", sa.DateTime),
        sa.Column("resolved_by", sa.String(32)),
        sa.Column("resolved_at", sa.DateTime),
        sa.Column("note", sa.Text),
        sa.Column("message_channel_id", sa.String(32)),
        sa.Column("message_ts", sa.String(32)),
    )
    op.create_index("ix_escalations_diagnosis", "escalations", ["diagnosis_id"])
    op.create_index("ix_escalations_state", "escalations", ["team_id", "state"])
    op.create_index("ix_escalations_created", "escalations", ["created_at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("port", sa.Integer),
        sa.Column("address", sa.String(64)),
        sa.Column("detail", JSONDoc),
    )
    op.create_index("ix_audit_created", "audit_log", ["created_at"])
    op.create_index("ix_audit_user", "audit_log", ["team_id", "user_id", "created_at"])
    op.create_index("ix_audit_host", "audit_log", ["host", "created_at"])


def _create_work_tables() -> None:
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_rate_limit_key_at", "rate_limit_hits", ["key", "at"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("payload", JSONDoc, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("sent_at", sa.DateTime),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_created", "outbox", ["created_at"])


def _create_slack_tables() -> None:
    """slack_sdk's AsyncSQLAlchemyInstallationStore and AsyncSQLAlchemyOAuthStateStore."""
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("app_id", sa.String(32), nullable=False),
        sa.Column("enterprise_id", sa.String(32)),
        sa.Column("enterprise_name", sa.String(200)),
        sa.Column("enterprise_url", sa.String(200)),
        sa.Column("team_id", sa.String(32)),
        sa.Column("team_name", sa.String(200)),
        sa.Column("bot_token", sa.String(200)),
        sa.Column("bot_id", sa.String(32)),
        sa.Column("bot_user_id", sa.String(32)),
        sa.Column("bot_scopes", sa.String(1000)),
        sa.Column("bot_refresh_token", sa.String(200)),
        sa.Column("bot_token_expires_at", sa.DateTime),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("user_token", sa.String(200)),
        sa.Column("user_scopes", sa.String(1000)),
        sa.Column("user_refresh_token", sa.String(200)),
        sa.Column("user_token_expires_at", sa.DateTime),
        sa.Column("incoming_webhook_url", sa.String(200)),
        sa.Column("incoming_webhook_channel", sa.String(200)),
        sa.Column("incoming_webhook_channel_id", sa.String(200)),
        sa.Column("incoming_webhook_configuration_url", sa.String(200)),
        sa.Column("is_enterprise_install", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("token_type", sa.String(32)),
        sa.Column("installed_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "slack_installations_idx",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
    )
    op.create_table(
        "slack_bots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("app_id", sa.String(32), nullable=False),
        sa.Column("enterprise_id", sa.String(32)),
        sa.Column("enterprise_name", sa.String(200)),
        sa.Column("team_id", sa.String(32)),
        sa.Column("team_name", sa.String(200)),
        sa.Column("bot_token", sa.String(200)),
        sa.Column("bot_id", sa.String(32)),
        sa.Column("bot_user_id", sa.String(32)),
        sa.Column("bot_scopes", sa.String(1000)),
        sa.Column("bot_refresh_token", sa.String(200)),
        sa.Column("bot_token_expires_at", sa.DateTime),
        sa.Column("is_enterprise_install", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("installed_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "slack_bots_idx",
        "slack_bots",
        ["client_id", "enterprise_id", "team_id", "installed_at"],
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(200), nullable=False),
        sa.Column("expire_at", sa.DateTime, nullable=False),
    )
    op.create_index("slack_oauth_states_state", "slack_oauth_states", ["state"])


def downgrade() -> None:
    """Drop every table."""
    for table in (
        "slack_oauth_states",
        "slack_bots",
        "slack_installations",
        "outbox",
        "rate_limit_hits",
        "audit_log",
        "escalations",
        "diagnosis_findings",
        "diagnoses",
    ):
        op.drop_table(table)
