"""Tombstones through the outbox: the relay publishes them as key-only records, in key order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from contracts.catalogue import CustomerContactUpdated
from contracts.topics import CUSTOMER_CONTACTS
from eventing.database import asyncpg_dsn
from eventing.events import model_for
from eventing.outbox import TOMBSTONE, Outbox, OutboxEvent
from tests.support.eventing import create_topic, eventing_database, unique_prefix
from tests.support.infra import Infra
from tests.support.kafka import read_topic
from tests.support.polling import eventually
from tests.support.processes import relay_process


@dataclass
class Contacts:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    topic: str

    @property
    def dsn(self) -> str:
        return asyncpg_dsn(self.url)

    async def outbox_rows(self) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(
                await conn.fetch(
                    "SELECT event_id, topic, partition_key, shard, aggregate_type, event_type,"
                    " payload::text AS payload, jsonb_typeof(payload) AS payload_type"
                    " FROM outbox ORDER BY id"
                )
            )
        finally:
            await conn.close()


@pytest.fixture
async def contacts(infra: Infra) -> AsyncIterator[Contacts]:
    prefix = unique_prefix()
    topic = await create_topic(infra, prefix + CUSTOMER_CONTACTS.name, partitions=3)
    url = await eventing_database(infra)
    engine = create_async_engine(url)
    try:
        yield Contacts(
            url, engine, async_sessionmaker(engine), Outbox("/test", topic_prefix=prefix), topic
        )
    finally:
        await engine.dispose()


def contact(customer_id: str, name: str) -> OutboxEvent:
    return OutboxEvent(
        data=CustomerContactUpdated(
            customer_id=customer_id, name=name, phone="+390612345678", updated_at=datetime.now(UTC)
        ),
        aggregate_id=customer_id,
    )


def of_key(records: list[ConsumerRecord[Any, Any]], key: str) -> list[ConsumerRecord[Any, Any]]:
    return [record for record in records if record.key == key.encode()]


async def test_a_tombstone_is_published_after_the_event_of_its_key(
    infra: Infra, contacts: Contacts
) -> None:
    erased, kept, same_transaction = "cust-erased", "cust-kept", "cust-same-transaction"
    before = contact(erased, "Erika Before")
    async with contacts.sessions() as session, session.begin():
        await contacts.outbox.enqueue(session, [before, contact(kept, "Kevin Kept")])
    async with contacts.sessions() as session, session.begin():
        tombstone_id = await contacts.outbox.enqueue_tombstone(session, CUSTOMER_CONTACTS, erased)
    # A customer registered again after erasure: the new details must follow the tombstone.
    after = contact(erased, "Erika After")
    async with contacts.sessions() as session, session.begin():
        await contacts.outbox.enqueue(session, [after])
    # Event and tombstone in one transaction: still in the order they were enqueued.
    first = contact(same_transaction, "Sam Same")
    async with contacts.sessions() as session, session.begin():
        await contacts.outbox.enqueue(session, [first])
        second_id = await contacts.outbox.enqueue_tombstone(
            session, CUSTOMER_CONTACTS.name, same_transaction, aggregate_type="customer"
        )

    rows = await contacts.outbox_rows()
    tombstone_rows = [row for row in rows if row["event_type"] == TOMBSTONE]
    assert [row["event_id"] for row in tombstone_rows] == [tombstone_id, second_id]
    assert all(row["payload_type"] == "null" for row in tombstone_rows)  # JSON null, not SQL
    assert {row["topic"] for row in rows} == {contacts.topic}  # the prefix applies to both
    assert [row["aggregate_type"] for row in tombstone_rows] == [TOMBSTONE, "customer"]
    shards = {row["partition_key"]: row["shard"] for row in rows if row["event_type"] != TOMBSTONE}
    assert all(row["shard"] == shards[row["partition_key"]] for row in tombstone_rows)

    def complete(records: list[ConsumerRecord[Any, Any]]) -> bool:
        return len(of_key(records, erased)) >= 3 and len(of_key(records, same_transaction)) >= 2

    relay = relay_process(infra, contacts.url, name="relay-tombstones")
    relay.start()
    try:
        await relay.wait_ready()
        records = await read_topic(
            infra.kafka_bootstrap,
            contacts.topic,
            until=complete,
            timeout=60,
        )
        await eventually(  # the rows go once Kafka acknowledged them
            contacts.outbox_rows,
            until=lambda rows: rows == [],
            timeout=20,
            interval=0.2,
            what="the outbox emptied",
        )
    finally:
        relay.terminate()

    wire = of_key(records, erased)
    assert [dict(r.headers)["ce_id"].decode() for r in wire] == [
        str(before.id),
        str(tombstone_id),
        str(after.id),
    ]
    assert json.loads(wire[0].value)["name"] == "Erika Before"
    assert wire[1].value is None
    assert wire[1].key == erased.encode()
    assert list(wire[1].headers) == [("ce_id", str(tombstone_id).encode())]  # not a CloudEvent
    assert json.loads(wire[2].value)["name"] == "Erika After"
    assert len({r.partition for r in wire}) == 1  # one partition per key, tombstone included

    same = of_key(records, same_transaction)
    assert [dict(r.headers)["ce_id"].decode() for r in same] == [str(first.id), str(second_id)]
    assert same[1].value is None

    [kept_record] = of_key(records, kept)
    assert json.loads(kept_record.value)["name"] == "Kevin Kept"


async def test_a_rolled_back_tombstone_is_never_written(contacts: Contacts) -> None:
    async with contacts.sessions() as session, session.begin():
        await contacts.outbox.enqueue_tombstone(session, CUSTOMER_CONTACTS, "cust-rolled-back")
        await session.rollback()
    assert await contacts.outbox_rows() == []


async def test_a_tombstone_needs_a_key(contacts: Contacts) -> None:
    async with contacts.sessions() as session, session.begin():
        with pytest.raises(ValueError, match="non-empty key"):
            await contacts.outbox.enqueue_tombstone(session, CUSTOMER_CONTACTS, "")


def test_the_marker_is_not_a_cloudevents_type() -> None:
    assert model_for(TOMBSTONE) is None
