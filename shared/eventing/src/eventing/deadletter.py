"""Dead letters: records a consumer could not process, with the reason; publishing and replay.

A dead letter keeps the original key, value and headers, and adds ``dlq_*`` headers: the reason,
the consumer group and handler, and where the record came from. It goes to the dead-letter topic
its source topic names (``TopicSpec.dead_letters``): the contacts topic's to a restricted one.
Replaying produces the original record to its original topic again; consumers that already
applied it skip it through their inbox.

Before it is published, a consumer records the dead letter in its own database
(``dead_letters``, keyed by group, source coordinates and handler), so that a record redelivered
after a crash is published once. ``DeadLetterPublisher`` publishes it: a record too large for
the dead-letter topic goes as a truncated copy (the value's first bytes, with its size and
SHA-256; such a copy cannot be replayed), and one the broker refuses for good, or keeps refusing
past a deadline, is kept in the table (``kept_dead_letters`` lists them) while the partition moves
on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, RecordListTooLargeError
from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eventing.database import (
    DEAD_LETTER_KEPT,
    DEAD_LETTER_PENDING,
    DEAD_LETTER_PUBLISHED,
    dead_letters_table,
)
from eventing.errors import TruncatedDeadLetterError
from eventing.kafka_security import KafkaSecurity, kafka_security
from eventing.tap import TopicReader
from eventing.topics import Topology

__all__ = [
    "DLQ_PREFIX",
    "HEADERS_TRUNCATED_HEADER",
    "TRUNCATED_VALUE_BYTES",
    "TRUNCATION_HEADERS",
    "VALUE_BYTES_HEADER",
    "VALUE_SHA256_HEADER",
    "VALUE_TRUNCATED_HEADER",
    "DeadLetter",
    "DeadLetterPublisher",
    "DeadLetterRecord",
    "PublishOutcome",
    "RecordedDeadLetter",
    "attempt_seconds",
    "dead_letter_headers",
    "dead_letter_on_topic",
    "forget_dead_letters",
    "kept_dead_letters",
    "mark_dead_letter_kept",
    "mark_dead_letter_published",
    "parse_dead_letter",
    "read_dead_letters",
    "record_dead_letter",
    "replay_dead_letters",
    "truncated_copy",
]

log = logging.getLogger("eventing.deadletter")

DLQ_PREFIX = "dlq_"
# Added to a truncated copy, besides the usual dlq_ headers.
VALUE_TRUNCATED_HEADER = "dlq_value_truncated"
VALUE_BYTES_HEADER = "dlq_value_bytes"
VALUE_SHA256_HEADER = "dlq_value_sha256"
HEADERS_TRUNCATED_HEADER = "dlq_headers_truncated"
TRUNCATION_HEADERS = (
    VALUE_TRUNCATED_HEADER,
    VALUE_BYTES_HEADER,
    VALUE_SHA256_HEADER,
    HEADERS_TRUNCATED_HEADER,
)
# What a truncated copy keeps: enough to see what the record was, far below any broker limit.
TRUNCATED_VALUE_BYTES = 8 * 1024
TRUNCATED_KEY_BYTES = 1024
TRUNCATED_HEADER_NAME_CHARS = 256
TRUNCATED_HEADER_VALUE_BYTES = 1024
TRUNCATED_HEADER_COUNT = 32

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    partition: int
    key: bytes | None
    value: bytes | None
    original_headers: Headers
    reason: str
    group: str
    handler: str
    original_topic: str
    original_partition: int
    original_offset: int
    dead_lettered_at: str
    # A truncated copy: ``value`` is only the first bytes of the original's ``value_bytes``.
    truncated: bool = False
    value_bytes: int | None = None
    value_sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        headers = dict(self.original_headers)
        return {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "group": self.group,
            "handler": self.handler,
            "reason": self.reason,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "dead_lettered_at": self.dead_lettered_at,
            "event_id": (headers.get("ce_id") or b"").decode(errors="replace") or None,
            "event_type": (headers.get("ce_type") or b"").decode(errors="replace") or None,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "value": self.value.decode(errors="replace") if self.value is not None else None,
            "truncated": self.truncated,
            "value_bytes": self.value_bytes,
            "value_sha256": self.value_sha256,
        }


def dead_letter_headers(
    original_headers: Sequence[tuple[str, bytes | None]],
    *,
    reason: str,
    group: str,
    handler: str,
    topic: str,
    partition: int,
    offset: int,
    dead_lettered_at: datetime | None = None,
) -> Headers:
    kept = [(name, value) for name, value in original_headers if not name.startswith(DLQ_PREFIX)]
    return [
        *kept,
        ("dlq_reason", reason.encode()),
        ("dlq_group", group.encode()),
        ("dlq_handler", handler.encode()),
        ("dlq_topic", topic.encode()),
        ("dlq_partition", str(partition).encode()),
        ("dlq_offset", str(offset).encode()),
        ("dlq_time", (dead_lettered_at or datetime.now(UTC)).isoformat().encode()),
    ]


def truncated_copy(
    key: bytes | None, value: bytes | None, headers: Headers
) -> tuple[bytes | None, bytes | None, Headers]:
    """A dead letter cut down to a size any dead-letter topic takes: the value's first bytes
    (with the original's size and SHA-256), and the original headers cut short too."""
    ours = [(name, raw) for name, raw in headers if name.startswith(DLQ_PREFIX)]
    originals = [(name, raw) for name, raw in headers if not name.startswith(DLQ_PREFIX)]
    cut = [
        (name[:TRUNCATED_HEADER_NAME_CHARS], raw[:TRUNCATED_HEADER_VALUE_BYTES] if raw else raw)
        for name, raw in originals[:TRUNCATED_HEADER_COUNT]
    ]
    added: Headers = []
    if cut != originals:
        added.append((HEADERS_TRUNCATED_HEADER, b"true"))
    if value is not None:
        added += [
            (VALUE_TRUNCATED_HEADER, b"true"),
            (VALUE_BYTES_HEADER, str(len(value)).encode()),
            (VALUE_SHA256_HEADER, hashlib.sha256(value).hexdigest().encode()),
        ]
        value = value[:TRUNCATED_VALUE_BYTES]
    return key[:TRUNCATED_KEY_BYTES] if key else key, value, [*cut, *ours, *added]


def parse_dead_letter(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
) -> DeadLetter:
    meta = {
        name: (raw or b"").decode(errors="replace")
        for name, raw in headers
        if name.startswith(DLQ_PREFIX)
    }
    value_bytes = meta.get(VALUE_BYTES_HEADER, "")
    return DeadLetter(
        offset=offset,
        partition=partition,
        key=key,
        value=value,
        original_headers=[(n, v) for n, v in headers if not n.startswith(DLQ_PREFIX)],
        reason=meta.get("dlq_reason", ""),
        group=meta.get("dlq_group", ""),
        handler=meta.get("dlq_handler", ""),
        original_topic=meta.get("dlq_topic", ""),
        original_partition=int(meta.get("dlq_partition", "-1")),
        original_offset=int(meta.get("dlq_offset", "-1")),
        dead_lettered_at=meta.get("dlq_time", ""),
        truncated=meta.get(VALUE_TRUNCATED_HEADER) == "true"
        or meta.get(HEADERS_TRUNCATED_HEADER) == "true",
        value_bytes=int(value_bytes) if value_bytes.isdigit() else None,
        value_sha256=meta.get(VALUE_SHA256_HEADER),
    )


async def read_dead_letters(
    bootstrap_servers: str,
    *,
    topic: str,
    group: str | None = None,
    security: KafkaSecurity | None = None,
) -> list[DeadLetter]:
    """Every dead letter currently in the dead-letter topic ``topic`` (optionally of one group).

    Reads as no consumer group (``TopicReader``), so it disturbs nobody. Raises
    ``UnknownTopicError`` when the broker has no such topic.
    """
    letters: list[DeadLetter] = []
    async with TopicReader(bootstrap_servers, [topic], security=security) as reader:
        await reader.start_at(beginning=True)
        async for records in reader.read_to_end():
            for record in records:
                letter = _parsed(record)
                if group is None or letter.group == group:
                    letters.append(letter)
    return letters


def _parsed(record: ConsumerRecord[Any, Any]) -> DeadLetter:
    return parse_dead_letter(
        record.partition, record.offset, record.key, record.value, list(record.headers)
    )


# How long a look for an earlier copy of a dead letter may take before it is sent anyway.
LOOK_UP_SECONDS = 10.0


async def dead_letter_on_topic(
    bootstrap_servers: str,
    letter: DeadLetterRecord,
    since: datetime,
    *,
    security: KafkaSecurity | None = None,
) -> DeadLetter | None:
    """``letter`` as it is on its dead-letter topic, if it was published at ``since`` or after.

    A consumer killed after the broker took a dead letter and before it was marked published
    finds the row pending when the record comes again; this look at the topic (from ``since``,
    the row's time, to the end: a few records at most) keeps it from going twice. If the topic
    cannot be read in time, the answer is None, and the dead letter goes (at least once).
    """

    def is_it(found: DeadLetter) -> bool:
        return (
            found.group == letter.group
            and found.handler == letter.handler
            and found.original_topic == letter.topic
            and found.original_partition == letter.partition
            and found.original_offset == letter.offset
        )

    async def look() -> DeadLetter | None:
        async with TopicReader(
            bootstrap_servers, [letter.dead_letter_topic], security=security
        ) as reader:
            await reader.start_at_time(since)
            async for records in reader.read_to_end():
                for record in records:
                    found = _parsed(record)
                    if is_it(found):
                        return found
        return None

    try:
        return await asyncio.wait_for(look(), LOOK_UP_SECONDS)
    except Exception as error:  # noqa: BLE001 - not known to be there: send it
        log.warning("could not look for the dead letter of %s: %s", letter.where, error)
        return None


async def replay_dead_letters(
    bootstrap_servers: str,
    letters: Sequence[DeadLetter],
    *,
    security: KafkaSecurity | None = None,
) -> int:
    """Produce each dead letter's original record to its original topic again; returns how many.

    Refuses (``TruncatedDeadLetterError``, nothing produced) if any of them is a truncated copy;
    raises aiokafka's ``KafkaError`` when the broker cannot be reached or refuses a record.
    """
    truncated = [letter for letter in letters if letter.truncated]
    if truncated:
        raise TruncatedDeadLetterError(
            f"{len(truncated)} of these dead letters are truncated copies and cannot be "
            "replayed: " + ", ".join(f"{x.partition}:{x.offset}" for x in truncated)
        )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        **kafka_security(security).client_options(),
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                letter.original_topic,
                value=letter.value,
                key=letter.key,
                headers=letter.original_headers,
            )
            for letter in letters
            if letter.original_topic
        ]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- the service's records


