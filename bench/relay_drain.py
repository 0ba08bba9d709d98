"""Outbox relay drain rate: a pre-filled outbox emptied by 1, 2 or 4 relay processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import asyncpg

from bench.ceilings import ORDER_KEYS, new_topic, order_placed
from contracts.catalogue import OrderPlaced
from eventing.database import asyncpg_dsn, eventing_metadata, new_engine
from eventing.outbox import shard_of
from tests.support.infra import ROOT, Infra
from tests.support.polling import eventually
from tests.support.processes import free_port

_COLUMNS = (
    "event_id",
    "topic",
    "partition_key",
    "shard",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "event_type",
    "source",
    "subject",
    "payload",
)


async def prefilled_outbox(infra: Infra, events: int, topic: str) -> str:
    """A new database whose outbox holds ``events`` OrderPlaced rows for ``topic``; its URL."""
    url = await infra.create_database("bench")
    engine = new_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(eventing_metadata.create_all)
    await engine.dispose()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await fill_outbox(conn, events, topic)
        await conn.execute("VACUUM ANALYZE outbox")
    finally:
        await conn.close()
    return url


async def fill_outbox(conn: asyncpg.Connection, events: int, topic: str) -> list[uuid.UUID]:
    """``events`` OrderPlaced rows for ``topic``, committed to ``conn``'s outbox in one
    statement (a relay sees all of them at once); returns their event ids."""
    payloads = {f"order-{i}": json.dumps(order_placed(f"order-{i}")) for i in range(ORDER_KEYS)}
    rows = []
    for i in range(events):
        key = f"order-{i % ORDER_KEYS}"
        version = i // ORDER_KEYS + 1
        event = (OrderPlaced.event_type, "/bench", key, payloads[key])
        rows.append((uuid.uuid4(), topic, key, shard_of(key), "order", key, version, *event))
    # COPY has no binary encoder for jsonb: stage the payload as text, then cast.
    await conn.execute("CREATE TEMP TABLE staged (LIKE outbox INCLUDING DEFAULTS)")
    await conn.execute("ALTER TABLE staged ALTER COLUMN payload TYPE text")
    await conn.copy_records_to_table("staged", records=rows, columns=_COLUMNS)
    names = ", ".join(_COLUMNS)
    await conn.execute(
        f"INSERT INTO outbox ({names}) SELECT {names.replace('payload', 'payload::jsonb')} "
        "FROM staged ORDER BY id"
    )
    await conn.execute("DROP TABLE staged")
    return [row[0] for row in rows]


async def drain_rate(infra: Infra, events: int, relays: int) -> float:
    """Events per second from the first acknowledged batch until the outbox is empty."""
    topic = await new_topic(infra.kafka_bootstrap, f"relay{relays}")
    url = await prefilled_outbox(infra, events, topic)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "orders", "relay"],
            env={
                **os.environ,
                "ORDERS_DATABASE_URL": url,
                "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
                "ORDERS_RELAY_METRICS_PORT": str(free_port()),
                "ORDERS_LOG_LEVEL": "WARNING",
            },
            cwd=ROOT,
        )
        for _ in range(relays)
    ]
    conn = await asyncpg.connect(asyncpg_dsn(url))

    async def left() -> int:
        return int(await conn.fetchval("SELECT count(*) FROM outbox"))

    try:
        await eventually(
            left, until=lambda n: n < events, interval=0.01, timeout=120, what="a first batch"
        )
        # From the first deleted batch on: process start-up and imports are not the relay's rate.
        started = time.perf_counter()
        first_left = await left()
        await eventually(
            left, until=lambda n: n == 0, interval=0.05, timeout=1800, what="the outbox drained"
        )
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    return float(first_left) / elapsed
