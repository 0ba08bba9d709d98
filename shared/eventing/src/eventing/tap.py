"""Reading the event stream without disturbing anyone: a tap for people and tools, and replays.

``TopicReader`` assigns itself every partition of the topics (no consumer group membership, so
no rebalance of any service's group) and reads committed records only. By default it belongs to
no group and commits nothing; given a group it resumes from, and commits to, that group's
offsets. It starts at the beginning, the end or a point in time, and reads either for ever or
up to the end offsets taken when asked: every reader of whole topics in the project (the tap,
the dead-letter reader, replays, reconciliation, the tests) is one. ``tap`` turns records into
JSON-ready CloudEvents with their Kafka coordinates, filtered by type, key and event time.

A topology's restricted topics (personal data) are never tapped: ``tap`` refuses them. Records
aiokafka cannot parse are read anyway (``eventing.record_reader``) and shown as undecodable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from eventing.admin import topic_partitions
from eventing.cloudevents_kafka import decode
from eventing.errors import RestrictedTopicError, UndecodableRecord
from eventing.kafka_security import KafkaSecurity, kafka_security
from eventing.record_reader import new_consumer

__all__ = ["Offsets", "TapFilter", "TopicReader", "as_event", "check_topics", "tap"]

Offsets = dict[TopicPartition, int]


class TopicReader:
    """Every partition of ``topics``, read in partition order with ``read_committed``.

    ``group``: None (default) reads as no group and commits nothing; a group name starts from
    that group's committed offsets (where it has some) and ``commit`` stores positions there.
    Partitions are assigned, never subscribed, so no group ever rebalances because of a reader.
    Entering raises ``UnknownTopicError`` for a topic the broker does not have, and aiokafka's
    ``KafkaError`` when the broker cannot be reached.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Sequence[str],
        group: str | None = None,
        *,
        security: KafkaSecurity | None = None,
    ):
        self._bootstrap = bootstrap_servers
        self._security = kafka_security(security)
        self._topics = list(topics)
        self._group = group
        self._consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []

    async def __aenter__(self) -> TopicReader:
        consumer = new_consumer(
            bootstrap_servers=self._bootstrap,
            **self._security.client_options(),
            group_id=self._group,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            for topic in self._topics:
                self.partitions.extend(await topic_partitions(consumer, topic))
            consumer.assign(self.partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The reader's Kafka consumer; ``RuntimeError`` outside ``async with``."""
        if self._consumer is None:
            raise RuntimeError("use the reader inside `async with`")
        return self._consumer

    async def end_offsets(self) -> Offsets:
        """The last stable offsets now: what a read "to the end" stops at."""
        ends: Offsets = await self.consumer.end_offsets(self.partitions)
        return ends

    async def start_at(self, *, beginning: bool) -> None:
        """Position every partition: the group's offset if it has one, else beginning or end."""
        consumer = self.consumer
        for tp in self.partitions:
            committed = await consumer.committed(tp) if self._group else None
            if committed is not None:
                consumer.seek(tp, committed)
            elif beginning:
                await consumer.seek_to_beginning(tp)
            else:
                await consumer.seek_to_end(tp)

    async def start_at_time(self, moment: datetime) -> None:
        """Position every partition at its first record stamped at or after ``moment`` (the end
        where there is none), whatever a group has committed."""
        consumer = self.consumer
        found = await consumer.offsets_for_times(
            dict.fromkeys(self.partitions, int(moment.timestamp() * 1000))
        )
        for tp in self.partitions:
            at = found.get(tp)
            if at is not None:
                consumer.seek(tp, at.offset)
            else:
                await consumer.seek_to_end(tp)

    async def read(
        self, until: Offsets | None = None, *, batch: int = 500
    ) -> AsyncIterator[list[ConsumerRecord[Any, Any]]]:
        """Batches of records; up to ``until`` (exclusive) when given, else for ever."""
        consumer = self.consumer
        while True:
            if until is not None:
                remaining = [
                    tp for tp in self.partitions if await consumer.position(tp) < until.get(tp, 0)
                ]
                if not remaining:
                    return
            fetched = await consumer.getmany(timeout_ms=500, max_records=batch)
            records = [
                record
                for tp, part in fetched.items()
                for record in part
                if until is None or record.offset < until.get(tp, 0)
            ]
            if records:
                yield records

    async def read_to_end(
        self, *, batch: int = 500
    ) -> AsyncIterator[list[ConsumerRecord[Any, Any]]]:
        """Batches of records up to the end offsets taken now (see ``end_offsets``), then stop."""
        async for records in self.read(await self.end_offsets(), batch=batch):
            yield records

    async def commit(self) -> None:
        if self._group is None:
            return
        consumer = self.consumer
        await consumer.commit({tp: await consumer.position(tp) for tp in self.partitions})


@dataclass(frozen=True)
class TapFilter:
    """Which events to print: every given criterion must hold (none given: everything)."""

    types: Collection[str] = ()
    # An event matches when its record key, its subject or its data's ``key_field`` is one of these.
    keys: Collection[str] = ()
    key_field: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def admits(self, event: dict[str, Any]) -> bool:
        if self.types and event["type"] not in self.types:
            return False
        if self.keys and not self._has_key(event):
            return False
        if self.since is not None or self.until is not None:
            raw = event.get("time")
            if raw is None:
                return False
            moment = datetime.fromisoformat(raw)
            if self.since is not None and moment < self.since:
                return False
            if self.until is not None and moment >= self.until:
                return False
        return True

    def _has_key(self, event: dict[str, Any]) -> bool:
        if event["key"] in self.keys or event.get("subject") in self.keys:
            return True
        data = event.get("data")
        return (
            self.key_field is not None
            and isinstance(data, dict)
            and data.get(self.key_field) in self.keys
        )


def as_event(record: ConsumerRecord[Any, Any]) -> dict[str, Any]:
    """A record as one JSON-ready object: CloudEvent attributes, data, Kafka coordinates."""
    key = record.key.decode(errors="replace") if record.key is not None else None
    coordinates = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key,
    }
    try:
        envelope = decode(record.key, record.value, list(record.headers or ()))
    except UndecodableRecord as error:
        return {**coordinates, "type": None, "undecodable": error.reason}
    return {
        "specversion": "1.0",
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "subject": envelope.subject,
        "time": envelope.time.isoformat() if envelope.time is not None else None,
        **dict(envelope.extensions),
        "data": envelope.data,
        **coordinates,
    }


def check_topics(topics: Sequence[str], restricted_topics: Collection[str]) -> None:
    """Raises RestrictedTopicError for a topic carrying personal data."""
    restricted = sorted(set(topics) & set(restricted_topics))
    if restricted:
        raise RestrictedTopicError(
            f"{', '.join(restricted)} carries personal data and cannot be tapped; "
            "read it only from a service authorised for it"
        )


async def tap(
    bootstrap_servers: str,
    *,
    topics: Sequence[str],
    restricted_topics: Collection[str],
    where: TapFilter | None = None,
    from_beginning: bool = True,
    follow: bool = False,
    group: str | None = None,
    security: KafkaSecurity | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Events of ``topics`` as ``as_event`` objects, in partition order.

    Without ``follow`` it stops at the end offsets taken when it started; with ``follow`` it
    waits for new events until the caller stops iterating (or cancels).
    Raises RestrictedTopicError for a topic of ``restricted_topics`` (personal data).
    """
    check_topics(topics, restricted_topics)
    where = where or TapFilter()
    async with TopicReader(bootstrap_servers, topics, group, security=security) as reader:
        await reader.start_at(beginning=from_beginning)
        until = None if follow else await reader.end_offsets()
        async for records in reader.read(until):
            for record in records:
                event = as_event(record)
                if where.admits(event):
                    yield event
            await reader.commit()