@dataclass(frozen=True)
class DeadLetterRecord:
    """A record a consumer group (or one of its handlers) gave up on, and where it must go."""

    group: str
    handler: str
    topic: str
    partition: int
    offset: int
    dead_letter_topic: str
    kind: str
    reason: str
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def _identity(self) -> Any:
        table = dead_letters_table.c
        return and_(
            table.consumer_group == self.group,
            table.topic == self.topic,
            table.partition == self.partition,
            table.offset == self.offset,
            table.handler == self.handler,
        )


@dataclass(frozen=True)
class RecordedDeadLetter:
    """What the table holds for a dead letter: new, or from an earlier delivery of the record."""

    status: str
    reason: str
    recorded_at: datetime
    first: bool


def encode_headers(headers: Headers) -> bytes:
    encoded = [
        [name, None if raw is None else base64.b64encode(raw).decode()] for name, raw in headers
    ]
    return json.dumps(encoded).encode()


def decode_headers(stored: bytes | None) -> Headers:
    if not stored:
        return []
    return [
        (name, base64.b64decode(raw) if raw is not None else None)
        for name, raw in json.loads(stored)
    ]


async def record_dead_letter(session: AsyncSession, letter: DeadLetterRecord) -> RecordedDeadLetter:
    """Insert ``letter`` as pending, unless a row for it exists: then return that row's state."""
    table = dead_letters_table
    inserted = await session.execute(
        insert(table)
        .values(
            consumer_group=letter.group,
            topic=letter.topic,
            partition=letter.partition,
            offset=letter.offset,
            handler=letter.handler,
            dead_letter_topic=letter.dead_letter_topic,
            kind=letter.kind,
            reason=letter.reason,
            status=DEAD_LETTER_PENDING,
            key=letter.key,
            value=letter.value,
            headers=encode_headers(letter.headers),
            value_bytes=len(letter.value) if letter.value is not None else None,
        )
        .on_conflict_do_nothing()
        .returning(table.c.recorded_at)
    )
    recorded_at = inserted.scalar_one_or_none()
    if recorded_at is not None:
        return RecordedDeadLetter(DEAD_LETTER_PENDING, letter.reason, recorded_at, first=True)
    row = (
        await session.execute(
            select(table.c.status, table.c.reason, table.c.recorded_at).where(letter._identity())
        )
    ).one()
    return RecordedDeadLetter(row.status, row.reason, row.recorded_at, first=False)


