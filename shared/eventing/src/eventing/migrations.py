"""Alembic helpers: every service runs its migrations through these.

Each service keeps an Alembic script directory (``<service>/migrations``) whose ``env.py`` calls
``run_env``; the service's ``migrate`` command calls ``upgrade``. The eventing tables come from
``eventing.database``: each service's first revision creates the outbox and inbox with
``create_eventing_tables``, its revision ``0003_dead_letters`` the dead-letter records with
``create_dead_letters_table``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, pool

from eventing.database import dead_letters_table, inbox_table, new_engine, outbox_table

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
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)


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


# What revision 0001 creates, whatever tables eventing.database gains later.
_FIRST_EVENTING_TABLES = [outbox_table, inbox_table]


def create_eventing_tables(bind: Connection) -> None:
    for table in _FIRST_EVENTING_TABLES:
        table.create(bind=bind)


def drop_eventing_tables(bind: Connection) -> None:
    for table in reversed(_FIRST_EVENTING_TABLES):
        table.drop(bind=bind)


def create_dead_letters_table(bind: Connection) -> None:
    dead_letters_table.create(bind=bind)


def drop_dead_letters_table(bind: Connection) -> None:
    dead_letters_table.drop(bind=bind)
