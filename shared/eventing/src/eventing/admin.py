"""Creating topics and inspecting the outbox: operations shared by the CLI and the tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from eventing.errors import TopicsRefusedError, UnknownTopicError
from eventing.kafka_security import KafkaSecurity, kafka_security
from eventing.outbox import LOCK_APPLICATION_PREFIX
from eventing.topics import TopicSpec

__all__ = ["ensure_topics", "outbox_status", "parked_rows", "topic_partitions", "unpark"]

log = logging.getLogger("eventing.admin")


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[TopicSpec],
    *,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
    wait_seconds: float = 60,
    security: KafkaSecurity | None = None,
) -> list[str]:
    """Create the topics that do not exist yet, ``replication_factor`` copies of each partition
    (and, given, ``min.insync.replicas``); returns the names created. Existing topics are left
    as they are.

    Waits up to ``wait_seconds`` for the broker, since this runs right after it starts (and for
    enough brokers to hold the copies); then raises the broker's last error (aiokafka's
    ``KafkaError``). A topic the broker refuses is ``TopicsRefusedError``.
    """
    if min_insync_replicas is not None and not 1 <= min_insync_replicas <= replication_factor:
        raise ValueError(
            f"min.insync.replicas ({min_insync_replicas}) must be between 1 and the "
            f"replication factor ({replication_factor})"
        )
    replicated = (
        {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
    )
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            **kafka_security(security).client_options(),
            request_timeout_ms=10_000,
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [spec for spec in topics if spec.name not in existing]
            if missing:
                response = await admin.create_topics(
                    [
                        NewTopic(
                            name=spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=replication_factor,
                            topic_configs={**spec.config, **replicated},
                        )
                        for spec in missing
                    ]
                )
                _raise_refusals(response.topic_errors)
            return [spec.name for spec in missing]
        except (KafkaConnectionError, KafkaError, TopicsRefusedError) as error:
            if asyncio.get_running_loop().time() > deadline:
                raise
            if isinstance(error, TopicsRefusedError) and not error.retriable:
                raise
            log.info("waiting for Kafka (%s)", error)
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


# Created meanwhile by someone else (another `topics ensure`): what was asked for exists.
_TOPIC_ALREADY_EXISTS = 36
# More copies than brokers registered: final on a cluster too small, not on one still starting.
_INVALID_REPLICATION_FACTOR = 38


def _raise_refusals(topic_errors: Sequence[tuple[Any, ...]]) -> None:
    """The broker answers a CreateTopics request with an error per topic, not by failing it:
    a topic it refused (more copies than brokers, a bad config) must not pass for created."""
    refused = [entry for entry in topic_errors if entry[1] not in (0, _TOPIC_ALREADY_EXISTS)]
    if refused:
        raise TopicsRefusedError(
            "the broker refused to create "
            + "; ".join(
                f"{entry[0]} ({entry[2] if len(entry) > 2 and entry[2] else f'error {entry[1]}'})"
                for entry in refused
            ),
            retriable=all(entry[1] == _INVALID_REPLICATION_FACTOR for entry in refused),
        )


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, fetched from the broker; ``UnknownTopicError`` if it has none.

    ``partitions_for_topic`` only reads the consumer's metadata cache, which holds nothing for a
    topic it neither subscribed to nor was assigned; aiokafka has no public call that fills it.
    """
    cluster = await consumer._client.fetch_all_metadata()
    partitions = cluster.partitions_for_topic(topic)
    if not partitions:
        raise UnknownTopicError(f"topic {topic!r} does not exist")
    return [TopicPartition(topic, partition) for partition in sorted(partitions)]


async def outbox_status(dsn: str) -> dict[str, Any]:
    """The outbox's backlog, parked and retrying rows, oldest age and live relays (by instance).

    Like every function here that takes a ``dsn`` (an asyncpg URL, see
    ``eventing.database.asyncpg_dsn``), it raises asyncpg's errors when the database cannot be
    reached.
    """
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE parked_at IS NULL) AS backlog,
                   count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,
                   count(*) FILTER (WHERE attempts > 0 AND parked_at IS NULL) AS retrying,
                   EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL))
                       AS oldest_age_seconds
            FROM outbox
            """
        )
        relays = await conn.fetch(
            "SELECT application_name, client_addr::text, backend_start FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE $1",
            f"{LOCK_APPLICATION_PREFIX}%",
        )
        assert row is not None
        return {
            "backlog": row["backlog"],
            "parked": row["parked"],
            "retrying": row["retrying"],
            "oldest_age_seconds": float(row["oldest_age_seconds"] or 0.0),
            "relays": [r["application_name"].split(":", 1)[1] for r in relays],
        }
    finally:
        await conn.close()


async def parked_rows(dsn: str) -> list[dict[str, Any]]:
    """The outbox rows parked after their last attempt, with their error, in id order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, event_id::text, event_type, partition_key, attempts, last_error, parked_at "
            "FROM outbox WHERE parked_at IS NOT NULL ORDER BY id"
        )
        return [dict(row) | {"parked_at": row["parked_at"].isoformat()} for row in rows]
    finally:
        await conn.close()


async def unpark(dsn: str, ids: Sequence[int] | None = None) -> int:
    """Give parked rows (all, or those with ``ids``) a fresh retry budget."""
    conn = await asyncpg.connect(dsn)
    try:
        result = await conn.execute(
            "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = NULL "
            "WHERE parked_at IS NOT NULL AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))",
            list(ids) if ids is not None else None,
        )
        return int(result.split()[-1])
    finally:
        await conn.close()
