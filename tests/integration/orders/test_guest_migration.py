"""Revision 0005 of the orders database: the customers anonymous orders made before it become
guest snapshots (their details were never proven), and phone and email are unique among
customers only; going back keeps one row per phone and email, as the old indexes want."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from alembic import command
from alembic.config import Config

from eventing.database import asyncpg_dsn
from eventing.migrations import upgrade
from tests.support.infra import Infra
from tests.support.system import migrations_of


def downgrade(database_url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations_of("orders")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.downgrade(config, revision)


async def test_old_customers_become_guests_and_back(infra: Infra) -> None:
    url = await infra.create_database("orders")
    dsn = asyncpg_dsn(url)
    await asyncio.to_thread(upgrade, url, migrations_of("orders"), "0004")
    old = str(uuid.uuid4())
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO customers (id, name, phone, email) VALUES ($1, 'Old', $2, $3)",
            old,
            "+390611111111",
            "old@example.com",
        )
        await asyncio.to_thread(upgrade, url, migrations_of("orders"))

        assert await conn.fetchval("SELECT guest FROM customers WHERE id = $1", old) is True
        # A guest snapshot shares its phone with anyone; a customer's is theirs alone.
        insert = "INSERT INTO customers (id, name, phone, guest) VALUES ($1, 'New', $2, $3)"
        await conn.execute(insert, "guest-2", "+390611111111", True)
        await conn.execute(insert, "customer-1", "+390611111111", False)
        assert await conn.fetchval("SELECT guest FROM customers WHERE id = 'customer-1'") is False
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, "customer-2", "+390611111111", False)
        assert await conn.fetch("SELECT * FROM sign_in_codes") == []

        await asyncio.to_thread(downgrade, url, "0004")
        phones = {
            row["id"]: row["phone"]
            for row in await conn.fetch("SELECT id, phone FROM customers ORDER BY id")
        }
        # The customer keeps the phone; the guests' copies go, their other details stay.
        assert phones == {"customer-1": "+390611111111", "guest-2": None, old: None}
        assert await conn.fetchval("SELECT email FROM customers WHERE id = $1", old) == (
            "old@example.com"
        )
    finally:
        await conn.close()
