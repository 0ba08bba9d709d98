"""Rebuilding the projections from the topics alone, beside the running service.

1. Create the projection tables afresh in a scratch schema.
2. Read the orders and kitchen topics from the beginning, as no consumer group (partitions are
   assigned; nothing is committed, so the live service's group is never disturbed), up to the end
   offsets taken at the start, applying the same handlers as the live consumer.
3. Lock the live tables (the live consumer waits), read on to the end offsets taken *now*, so
   whatever the live service had applied is in the scratch tables too, then swap: drop the live
   tables and move the scratch ones in, in the same transaction. The live consumer then carries
   on from its own offsets into the new tables; anything it applies twice is an idempotent upsert.

The result equals the live projections because every handler is an upsert of its own columns,
keyed by order id: the order in which events are replayed does not matter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from pydantic import ValidationError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from analytics.adapters.orm import metadata
from eventing.cloudevents_kafka import decode
from eventing.consumer import ReceivedEvent, Subscription
from eventing.database import session_factory
from eventing.errors import UndecodableRecord
from eventing.events import model_for
from eventing.kafka_security import KafkaSecurity
from eventing.tap import Offsets, TopicReader

log = logging.getLogger("analytics.rebuild")

SCRATCH_SCHEMA = "analytics_rebuild"
PROJECTION_TABLES = ("order_facts", "order_lines")  # order_facts first: the lock order


@dataclass
class RebuildReport:
    applied: int = 0
    skipped: int = 0  # undecodable, unknown or schema-invalid: the live consumer dead-letters them
    ignored: int = 0  # event types the projections do not use
    duplicates: int = 0  # an event id seen before (a relay's retry)
    caught_up: int = 0  # of ``applied``, read while the live tables were locked
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Replayer:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], subscriptions: Sequence[Subscription]
    ) -> None:
        self._sessions = sessions
        self._by_type: dict[str, list[Subscription]] = {}
        for subscription in subscriptions:
            self._by_type.setdefault(subscription.event.event_type, []).append(subscription)
        self._seen: set[str] = set()
        self.report = RebuildReport()

    async def apply(self, records: list[ConsumerRecord[Any, Any]]) -> int:
        """Apply a batch of records in one transaction; returns how many were applied."""
        applied = 0
        async with self._sessions() as session, session.begin():
            for record in records:
                event = self._event(record)
                if event is None:
                    continue
                for subscription in self._by_type[event.envelope.type]:
                    await subscription.handler(session, event)
                applied += 1
        self.report.applied += applied
        return applied

    def _event(self, record: ConsumerRecord[Any, Any]) -> ReceivedEvent[Any] | None:
        try:
            envelope = decode(record.key, record.value, list(record.headers or ()))
        except UndecodableRecord:
            self.report.skipped += 1
            return None
        model = model_for(envelope.type)
        if model is None:
            self.report.skipped += 1
            return None
        if envelope.type not in self._by_type:
            self.report.ignored += 1
            return None
        if envelope.id in self._seen:
            self.report.duplicates += 1
            return None
        try:
            data = model.model_validate(envelope.data)
        except ValidationError:
            self.report.skipped += 1
            return None
        self._seen.add(envelope.id)
        return ReceivedEvent(
            data=data,
            envelope=envelope,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )


def _create_scratch_tables(connection: Connection) -> None:
    translated = connection.execution_options(schema_translate_map={None: SCRATCH_SCHEMA})
    metadata.create_all(translated)


async def _replay(reader: TopicReader, replayer: _Replayer, until: Offsets) -> int:
    applied = 0
    async for records in reader.read(until):
        applied += await replayer.apply(records)
    return applied


async def rebuild(
    engine: AsyncEngine,
    bootstrap_servers: str,
    topics: Sequence[str],
    subscriptions: Sequence[Subscription],
    *,
    security: KafkaSecurity | None = None,
) -> RebuildReport:
    """Rebuild the projections from ``topics`` with the live consumer's ``subscriptions`` and
    swap them in; see the module's docstring."""
    started = time.monotonic()
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE"))
        await connection.execute(text(f"CREATE SCHEMA {SCRATCH_SCHEMA}"))
        await connection.run_sync(_create_scratch_tables)
    scratch = session_factory(engine.execution_options(schema_translate_map={None: SCRATCH_SCHEMA}))
    replayer = _Replayer(scratch, subscriptions)
    async with TopicReader(bootstrap_servers, topics, security=security) as reader:
        await reader.start_at(beginning=True)
        await _replay(reader, replayer, await reader.end_offsets())
        log.info("replayed %d events; locking the live tables to catch up", replayer.report.applied)
        async with engine.begin() as connection:
            tables = ", ".join(f"public.{name}" for name in PROJECTION_TABLES)
            await connection.execute(text(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"))
            replayer.report.caught_up = await _replay(reader, replayer, await reader.end_offsets())
            await connection.execute(text(f"DROP TABLE {tables}"))
            for name in PROJECTION_TABLES:
                await connection.execute(
                    text(f"ALTER TABLE {SCRATCH_SCHEMA}.{name} SET SCHEMA public")
                )
            await connection.execute(text(f"DROP SCHEMA {SCRATCH_SCHEMA}"))
    replayer.report.seconds = round(time.monotonic() - started, 3)
    return replayer.report
