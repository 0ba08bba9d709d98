"""Building blocks for tests of the eventing library against the real broker and database."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from contracts.catalogue import OrderLine, OrderPlaced
from eventing.cloudevents_kafka import Envelope, encode
from eventing.database import eventing_metadata
from eventing.events import EventData
from eventing.outbox import Outbox, OutboxEvent
from tests.support.infra import Infra


async def eventing_database(infra: Infra, extra_ddl: Sequence[str] = ()) -> str:
    """A fresh database with the outbox and inbox tables (and ``extra_ddl``); returns its URL."""
    url = await infra.create_database("eventing")
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(eventing_metadata.create_all)
        for statement in extra_ddl:
            await connection.execute(text(statement))
    await engine.dispose()
    return url


async def create_topic(infra: Infra, name: str, partitions: int = 6) -> str:
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


def order_placed(order_id: str, sequence: int = 1) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        customer_id=f"cust-{sequence}",
        lines=(
            OrderLine(pizza="Margherita", size="medium", quantity=1, unit_price=Decimal("12.99")),
        ),
        total=Decimal("12.99"),
        placed_at=datetime.now(UTC),
    )


@dataclass
class EnqueuedStream:
    """What a test enqueued: event ids per order, in order."""

    by_order: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def event_ids(self) -> set[str]:
        return {event_id for ids in self.by_order.values() for event_id in ids}

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.by_order.values())


async def enqueue_events(
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    order_id: str,
    first_version: int,
    count: int,
    stream: EnqueuedStream,
) -> None:
    """Enqueue ``count`` events of one order in one transaction, versions first_version…"""
    events = [
        OutboxEvent(
            data=order_placed(order_id, version), aggregate_id=order_id, aggregate_version=version
        )
        for version in range(first_version, first_version + count)
    ]
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, events)
    stream.by_order[order_id].extend(str(event.id) for event in events)


@dataclass
class WireReport:
    """What reached a topic, checked against what was enqueued."""

    missing: set[str]
    duplicates: int
    out_of_order: list[str]
    split_keys: list[str]


def check_wire(records: Sequence[ConsumerRecord[Any, Any]], stream: EnqueuedStream) -> WireReport:
    """Compare the wire with what was enqueued: per order, first appearances in enqueue order."""
    seen: dict[str, list[str]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        headers = dict(record.headers)
        event_id = headers["ce_id"].decode()
        key = record.key.decode()
        counts[event_id] += 1
        partitions[key].add(record.partition)
        if counts[event_id] == 1:
            seen[key].append(event_id)
    missing = stream.event_ids - set(counts)
    duplicates = sum(count - 1 for count in counts.values())
    out_of_order = [order for order, ids in stream.by_order.items() if seen.get(order) != ids]
    split = [key for key, parts in partitions.items() if len(parts) > 1]
    return WireReport(missing, duplicates, out_of_order, split)


async def produce_raw(
    infra: Infra,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    *,
    max_request_size: int = 1_048_576,
) -> None:
    producer = AIOKafkaProducer(
        **infra.kafka_options(), acks="all", max_request_size=max_request_size
    )
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()


async def publish_event(infra: Infra, event: EventData, *, key: str, source: str) -> None:
    """Publish ``event`` as another service would: a binary-mode CloudEvent keyed by ``key``."""
    record = encode(
        Envelope(
            id=str(uuid.uuid4()),
            type=event.event_type,
            source=source,
            subject=key,
            time=datetime.now(UTC),
            partition_key=key,
            data=event.model_dump(mode="json"),
        )
    )
    producer = AIOKafkaProducer(**infra.kafka_options(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            event.topic, value=record.value, key=record.key, headers=record.headers
        )
    finally:
        await producer.stop()


def driver_errors() -> list[Exception]:
    """One error of each kind the drivers raise when a session goes wrong under them."""
    return [
        # What ended both relays when PostgreSQL restarted (the pool resetting a connection).
        asyncpg.exceptions._base.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        KafkaConnectionError("Connection at 127.0.0.1:9092 closed"),
    ]
