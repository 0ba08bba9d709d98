"""The outbox and its relay against the real broker and database, including killed relays."""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from eventing.acls import Grant, Operation, ResourceType, ensure_acls
from eventing.database import asyncpg_dsn
from eventing.failpoints import arm_error, armed_errors, disarm_errors
from eventing.outbox import Outbox
from eventing.relay import OutboxRelay, kafka_producer_factory
from eventing.settings import RelaySettings
from tests.support.eventing import (
    EnqueuedStream,
    check_wire,
    create_topic,
    driver_errors,
    enqueue_events,
    eventing_database,
    order_placed,
    unique_prefix,
)
from tests.support.infra import Infra
from tests.support.kafka import read_topic, read_whole_topic
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, relay_process


@dataclass
class OutboxUnderTest:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    topic: str

    @property
    def dsn(self) -> str:
        return asyncpg_dsn(self.url)

    async def backlog(self) -> int:
        conn = await asyncpg.connect(self.dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE parked_at IS NULL"))
        finally:
            await conn.close()

    async def wait_drained(self, timeout: float = 90) -> None:
        await eventually(
            self.backlog,
            until=lambda remaining: remaining == 0,
            timeout=timeout,
            interval=0.2,
            what="the outbox drained",
        )


@pytest.fixture
async def subject(infra: Infra) -> AsyncIterator[OutboxUnderTest]:
    prefix = unique_prefix()
    topic = await create_topic(infra, f"{prefix}pizzeria.orders")
    url = await eventing_database(infra)
    engine = create_async_engine(url, pool_size=16, max_overflow=0)
    try:
        yield OutboxUnderTest(
            url, engine, async_sessionmaker(engine), Outbox("/test", topic_prefix=prefix), topic
        )
    finally:
        await engine.dispose()


def relays(infra: Infra, subject: OutboxUnderTest, count: int) -> list[ServiceProcess]:
    return [relay_process(infra, subject.url, name=f"relay-{i}") for i in range(count)]


async def stream_orders(
    subject: OutboxUnderTest,
    orders: int,
    events_per_order: int,
    *,
    pace: float = 0.0,
    concurrency: int = 16,
    stream: EnqueuedStream | None = None,
) -> EnqueuedStream:
    """Enqueue ``events_per_order`` versioned events for each order, in transactions of 1-4
    (added to ``stream`` if given)."""
    stream = EnqueuedStream() if stream is None else stream
    gate = asyncio.Semaphore(concurrency)

    async def one_order(index: int) -> None:
        order_id = f"order-{index:05d}-{random.randrange(10**6)}"
        version = 1
        while version <= events_per_order:
            count = min(random.randint(1, 4), events_per_order - version + 1)
            async with gate:
                await enqueue_events(
                    subject.sessions, subject.outbox, order_id, version, count, stream
                )
            version += count
            if pace:
                await asyncio.sleep(random.uniform(0, 2 * pace))

    await asyncio.gather(*(one_order(i) for i in range(orders)))
    return stream


async def wire(infra: Infra, subject: OutboxUnderTest, stream: EnqueuedStream):  # type: ignore[no-untyped-def]
    wanted = stream.event_ids
    return await read_topic(
        infra.kafka_bootstrap,
        subject.topic,
        until=lambda records: wanted <= {dict(r.headers)["ce_id"].decode() for r in records},
        timeout=60,
    )


async def test_rolled_back_events_are_never_published(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    from eventing.outbox import OutboxEvent

    async with subject.sessions() as session, session.begin():
        await subject.outbox.enqueue(
            session, [OutboxEvent(data=order_placed("rolled-back"), aggregate_id="rolled-back")]
        )
        await session.rollback()
    assert await subject.backlog() == 0


async def test_events_are_published_in_order_per_order_and_removed(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    relay = relays(infra, subject, 1)[0]
    relay.start()
    try:
        await relay.wait_ready()
        stream = await stream_orders(subject, orders=50, events_per_order=10)
        await subject.wait_drained()
        report = check_wire(await wire(infra, subject, stream), stream)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(relay.ready_url.replace("/readyz", "/metrics"))).text
    finally:
        relay.terminate()
    published = f'outbox_published_events_total{{topic="{subject.topic}"}} 500.0'
    assert published in metrics
    assert "outbox_publish_latency_seconds_count 500.0" in metrics
    assert "outbox_relay_shards_owned 16.0" in metrics
    assert report.missing == set()
    assert report.out_of_order == []
    assert report.split_keys == []
    assert report.duplicates == 0  # no fault, no duplicate


async def test_a_row_that_commits_late_is_not_skipped(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    """A lower id committed after a higher one is published: no "id > last seen" cursor."""
    stream = EnqueuedStream()
    relay = relays(infra, subject, 1)[0]
    relay.start()
    try:
        await relay.wait_ready()
        async with subject.sessions() as slow, slow.begin():
            from eventing.outbox import OutboxEvent

            late = OutboxEvent(
                data=order_placed("late-order"), aggregate_id="late-order", aggregate_version=1
            )
            await subject.outbox.enqueue(slow, [late])  # takes the lower id, commits last
            await enqueue_events(subject.sessions, subject.outbox, "early-order", 1, 3, stream)
            await read_topic(
                infra.kafka_bootstrap,
                subject.topic,
                until=lambda records: len(records) >= 3,
            )
        stream.by_order["late-order"].append(str(late.id))
        await subject.wait_drained()
        report = check_wire(await wire(infra, subject, stream), stream)
    finally:
        relay.terminate()
    assert report.missing == set()
    assert report.out_of_order == []


async def test_an_unpublishable_event_is_parked_and_blocks_no_other_order(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    from eventing.outbox import OutboxEvent

    stream = EnqueuedStream()
    huge = order_placed("poison-order").model_copy(update={"customer_id": "x" * 2_000_000})
    async with subject.sessions() as session, session.begin():
        await subject.outbox.enqueue(
            session, [OutboxEvent(data=huge, aggregate_id="poison-order", aggregate_version=1)]
        )
    # A later event of the same order must wait behind the parked one; other orders flow.
    await enqueue_events(subject.sessions, subject.outbox, "poison-order", 2, 1, EnqueuedStream())
    for index in range(5):
        await enqueue_events(subject.sessions, subject.outbox, f"healthy-{index}", 1, 3, stream)
    relay = relays(infra, subject, 1)[0]
    relay.start()
    try:
        await relay.wait_ready()
        report = check_wire(await wire(infra, subject, stream), stream)
        # The relay records a batch's failures after the batch's acknowledged events went out,
        # so the parked mark may land a moment after the healthy events are on the wire.
        conn = await asyncpg.connect(subject.dsn)
        try:
            rows = await eventually(
                lambda: conn.fetch(
                    "SELECT aggregate_version, parked_at IS NOT NULL AS parked, last_error "
                    "FROM outbox WHERE partition_key = 'poison-order' ORDER BY id"
                ),
                until=lambda rows: rows and rows[0]["parked"],
                timeout=15,
                what="the poison event parked",
            )
        finally:
            await conn.close()
    finally:
        relay.terminate()
    assert report.missing == set()
    assert [(r["aggregate_version"], r["parked"]) for r in rows] == [(1, True), (2, False)]
    assert "MessageSizeTooLargeError" in rows[0]["last_error"]


async def test_a_topic_the_relay_may_not_write_parks_its_rows_and_holds_back_no_other(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    """A principal without an ACL for a topic (an operator's slip): each of that topic's rows is
    parked as unpublishable, with the broker's reason, and the other topic's events go out."""
    refused = Outbox("/test", topic_prefix=unique_prefix())
    refused_topic = await create_topic(infra, refused.topic_prefix + order_placed("x").topic)
    await ensure_acls(
        infra.kafka_bootstrap,
        [Grant("orders-relay", Operation.WRITE, ResourceType.TOPIC, subject.topic)],
    )
    refused_rows = 300
    for index in range(refused_rows):
        await enqueue_events(subject.sessions, refused, f"refused-{index}", 1, 1, EnqueuedStream())
    stream = EnqueuedStream()
    for index in range(10):
        await enqueue_events(subject.sessions, subject.outbox, f"allowed-{index}", 1, 2, stream)
    relay = relay_process(infra, subject.url, extra_env=infra.principal_env("orders-relay"))
    relay.start()
    conn = await asyncpg.connect(subject.dsn)
    try:
        await relay.wait_ready()
        report = check_wire(await wire(infra, subject, stream), stream)
        parked = await eventually(
            lambda: conn.fetch(
                "SELECT last_error FROM outbox WHERE topic = $1 AND parked_at IS NOT NULL",
                refused_topic,
            ),
            until=lambda rows: len(rows) == refused_rows,
            timeout=60,
            what="every row of the refused topic parked",
        )
        left = await conn.fetchval("SELECT count(*) FROM outbox WHERE parked_at IS NULL")
    finally:
        await conn.close()
        relay.terminate()
    assert report.missing == set()
    assert report.duplicates == 0
    assert all("TopicAuthorizationFailedError" in row["last_error"] for row in parked)
    assert left == 0
    assert await read_whole_topic(infra.kafka_bootstrap, refused_topic) == []


@pytest.mark.fault
async def test_relay_killed_five_times_mid_stream_loses_nothing(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    """Five relay deaths while 5,000 events stream in, each right after Kafka acknowledged a
    batch and before the outbox forgot it (the worst moment), then one relay finishes."""
    producing = asyncio.create_task(
        stream_orders(subject, orders=250, events_per_order=20, pace=0.1)
    )
    crashes = 0
    try:
        while crashes < 5:
            relay = relay_process(infra, subject.url, name=f"relay-crash-{crashes}")
            relay.env["EVENTING_FAILPOINTS"] = f"relay_after_ack={random.randint(2, 6)}"
            relay.start()
            assert relay.process is not None
            try:
                exit_code = await asyncio.to_thread(relay.process.wait, 20)
            except subprocess.TimeoutExpired:  # the stream ended first: a plain SIGKILL then
                relay.kill()
                exit_code = 137
            assert exit_code == 137, relay.log_tail()
            crashes += 1
        stream = await producing
        survivor = relay_process(infra, subject.url, name="relay-survivor")
        survivor.start()
        try:
            await subject.wait_drained()
            report = check_wire(await wire(infra, subject, stream), stream)
        finally:
            survivor.terminate()
    finally:
        producing.cancel()
    assert len(stream) == 5_000
    assert report.missing == set()
    assert report.out_of_order == []
    assert report.split_keys == []
    assert report.duplicates > 0  # each crash republished its acknowledged batch
    print(f"relay crashed {crashes} times: 5000 events, {report.duplicates} duplicates on the wire")


@pytest.mark.fault
async def test_three_relays_at_once_keep_every_order_in_order(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    running = relays(infra, subject, 3)
    for relay in running:
        relay.start()
    try:
        await asyncio.gather(*(relay.wait_ready() for relay in running))
        stream = await stream_orders(subject, orders=500, events_per_order=40, concurrency=24)
        await subject.wait_drained(timeout=120)
        report = check_wire(await wire(infra, subject, stream), stream)
    finally:
        for relay in running:
            relay.terminate()
    assert len(stream) == 20_000
    assert report.missing == set()
    assert report.out_of_order == []
    assert report.split_keys == []
    print(f"three relays: 20000 events, {report.duplicates} duplicates on the wire")


@pytest.mark.fault
async def test_broker_down_for_15_seconds_loses_nothing(
    infra: Infra, subject: OutboxUnderTest
) -> None:
    if not infra.can_control_kafka:
        raise RuntimeError(
            f"this test stops the broker; it needs TEST_INFRA=local, not {infra.mode}"
        )
    relay = relays(infra, subject, 1)[0]
    relay.start()
    try:
        await relay.wait_ready()
        producing = asyncio.create_task(
            stream_orders(subject, orders=100, events_per_order=20, pace=0.5)
        )
        await asyncio.sleep(2)
        await asyncio.to_thread(infra.kafka_stop)
        await asyncio.sleep(15)
        backlog_during_outage = await subject.backlog()
        await asyncio.to_thread(infra.kafka_start)
        stream = await producing
        await subject.wait_drained(timeout=120)
        report = check_wire(await wire(infra, subject, stream), stream)
    finally:
        relay.terminate()
    assert backlog_during_outage > 0  # events kept coming and waited in the outbox
    assert report.missing == set()
    assert report.out_of_order == []
    print(f"broker outage: {len(stream)} events, backlog {backlog_during_outage} during the outage")


# Each await of the relay loop: connecting, taking shards, reading a batch, sending it, waiting
# for the acks, deleting what was published (before and after it took effect), idling.
RELAY_AWAITS = (
    "relay.connect",
    "relay.rebalance",
    "relay.fetch",
    "relay.send",
    "relay.acks",
    "relay.delete",
    "relay.deleted",
    "relay.idle",
)


def reconnects(error: str) -> float:
    counted = REGISTRY.get_sample_value("outbox_relay_reconnects_total", {"error": error})
    return counted or 0.0


async def test_no_driver_error_ends_the_relay(infra: Infra, subject: OutboxUnderTest) -> None:
    """Every kind of driver error at every await of the relay loop: the relay drops its session
    and producer, backs off and carries on; every event is published, in order per order."""
    kinds = [type(error).__name__ for error in driver_errors()]
    before = {kind: reconnects(kind) for kind in kinds}
    for point in RELAY_AWAITS:
        arm_error(point, *driver_errors())
    relay = OutboxRelay(
        subject.dsn,
        kafka_producer_factory(infra.kafka_bootstrap, linger_ms=5, client_id="relay-under-faults"),
        RelaySettings(batch_size=20, reconnect_max_seconds=0.05),
    )
    running = asyncio.create_task(relay.run())
    stream = EnqueuedStream()

    async def errors_left() -> dict[str, int]:
        left = {point: armed_errors(point) for point in RELAY_AWAITS if armed_errors(point)}
        if left:  # batches until every armed error was raised
            assert not running.done(), running
            await stream_orders(subject, orders=5, events_per_order=4, stream=stream)
            await subject.wait_drained()
        return left

    try:
        # The points on the publishing path need five batches each.
        await eventually(
            errors_left,
            until=lambda left: not left,
            timeout=120,
            interval=0,
            what="every armed error raised",
        )
        await subject.wait_drained()
        report = check_wire(await wire(infra, subject, stream), stream)
        assert not running.done()
    finally:
        disarm_errors()
        relay.stop()
        await running
    assert report.missing == set()
    assert report.out_of_order == []
    assert report.split_keys == []
    for kind in kinds:
        assert reconnects(kind) - before[kind] == len(RELAY_AWAITS), kind
    print(f"{len(stream)} events, {report.duplicates} duplicates on the wire")
