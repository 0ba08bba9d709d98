"""A consumer runtime under test: its topic, group and database, and records to feed it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.catalogue import OrderPlaced
from contracts.topics import OPEN_DEAD_LETTERS, TOPOLOGY
from eventing.cloudevents_kafka import Envelope, encode
from eventing.consumer import EventConsumer, Subscription, TombstoneSubscription
from eventing.database import asyncpg_dsn, session_factory
from eventing.deadletter import DeadLetter, read_dead_letters
from eventing.settings import ConsumerSettings
from tests.support.eventing import create_topic, eventing_database, order_placed
from tests.support.infra import Infra
from tests.support.polling import NotReached, eventually
from tests.support.processes import ServiceProcess, free_port
from tests.support.recording_handlers import EFFECTS_DDL

FAST_RETRIES = ConsumerSettings(max_attempts=4, retry_base_seconds=0.01, retry_max_seconds=0.05)

RawRecord = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]
Effect = tuple[str, str, str]  # handler, event id, order id


@dataclass
class Setup:
    topic: str
    group: str
    url: str
    engine: AsyncEngine

    @property
    def dsn(self) -> str:
        return asyncpg_dsn(self.url)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def effects(self) -> list[Effect]:
        rows = await self.fetch(
            "SELECT handler, event_id, order_id FROM effects ORDER BY applied_at"
        )
        return [(r["handler"], r["event_id"], r["order_id"]) for r in rows]

    async def wait_for_effects(
        self, predicate: Callable[[list[Effect]], bool], timeout: float = 30
    ) -> list[Effect]:
        try:
            return await eventually(
                self.effects, until=predicate, timeout=timeout, what="the effects expected"
            )
        except NotReached as late:
            raise AssertionError(f"effects never matched; last: {late.last[-5:]}") from None

    def consumer_process(self, infra: Infra, name: str, env: dict[str, str]) -> ServiceProcess:
        """The runtime in a process of its own (``tests.support.consumer_process``), to kill."""
        port = free_port()
        return ServiceProcess(
            name=name,
            module="tests.support.consumer_process",
            command="run",
            env={
                "DATABASE_URL": self.url,
                "TOPIC": self.topic,
                "GROUP": self.group,
                "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
                "HEALTH_PORT": str(port),
                **env,
            },
            ready_url=f"http://127.0.0.1:{port}/readyz",
        )

    def consumer(
        self,
        subscriptions: list[Subscription],
        bootstrap: str,
        tombstones: list[TombstoneSubscription] | None = None,
        *,
        settings: ConsumerSettings = FAST_RETRIES,
        topics: list[str] | None = None,
        dead_letter_topics: Mapping[str, str] | None = None,
    ) -> EventConsumer:
        return EventConsumer(
            group_id=self.group,
            topics=topics or [self.topic],
            subscriptions=subscriptions,
            sessions=session_factory(self.engine),
            bootstrap_servers=bootstrap,
            topology=TOPOLOGY,
            settings=settings,
            tombstones=tombstones or [],
            dead_letter_topics=dead_letter_topics,
        )


@contextlib.asynccontextmanager
async def new_setup(infra: Infra, partitions: int = 3) -> AsyncIterator[Setup]:
    """A topic, a group and a database (eventing tables and ``effects``) of one test's own."""
    suffix = uuid.uuid4().hex[:8]
    topic = await create_topic(infra, f"t{suffix}.pizzeria.orders", partitions=partitions)
    url = await eventing_database(infra, [EFFECTS_DDL])
    engine = create_async_engine(url)
    try:
        yield Setup(topic, f"test-group-{suffix}", url, engine)
    finally:
        await engine.dispose()


def cloudevent(
    order_id: str, *, event_id: str | None = None, data: dict[str, Any] | None = None
) -> RawRecord:
    payload = data if data is not None else order_placed(order_id).model_dump(mode="json")
    record = encode(
        Envelope(
            id=event_id or str(uuid.uuid4()),
            type=OrderPlaced.event_type,
            source="/test",
            subject=order_id,
            partition_key=order_id,
            data=payload,
        )
    )
    return record.key, record.value, list(record.headers)


def with_header(record: RawRecord, name: str, value: bytes | None) -> RawRecord:
    key, body, headers = record
    kept = [(n, v) for n, v in headers if n != name]
    return key, body, kept if value is None else [*kept, (name, value)]


async def running(consumer: EventConsumer, body: Callable[[], Awaitable[object]]) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        await body()
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=30)


async def dead_letters_of(
    infra: Infra, group: str, count: int, timeout: float = 30, topic: str = OPEN_DEAD_LETTERS
) -> list[DeadLetter]:
    """The dead letters of ``group`` once there are ``count`` of them, or those there are after
    ``timeout`` seconds (the test's assertions then say what is missing)."""
    try:
        return await eventually(
            lambda: read_dead_letters(infra.kafka_bootstrap, group=group, topic=topic),
            until=lambda letters: len(letters) >= count,
            timeout=timeout,
            interval=0.5,
            what=f"{count} dead letters",
        )
    except NotReached as late:
        letters: list[DeadLetter] = late.last
        return letters
