"""The broker lets each principal do its job and nothing else (contracts.access), and lets no one
in without a password: tried with plain aiokafka clients, as an outsider would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from aiokafka.protocol.metadata import MetadataRequest

from contracts.access import PRINCIPALS, described_grants, every_grant
from contracts.topics import ALL_TOPICS, CUSTOMER_CONTACTS, KITCHEN, MENU, ORDERS
from tests.support.infra import ROOT, Infra

EVENT_TOPICS = (ORDERS.name, KITCHEN.name, MENU.name, CUSTOMER_CONTACTS.name)


async def write(infra: Infra, principal: str, topic: str) -> None:
    producer = AIOKafkaProducer(**infra.kafka_options(principal), request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"forged")
    finally:
        await producer.stop()


TOPIC_AUTHORIZATION_FAILED = 29


async def topic_errors(infra: Infra, principal: str, *topics: str) -> dict[str, int]:
    """The error code the broker's metadata gives ``principal`` for each topic (0: visible)."""
    options = infra.kafka_options(principal)
    client = AIOKafkaClient(**options, request_timeout_ms=10_000)
    await client.bootstrap()
    try:
        response = await client.send(client.get_random_node(), MetadataRequest(list(topics)))
    finally:
        await client.close()
    return {topic[1]: topic[0] for topic in response.topics}


async def read(infra: Infra, principal: str, topic: str, group: str | None = None) -> None:
    """Fetch from partition 0 of ``topic`` (as a member of ``group``, if given)."""
    consumer = AIOKafkaConsumer(
        **infra.kafka_options(principal), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        await consumer.getmany(partition, timeout_ms=2000)
        if group is not None:
            await consumer.commit({partition: 0})
    finally:
        await consumer.stop()


async def connect(infra: Infra, **security: object) -> None:
    client = AIOKafkaClient(
        bootstrap_servers=infra.kafka_bootstrap, request_timeout_ms=5000, **security
    )
    try:
        await asyncio.wait_for(client.bootstrap(), 20)
    finally:
        await client.close()


async def test_an_anonymous_client_is_refused(infra: Infra) -> None:
    # PLAINTEXT to a SASL listener: the broker closes the connection at the first request.
    with pytest.raises((KafkaConnectionError, KafkaError, TimeoutError)):
        await connect(infra, security_protocol="PLAINTEXT")


async def test_a_wrong_password_is_refused(infra: Infra) -> None:
    options = infra.kafka_options("kitchen", password="not-the-password")
    options.pop("bootstrap_servers")

    with pytest.raises((KafkaConnectionError, KafkaError, TimeoutError)):
        await connect(infra, **options)


async def test_an_unknown_principal_is_refused(infra: Infra) -> None:
    options = infra.kafka_options("mallory", password="guessed")
    options.pop("bootstrap_servers")

    with pytest.raises((KafkaConnectionError, KafkaError, TimeoutError)):
        await connect(infra, **options)


@pytest.mark.parametrize("principal", ["analytics", "analyst", "kitchen", "orders"])
async def test_only_notifications_may_read_the_contacts_topic(infra: Infra, principal: str) -> None:
    # Unauthorized, a consumer only logs and waits (aiokafka retries the metadata), so ask the
    # broker directly: the topic does not even exist for this principal.
    restricted = (CUSTOMER_CONTACTS.name, CUSTOMER_CONTACTS.dead_letters or "")

    assert await topic_errors(infra, principal, *restricted) == dict.fromkeys(
        restricted, TOPIC_AUTHORIZATION_FAILED
    )
    assert await topic_errors(infra, "notifications", *restricted) == dict.fromkeys(restricted, 0)


@pytest.mark.parametrize("topic", EVENT_TOPICS)
async def test_analytics_cannot_write_an_event_topic(infra: Infra, topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(infra, "analytics", topic)


async def test_the_kitchen_cannot_forge_order_events(infra: Infra) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(infra, "kitchen", ORDERS.name)


@pytest.mark.parametrize("principal", ["kitchen-relay", "analytics", "notifications", "analyst"])
async def test_only_the_orders_relay_writes_contact_tombstones(
    infra: Infra, principal: str
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await write(infra, principal, CUSTOMER_CONTACTS.name)


async def test_a_relay_reads_nothing(infra: Infra) -> None:
    # WRITE implies DESCRIBE, so the relay sees its topics, but it cannot fetch from them.
    with pytest.raises(TopicAuthorizationFailedError):
        await read(infra, "orders-relay", ORDERS.name)


async def test_a_consumer_cannot_use_another_service_group(infra: Infra) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        await read(infra, "analytics", ORDERS.name, group="kitchen")


async def test_each_principal_does_its_own_job(infra: Infra) -> None:
    # Every read grant is used here, with the principal's group where it has one. The writes
    # of the relays and consumers are used by every end-to-end test, where each process runs as
    # its own principal; here, one relay's and the restricted dead letters'.
    for access in PRINCIPALS:
        for topic in access.reads:
            group = None if access.group_prefix is None else f"{access.group_prefix}-acl-test"
            await read(infra, access.principal, topic.name, group=group)
    await write(infra, "kitchen-relay", KITCHEN.name)
    await write(infra, "notifications", CUSTOMER_CONTACTS.dead_letters or "")


async def test_the_broker_holds_exactly_the_declared_acls(infra: Infra) -> None:
    assert await described_grants(infra.kafka_bootstrap) == set(every_grant())


def test_the_tap_runs_as_the_analyst_and_cannot_open_the_contacts_topic(infra: Infra) -> None:
    env = {**infra.principal_env("analyst"), "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap}

    def tap(*topics: str) -> subprocess.CompletedProcess[str]:
        arguments = [arg for topic in topics for arg in ("--topic", topic)]
        return subprocess.run(
            ["uv", "run", "--frozen", "--no-sync", "pizzeria", "tap", *arguments],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    opened = tap(MENU.name)
    assert opened.returncode == 0, opened.stderr
    for line in opened.stdout.splitlines():
        assert json.loads(line)["topic"] == MENU.name
    refused = tap(CUSTOMER_CONTACTS.name)
    assert refused.returncode != 0
    assert "personal data" in refused.stderr or "restricted" in refused.stderr


def test_every_topic_has_a_principal_that_writes_it() -> None:
    written = {topic.name for access in PRINCIPALS for topic in access.writes}

    assert written == {topic.name for topic in ALL_TOPICS}
