"""The three-broker cluster of the local stack (``KAFKA_BROKERS=3``): topics with three copies
and two in sync, and a broker SIGKILLed while records flow is a failover, not an outage.

The cluster is a stack of its own (``.local/test-cluster-stack``, its own ports), started once
for the module and stopped after it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import ALL_TOPICS
from eventing.admin import ensure_topics
from eventing.topics import TopicSpec
from tests.support.eventing import unique_prefix
from tests.support.infra import CLUSTER_ENV, Infra, kafka_cluster
from tests.support.kafka import read_whole_topic
from tests.support.polling import eventually

pytestmark = pytest.mark.fault


@pytest.fixture(scope="module")
def cluster() -> Iterator[Infra]:
    with kafka_cluster() as infra:
        yield infra


async def describe(infra: Infra, topic: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        [config] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    return described["partitions"], {name: value for name, value, *_ in config.resources[0][4]}


def test_the_stack_makes_a_cluster_of_three_brokers(cluster: Infra) -> None:
    assert len(cluster.kafka_bootstrap.split(",")) == 3
    brokers = Path(CLUSTER_ENV["STACK_DIR"]) / "kafka" / "brokers"
    assert brokers.read_text().strip() == "3"


async def test_the_systems_topics_have_three_copies_two_in_sync(cluster: Infra) -> None:
    for spec in ALL_TOPICS:
        partitions, config = await describe(cluster, spec.name)
        assert len(partitions) == spec.partitions
        assert {len(p["replicas"]) for p in partitions} == {3}, spec.name
        assert config["min.insync.replicas"] == "2", spec.name
        # Every broker leads some partitions of the busy topics.
        if spec.partitions >= 3:
            assert len({p["leader"] for p in partitions}) == 3, spec.name


async def test_a_broker_killed_while_records_flow_loses_and_doubles_nothing(
    cluster: Infra,
) -> None:
    """An idempotent producer with acks=all sends keyed records at a steady rate; one broker is
    SIGKILLed a third of the way through and started again later. Every send is acknowledged
    (the partitions it led move to the others), every record is on the topic once, and each
    key's records keep their order."""
    spec = TopicSpec(f"{unique_prefix()}failover", partitions=6, description="a test's")
    await ensure_topics(
        cluster.kafka_bootstrap, [spec], replication_factor=3, min_insync_replicas=2
    )
    producer = AIOKafkaProducer(
        **cluster.kafka_options(), enable_idempotence=True, acks="all", linger_ms=2
    )
    await producer.start()
    records, rate, keys = 1500, 150.0, 30
    acked_at: list[float] = []

    async def send(index: int) -> None:
        await producer.send_and_wait(
            spec.name, key=f"key-{index % keys}".encode(), value=f"{index}".encode()
        )
        acked_at.append(time.monotonic())

    async def fault() -> None:
        await asyncio.sleep(records / rate / 3)
        await asyncio.to_thread(cluster.kafka_kill, 1)
        await asyncio.sleep(records / rate / 3)
        await asyncio.to_thread(cluster.kafka_start, 1)

    started = time.monotonic()
    try:
        sends: list[asyncio.Task[None]] = []
        faulting = asyncio.create_task(fault())
        for index in range(records):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            sends.append(asyncio.create_task(send(index)))
        results = await asyncio.gather(*sends, return_exceptions=True)
        await faulting
    finally:
        await producer.stop()
    failed = [result for result in results if isinstance(result, BaseException)]
    assert failed == [], f"{len(failed)} sends failed, the first: {failed[:1]}"
    acked_at.sort()
    longest_gap = max(later - earlier for earlier, later in itertools.pairwise(acked_at))
    print(f"longest gap between acknowledgements: {longest_gap:.2f} s")

    on_topic = await read_whole_topic(cluster.kafka_bootstrap, spec.name)
    counts = Counter(int(record.value) for record in on_topic)
    assert set(counts) == set(range(records)), "lost"
    assert max(counts.values()) == 1, "doubled"
    per_key: dict[bytes, list[int]] = defaultdict(list)
    for record in sorted(on_topic, key=lambda r: (r.partition, r.offset)):
        per_key[record.key].append(int(record.value))
    assert all(values == sorted(values) for values in per_key.values())

    # The restarted broker catches up: every partition has its three copies in sync again.
    await eventually(
        lambda: describe(cluster, spec.name),
        until=lambda described: all(len(p["isr"]) == 3 for p in described[0]),
        timeout=60,
        what="every partition back to three in-sync copies",
    )
