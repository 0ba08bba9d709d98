"""The transactional outbox: events are written in the caller's transaction, never on their own.

``Outbox.enqueue`` adds rows to the ``outbox`` table through the caller's SQLAlchemy session and
does not commit: the events exist exactly when the state change that produced them commits, and
a rolled-back transaction leaves no event behind. The relay (``eventing.relay``) publishes them.

``Outbox.enqueue_tombstone`` does the same for a Kafka tombstone (the key with no value), which
tells a compacted topic to forget the key. Its row has ``event_type`` ``TOMBSTONE`` and a JSON
``null`` payload, and goes through the same per-key lock, shard and id order as events, so it is
published after every earlier event of its key.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, bindparam, insert, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Integer, Text

from eventing.database import outbox_table
from eventing.events import EventData
from eventing.ids import uuid7
from eventing.topics import TopicSpec
from eventing.tracing import current_traceparent, start_span

__all__ = [
    "KEY_SEQUENCE_LOCK",
    "LOCK_APPLICATION_PREFIX",
    "NOTIFY_CHANNEL",
    "SHARD_BUSY_LOCK",
    "SHARD_COUNT",
    "SHARD_OWNER_LOCK",
    "TOMBSTONE",
    "Outbox",
    "OutboxEvent",
    "shard_of",
]

# Relays divide the outbox by shard of the partition key (see eventing.relay). The count is part
# of the stored data: change it only with every relay stopped and the outbox drained.
SHARD_COUNT = 16
NOTIFY_CHANNEL = "outbox"

# Advisory lock namespaces (the first half of the two-int form), one per purpose.
KEY_SEQUENCE_LOCK = 0x4F42  # per partition key, held by enqueueing transactions until they commit
SHARD_OWNER_LOCK = 0x4F43  # per shard, held by the relay that publishes it
SHARD_BUSY_LOCK = 0x4F44  # per shard, held while its relay is draining: no wake-up needed
# The application name of a relay's lock session, followed by its instance id: relays count the
# live ones by it, and ``eventing.admin`` lists them.
LOCK_APPLICATION_PREFIX = "outbox-relay:"

# ``event_type`` of a tombstone row. Not a CloudEvents type (those are reverse-DNS names ending in
# ``.v<N>``, see eventing.events), so it cannot collide with one; its payload is JSON ``null``.
TOMBSTONE = "tombstone"


def shard_of(partition_key: str) -> int:
    return zlib.crc32(partition_key.encode()) % SHARD_COUNT


@dataclass(frozen=True)
class OutboxEvent:
    """An event to publish: its payload, the aggregate it belongs to, and its CloudEvent id.

    ``traceparent`` defaults to the span current when the event is created (the HTTP request's,
    or a consumer handler's), so the relay and the consumers continue that trace.
    """

    data: EventData
    aggregate_id: str
    aggregate_version: int | None = None
    id: UUID = field(default_factory=uuid7)
    traceparent: str | None = field(default_factory=current_traceparent)


# One round trip before the INSERT: the per-key locks (in the order given, sorted by the caller,
# so two transactions locking the same keys cannot deadlock; volatile functions in the select
# list run after the ORDER BY) and the wake-up of an idle relay. A busy relay holds the shard's
# busy lock exclusively, so the shared try-lock fails and no NOTIFY is sent: NOTIFY serialises
# commits on a global lock, so the saving matters exactly under load. The shared lock is
# released at once (CASE fixes the order). NOTIFY itself is delivered at commit.
_LOCK_KEYS_AND_WAKE = text(
    "SELECT"
    " (SELECT count(*) FROM (SELECT pg_advisory_xact_lock(:key_namespace, hashtext(k))"
    "  FROM unnest(:keys) WITH ORDINALITY AS t(k, n) ORDER BY n) AS locks) AS locked,"
    " (SELECT count(pg_notify(:channel, '')) WHERE EXISTS ("
    "  SELECT 1 FROM unnest(:shards) AS s(shard)"
    "  WHERE CASE WHEN pg_try_advisory_lock_shared(:busy_namespace, s.shard)"
    "  THEN pg_advisory_unlock_shared(:busy_namespace, s.shard) ELSE false END)) AS woken"
).bindparams(bindparam("keys", type_=ARRAY(Text)), bindparam("shards", type_=ARRAY(Integer)))


class Outbox:
    """Writes events of one producing service (its CloudEvents ``source``) to its outbox.

    ``topic_prefix`` namespaces the topic names (one cluster shared by several
    environments, or a test that needs topics of its own).
    """

    def __init__(self, source: str, *, topic_prefix: str = "") -> None:
        self.source = source
        self.topic_prefix = topic_prefix

    async def enqueue(self, session: AsyncSession, events: Sequence[OutboxEvent]) -> None:
        """Add ``events`` to the outbox in the session's current transaction.

        Takes a transaction-scoped lock per partition key first, so two transactions that emit
        events for the same order commit them in id order and the relay publishes them in the
        order they happened. Never commits.
        """
        if not events:
            return
        with start_span(
            "outbox enqueue",
            attributes={
                "outbox.source": self.source,
                "outbox.events": len(events),
                "cloudevents.event_type": sorted({event.data.event_type for event in events}),
                "cloudevents.event_subject": sorted({event.aggregate_id for event in events}),
            },
        ):
            await self._enqueue(session, events)

    async def _enqueue(self, session: AsyncSession, events: Sequence[OutboxEvent]) -> None:
        rows = [
            {
                "event_id": event.id,
                "topic": self.topic_prefix + event.data.topic,
                "partition_key": event.aggregate_id,
                "shard": shard_of(event.aggregate_id),
                "aggregate_type": event.data.aggregate,
                "aggregate_id": event.aggregate_id,
                "aggregate_version": event.aggregate_version,
                "event_type": event.data.event_type,
                "source": self.source,
                "subject": event.aggregate_id,
                "payload": event.data.model_dump(mode="json"),
                "traceparent": event.traceparent,
            }
            for event in events
        ]
        await self._insert(session, rows)

    async def enqueue_tombstone(
        self,
        session: AsyncSession,
        topic: TopicSpec | str,
        key: str,
        *,
        aggregate_type: str = TOMBSTONE,
    ) -> UUID:
        """Add a tombstone for ``key`` on ``topic`` (a compacted topic) in the current transaction.

        The relay publishes it as a record with this key and no value, and one ``ce_id`` header
        (the returned id) to trace it by; it is not a CloudEvent, so it has no other ``ce_``
        headers. Same per-key lock and order as ``enqueue``: the tombstone follows every event of
        ``key`` enqueued before it, and events of ``key`` enqueued later follow it. Never commits.
        Raises ``ValueError`` for an empty key.
        """
        if not key:
            raise ValueError("a tombstone needs a non-empty key (compaction drops keyless records)")
        name = topic.name if isinstance(topic, TopicSpec) else topic
        event_id = uuid7()
        row = {
            "event_id": event_id,
            "topic": self.topic_prefix + name,
            "partition_key": key,
            "shard": shard_of(key),
            "aggregate_type": aggregate_type,
            "aggregate_id": key,
            "aggregate_version": None,
            "event_type": TOMBSTONE,
            "source": self.source,
            "subject": key,
            # JSON null, not SQL NULL: the column is NOT NULL and the relay ignores it anyway.
            "payload": JSON.NULL,
            "traceparent": None,
        }
        await self._insert(session, [row])
        return event_id

    async def _insert(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        # A transaction-scoped lock per partition key first, in key order.
        await session.execute(
            _LOCK_KEYS_AND_WAKE,
            {
                "key_namespace": KEY_SEQUENCE_LOCK,
                "keys": sorted({row["partition_key"] for row in rows}),
                "channel": NOTIFY_CHANNEL,
                "busy_namespace": SHARD_BUSY_LOCK,
                "shards": sorted({row["shard"] for row in rows}),
            },
        )
        await session.execute(insert(outbox_table), rows)