async def mark_dead_letter_published(
    session: AsyncSession, letter: DeadLetterRecord, *, truncated: bool
) -> None:
    """The broker has it: the value and headers are no longer needed here."""
    await session.execute(
        update(dead_letters_table)
        .where(letter._identity())
        .values(
            status=DEAD_LETTER_PUBLISHED,
            truncated=truncated,
            value=None,
            headers=None,
            published_at=datetime.now(UTC),
        )
    )


async def mark_dead_letter_kept(
    session: AsyncSession, letter: DeadLetterRecord, error: str
) -> None:
    await session.execute(
        update(dead_letters_table)
        .where(letter._identity())
        .values(status=DEAD_LETTER_KEPT, error=error)
    )


async def forget_dead_letters(session: AsyncSession, topic: str, key: str | bytes) -> int:
    """Delete the pending and kept dead letters of ``key`` from ``topic`` (erasure): their rows
    hold the record's value. Published rows hold no value and stay, so a redelivered record is
    still not dead-lettered twice. Runs in the caller's transaction; returns the rows deleted."""
    table = dead_letters_table
    result = await session.execute(
        delete(table).where(
            table.c.topic == topic,
            table.c.key == (key.encode() if isinstance(key, str) else key),
            table.c.status.in_((DEAD_LETTER_PENDING, DEAD_LETTER_KEPT)),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def kept_dead_letters(dsn: str, group: str | None = None) -> list[dict[str, Any]]:
    """The dead letters kept in a service database because they could not be published."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            'SELECT consumer_group, topic, "partition", "offset", handler, dead_letter_topic, '
            "kind, reason, error, key, value_bytes, recorded_at FROM dead_letters "
            "WHERE status = $1 AND ($2::text IS NULL OR consumer_group = $2) "
            'ORDER BY recorded_at, topic, "partition", "offset", handler',
            DEAD_LETTER_KEPT,
            group,
        )
    finally:
        await conn.close()
    return [
        {
            "group": row["consumer_group"],
            "topic": row["topic"],
            "partition": row["partition"],
            "offset": row["offset"],
            "handler": row["handler"],
            "dead_letter_topic": row["dead_letter_topic"],
            "kind": row["kind"],
            "reason": row["reason"],
            "error": row["error"],
            "key": bytes(row["key"]).decode(errors="replace") if row["key"] is not None else None,
            "value_bytes": row["value_bytes"],
            "recorded_at": row["recorded_at"].isoformat(),
        }
        for row in rows
    ]


# --------------------------------------------------------------------------- publishing


@dataclass(frozen=True)
class PublishOutcome:
    published: bool
    truncated: bool = False
    cause: str = ""  # why it was kept: too_large, no_key, refused, timeout
    error: str = ""


def _too_large(error: BaseException) -> bool:
    return isinstance(error, (MessageSizeTooLargeError, RecordListTooLargeError))


def _worth_retrying(error: BaseException) -> bool:
    """The broker may take it later: its error says retriable, or it gave no answer in time.

    aiokafka marks its errors ``retriable``; a timeout is not marked so, but no answer is not
    a refusal (a broker restarting, a leader moving).
    """
    if isinstance(error, (KafkaTimeoutError, TimeoutError)):
        return True
    return bool(getattr(error, "retriable", False))


def attempt_seconds(timeout_seconds: float) -> float:
    """How long one publish attempt may take: a quarter of the whole budget, between 1 and 10 s,
    so that a dead letter that keeps failing is retried, and reported blocked, well before the
    budget is spent. The dead-letter producer's request timeout is set to it too."""
    return min(10.0, max(1.0, timeout_seconds / 4))


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error or 'no answer in time'}"[:1000]


class DeadLetterPublisher:
    """Publishes dead letters with ``producer``, giving up on each after ``timeout_seconds``.

    ``on_blocked`` hears a description while a dead letter keeps failing (None once it is
    through), so readiness can say what the consumer is waiting for.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        timeout_seconds: float,
        on_blocked: Callable[[DeadLetterRecord, str | None], None],
        topology: Topology,
    ) -> None:
        self._producer = producer
        self._topology = topology
        self._timeout = timeout_seconds
        self._attempt = attempt_seconds(timeout_seconds)
        self._on_blocked = on_blocked

    async def publish(self, letter: DeadLetterRecord, recorded_at: datetime) -> PublishOutcome:
        """Publish ``letter`` (recorded at ``recorded_at``), truncated if it is too large.

        Never raises for the letter's sake: what could not be published, and why, is in the
        outcome. Retries while the broker's errors are retriable, up to the timeout.
        """
        spec = self._topology.named(letter.dead_letter_topic)
        if spec is not None and spec.compacted and not letter.key:
            return PublishOutcome(
                False,
                cause="no_key",
                error=f"a record without a key cannot go to the compacted {spec.name}",
            )
        if letter.key is None and letter.value is None:
            return PublishOutcome(
                False, cause="refused", error="a record with neither key nor value cannot be sent"
            )
        key, value = letter.key, letter.value
        headers = dead_letter_headers(
            letter.headers,
            reason=letter.reason,
            group=letter.group,
            handler=letter.handler,
            topic=letter.topic,
            partition=letter.partition,
            offset=letter.offset,
            dead_lettered_at=recorded_at,
        )
        truncated = False
        deadline = time.monotonic() + self._timeout
        attempt = 0
        try:
            while True:
                attempt += 1
                try:
                    await asyncio.wait_for(
                        self._producer.send_and_wait(
                            letter.dead_letter_topic, value=value, key=key, headers=headers
                        ),
                        timeout=max(0.1, min(self._attempt, deadline - time.monotonic())),
                    )
                    return PublishOutcome(True, truncated=truncated)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - each error decides: cut, retry or keep
                    if _too_large(error) and not truncated:
                        log.warning(
                            "dead letter of %s too large for %s (%s); publishing a truncated copy",
                            letter.where,
                            letter.dead_letter_topic,
                            error,
                        )
                        key, value, headers = truncated_copy(key, value, headers)
                        truncated = True
                        continue
                    described = _described(error)
                    if _too_large(error):
                        return PublishOutcome(False, True, "too_large", described)
                    if not _worth_retrying(error):
                        return PublishOutcome(False, truncated, "refused", described)
                    if time.monotonic() >= deadline:
                        return PublishOutcome(False, truncated, "timeout", described)
                    self._on_blocked(letter, described)
                    await asyncio.sleep(min(5.0, 0.25 * 2 ** min(attempt, 5)))
        finally:
            self._on_blocked(letter, None)
