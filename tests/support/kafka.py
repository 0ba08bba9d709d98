"""Reading topics in tests without joining any consumer group."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from eventing.admin import topic_partitions
from eventing.kafka_security import KafkaSecurity
from eventing.record_reader import new_consumer


@contextlib.asynccontextmanager
async def _from_the_beginning(
    bootstrap: str, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A group-less consumer assigned to every partition of ``topic``, at offset 0."""
    consumer = new_consumer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity().client_options(),
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield consumer, partitions
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[Any, Any]]], bool],
    timeout: float = 30,
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of ``topic`` from the beginning, read until ``until(records)`` holds."""
    records: list[ConsumerRecord[Any, Any]] = []
    async with _from_the_beginning(bootstrap, topic) as (consumer, _):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not until(records):
            if loop.time() > deadline:
                raise TimeoutError(f"{topic}: condition not met after {len(records)} records")
            for batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                records.extend(batch)
    return records


async def read_whole_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[Any, Any]]:
    """Every record currently in ``topic`` (up to the end offsets at the time of the call)."""
    async with _from_the_beginning(bootstrap, topic) as (consumer, partitions):
        return await _read_to_the_end(consumer, partitions)


async def read_every_topic(bootstrap: str) -> list[ConsumerRecord[Any, Any]]:
    """Every record of every topic the broker lists (internal ones included), group-less."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **KafkaSecurity().client_options())
    await admin.start()
    try:
        topics = sorted(await admin.list_topics())
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **KafkaSecurity().client_options(),
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = [
            partition for topic in topics for partition in await topic_partitions(consumer, topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return await _read_to_the_end(consumer, partitions)
    finally:
        await consumer.stop()


async def _read_to_the_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> list[ConsumerRecord[Any, Any]]:
    records: list[ConsumerRecord[Any, Any]] = []
    ends = await consumer.end_offsets(partitions)
    remaining = [tp for tp in partitions if ends[tp] > 0]
    while remaining:
        for batch in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
            records.extend(batch)
        remaining = [tp for tp in remaining if await consumer.position(tp) < ends[tp]]
    return records
