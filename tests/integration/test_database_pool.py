"""The services' connection pools: a connection killed while it sat in the pool is replaced
before anyone uses it, and a connection in steady use costs no ping per checkout."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from eventing import database
from eventing.database import create_engine
from tests.support.infra import Infra


async def backend_pid(engine: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_pooled_connection_killed_while_idle_is_replaced_unseen(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(await infra.create_database("pool"), pool_size=1, application_name="t")
    try:
        killed = await backend_pid(engine)
        admin = await asyncpg.connect(infra.postgres_dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", killed)
        finally:
            await admin.close()
        monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle "long"
        # No error reaches the caller: the checkout's ping found the session gone.
        assert await backend_pid(engine) != killed
    finally:
        await engine.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(await infra.create_database("pool"), pool_size=1, application_name="t")
    pings: list[Any] = []
    ping = engine.dialect.do_ping

    def counted(connection: Any) -> bool:
        pings.append(connection)
        return ping(connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    try:
        for _ in range(20):
            await backend_pid(engine)
        assert pings == []
        monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
        await backend_pid(engine)
        assert len(pings) == 1
    finally:
        await engine.dispose()
