"""Alembic migrations run from code (no alembic.ini), so they work from an installed package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant works: every replica must use the same one to serialize its migrations.
_PG_MIGRATION_LOCK = 0x736D7470  # "smtp"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations, bound to CONNECTION."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration's revision ID."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package ships at least one migration
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    """Bring the schema to head inside the caller's transaction, one replica at a time."""
    if connection.dialect.name == "postgresql":
        # Two replicas starting together would both try to CREATE TABLE.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    elif connection.dialect.name == "sqlite":
        # Take the write lock first, so a second process waits, then sees head.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    if current_revision(connection) == head_revision():
        return
    command.upgrade(alembic_config(connection), "head")
