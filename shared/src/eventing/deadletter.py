"""The dead-letter topic: records a consumer could not process, with the reason, and replay.

A dead letter keeps the original key, value and headers, and adds ``dlq_*`` headers: the reason,
the consumer group and handler, and where the record came from. Replaying produces the original
record to its original topic again; consumers that already applied it skip it through their inbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from eventing.admin import topic_partitions
from eventing.topics import DEAD_LETTERS

DLQ_PREFIX = "dlq_"


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    partition: int
    key: bytes | None
    value: bytes | None
    original_headers: list[tuple[str, bytes]]
    reason: str
    group: str
    handler: str
    original_topic: str
    original_partition: int
    original_offset: int
    dead_lettered_at: str

    def as_dict(self) -> dict[str, Any]:
        headers = dict(self.original_headers)
        return {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "group": self.group,
            "handler": self.handler,
            "reason": self.reason,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "dead_lettered_at": self.dead_lettered_at,
            "event_id": headers.get("ce_id", b"").decode(errors="replace") or None,
            "event_type": headers.get("ce_type", b"").decode(errors="replace") or None,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "value": self.value.decode(errors="replace") if self.value is not None else None,
        }


def dead_letter_headers(
    original_headers: Sequence[tuple[str, bytes]],
    *,
    reason: str,
    group: str,
    handler: str,
    topic: str,
    partition: int,
    offset: int,
) -> list[tuple[str, bytes]]:
    kept = [(name, value) for name, value in original_headers if not name.startswith(DLQ_PREFIX)]
    return [
        *kept,
        ("dlq_reason", reason.encode()),
        ("dlq_group", group.encode()),
        ("dlq_handler", handler.encode()),
        ("dlq_topic", topic.encode()),
        ("dlq_partition", str(partition).encode()),
        ("dlq_offset", str(offset).encode()),
        ("dlq_time", datetime.now(UTC).isoformat().encode()),
    ]


def parse_dead_letter(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> DeadLetter:
    meta = {
        name: raw.decode(errors="replace") for name, raw in headers if name.startswith(DLQ_PREFIX)
    }
    return DeadLetter(
        offset=offset,
        partition=partition,
        key=key,
        value=value,
        original_headers=[(n, v) for n, v in headers if not n.startswith(DLQ_PREFIX)],
        reason=meta.get("dlq_reason", ""),
        group=meta.get("dlq_group", ""),
        handler=meta.get("dlq_handler", ""),
        original_topic=meta.get("dlq_topic", ""),
        original_partition=int(meta.get("dlq_partition", "-1")),
        original_offset=int(meta.get("dlq_offset", "-1")),
        dead_lettered_at=meta.get("dlq_time", ""),
    )


async def read_dead_letters(
    bootstrap_servers: str, *, group: str | None = None, topic: str = DEAD_LETTERS.name
) -> list[DeadLetter]:
    """Every dead letter currently in the topic (optionally of one consumer group).

    Reads with manually assigned partitions and no consumer group, so it disturbs nobody.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        assignment = await topic_partitions(consumer, topic)
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
        end_offsets = await consumer.end_offsets(assignment)
        letters: list[DeadLetter] = []
        remaining = {tp for tp in assignment if end_offsets[tp] > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    letter = parse_dead_letter(
                        tp.partition, record.offset, record.key, record.value, list(record.headers)
                    )
                    if group is None or letter.group == group:
                        letters.append(letter)
                if records and records[-1].offset + 1 >= end_offsets[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= end_offsets[tp]:
                    remaining.discard(tp)
        return letters
    finally:
        await consumer.stop()


async def replay_dead_letters(bootstrap_servers: str, letters: Sequence[DeadLetter]) -> int:
    """Produce each dead letter's original record to its original topic again."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                letter.original_topic,
                value=letter.value,
                key=letter.key,
                headers=letter.original_headers,
            )
            for letter in letters
            if letter.original_topic
        ]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()
