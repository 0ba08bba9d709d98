"""The machine's own limits, measured in the same run as the system: what "fast" is relative to.

* produce ceiling: plain aiokafka, idempotent, ``acks=all``, the relay's record size and headers,
  batches of the relay's size awaited one at a time (what a relay could do with no database);
* commit ceiling: plain asyncpg, an order-sized transaction (an order row, two line rows and one
  event row of the real payload size), at the concurrency of the HTTP benchmark.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.catalogue import OrderLine, OrderPlaced
from eventing.cloudevents_kafka import Envelope, encode
from eventing.kafka_security import KafkaSecurity
from eventing.outbox import shard_of
from eventing.settings import RelaySettings

ORDER_KEYS = 1000  # events spread over this many order ids (partition keys)


def order_placed(order_id: str) -> dict[str, object]:
    """A realistic OrderPlaced payload (~420 bytes of JSON)."""
    return OrderPlaced(
        order_id=order_id,
        customer_id="cust-bench",
        lines=(
            OrderLine(pizza="Margherita", size="large", quantity=2, unit_price=Decimal("16.24")),
        ),
        total=Decimal("32.48"),
        placed_at=datetime.now(UTC),
    ).model_dump(mode="json")


async def new_topic(bootstrap: str, label: str, partitions: int = 6) -> str:
    name = f"bench.{label}.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **KafkaSecurity().client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def produce_ceiling(bootstrap: str, events: int) -> float:
    """Events per second plain aiokafka gets acknowledged, sent like the relay sends them."""
    topic = await new_topic(bootstrap, "raw")
    batch = RelaySettings().batch_size
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity().client_options(),
        enable_idempotence=True,
        acks="all",
        linger_ms=RelaySettings().linger_ms,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    payloads = {f"order-{i}": json.dumps(order_placed(f"order-{i}")) for i in range(ORDER_KEYS)}
    records = []
    for i in range(events):
        order_id = f"order-{i % ORDER_KEYS}"
        envelope = Envelope(
            id=str(uuid.uuid4()),
            type=OrderPlaced.event_type,
            source="/bench",
            subject=order_id,
            time=datetime.now(UTC),
            partition_key=order_id,
            data={},
            extensions={"aggregateversion": "1"},
        )
        records.append(encode(envelope, data_json=payloads[order_id].encode()))
    started = time.perf_counter()
    try:
        for start in range(0, events, batch):
            futures = [
                await producer.send(topic, value=r.value, key=r.key, headers=r.headers)
                for r in records[start : start + batch]
            ]
            await asyncio.gather(*futures)
    finally:
        elapsed = time.perf_counter() - started
        await producer.stop()
    return events / elapsed


_COMMIT_SCHEMA = """
CREATE TABLE bench_orders (
    id text PRIMARY KEY, customer_id text NOT NULL, status text NOT NULL, fulfilment text NOT NULL,
    total numeric(10, 2) NOT NULL, placed_at timestamptz NOT NULL, version int NOT NULL);
CREATE TABLE bench_order_lines (
    order_id text NOT NULL REFERENCES bench_orders, line_no int NOT NULL, pizza text NOT NULL,
    size text NOT NULL, quantity int NOT NULL, unit_price numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no));
CREATE TABLE bench_events (
    id bigserial PRIMARY KEY, event_id uuid NOT NULL, topic text NOT NULL,
    partition_key text NOT NULL, shard smallint NOT NULL, event_type text NOT NULL,
    payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
"""


async def commit_ceiling(dsn: str, *, concurrency: int, seconds: float) -> float:
    """Order-sized transactions per second through plain asyncpg at ``concurrency``."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    await pool.execute(
        "DROP TABLE IF EXISTS bench_events, bench_order_lines, bench_orders; " + _COMMIT_SCHEMA
    )
    committed = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal committed
        async with pool.acquire() as conn:
            while time.perf_counter() < stop_at:
                order_id = str(uuid.uuid4())
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO bench_orders VALUES ($1, $2, 'pending', 'delivery', 32.48, "
                        "now(), 1)",
                        order_id,
                        "cust-bench",
                    )
                    await conn.executemany(
                        "INSERT INTO bench_order_lines VALUES ($1, $2, $3, 'large', 1, 16.24)",
                        [(order_id, 1, "Margherita"), (order_id, 2, "Pepperoni")],
                    )
                    await conn.execute(
                        "INSERT INTO bench_events (event_id, topic, partition_key, shard, "
                        "event_type, payload) VALUES ($1, 'pizzeria.orders', $2, $3, $4, $5)",
                        uuid.uuid4(),
                        order_id,
                        shard_of(order_id),
                        OrderPlaced.event_type,
                        json.dumps(order_placed(order_id)),
                    )
                committed += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return committed / elapsed
