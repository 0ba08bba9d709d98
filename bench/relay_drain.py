"""Relay drain rate against the raw produce ceiling of the same machine, in one run.

    bash deploy/local/stack.sh infra-up     # Kafka and PostgreSQL
    uv run python bench/relay_drain.py [--events 100000] [--relays 1 2 4]

(1) raw ceiling: aiokafka, idempotent, acks=all, the same record size and headers as the relay,
    sent in batches of 500 and awaited per batch, like the relay; (2) relay drain: a pre-filled
    outbox of N events drained by 1, 2 and 4 relay processes. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.ext.asyncio import create_async_engine

from eventing.catalogue import OrderLine, OrderPlaced
from eventing.cloudevents_kafka import Envelope, encode
from eventing.database import eventing_metadata
from eventing.outbox import shard_of

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
PG = os.environ.get("PG_DSN_BASE", "postgresql://pizzeria:pizzeria@127.0.0.1:15432")
ORDERS = 1000


def payload(order_id: str) -> dict[str, object]:
    return OrderPlaced(
        order_id=order_id,
        customer_id="cust-bench",
        lines=(
            OrderLine(pizza="Margherita", size="large", quantity=2, unit_price=Decimal("16.24")),
        ),
        total=Decimal("32.48"),
        placed_at=datetime.now(UTC),
    ).model_dump(mode="json")


async def new_topic(prefix: str) -> str:
    name = f"bench.{prefix}.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=6, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def raw_produce(events: int) -> float:
    topic = await new_topic("raw")
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    records = []
    for i in range(events):
        order_id = f"order-{i % ORDERS}"
        records.append(
            encode(
                Envelope(
                    id=str(uuid.uuid4()),
                    type=OrderPlaced.event_type,
                    source="/bench",
                    subject=order_id,
                    time=datetime.now(UTC),
                    partition_key=order_id,
                    data=payload(order_id),
                )
            )
        )
    started = time.perf_counter()
    try:
        for start in range(0, events, 500):
            futures = [
                await producer.send(topic, value=r.value, key=r.key, headers=r.headers)
                for r in records[start : start + 500]
            ]
            await asyncio.gather(*futures)
    finally:
        elapsed = time.perf_counter() - started
        await producer.stop()
    return events / elapsed


async def prefilled_outbox(events: int, topic: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(eventing_metadata.create_all)
    await engine.dispose()
    conn = await asyncpg.connect(f"{PG}/{name}")
    payloads = {f"order-{i}": json.dumps(payload(f"order-{i}")) for i in range(ORDERS)}
    rows = []
    for i in range(events):
        key = f"order-{i % ORDERS}"
        rows.append(
            (
                uuid.uuid4(),
                topic,
                key,
                shard_of(key),
                "order",
                key,
                i // ORDERS + 1,
                OrderPlaced.event_type,
                "/bench",
                key,
                payloads[key],
            )
        )
    # COPY has no binary encoder for jsonb: stage the payload as text, then cast.
    await conn.execute("CREATE TEMP TABLE staged (LIKE outbox INCLUDING DEFAULTS)")
    await conn.execute("ALTER TABLE staged ALTER COLUMN payload TYPE text")
    columns = [
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
    ]
    await conn.copy_records_to_table("staged", records=rows, columns=columns)
    names = ", ".join(columns)
    await conn.execute(
        f"INSERT INTO outbox ({names}) SELECT {names.replace('payload', 'payload::jsonb')} "
        "FROM staged ORDER BY id"
    )
    await conn.execute("VACUUM ANALYZE outbox")
    await conn.close()
    return url


async def drain(events: int, relays: int) -> float:
    topic = await new_topic(f"relay{relays}")
    url = await prefilled_outbox(events, topic)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "orders", "relay"],
            env={
                **os.environ,
                "ORDERS_DATABASE_URL": url,
                "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
                "ORDERS_RELAY_METRICS_PORT": str(19500 + i),
                "ORDERS_LOG_LEVEL": "WARNING",
            },
            cwd=ROOT,
        )
        for i in range(relays)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        while await conn.fetchval("SELECT count(*) FROM outbox") == events:
            await asyncio.sleep(0.01)
        started = time.perf_counter()  # from the first acknowledged batch: process start excluded
        first_left = await conn.fetchval("SELECT count(*) FROM outbox")
        while (left := await conn.fetchval("SELECT count(*) FROM outbox")) > 0:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    return first_left / elapsed if left == 0 else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--relays", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args()
    ceiling = await raw_produce(args.events)
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "events": args.events,
        "raw_produce_events_per_second": round(ceiling),
    }
    for relays in args.relays:
        rate = await drain(args.events, relays)
        results[f"relay_drain_{relays}_events_per_second"] = round(rate)
        results[f"relay_drain_{relays}_ratio_to_ceiling"] = round(rate / ceiling, 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
