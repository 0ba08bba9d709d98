"""The consumer runtime on the real broker and database: redelivery, poison, retries, crashes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import OrderPlaced
from contracts.topics import DEAD_LETTERS, TOPOLOGY
from eventing.consumer import (
    EventConsumer,
    ReceivedEvent,
    Subscription,
    Tombstone,
    TombstoneSubscription,
)
from eventing.database import session_factory
from eventing.deadletter import read_dead_letters
from eventing.failpoints import arm_error, armed_errors, disarm_errors
from eventing.settings import ConsumerSettings
from tests.support.eventing import driver_errors, produce_raw
from tests.support.infra import Infra
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess
from tests.support.recording_handlers import (
    DOOMED_ORDER,
    REJECTED_ORDER,
    Flaky,
    record,
    recorder,
)
from tests.support.runtime import (
    FAST_RETRIES,
    RawRecord,
    Setup,
    cloudevent,
    dead_letters_of,
    new_setup,
    running,
    with_header,
)


@pytest.fixture
async def setup(infra: Infra) -> AsyncIterator[Setup]:
    async with new_setup(infra) as created:
        yield created


async def test_an_event_delivered_twice_takes_effect_once(infra: Infra, setup: Setup) -> None:
    event = cloudevent("twice-order", event_id="evt-twice")
    await produce_raw(infra, setup.topic, [event, event, cloudevent("after-order")])
    consumer = setup.consumer(
        [Subscription("recorder", OrderPlaced, recorder)], infra.kafka_bootstrap
    )

    async def body() -> None:
        await setup.wait_for_effects(lambda effects: any(e[2] == "after-order" for e in effects))

    await running(consumer, body)
    effects = await setup.effects()
    assert [e[2] for e in effects] == ["twice-order", "after-order"]


async def test_poison_records_are_dead_lettered_and_the_partition_moves_on(
    infra: Infra, setup: Setup
) -> None:
    good = cloudevent("good-order")
    schema_invalid = cloudevent("bad-data", data={"order_id": "bad-data", "total": "not a number"})
    poison: list[RawRecord] = [
        (b"garbage", b"\x00\xff\xfe not json", [("ce_specversion", b"1.0"), ("ce_type", b"\xff")]),
        with_header(cloudevent("no-id"), "ce_id", None),
        with_header(
            cloudevent("unknown-type"), "ce_type", b"com.mariospizzeria.order.teleported.v1"
        ),
        with_header(cloudevent("old-spec"), "ce_specversion", b"0.3"),
        schema_invalid,
        cloudevent(DOOMED_ORDER),
        cloudevent(REJECTED_ORDER),
    ]
    await produce_raw(infra, setup.topic, [*poison, good])
    consumer = setup.consumer(
        [Subscription("recorder", OrderPlaced, recorder)], infra.kafka_bootstrap
    )

    async def body() -> None:
        await setup.wait_for_effects(lambda effects: any(e[2] == "good-order" for e in effects))

    await running(consumer, body)
    letters = await dead_letters_of(infra, setup.group, len(poison))
    reasons = [letter.reason for letter in sorted(letters, key=lambda x: x.original_offset)]
    assert len(reasons) == len(poison), reasons
    assert reasons[0].startswith("undecodable:")
    assert "missing required header(s): ce_id" in reasons[1]
    assert reasons[2] == "unknown event type 'com.mariospizzeria.order.teleported.v1'"
    assert "unsupported ce_specversion" in reasons[3]
    assert reasons[4].startswith("schema-invalid com.mariospizzeria.order.placed.v1:")
    assert "total" in reasons[4] and "customer_id" in reasons[4]
    assert reasons[5].startswith("handler failed 4 times; last error: RuntimeError")
    assert reasons[6] == "rejected by handler: the handler refuses this order"
    handlers = [letter.handler for letter in sorted(letters, key=lambda x: x.original_offset)]
    assert handlers == ["-", "-", "-", "-", "-", "recorder", "recorder"]
    # The original record travels unchanged, with its original headers, for replay.
    doomed = sorted(letters, key=lambda x: x.original_offset)[5]
    assert doomed.key == DOOMED_ORDER.encode()
    assert dict(doomed.original_headers)["ce_type"] == OrderPlaced.event_type.encode()
    assert doomed.original_topic == setup.topic
    assert [e[2] for e in await setup.effects()] == ["good-order"]


async def record_tombstone(session: AsyncSession, tombstone: Tombstone) -> None:
    await session.execute(
        text("INSERT INTO effects (handler, event_id, order_id) VALUES (:h, :e, :o)"),
        {"h": "eraser", "e": tombstone.id, "o": tombstone.key},
    )


async def test_tombstones_reach_their_topics_handler_once_by_key(
    infra: Infra, setup: Setup
) -> None:
    tombstone: RawRecord = (b"cust-erased", None, [("ce_id", b"tomb-1")])
    await produce_raw(
        infra,
        setup.topic,
        [
            cloudevent("before-order"),
            tombstone,
            tombstone,  # redelivered: the inbox keys it by its ce_id
            (b"cust-headerless", None, []),  # keyed by topic/partition/offset instead
            (b"", None, []),  # nothing to erase: a poison record
            cloudevent("after-order"),
        ],
    )
    consumer = setup.consumer(
        [Subscription("recorder", OrderPlaced, recorder)],
        infra.kafka_bootstrap,
        tombstones=[TombstoneSubscription("eraser", setup.topic, record_tombstone)],
    )

    async def body() -> None:
        await setup.wait_for_effects(lambda effects: any(e[2] == "after-order" for e in effects))

    await running(consumer, body)
    effects = await setup.effects()
    assert [(e[0], e[2]) for e in effects] == [
        ("recorder", "before-order"),
        ("eraser", "cust-erased"),
        ("eraser", "cust-headerless"),
        ("recorder", "after-order"),
    ]
    assert effects[1][1] == "tomb-1"
    assert effects[2][1] == f"{setup.topic}/0/3"
    letters = await dead_letters_of(infra, setup.group, 1)
    assert [letter.reason for letter in letters] == ["undecodable: tombstone without a key"]


async def test_a_flaky_handler_is_retried_alone(infra: Infra, setup: Setup) -> None:
    flaky = Flaky(failures=3)
    subscriptions = [
        Subscription("recorder", OrderPlaced, recorder),
        Subscription("flaky", OrderPlaced, flaky),
    ]
    await produce_raw(infra, setup.topic, [cloudevent("flaky-order", event_id="evt-flaky")])
    consumer = setup.consumer(subscriptions, infra.kafka_bootstrap)

    async def body() -> None:
        await setup.wait_for_effects(
            lambda effects: {e[0] for e in effects} == {"recorder", "flaky"}
        )

    await running(consumer, body)
    effects = await setup.effects()
    assert sorted(e[0] for e in effects) == ["flaky", "recorder"]  # each exactly once
    assert flaky.attempts["evt-flaky"] == 4  # failed three times, then succeeded
    assert (
        await read_dead_letters(infra.kafka_bootstrap, topic=DEAD_LETTERS.name, group=setup.group)
        == []
    )


async def test_a_batch_commits_many_events_at_once_and_a_failure_in_it_repeats_nothing(
    infra: Infra, setup: Setup
) -> None:
    events = [cloudevent(f"batch-order-{i:03d}", event_id=f"evt-batch-{i:03d}") for i in range(300)]
    await produce_raw(infra, setup.topic, events)
    failing = "evt-batch-150"
    attempts: list[str] = []

    async def fails_once_on_one_event(
        session: AsyncSession, event: ReceivedEvent[OrderPlaced]
    ) -> None:
        await record(session, "picky", event)
        if event.id == failing:
            attempts.append(event.id)
            if len(attempts) == 1:
                raise RuntimeError("fails the first time it sees this event")

    subscriptions = [
        Subscription("recorder", OrderPlaced, recorder),
        Subscription("picky", OrderPlaced, fails_once_on_one_event),
    ]
    consumer = setup.consumer(subscriptions, infra.kafka_bootstrap)

    async def body() -> None:
        await setup.wait_for_effects(lambda effects: len(effects) >= 600)
        await asyncio.sleep(1)  # anything doubled would land now

    await running(consumer, body)
    effects = await setup.effects()
    assert sorted((e[0], e[1]) for e in effects) == sorted(
        (handler, f"evt-batch-{i:03d}") for handler in ("recorder", "picky") for i in range(300)
    )
    assert attempts == [failing, failing]  # failed inside a batch, then applied alone
    conn = await asyncpg.connect(setup.dsn)
    try:
        transactions = await conn.fetchval("SELECT count(DISTINCT xmin::text) FROM inbox")
    finally:
        await conn.close()
    # 600 inbox rows written by far fewer transactions: the batches committed whole, and only the
    # batch with the failure was applied one event and handler at a time.
    assert transactions < 600 - FAST_RETRIES.batch_size
    assert (
        await read_dead_letters(infra.kafka_bootstrap, topic=DEAD_LETTERS.name, group=setup.group)
        == []
    )


async def test_replayed_dead_letters_are_applied_once_fixed(infra: Infra, setup: Setup) -> None:
    from eventing.deadletter import replay_dead_letters

    flaky = Flaky(failures=10)  # fails past the retry budget of 4
    subscriptions = [
        Subscription("recorder", OrderPlaced, recorder),
        Subscription("flaky", OrderPlaced, flaky),
    ]
    await produce_raw(infra, setup.topic, [cloudevent("replay-order", event_id="evt-replay")])
    consumer = setup.consumer(subscriptions, infra.kafka_bootstrap)

    async def body() -> None:
        letters = await dead_letters_of(infra, setup.group, 1)
        assert [letter.handler for letter in letters] == ["flaky"]
        flaky.failures = 0  # the "fix" is deployed
        assert await replay_dead_letters(infra.kafka_bootstrap, letters) == 1
        await setup.wait_for_effects(
            lambda effects: {e[0] for e in effects} == {"recorder", "flaky"}
        )

    await running(consumer, body)
    assert sorted(e[0] for e in await setup.effects()) == ["flaky", "recorder"]


@pytest.mark.fault
async def test_a_consumer_killed_after_its_commit_and_before_its_offset_commit_applies_once(
    infra: Infra, setup: Setup
) -> None:
    events = [cloudevent(f"crash-order-{i:03d}") for i in range(200)]
    await produce_raw(infra, setup.topic, events)

    def consumer_process(env: dict[str, str]) -> ServiceProcess:
        return setup.consumer_process(infra, "crash-consumer", env)

    crashing = consumer_process({"EVENTING_FAILPOINTS": "after_handler_commit=50"})
    crashing.start()
    assert crashing.process is not None
    exit_code = await asyncio.to_thread(crashing.process.wait, 60)
    assert exit_code == 137  # died in the window: effect committed, offset not
    applied_before_restart = len(await setup.effects())
    # It died after the commit of the batch that applied the 50th event, before the offsets.
    assert 50 <= applied_before_restart < 200

    healthy = consumer_process({})
    healthy.start()
    try:
        effects = await setup.wait_for_effects(lambda effects: len(effects) >= 200, timeout=60)
        await asyncio.sleep(1)  # anything doubled would land now
        effects = await setup.effects()
    finally:
        healthy.terminate()
    orders = [e[2] for e in effects]
    assert len(orders) == 200
    assert len(set(orders)) == 200
    assert json.dumps(sorted(orders)) == json.dumps(
        sorted(f"crash-order-{i:03d}" for i in range(200))
    )


async def test_the_watchdog_restarts_a_stalled_consumer(infra: Infra, setup: Setup) -> None:
    from prometheus_client import REGISTRY

    calls = 0

    async def hangs_once(session: Any, event: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(3600)  # a stuck call: no error, no progress
        await recorder(session, event)

    await produce_raw(infra, setup.topic, [cloudevent("stuck-order")])
    consumer = EventConsumer(
        group_id=setup.group,
        topics=[setup.topic],
        subscriptions=[Subscription("recorder", OrderPlaced, hangs_once)],
        sessions=session_factory(setup.engine),
        bootstrap_servers=infra.kafka_bootstrap,
        topology=TOPOLOGY,
        settings=ConsumerSettings(stall_timeout_seconds=2),
    )

    async def body() -> None:
        await setup.wait_for_effects(lambda effects: len(effects) == 1)

    await running(consumer, body)
    assert calls == 2
    assert [e[2] for e in await setup.effects()] == ["stuck-order"]
    assert REGISTRY.get_sample_value("consumer_restarts_total", {"group": setup.group}) == 1.0


async def test_a_member_joining_mid_stream_applies_nothing_twice(
    infra: Infra, setup: Setup
) -> None:
    """A rebalance moves partitions while events flow: what was applied is committed on revoke,
    and anything redelivered to the new owner is skipped by the inbox."""
    first = setup.consumer([Subscription("recorder", OrderPlaced, recorder)], infra.kafka_bootstrap)
    second = setup.consumer(
        [Subscription("recorder", OrderPlaced, recorder)], infra.kafka_bootstrap
    )
    orders = [f"rebalance-{i:03d}" for i in range(300)]

    async def produce_spread() -> None:
        producer = AIOKafkaProducer(**infra.kafka_options(), acks="all")
        await producer.start()
        try:
            for order_id in orders:
                key, value, headers = cloudevent(order_id)
                await producer.send_and_wait(setup.topic, value=value, key=key, headers=headers)
                await asyncio.sleep(0.005)
        finally:
            await producer.stop()

    async def body() -> None:
        producing = asyncio.create_task(produce_spread())
        await setup.wait_for_effects(lambda effects: len(effects) >= 50)
        await running(second, lambda: setup.wait_for_effects(lambda e: len(e) >= 300, timeout=60))
        await producing

    await running(first, body)
    applied = [e[2] for e in await setup.effects()]
    assert sorted(applied) == orders  # every event once: none lost, none doubled


async def test_drained_only_once_the_backlog_is_applied(infra: Infra, setup: Setup) -> None:
    """``drained`` (what the late-warning timers wait for after a restart) turns true only when
    every event that was on the topic has been applied, never at an early empty poll."""
    backlog = [cloudevent(f"backlog-order-{i:04d}") for i in range(2000)]
    await produce_raw(infra, setup.topic, backlog)
    consumer = setup.consumer(
        [Subscription("recorder", OrderPlaced, recorder)], infra.kafka_bootstrap
    )
    applied_when_drained: list[int] = []

    async def body() -> None:
        await eventually(lambda: consumer.drained, interval=0.01, timeout=120, what="drained")
        applied_when_drained.append(len(await setup.effects()))

    await running(consumer, body)
    assert applied_when_drained == [len(backlog)]


# The awaits of the consumer's batch path: polling, applying an event, committing offsets.
CONSUMER_AWAITS = ("consumer.poll", "consumer.apply", "consumer.commit")


async def test_no_driver_error_stops_applying(infra: Infra, setup: Setup) -> None:
    """Every kind of driver error at every await of the batch path: the events are all applied,
    each once, and none is dead-lettered for it (a driver's fault is not the event's)."""
    orders = [f"driven-{i}" for i in range(10)]
    await produce_raw(infra, setup.topic, [cloudevent(order) for order in orders])
    for point in CONSUMER_AWAITS:
        arm_error(point, *driver_errors())
    settings = FAST_RETRIES.model_copy(update={"restart_max_seconds": 0.05})
    consumer = setup.consumer(
        [Subscription("recorder", OrderPlaced, recorder)], infra.kafka_bootstrap, settings=settings
    )

    async def errors_left() -> dict[str, int]:
        left = {point: armed_errors(point) for point in CONSUMER_AWAITS if armed_errors(point)}
        if left:  # more events until every armed error was raised (each commit point needs a batch)
            await setup.wait_for_effects(lambda effects: len(effects) >= len(orders))
            more = [f"driven-{len(orders) + i}" for i in range(3)]
            orders.extend(more)
            await produce_raw(infra, setup.topic, [cloudevent(order) for order in more])
        return left

    async def body() -> None:
        await eventually(
            errors_left,
            until=lambda left: not left,
            timeout=60,
            interval=0,
            what="every armed error raised",
        )
        await setup.wait_for_effects(lambda effects: len(effects) >= len(orders))

    try:
        await running(consumer, body)
    finally:
        disarm_errors()
    effects = await setup.effects()
    assert sorted(e[2] for e in effects) == sorted(orders)  # each exactly once
    assert (
        await read_dead_letters(infra.kafka_bootstrap, topic=DEAD_LETTERS.name, group=setup.group)
        == []
    )
