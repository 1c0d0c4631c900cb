"""Alembic environment: runs on the connection bot.store._migrate hands over (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from bot.store._schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI
    raise RuntimeError("run migrations through bot.store (smtpcheck store upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things: later migrations copy-and-move tables in batch mode.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
