"""The ``pizzeria`` operations CLI against real data."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from contracts.topics import DEAD_LETTERS
from eventing.admin import ensure_topics
from eventing.database import asyncpg_dsn
from eventing.deadletter import dead_letter_headers
from eventing.errors import TopicsRefusedError
from eventing.outbox import Outbox, OutboxEvent
from eventing.topics import TopicSpec
from tests.support.eventing import eventing_database, order_placed, unique_prefix
from tests.support.infra import ROOT, Infra


def eventing(*args: str, bootstrap: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "contracts.cli", "--bootstrap-servers", bootstrap, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_outbox_status_parked_and_unpark(infra: Infra) -> None:
    url = await eventing_database(infra)
    engine = create_async_engine(url)
    outbox = Outbox("/test")
    async with async_sessionmaker(engine)() as session, session.begin():
        await outbox.enqueue(
            session,
            [OutboxEvent(data=order_placed(f"cli-{i}"), aggregate_id=f"cli-{i}") for i in range(3)],
        )
    await engine.dispose()
    dsn = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE outbox SET parked_at = now(), attempts = 10, last_error = 'broken' "
            "WHERE partition_key = 'cli-0'"
        )
    finally:
        await conn.close()

    [status] = eventing("outbox", "status", "--database-url", url, bootstrap=infra.kafka_bootstrap)
    assert status["backlog"] == 2
    assert status["parked"] == 1
    assert status["oldest_age_seconds"] >= 0
    parked = eventing("outbox", "parked", "--database-url", url, bootstrap=infra.kafka_bootstrap)
    assert [(row["partition_key"], row["last_error"]) for row in parked] == [("cli-0", "broken")]
    [unparked] = eventing(
        "outbox", "unpark", "--database-url", url, bootstrap=infra.kafka_bootstrap
    )
    assert unparked == {"unparked": 1}
    [status] = eventing("outbox", "status", "--database-url", url, bootstrap=infra.kafka_bootstrap)
    assert (status["backlog"], status["parked"]) == (3, 0)


async def test_dead_letters_list_shows_reason_and_origin(infra: Infra) -> None:
    group = f"cli-group-{unique_prefix().strip('.')}"
    producer = AIOKafkaProducer(**infra.kafka_options())
    await producer.start()
    try:
        await producer.send_and_wait(
            DEAD_LETTERS.name,
            key=b"order-9",
            value=b"{}",
            headers=dead_letter_headers(
                [("ce_id", b"evt-9"), ("ce_type", b"com.mariospizzeria.order.placed.v1")],
                reason="schema-invalid: total missing",
                group=group,
                handler="-",
                topic="pizzeria.orders",
                partition=2,
                offset=41,
            ),
        )
    finally:
        await producer.stop()
    letters = eventing("dead-letters", "list", "--group", group, bootstrap=infra.kafka_bootstrap)
    assert len(letters) == 1
    letter = letters[0]
    assert letter["reason"] == "schema-invalid: total missing"
    assert letter["event_id"] == "evt-9"
    assert (letter["original_topic"], letter["original_partition"], letter["original_offset"]) == (
        "pizzeria.orders",
        2,
        41,
    )


async def test_topics_are_made_with_the_replication_asked_for(infra: Infra) -> None:
    spec = TopicSpec(f"{unique_prefix()}replicated", partitions=2, description="a test's")
    created = await ensure_topics(
        infra.kafka_bootstrap, [spec], replication_factor=1, min_insync_replicas=1
    )
    assert created == [spec.name]
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([spec.name])
        [config] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name)]
        )
    finally:
        await admin.close()
    assert {len(partition["replicas"]) for partition in described["partitions"]} == {1}
    values = {name: value for name, value, *_ in config.resources[0][4]}
    assert values["min.insync.replicas"] == "1"
    # Made already: left as it is.
    assert await ensure_topics(infra.kafka_bootstrap, [spec], replication_factor=1) == []


async def test_a_topic_the_broker_refuses_is_an_error_not_a_creation(infra: Infra) -> None:
    """The broker answers CreateTopics with an error per topic: more copies than the one test
    broker (waited for a moment, as a cluster still starting may yet have them), and a config
    it rejects (at once)."""
    too_many_copies = TopicSpec(f"{unique_prefix()}rf", partitions=1, description="a test's")
    with pytest.raises(TopicsRefusedError, match=rf"{too_many_copies.name} \(.*replication"):
        await ensure_topics(
            infra.kafka_bootstrap, [too_many_copies], replication_factor=2, wait_seconds=1
        )
    bad_config = TopicSpec(
        f"{unique_prefix()}config",
        partitions=1,
        description="a test's",
        config={"cleanup.policy": "sometimes"},
    )
    with pytest.raises(TopicsRefusedError, match=bad_config.name) as refused:
        await ensure_topics(infra.kafka_bootstrap, [bad_config], wait_seconds=60)
    assert not refused.value.retriable
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    assert {too_many_copies.name, bad_config.name}.isdisjoint(existing)


def test_topics_ensure_refuses_more_in_sync_replicas_than_copies(infra: Infra) -> None:
    refused = subprocess.run(
        [
            *(sys.executable, "-m", "contracts.cli", "--bootstrap-servers", infra.kafka_bootstrap),
            *("topics", "ensure", "--replication-factor", "1", "--min-insync-replicas", "2"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode != 0
    assert "min.insync.replicas (2) must be between 1 and the replication factor (1)" in (
        refused.stderr
    )
