"""One database role per service, owning its database and nothing else (deploy/local/stack.sh):
a compromised service cannot read or change another service's data."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from eventing.database import asyncpg_dsn
from tests.support.infra import Infra
from tests.support.system import SERVICES, migrated_database

ROLES = SERVICES  # the role of a service is named after it, like its database


def dsn(infra: Infra, database: str, role: str) -> str:
    return asyncpg_dsn(infra.role_url(database, role))


@pytest.mark.parametrize("role", [role for role in ROLES if role != "orders"])
async def test_another_service_role_cannot_connect_to_the_orders_database(
    infra: Infra, role: str
) -> None:
    # Both the stack's own orders database and a fresh one made as the tests make them.
    fresh = make_url(await migrated_database(infra, "orders")).database
    for database in ("orders", fresh):
        assert database is not None
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await asyncpg.connect(dsn(infra, database, role))


async def test_a_service_role_owns_its_tables_and_is_no_administrator(infra: Infra) -> None:
    url = make_url(await migrated_database(infra, "kitchen"))
    assert url.username == "kitchen"
    connection = await asyncpg.connect(dsn(infra, str(url.database), "kitchen"))
    try:
        owners = await connection.fetch(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        )
        role = await connection.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute('CREATE DATABASE "kitchen_takes_over"')
    finally:
        await connection.close()
    assert [owner["tableowner"] for owner in owners] == ["kitchen"]
    assert role is not None and tuple(role) == (False, False, False)


async def test_a_wrong_database_password_is_refused(infra: Infra) -> None:
    url = make_url(infra.role_url("analytics", "analytics")).set(password="guessed")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(asyncpg_dsn(url.render_as_string(hide_password=False)))
