"""The consumer runtime: at-least-once delivery in, exactly-once effects out.

For each record of its topics, in partition order:

1. Decode the CloudEvent; look up its type in the catalogue; validate the data against the
   type's model. A record that fails any of these is a poison message: it goes to the
   dead-letter topic with the reason and the partition moves on.
2. Run every handler subscribed to the type, each in its own database transaction that also
   inserts ``(handler, event id)`` into the inbox. A redelivered event finds its inbox row and
   is skipped, so its effects happen once. One handler failing never repeats another's effect.
3. A failing handler is retried alone with exponential back-off and jitter; past the retry
   budget (or at once for ``PermanentHandlerError``) the record is dead-lettered for that
   handler. While the database itself is unreachable, the handler waits instead: that is no
   fault of the event and dead-lettering everything would be worse than pausing.
4. A tombstone (a record with a key and no value: erasure on a compacted topic) is not a
   CloudEvent. It reaches the ``TombstoneSubscription`` handlers of its topic, with its key,
   under the same inbox, retry and dead-letter rules; without such a subscription it is
   dead-lettered as undecodable.
5. Offsets are committed after the batch's transactions committed, and when partitions are
   revoked (after the in-flight batch finished). A crash between the two only causes a
   redelivery, which the inbox absorbs.

A watchdog restarts the Kafka consumer when it stops polling (aiokafka consumers have been seen
to stall after broker restarts) or when it crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eventing import metrics
from eventing.catalogue.base import EventData, model_for
from eventing.cloudevents_kafka import Envelope, UndecodableRecord, decode
from eventing.database import inbox_table, is_database_unavailable
from eventing.deadletter import dead_letter_headers
from eventing.failpoints import crash_point
from eventing.settings import ConsumerSettings
from eventing.topics import DEAD_LETTERS
from eventing.tracing import start_span, traceparent_from_headers

log = logging.getLogger("eventing.consumer")

E = TypeVar("E", bound=EventData)


class PermanentHandlerError(Exception):
    """Raised by a handler when retrying cannot help: the event goes to the dead-letter topic."""


@dataclass(frozen=True)
class ReceivedEvent(Generic[E]):
    """An event as a handler sees it: the validated payload and its CloudEvent envelope."""

    data: E
    envelope: Envelope
    topic: str
    partition: int
    offset: int

    @property
    def id(self) -> str:
        return self.envelope.id


Handler = Callable[[AsyncSession, ReceivedEvent[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """``handler`` applies events of ``event`` type; ``name`` keys its inbox entries."""

    name: str
    event: type[EventData]
    handler: Handler


@dataclass(frozen=True)
class Tombstone:
    """A record with a key and no value on a compacted topic: "forget this key".

    ``id`` is the record's ``ce_id`` header when the producer set one (our relay does), else
    ``<topic>/<partition>/<offset>``; either way it keys the inbox, so a redelivery is skipped.
    """

    key: str
    id: str
    topic: str
    partition: int
    offset: int


TombstoneHandler = Callable[[AsyncSession, Tombstone], Awaitable[None]]


@dataclass(frozen=True)
class TombstoneSubscription:
    """``handler`` applies the tombstones of ``topic``; ``name`` keys its inbox entries."""

    name: str
    topic: str
    handler: TombstoneHandler


TOMBSTONE_TYPE = "tombstone"  # the inbox's event_type of a tombstone (as in the outbox)


def _backoff(attempt: int, base: float, cap: float) -> float:
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


@dataclass
class _State:
    processed: dict[TopicPartition, int] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)
    assigned: frozenset[TopicPartition] = frozenset()
    drained: bool = False


class EventConsumer:
    """Consumes ``topics`` in consumer group ``group_id`` and applies ``subscriptions``."""

    def __init__(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        subscriptions: Sequence[Subscription],
        sessions: async_sessionmaker[AsyncSession],
        bootstrap_servers: str,
        settings: ConsumerSettings | None = None,
        tombstones: Sequence[TombstoneSubscription] = (),
    ) -> None:
        self.group_id = group_id
        self._topics = list(topics)
        self._sessions = sessions
        self._bootstrap = bootstrap_servers
        self._settings = settings or ConsumerSettings()
        self._by_type: dict[str, list[Subscription]] = {}
        for subscription in subscriptions:
            self._by_type.setdefault(subscription.event.event_type, []).append(subscription)
        self._tombstones: dict[str, list[TombstoneSubscription]] = {}
        for tombstone in tombstones:
            self._tombstones.setdefault(tombstone.topic, []).append(tombstone)
        self._stopping = asyncio.Event()
        self._state = _State()
        self._processing = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._dead_letter_producer: AIOKafkaProducer | None = None
        self._running = False

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stopping.set()

    def ready(self) -> tuple[bool, str]:
        if not self._running or self._consumer is None:
            return False, "consumer not running"
        if not self._state.assigned:
            return False, "no partitions assigned yet"
        stalled_for = time.monotonic() - self._state.last_progress
        if stalled_for > self._settings.stall_timeout_seconds:
            return False, f"consumer stalled for {stalled_for:.0f}s"
        return True, f"assigned {len(self._state.assigned)} partitions"

    @property
    def drained(self) -> bool:
        """True once a poll with partitions assigned found nothing new: the backlog that was
        there at start-up has been applied. Work that must not act on stale state (timers that
        a late event would cancel) waits for it."""
        return self._state.drained

    async def run(self) -> None:
        """Consume until ``stop()``; restarts the Kafka consumer when it stalls or crashes."""
        restarts = 0
        while not self._stopping.is_set():
            task = asyncio.create_task(self._consume(), name=f"consumer-{self.group_id}")
            stalled = await self._watch(task)
            if self._stopping.is_set() and not stalled:
                break
            restarts += 1
            metrics.CONSUMER_RESTARTS.labels(self.group_id).inc()
            await self._sleep(min(10.0, 0.5 * restarts))

    async def _watch(self, task: asyncio.Task[None]) -> bool:
        """Wait for the consume task; cancel it if it stops making progress. True if stalled."""
        timeout = self._settings.stall_timeout_seconds
        while True:
            done, _ = await asyncio.wait({task}, timeout=min(5.0, timeout / 4))
            if done:
                error = task.exception()
                if error is not None:
                    log.error("consumer %s crashed: %r; restarting", self.group_id, error)
                return False
            if self._stopping.is_set():
                # Give the task its chance to commit and leave the group cleanly.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), timeout=15)
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                return False
            if time.monotonic() - self._state.last_progress > timeout:
                log.error(
                    "consumer %s made no progress for %.0fs; restarting", self.group_id, timeout
                )
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return True

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _progress(self) -> None:
        self._state.last_progress = time.monotonic()

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            client_id=f"{self.group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset=self._settings.auto_offset_reset,
            max_poll_records=self._settings.max_poll_records,
            isolation_level="read_committed",
        )
        dead_letters = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=f"{self.group_id}-deadletters",
            enable_idempotence=True,
            acks="all",
        )
        consumer.subscribe(self._topics, listener=_CommitOnRevoke(self, consumer))
        self._progress()
        await dead_letters.start()
        try:
            await consumer.start()
            self._consumer = consumer
            self._dead_letter_producer = dead_letters
            self._running = True
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                self._progress()
                self._state.assigned = frozenset(consumer.assignment())
                if not batches and self._state.assigned:
                    self._state.drained = True
                if batches:
                    async with self._processing:
                        await asyncio.gather(
                            *(
                                self._process_partition(tp, records)
                                for tp, records in batches.items()
                            )
                        )
                    await self._commit(consumer, set(batches))
                self._update_lag(consumer)
        finally:
            self._running = False
            self._consumer = None
            with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                await asyncio.wait_for(consumer.stop(), timeout=10)
            with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                await asyncio.wait_for(dead_letters.stop(), timeout=10)

    async def _commit(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        offsets = {
            tp: self._state.processed[tp]
            for tp in partitions
            if tp in self._state.processed and tp in consumer.assignment()
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as error:
            # A rebalance took the partitions; what was applied is in the inbox, so a
            # redelivery to the next owner is harmless.
            log.warning("offset commit failed for %s: %s", self.group_id, error)

    def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self._state.processed.get(tp)
            if highwater is not None and position is not None:
                metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(
                    max(0, highwater - position)
                )

    # ------------------------------------------------------------------ processing
    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]]
    ) -> None:
        for record in records:
            await self._process_record(record)
            self._state.processed[tp] = record.offset + 1
            self._progress()

    async def _process_record(self, record: ConsumerRecord[Any, Any]) -> None:
        headers = list(record.headers or ())
        # Child of the relay's per-hop span (``traceparent``), else of the origin (ce_traceparent).
        with start_span(
            f"process {record.topic}",
            parent=traceparent_from_headers(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.consumer.group.name": self.group_id,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        ) as span:
            await self._process_traced_record(record, headers, span)

    async def _process_traced_record(
        self, record: ConsumerRecord[Any, Any], headers: list[tuple[str, bytes]], span: Span
    ) -> None:
        if record.value is None and self._tombstones.get(record.topic):
            await self._process_tombstone(record, headers)
            return
        try:
            envelope = decode(record.key, record.value, headers)
        except UndecodableRecord as error:
            await self._dead_letter(record, "undecodable", f"undecodable: {error.reason}")
            return
        span.set_attributes(_event_attributes(envelope))
        model = model_for(envelope.type)
        if model is None:
            await self._dead_letter(record, "unknown_type", f"unknown event type {envelope.type!r}")
            return
        subscriptions = self._by_type.get(envelope.type)
        if not subscriptions:
            metrics.CONSUMER_EVENTS.labels(self.group_id, record.topic, "not_subscribed").inc()
            return
        try:
            data = model.model_validate(envelope.data)
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(str(part) for part in issue['loc']) or '<data>'}: {issue['msg']}"
                for issue in error.errors()
            )
            await self._dead_letter(
                record, "schema_invalid", f"schema-invalid {envelope.type}: {reason}"
            )
            return
        event: ReceivedEvent[Any] = ReceivedEvent(
            data=data,
            envelope=envelope,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        for subscription in subscriptions:
            await self._apply(subscription, event, record)
        metrics.CONSUMER_EVENTS.labels(self.group_id, record.topic, "applied").inc()

    async def _process_tombstone(
        self, record: ConsumerRecord[Any, Any], headers: list[tuple[str, bytes]]
    ) -> None:
        if not record.key:
            await self._dead_letter(record, "undecodable", "undecodable: tombstone without a key")
            return
        ce_id = dict(headers).get("ce_id")
        tombstone = Tombstone(
            key=bytes(record.key).decode(errors="replace"),
            id=ce_id.decode(errors="replace")
            if ce_id
            else f"{record.topic}/{record.partition}/{record.offset}",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        for subscription in self._tombstones[record.topic]:

            async def apply(
                session: AsyncSession, handler: TombstoneHandler = subscription.handler
            ) -> None:
                await handler(session, tombstone)

            with start_span(
                f"handle {subscription.name}",
                attributes={
                    "eventing.handler": subscription.name,
                    "messaging.consumer.group.name": self.group_id,
                },
            ):
                await self._apply_with_retries(
                    subscription.name, tombstone.id, TOMBSTONE_TYPE, apply, record
                )
        metrics.CONSUMER_EVENTS.labels(self.group_id, record.topic, "applied").inc()

    async def _apply(
        self,
        subscription: Subscription,
        event: ReceivedEvent[Any],
        record: ConsumerRecord[Any, Any],
    ) -> None:
        """Apply one handler (with its retries) inside its "handle <name>" span."""
        with start_span(
            f"handle {subscription.name}",
            attributes={
                "eventing.handler": subscription.name,
                "messaging.consumer.group.name": self.group_id,
                **_event_attributes(event.envelope),
            },
        ):

            async def apply(session: AsyncSession) -> None:
                await subscription.handler(session, event)

            await self._apply_with_retries(
                subscription.name, event.id, event.envelope.type, apply, record
            )

    async def _apply_with_retries(
        self,
        name: str,
        event_id: str,
        event_type: str,
        apply: Callable[[AsyncSession], Awaitable[None]],
        record: ConsumerRecord[Any, Any],
    ) -> None:
        attempt = 0
        unavailable = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                async with self._sessions() as session, session.begin():
                    claimed = await session.execute(
                        insert(inbox_table)
                        .values(
                            handler=name,
                            event_id=event_id,
                            event_type=event_type,
                        )
                        .on_conflict_do_nothing()
                        .returning(inbox_table.c.event_id)
                    )
                    if claimed.first() is None:
                        metrics.CONSUMER_DUPLICATES.labels(self.group_id, name).inc()
                        trace.get_current_span().set_attribute("eventing.duplicate", True)
                        return
                    await apply(session)
                # The window a crash test aims at: effect committed, offset not yet committed.
                crash_point("after_handler_commit")
                metrics.CONSUMER_HANDLER_SECONDS.labels(self.group_id, name).observe(
                    time.perf_counter() - started
                )
                return
            except PermanentHandlerError as error:
                metrics.CONSUMER_HANDLER_FAILURES.labels(self.group_id, name).inc()
                await self._dead_letter(
                    record, "rejected", f"rejected by handler: {error}", handler=name
                )
                return
            except Exception as error:  # noqa: BLE001 - a handler bug must not kill the consumer
                if is_database_unavailable(error):
                    unavailable += 1
                    attempt -= 1  # not the event's fault: it does not use up the retry budget
                    log.warning(
                        "database unavailable for %s (%s); waiting",
                        name,
                        error,
                        extra=_log_fields(record, name),
                    )
                    self._progress()
                    await asyncio.sleep(
                        _backoff(unavailable, 0.5, self._settings.retry_max_seconds)
                    )
                    continue
                metrics.CONSUMER_HANDLER_FAILURES.labels(self.group_id, name).inc()
                if attempt >= self._settings.max_attempts:
                    await self._dead_letter(
                        record,
                        "retries_exhausted",
                        f"handler failed {attempt} times; "
                        f"last error: {type(error).__name__}: {error}",
                        handler=name,
                    )
                    return
                metrics.CONSUMER_RETRIES.labels(self.group_id, name).inc()
                log.warning(
                    "handler %s failed on event %s (attempt %d): %r",
                    name,
                    event_id,
                    attempt,
                    error,
                    extra=_log_fields(record, name),
                )
                self._progress()
                await asyncio.sleep(
                    _backoff(
                        attempt, self._settings.retry_base_seconds, self._settings.retry_max_seconds
                    )
                )

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], kind: str, reason: str, *, handler: str = "-"
    ) -> None:
        """Publish the record to the dead-letter topic; keeps trying, since losing it is worse."""
        producer = self._dead_letter_producer
        assert producer is not None
        current = trace.get_current_span()
        current.set_attribute("eventing.dead_letter_reason", kind)
        current.set_status(Status(StatusCode.ERROR, reason[:500]))
        headers = dead_letter_headers(
            list(record.headers or ()),
            reason=reason,
            group=self.group_id,
            handler=handler,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                await producer.send_and_wait(
                    DEAD_LETTERS.name, value=record.value, key=record.key, headers=headers
                )
                break
            except KafkaError as error:
                log.warning("dead-letter publish failed (%s); retrying", error)
                self._progress()
                await asyncio.sleep(_backoff(attempt, 0.5, 5.0))
        metrics.CONSUMER_DEAD_LETTERS.labels(self.group_id, kind).inc()
        metrics.CONSUMER_EVENTS.labels(self.group_id, record.topic, "dead_lettered").inc()
        log.error(
            "dead-lettered %s[%d]@%d for %s/%s: %s",
            record.topic,
            record.partition,
            record.offset,
            self.group_id,
            handler,
            reason,
            extra=_log_fields(record, handler),
        )


def _log_fields(record: ConsumerRecord[Any, Any], handler: str) -> dict[str, str | None]:
    """What a JSON log line about an event carries besides its message (and trace id)."""
    headers = {name: value for name, value in record.headers or ()}
    event_id = headers.get("ce_id")
    return {
        "event_id": event_id.decode(errors="replace") if event_id else None,
        "order_id": record.key.decode(errors="replace") if record.key else None,
        "topic": record.topic,
        "handler": handler,
    }


def _event_attributes(envelope: Envelope) -> dict[str, str]:
    return {
        "cloudevents.event_id": envelope.id,
        "cloudevents.event_type": envelope.type,
        "cloudevents.event_source": envelope.source,
        "cloudevents.event_subject": envelope.subject or "",  # the order id on order topics
    }


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was applied before partitions move to another member."""

    def __init__(self, runtime: EventConsumer, consumer: AIOKafkaConsumer) -> None:
        self._runtime = runtime
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._runtime._processing:  # let the batch in flight finish first
            offsets = {
                tp: off for tp, off in self._runtime._state.processed.items() if tp in revoked
            }
            if offsets:
                with contextlib.suppress(KafkaError):
                    await self._consumer.commit(offsets)
            for tp in revoked:
                self._runtime._state.processed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._runtime._state.assigned = frozenset(assigned)
