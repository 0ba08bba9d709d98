"""Each service's migrations, run into a fresh database, make the tables its models describe.

The migrations spell their DDL out and never import the models (a model change must not alter
what an old revision did), so this test is what keeps the two in step. That matters beyond
reading: analytics' rebuild creates its scratch tables from the models.

Alembic's autogenerate comparison sees tables, columns (type, nullability, server default),
indexes, unique constraints and foreign keys, but neither the predicate of a partial index nor
CHECK constraints, nor the names of primary keys. Those are compared through the catalogue with
a database the models create.
"""

from __future__ import annotations

import asyncio
from importlib import import_module
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, pool

from eventing.database import asyncpg_dsn, eventing_metadata, new_engine
from eventing.migrations import downgrade, upgrade
from tests.support.infra import Infra

SERVICES = ("orders", "kitchen", "notifications", "analytics")

# What the migrations make and the models do not declare. Notifications' revision 0002 checks
# the status of deliveries and late timers in the database; the models leave them out, and the
# service never creates those tables from its models, so only the migrated database has them.
ONLY_IN_MIGRATIONS: dict[str, set[tuple[str, str, str]]] = {
    "notifications": {
        (
            "deliveries",
            "deliveries_status",
            "CHECK ((status = ANY (ARRAY['pending'::text, 'sent'::text, 'failed'::text, "
            "'skipped'::text])))",
        ),
        (
            "late_timers",
            "late_timers_status",
            "CHECK ((status = ANY (ARRAY['armed'::text, 'fired'::text, 'cancelled'::text])))",
        ),
    },
}

COLUMNS = """
    SELECT c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           pg_get_expr(d.adbin, d.adrelid)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
      AND c.relname <> 'alembic_version' AND a.attnum > 0 AND NOT a.attisdropped
"""
INDEXES = """
    SELECT tablename, indexname, indexdef FROM pg_indexes
    WHERE schemaname = 'public' AND tablename <> 'alembic_version'
"""
CONSTRAINTS = """
    SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'alembic_version'
"""
RELATIONS = "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"


def migrations_of(service: str) -> Path:
    """The service's Alembic script directory, where its ``migrate`` command finds it."""
    package = import_module(service).__file__
    assert package is not None
    return Path(package).parent / "migrations"


def model_of(service: str) -> MetaData:
    """Every table the service's database holds: its own models and the eventing tables."""
    model = MetaData()
    for metadata in (import_module(f"{service}.adapters.orm").metadata, eventing_metadata):
        for table in metadata.tables.values():
            table.to_metadata(model)
    return model


async def autogenerate_differences(url: str, model: MetaData) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, model))

    engine = new_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def create_from(model: MetaData, url: str) -> None:
    engine = new_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(model.create_all)
    finally:
        await engine.dispose()


async def catalogue(url: str, query: str) -> set[tuple[Any, ...]]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {tuple(row) for row in await connection.fetch(query)}
    finally:
        await connection.close()


async def migrated_to_head(infra: Infra, service: str) -> str:
    # As deployed: the database belongs to the service's role, which runs the migrations.
    url = await infra.create_database(service, owner=service)
    await asyncio.to_thread(upgrade, url, migrations_of(service))
    return url


@pytest.mark.parametrize("service", SERVICES)
async def test_the_migrations_make_what_the_models_describe(infra: Infra, service: str) -> None:
    model = model_of(service)
    migrated = await migrated_to_head(infra, service)

    assert await autogenerate_differences(migrated, model) == []

    modelled = await infra.create_database(f"{service}_model", owner=service)
    await create_from(model, modelled)
    assert await catalogue(migrated, INDEXES) == await catalogue(modelled, INDEXES)
    constraints = await catalogue(migrated, CONSTRAINTS)
    only_in_migrations = ONLY_IN_MIGRATIONS.get(service, set())
    assert only_in_migrations <= constraints
    assert constraints - only_in_migrations == await catalogue(modelled, CONSTRAINTS)


@pytest.mark.parametrize("service", SERVICES)
async def test_the_migrations_go_down_to_nothing_and_up_again(infra: Infra, service: str) -> None:
    url = await migrated_to_head(infra, service)
    schema = [await catalogue(url, query) for query in (COLUMNS, INDEXES, CONSTRAINTS)]

    await asyncio.to_thread(downgrade, url, migrations_of(service), "base")
    assert await catalogue(url, RELATIONS) == {("alembic_version",), ("alembic_version_pkc",)}

    await asyncio.to_thread(upgrade, url, migrations_of(service))
    assert [await catalogue(url, query) for query in (COLUMNS, INDEXES, CONSTRAINTS)] == schema
    assert await autogenerate_differences(url, model_of(service)) == []
