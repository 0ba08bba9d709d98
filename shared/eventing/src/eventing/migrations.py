"""Alembic helpers: every service runs its migrations through these.

Each service keeps an Alembic script directory (``<service>/migrations``) whose ``env.py`` calls
``run_env``; the service's ``migrate`` command calls ``upgrade``. Each service's first revision
creates the outbox and inbox with ``create_eventing_tables``, its revision ``0003_dead_letters``
the dead-letter records with ``create_dead_letters_table``. Their DDL is spelled out here as
those revisions made it, never taken from ``eventing.database``: a change to those tables is a
new helper for a new revision of every service, and the old ones stay as they are.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config
from sqlalchemy import Connection, MetaData, pool
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, UUID

from eventing.database import new_engine

__all__ = [
    "create_dead_letters_table",
    "create_eventing_tables",
    "drop_dead_letters_table",
    "drop_eventing_tables",
    "run_env",
    "upgrade",
]


def upgrade(database_url: str, script_location: Path, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision`` (synchronous; runs its own loop)."""
    command.upgrade(_config(database_url, script_location), revision)


def downgrade(database_url: str, script_location: Path, revision: str) -> None:
    """Take the database at ``database_url`` back to ``revision`` (``"base"``: nothing left)."""
    command.downgrade(_config(database_url, script_location), revision)


def _config(database_url: str, script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def run_env(target_metadata: MetaData | None = None) -> None:
    """The body of a service's ``env.py`` (online migrations over asyncpg)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = new_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run())


def create_eventing_tables() -> None:
    """The outbox and the inbox, as every service's revision 0001 creates them."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, nullable=False, autoincrement=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition_key", sa.Text, nullable=False),
        sa.Column("shard", sa.SmallInteger, nullable=False),
        sa.Column("aggregate_type", sa.Text, nullable=False),
        sa.Column("aggregate_id", sa.Text, nullable=False),
        sa.Column("aggregate_version", sa.Integer),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("traceparent", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("parked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="outbox_pkey"),
        sa.UniqueConstraint("event_id", name="outbox_event_id_key"),
    )
    op.create_index(
        "outbox_failed_by_key",
        "outbox",
        ["partition_key", "id"],
        postgresql_where=sa.text("attempts > 0"),
    )
    op.create_table(
        "inbox",
        sa.Column("handler", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("handler", "event_id", name="inbox_pkey"),
    )
    op.create_index("inbox_processed_at", "inbox", ["processed_at"])


def drop_eventing_tables() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")


def create_dead_letters_table() -> None:
    """The dead-letter records, as every service's revision ``0003_dead_letters`` creates them."""
    op.create_table(
        "dead_letters",
        sa.Column("consumer_group", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("handler", sa.Text, nullable=False),
        sa.Column("dead_letter_topic", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("key", BYTEA),
        sa.Column("value", BYTEA),
        sa.Column("headers", BYTEA),
        sa.Column("value_bytes", sa.Integer),
        sa.Column("truncated", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("error", sa.Text),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint(
            "consumer_group", "topic", "partition", "offset", "handler", name="dead_letters_pkey"
        ),
    )
    op.create_index("dead_letters_by_key", "dead_letters", ["topic", "key"])
    op.create_index(
        "dead_letters_unpublished",
        "dead_letters",
        ["status"],
        postgresql_where=sa.text("status <> 'published'"),
    )


def drop_dead_letters_table() -> None:
    op.drop_table("dead_letters")
