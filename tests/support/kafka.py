"""Reading topics in tests without joining any consumer group (``eventing.tap.TopicReader``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from eventing.kafka_security import KafkaSecurity
from eventing.tap import TopicReader


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[Any, Any]]], bool],
    timeout: float = 30,
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of ``topic`` from the beginning, read until ``until(records)`` holds."""
    records: list[ConsumerRecord[Any, Any]] = []
    async with TopicReader(bootstrap, [topic]) as reader:
        await reader.start_at(beginning=True)
        try:
            async with asyncio.timeout(timeout):
                if not until(records):
                    async for batch in reader.read(batch=5000):
                        records.extend(batch)
                        if until(records):
                            break
        except TimeoutError:
            raise TimeoutError(f"{topic}: condition not met after {len(records)} records") from None
    return records


async def read_whole_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[Any, Any]]:
    """Every record currently in ``topic`` (up to the end offsets at the time of the call)."""
    return await _read_to_the_end(bootstrap, [topic])


async def read_every_topic(bootstrap: str) -> list[ConsumerRecord[Any, Any]]:
    """Every record of every topic the broker lists (internal ones included), group-less."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **KafkaSecurity().client_options())
    await admin.start()
    try:
        topics = sorted(await admin.list_topics())
    finally:
        await admin.close()
    return await _read_to_the_end(bootstrap, topics)


async def _read_to_the_end(bootstrap: str, topics: list[str]) -> list[ConsumerRecord[Any, Any]]:
    records: list[ConsumerRecord[Any, Any]] = []
    async with TopicReader(bootstrap, topics) as reader:
        await reader.start_at(beginning=True)
        async for batch in reader.read_to_end(batch=5000):
            records.extend(batch)
    return records
