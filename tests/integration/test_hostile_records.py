"""Hostile records on the real broker and database: one dead letter each, and the partition moves.

Every kind of tests/support/hostile.py goes on one partition, followed by good events; a crash
right after a dead letter is recorded; dead letters the broker will not take (too large for the
dead-letter topic, a dead-letter topic that does not exist, a keyless record for a compacted
dead-letter topic); the contacts topic's restricted dead-letter topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalogue import CustomerContactUpdated, OrderConfirmed, OrderPlaced
from contracts.topics import CUSTOMER_CONTACTS, CUSTOMER_CONTACTS_DEAD_LETTERS, OPEN_DEAD_LETTERS
from eventing.consumer import ReceivedEvent, Subscription
from eventing.database import session_factory
from eventing.deadletter import (
    DeadLetterRecord,
    forget_dead_letters,
    read_dead_letters,
    record_dead_letter,
)
from eventing.settings import ConsumerSettings
from tests.support.eventing import create_topic
from tests.support.hostile import hostile_records, produce_hostile, written
from tests.support.infra import ROOT, Infra
from tests.support.metrics import parse, value
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess
from tests.support.raw_batches import RawRecord
from tests.support.recording_handlers import recorder
from tests.support.runtime import (
    FAST_RETRIES,
    Effect,
    Setup,
    cloudevent,
    dead_letters_of,
    new_setup,
    running,
)

SUBSCRIPTIONS = [
    Subscription("recorder", OrderPlaced, recorder),
    Subscription("confirmations", OrderConfirmed, recorder),
]


@pytest.fixture
async def setup(infra: Infra) -> AsyncIterator[Setup]:
    async with new_setup(infra) as created:
        yield created


def eventing(*args: str, bootstrap: str, status: int = 0) -> tuple[list[dict[str, Any]], str]:
    result = subprocess.run(
        [sys.executable, "-m", "contracts.cli", "--bootstrap-servers", bootstrap, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == status, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


async def rows(setup: Setup) -> list[dict[str, Any]]:
    found = await setup.fetch(
        'SELECT "offset", handler, kind, status, truncated, error, value IS NOT NULL AS has_value, '
        'dead_letter_topic, key FROM dead_letters ORDER BY "offset", handler'
    )
    return [dict(row) for row in found]


def kept(group: str, cause: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "consumer_dead_letters_kept_total", {"group": group, "cause": cause}
        )
        or 0.0
    )


async def test_every_hostile_kind_is_dead_lettered_once_and_good_events_still_apply(
    infra: Infra, setup: Setup
) -> None:
    hostile = hostile_records(f"it-{uuid.uuid4().hex[:6]}")
    # A good event whose only flaw is a header name that is not UTF-8 (not a ce_ one), then one
    # without flaws: both apply.
    junk = written(cloudevent("junk-header-order"))
    junk_header = RawRecord(junk.key, junk.value, [(b"x-\xff\xfe", b"junk"), *junk.headers])
    after = written(cloudevent("after-hostile"))
    await produce_hostile(
        infra.kafka_bootstrap, setup.topic, 0, [h.record for h in hostile] + [junk_header, after]
    )
    consumer = setup.consumer(SUBSCRIPTIONS, infra.kafka_bootstrap)

    async def body() -> None:
        await setup.wait_for_effects(
            lambda effects: {"junk-header-order", "after-hostile"} <= {e[2] for e in effects},
            timeout=60,
        )

    await running(consumer, body)
    assert sorted(e[2] for e in await setup.effects()) == ["after-hostile", "junk-header-order"]
    letters = sorted(
        await dead_letters_of(infra, setup.group, len(hostile)), key=lambda x: x.original_offset
    )
    assert [letter.original_offset for letter in letters] == list(range(len(hostile)))
    for kind, letter in zip(hostile, letters, strict=True):
        assert kind.reason in letter.reason, (kind.name, letter.reason)
        assert letter.key == kind.key and letter.handler == "-"
        assert len(letter.reason) <= 500
    near_limit = next(i for i, h in enumerate(hostile) if h.name == "just under the broker's limit")
    original = hostile[near_limit].record.value
    assert original is not None
    copy = letters[near_limit]
    assert copy.truncated and copy.value_bytes == len(original)
    assert copy.value_sha256 == hashlib.sha256(original).hexdigest()
    assert copy.value == original[: len(copy.value or b"")] and len(copy.value or b"") == 8192
    # The record whose header name aiokafka could not decode arrives with replacement characters.
    junk_name = next(i for i, h in enumerate(hostile) if h.name == "an invalid UTF-8 header name")
    assert ("ce_\ufffd\ufffd", b"x") in letters[junk_name].original_headers
    # Each recorded, published, its value dropped once the broker had it.
    recorded = await rows(setup)
    assert [(r["offset"], r["status"], r["has_value"]) for r in recorded] == [
        (offset, "published", False) for offset in range(len(hostile))
    ]
    assert [r["truncated"] for r in recorded].count(True) == 1


@pytest.mark.fault
@pytest.mark.parametrize(
    ("failpoint", "after_the_crash"),
    [
        # The first dead letter recorded and published, the second only recorded.
        ("after_dead_letter_recorded=2", [(0, "published"), (1, "pending")]),
        # The broker acknowledged the first dead letter; the table does not say so yet.
        ("after_dead_letter_published=1", [(0, "pending")]),
    ],
)
async def test_a_consumer_killed_while_dead_lettering_still_gives_one_each(
    infra: Infra, setup: Setup, failpoint: str, after_the_crash: list[tuple[int, str]]
) -> None:
    first, second = hostile_records(f"crash-{uuid.uuid4().hex[:6]}")[6:8]
    good = written(cloudevent("after-the-crash"))
    await produce_hostile(
        infra.kafka_bootstrap, setup.topic, 0, [first.record, second.record, good]
    )

    def consumer_process(env: dict[str, str]) -> ServiceProcess:
        return setup.consumer_process(infra, "dead-letter-crash-consumer", env)

    # The process dies at the failpoint, before either record's offset is committed.
    crashing = consumer_process({"EVENTING_FAILPOINTS": failpoint})
    crashing.start()
    assert crashing.process is not None
    assert await asyncio.to_thread(crashing.process.wait, 60) == 137
    assert [(r["offset"], r["status"]) for r in await rows(setup)] == after_the_crash
    healthy = consumer_process({})
    healthy.start()
    try:
        await setup.wait_for_effects(
            lambda effects: any(e[2] == "after-the-crash" for e in effects), timeout=60
        )
        async with httpx.AsyncClient(base_url=healthy.ready_url.rsplit("/", 1)[0]) as client:
            samples = parse((await client.get("/metrics")).text)
    finally:
        healthy.terminate()
    letters = await read_dead_letters(
        infra.kafka_bootstrap, topic=OPEN_DEAD_LETTERS, group=setup.group
    )
    assert sorted(letter.original_offset for letter in letters) == [0, 1]
    assert [(r["offset"], r["status"]) for r in await rows(setup)] == [
        (0, "published"),
        (1, "published"),
    ]
    # The redelivered first record found its dead letter published (marked in the table, or
    # on the dead-letter topic) and did not send it again.
    assert value(samples, "consumer_duplicates_skipped_total", group=setup.group, handler="-") == 1


async def create_topic_with(infra: Infra, name: str, config: dict[str, str]) -> str:
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=1, replication_factor=1, topic_configs=config)]
        )
    finally:
        await admin.close()
    return name


async def test_a_dead_letter_too_large_for_its_topic_goes_truncated_or_is_kept(
    infra: Infra, setup: Setup
) -> None:
    small = await create_topic_with(
        infra, f"{setup.topic}.small-deadletter", {"max.message.bytes": "16384"}
    )
    large_value = RawRecord(b"big-value", b"x" * 50_000, [])  # a truncated copy fits
    many_headers = RawRecord(  # even cut short, its 30 headers of 1 KB do not fit
        b"big-headers", b"junk", [(f"h{i}".encode(), b"h" * 2048) for i in range(30)]
    )
    good = written(cloudevent("after-the-big-ones"))
    await produce_hostile(infra.kafka_bootstrap, setup.topic, 0, [large_value, many_headers, good])
    consumer = setup.consumer(
        SUBSCRIPTIONS, infra.kafka_bootstrap, dead_letter_topics={setup.topic: small}
    )

    async def body() -> None:
        await setup.wait_for_effects(lambda effects: len(effects) == 1, timeout=60)

    await running(consumer, body)
    assert [e[2] for e in await setup.effects()] == ["after-the-big-ones"]
    [letter] = await read_dead_letters(infra.kafka_bootstrap, group=setup.group, topic=small)
    assert letter.original_offset == 0 and letter.truncated and letter.value_bytes == 50_000
    assert letter.value == b"x" * 8192
    stored = await rows(setup)
    assert [(r["offset"], r["status"], r["truncated"], r["has_value"]) for r in stored] == [
        (0, "published", True, False),  # the copy is on the topic: the value is not kept here
        (1, "kept", False, True),  # kept whole, as it was
    ]
    assert "MessageSizeTooLargeError" in stored[1]["error"]
    assert kept(setup.group, "too_large") == 1

    listed, _ = eventing("dead-letters", "kept", "--database-url", setup.url, bootstrap="-")
    assert [(row["offset"], row["kind"], row["key"]) for row in listed] == [
        (1, "undecodable", "big-headers")
    ]
    replay, warning = eventing(
        "dead-letters", "replay", "--group", setup.group, "--topic", small,
        bootstrap=infra.kafka_bootstrap, status=1,
    )  # fmt: skip
    assert replay[0]["replayed"] == 0
    assert [(x["dlq_offset"], "truncated" in x["why"]) for x in replay[0]["refused"]] == [
        (letter.offset, True)
    ]
    assert "refused to replay 1 truncated dead letter" in warning


async def test_a_dead_letter_the_broker_never_takes_is_kept_past_the_deadline(
    infra: Infra, setup: Setup
) -> None:
    missing = f"{setup.topic}.no-such-deadletter"  # never created: publishing fails, retriably
    poison = hostile_records(f"deadline-{uuid.uuid4().hex[:6]}")[6]
    good = written(cloudevent("after-the-deadline"))
    await produce_hostile(infra.kafka_bootstrap, setup.topic, 0, [poison.record, good])
    settings = ConsumerSettings(
        **FAST_RETRIES.model_dump(exclude={"dead_letter_publish_timeout_seconds"}),
        dead_letter_publish_timeout_seconds=3,
    )
    consumer = setup.consumer(
        SUBSCRIPTIONS,
        infra.kafka_bootstrap,
        settings=settings,
        dead_letter_topics={setup.topic: missing},
    )
    seen: list[str] = []

    async def effects_noting_readiness() -> list[Effect]:
        effects = await setup.effects()
        ready, reason = consumer.ready()
        if not effects and not ready and reason.startswith("blocked"):
            seen.append(reason)
        return effects

    async def body() -> None:
        effects = await eventually(
            effects_noting_readiness,
            timeout=60,
            interval=0.05,
            what="the partition moved on",
        )
        assert [e[2] for e in effects] == ["after-the-deadline"]
        await eventually(  # ready again once the dead letter is kept
            consumer.ready,
            until=lambda readiness: readiness[0],
            timeout=60,
            interval=0.05,
            what="the consumer ready again",
        )

    await running(consumer, body)
    assert seen, "readiness never said the consumer was blocked on a dead letter"
    assert f"publishing the dead letter of {setup.topic}[0]@0 to {missing}" in seen[0]
    [row] = await rows(setup)
    assert (row["status"], row["has_value"], row["dead_letter_topic"]) == ("kept", True, missing)
    assert kept(setup.group, "timeout") == 1


async def record_contact(
    session: AsyncSession, event: ReceivedEvent[CustomerContactUpdated]
) -> None:
    await session.execute(
        text("INSERT INTO effects (handler, event_id, order_id) VALUES ('contacts', :e, :c)"),
        {"e": event.id, "c": event.data.customer_id},
    )


async def test_contacts_dead_letters_go_only_to_their_restricted_topic(
    infra: Infra, setup: Setup
) -> None:
    # A topic of this test's own, named like the contacts topic with a prefix (as tests and
    # shared clusters do), not compacted so that it takes a record without a key.
    contacts = await create_topic(
        infra, f"t{uuid.uuid4().hex[:8]}.{CUSTOMER_CONTACTS.name}", partitions=1
    )
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    good = CustomerContactUpdated(
        customer_id=customer, name="Ada", email="ada@example.com", updated_at=datetime.now(UTC)
    )
    key, data, headers = cloudevent(customer, data=good.model_dump(mode="json"))
    headers = [
        (name, CustomerContactUpdated.event_type.encode() if name == "ce_type" else raw)
        for name, raw in headers
    ]
    contact = written((key, data, headers))
    await produce_hostile(
        infra.kafka_bootstrap,
        contacts,
        0,
        [
            RawRecord(customer.encode(), b"Ada, +39 333 1234567, not json", []),
            RawRecord(None, b"no key and no use", []),
            contact,
        ],
    )
    consumer = setup.consumer(
        [Subscription("contacts", CustomerContactUpdated, record_contact)],
        infra.kafka_bootstrap,
        topics=[contacts],
    )

    async def body() -> None:
        await setup.wait_for_effects(lambda effects: len(effects) == 1, timeout=60)

    await running(consumer, body)
    restricted = await dead_letters_of(
        infra, setup.group, 1, topic=CUSTOMER_CONTACTS_DEAD_LETTERS.name
    )
    assert [(x.key, x.original_offset) for x in restricted] == [(customer.encode(), 0)]
    assert (
        await read_dead_letters(infra.kafka_bootstrap, topic=OPEN_DEAD_LETTERS, group=setup.group)
        == []
    )  # open topic
    stored = await rows(setup)
    assert [(r["offset"], r["status"], r["dead_letter_topic"]) for r in stored] == [
        (0, "published", CUSTOMER_CONTACTS_DEAD_LETTERS.name),
        (1, "kept", CUSTOMER_CONTACTS_DEAD_LETTERS.name),
    ]
    assert "without a key" in stored[1]["error"]
    assert kept(setup.group, "no_key") == 1
    listed, _ = eventing(
        "dead-letters", "list", "--group", setup.group, "--topic", CUSTOMER_CONTACTS.name,
        bootstrap=infra.kafka_bootstrap,
    )  # fmt: skip
    assert listed == []  # only records of the contacts topic itself (this one has a prefix)
    listed, _ = eventing(
        "dead-letters", "list", "--group", setup.group,
        "--topic", CUSTOMER_CONTACTS_DEAD_LETTERS.name, bootstrap=infra.kafka_bootstrap,
    )  # fmt: skip
    assert [letter["key"] for letter in listed] == [customer]
    assert CUSTOMER_CONTACTS_DEAD_LETTERS.name != OPEN_DEAD_LETTERS


async def test_forgetting_a_key_deletes_its_unpublished_dead_letters_only(
    infra: Infra, setup: Setup
) -> None:
    sessions = session_factory(setup.engine)

    def letter(offset: int, key: bytes) -> DeadLetterRecord:
        return DeadLetterRecord(
            group=setup.group, handler="-", topic=CUSTOMER_CONTACTS.name, partition=0,
            offset=offset, dead_letter_topic=CUSTOMER_CONTACTS_DEAD_LETTERS.name,
            kind="undecodable", reason="test", key=key, value=b"Ada's phone", headers=[],
        )  # fmt: skip

    async with sessions() as session, session.begin():
        for offset, key in ((0, b"cust-gone"), (1, b"cust-gone"), (2, b"cust-stays")):
            await record_dead_letter(session, letter(offset, key))
        await session.execute(text("UPDATE dead_letters SET status = 'kept' WHERE \"offset\" = 1"))
        await session.execute(
            text("UPDATE dead_letters SET status = 'published', value = NULL WHERE \"offset\" = 0")
        )
    async with sessions() as session, session.begin():
        assert await forget_dead_letters(session, CUSTOMER_CONTACTS.name, "cust-gone") == 1
    assert [(r["offset"], r["status"]) for r in await rows(setup)] == [
        (0, "published"),  # holds no value: stays, so a redelivery is still not sent twice
        (2, "pending"),
    ]
