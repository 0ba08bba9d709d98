"""Outbox relay drain rate: a pre-filled outbox emptied by 1, 2 or 4 relay processes, with the
table's statistics up to date or stale, and the backlog a broker outage leaves behind.

The states of the statistics are those an outbox is found in: ``analyzed`` (up to date),
``analyzed while empty`` (what autovacuum leaves after a drain, then the backlog arrives) and
``never analyzed`` (a new table filled before autovacuum came by). The two stale ones keep
autovacuum off for the outbox while they are measured, so the state holds to the end.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import asyncpg

from bench.ceilings import ORDER_KEYS, new_topic, order_placed
from contracts.catalogue import OrderPlaced
from eventing.database import asyncpg_dsn, eventing_metadata, new_engine
from eventing.outbox import shard_of
from tests.support.infra import ROOT, Infra
from tests.support.polling import eventually
from tests.support.processes import free_port

TABLE_STATES = ("analyzed", "analyzed while empty", "never analyzed")
# What a relay's lock session calls itself (eventing.outbox.LOCK_APPLICATION_PREFIX).
_RELAY_SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'outbox-relay:%'"
)

# The outbox columns the benchmarks fill (the rest have defaults), in COPY and INSERT order.
OUTBOX_COLUMNS = (
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


async def empty_outbox(infra: Infra) -> str:
    """A new database with an empty outbox; its URL."""
    url = await infra.create_database("bench")
    engine = new_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(eventing_metadata.create_all)
    await engine.dispose()
    return url


async def prefilled_outbox(infra: Infra, events: int, topic: str, state: str = "analyzed") -> str:
    """A new database whose outbox holds ``events`` OrderPlaced rows for ``topic``, its
    statistics in ``state`` (one of ``TABLE_STATES``); its URL."""
    if state not in TABLE_STATES:
        raise ValueError(f"unknown table state {state!r}")
    url = await empty_outbox(infra)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if state != "analyzed":
            await conn.execute("ALTER TABLE outbox SET (autovacuum_enabled = false)")
        if state == "analyzed while empty":
            await conn.execute("ANALYZE outbox")
        await fill_outbox(conn, events, topic)
        if state == "analyzed":
            await conn.execute("VACUUM ANALYZE outbox")
    finally:
        await conn.close()
    return url


# One outbox row, its values in OUTBOX_COLUMNS order.
Row = tuple[uuid.UUID, str, str, int, str, str, int, str, str, str, str]


@functools.cache
def _payloads() -> dict[str, str]:
    return {f"order-{i}": json.dumps(order_placed(f"order-{i}")) for i in range(ORDER_KEYS)}


def outbox_rows(events: int, topic: str) -> list[Row]:
    """``events`` OrderPlaced rows for ``topic``, over ``ORDER_KEYS`` orders in turn."""
    payloads = _payloads()
    rows = []
    for i in range(events):
        key = f"order-{i % ORDER_KEYS}"
        version = i // ORDER_KEYS + 1
        event = (OrderPlaced.event_type, "/bench", key, payloads[key])
        rows.append((uuid.uuid4(), topic, key, shard_of(key), "order", key, version, *event))
    return rows


async def fill_outbox(conn: asyncpg.Connection, events: int, topic: str) -> list[uuid.UUID]:
    """``events`` OrderPlaced rows for ``topic``, committed to ``conn``'s outbox in one
    statement (a relay sees all of them at once); returns their event ids."""
    rows = outbox_rows(events, topic)
    # COPY has no binary encoder for jsonb: stage the payload as text, then cast.
    await conn.execute("CREATE TEMP TABLE staged (LIKE outbox INCLUDING DEFAULTS)")
    await conn.execute("ALTER TABLE staged ALTER COLUMN payload TYPE text")
    await conn.copy_records_to_table("staged", records=rows, columns=OUTBOX_COLUMNS)
    names = ", ".join(OUTBOX_COLUMNS)
    await conn.execute(
        f"INSERT INTO outbox ({names}) SELECT {names.replace('payload', 'payload::jsonb')} "
        "FROM staged ORDER BY id"
    )
    await conn.execute("DROP TABLE staged")
    return [row[0] for row in rows]


async def drain_rate(infra: Infra, events: int, relays: int, state: str = "analyzed") -> float:
    """Events per second from the first acknowledged batch until the outbox is empty."""
    topic = await new_topic(infra.kafka_bootstrap, f"relay{relays}")
    url = await prefilled_outbox(infra, events, topic, state)
    processes = [_relay(infra, url) for _ in range(relays)]
    try:
        rate, _ = await _drained(url, events)
    finally:
        _stop(processes)
    return rate


@dataclass(frozen=True)
class OutageDrain:
    events_per_second: float
    seconds_to_first_batch: float  # from the broker's start (ready) to the first deleted batch


async def outage_drain(infra: Infra, events: int, chunk: int = 1_000) -> OutageDrain:
    """The backlog of a broker outage: a relay runs while Kafka is down and ``events`` arrive in
    commits of ``chunk``, with autovacuum as it is; then Kafka starts and the relay drains it."""
    topic = await new_topic(infra.kafka_bootstrap, "outage")
    url = await empty_outbox(infra)
    process = _relay(infra, url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await eventually(
            lambda: conn.fetchval(_RELAY_SESSIONS),
            until=lambda sessions: sessions >= 1,
            timeout=60,
            what="the relay connected",
        )
        infra.stack("kafka-stop")
        try:
            for start in range(0, events, chunk):
                await fill_outbox(conn, min(chunk, events - start), topic)
        finally:
            infra.stack("kafka-start")
        started = time.perf_counter()
        rate, first_batch = await _drained(url, events)
    finally:
        await conn.close()
        _stop([process])
    return OutageDrain(rate, first_batch - started)


def _relay(infra: Infra, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
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


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(30)


async def _drained(url: str, events: int) -> tuple[float, float]:
    """Waits for the outbox of ``url`` (``events`` rows) to be emptied: the rate from the first
    deleted batch on, and when that batch was seen (``time.perf_counter``)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))

    async def left() -> int:
        return int(await conn.fetchval("SELECT count(*) FROM outbox"))

    try:
        await eventually(
            left, until=lambda n: n < events, interval=0.01, timeout=300, what="a first batch"
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
    return float(first_left) / elapsed, started
