"""The consumer runtime: at-least-once delivery in, exactly-once effects out.

For each record of its topics, in partition order:

1. Decode the CloudEvent; look up its type in the registry (``eventing.events``); validate the
   data against the type's model. A record that fails any of these is a poison message: it goes
   to the dead-letter topic with the reason and the partition moves on. Nothing a record holds
   can stop a partition: decoding refuses oversized and too deeply nested records before parsing
   them, any other exception while decoding, looking up or validating a record makes it a dead
   letter too, and records aiokafka's own reader cannot parse are read by
   ``eventing.record_reader``.
2. Run every handler subscribed to the type. Its effects and the row ``(handler, event id)``
   it inserts into the inbox commit together; a redelivered event finds its inbox row and is
   skipped, so its effects happen once. The events of a poll are applied ``batch_size`` at a
   time in one transaction (one commit for many events, the consumer's main cost under load),
   in one lane per partition number, the lanes side by side.
   When any handler of a batch fails, the batch rolls back and is applied again one event and
   handler at a time, each in its own transaction: one handler failing never holds back or
   repeats another's effect.
3. A failing handler is retried alone with exponential back-off and jitter; past the retry
   budget (or at once for an error that says it is not retriable, such as
   ``PermanentHandlerError``: see ``eventing.errors``) the record is dead-lettered for that
   handler. While the database itself is unreachable, the handler waits instead: that is no
   fault of the event and dead-lettering everything would be worse than pausing.
4. A tombstone (a record with a key and no value: erasure on a compacted topic) is not a
   CloudEvent. It reaches the ``TombstoneSubscription`` handlers of its topic, with its key,
   under the same inbox, retry and dead-letter rules; without such a subscription it is
   dead-lettered as undecodable.
5. Offsets are committed after the batch's transactions committed (at most once per
   ``offset_commit_interval_seconds`` while records keep coming, at once when a poll finds
   nothing), when partitions are revoked (after the in-flight batch finished) and on stop. A
   crash before the commit only causes a redelivery, which the inbox absorbs.
6. A dead letter is recorded in the ``dead_letters`` table (its own transaction) before it is
   published, and marked published once the broker acknowledged it: a redelivered poison record
   whose dead letter is published is not published again. One the dead-letter topic cannot take
   is published as a truncated copy; one that still cannot be published (refused by the broker,
   or failing past ``dead_letter_publish_timeout_seconds``) is kept in the table, counted and
   logged, and the partition moves on. Each source topic names its dead-letter topic
   (``TopicSpec.dead_letters``): the contacts topic's is restricted like the topic itself.

A watchdog restarts the Kafka consumer when it stops polling (aiokafka consumers have been seen
to stall after broker restarts) or when it crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from eventing import metrics
from eventing.backoff import backoff, pause
from eventing.cloudevents_kafka import Envelope, decode
from eventing.database import DEAD_LETTER_PENDING, inbox_table, is_database_unavailable
from eventing.deadletter import (
    DeadLetterPublisher,
    DeadLetterRecord,
    PublishOutcome,
    RecordedDeadLetter,
    attempt_seconds,
    dead_letter_on_topic,
    mark_dead_letter_kept,
    mark_dead_letter_published,
    record_dead_letter,
)
from eventing.errors import EventingError, UndecodableRecord, bounded_reason
from eventing.events import EventData, model_for
from eventing.failpoints import crash_point, error_point
from eventing.kafka_security import KafkaSecurity, kafka_security
from eventing.outage import Outage
from eventing.record_reader import new_consumer
from eventing.settings import ConsumerSettings
from eventing.topics import Topology
from eventing.tracing import open_span, start_span, traceparent_from_headers

__all__ = [
    "TOMBSTONE_TYPE",
    "EventConsumer",
    "Handler",
    "ReceivedEvent",
    "Subscription",
    "Tombstone",
    "TombstoneHandler",
    "TombstoneSubscription",
]

log = logging.getLogger("eventing.consumer")

E = TypeVar("E", bound=EventData)
T = TypeVar("T")


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


@dataclass(eq=False)
class _Step:
    """One handler's application of one event (or tombstone): an inbox row and its effects."""

    name: str
    event_id: str
    event_type: str
    apply: Callable[[AsyncSession], Awaitable[None]]
    attributes: dict[str, str]
    seconds: float = 0.0


@dataclass
class _Record:
    """A consumed record, its ``process`` span (open until its transaction is done), its steps."""

    record: ConsumerRecord[Any, Any]
    headers: list[tuple[str, bytes | None]]
    span: Span
    steps: list[_Step] = field(default_factory=list)


@dataclass(frozen=True)
class _Poison:
    """Why a record cannot be applied at all: it is dead-lettered before any handler runs."""

    kind: str
    reason: str


@dataclass(frozen=True)
class _Failure:
    step: _Step
    error: Exception


def _bound(
    handler: Callable[[AsyncSession, Any], Awaitable[None]], subject: Any
) -> Callable[[AsyncSession], Awaitable[None]]:
    async def apply(session: AsyncSession) -> None:
        await handler(session, subject)

    return apply


@dataclass
class _State:
    processed: dict[TopicPartition, int] = field(default_factory=dict)
    last_progress: float = field(default_factory=time.monotonic)
    assigned: frozenset[TopicPartition] = frozenset()
    drained: bool = False
    # Dead letters whose publish keeps failing (one per lane at most): since when, and why.
    blocked: dict[tuple[str, int, int, str], tuple[float, str, DeadLetterRecord]] = field(
        default_factory=dict
    )


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
        topology: Topology,
        security: KafkaSecurity | None = None,
        settings: ConsumerSettings | None = None,
        tombstones: Sequence[TombstoneSubscription] = (),
        dead_letter_topics: Mapping[str, str] | None = None,
    ) -> None:
        """``topology`` says where each topic's dead letters go; ``dead_letter_topics`` maps a
        source topic to its dead-letter topic where the topology does not say (topics outside
        it, e.g. in tests); ``security`` is the principal (None: the ``KAFKA_*`` environment's).
        """
        self._topology = topology
        self.group_id = group_id
        self._topics = list(topics)
        self._sessions = sessions
        self._bootstrap = bootstrap_servers
        self._security = kafka_security(security)
        self._settings = settings or ConsumerSettings()
        self._by_type: dict[str, list[Subscription]] = {}
        for subscription in subscriptions:
            self._by_type.setdefault(subscription.event.event_type, []).append(subscription)
        self._tombstones: dict[str, list[TombstoneSubscription]] = {}
        for tombstone in tombstones:
            self._tombstones.setdefault(tombstone.topic, []).append(tombstone)
        self._stopping = asyncio.Event()
        self._state = _State()
        # Each logged once per outage; a crash (restarted by run's watchdog) with its traceback.
        self._crashes = Outage(log, f"consumer {group_id}", level=logging.ERROR)
        self._database_outage = Outage(log, f"consumer {group_id}: the database")
        self._processing = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._dead_letter_topics = dict(dead_letter_topics or {})
        self._dead_letter_publisher: DeadLetterPublisher | None = None
        self._running = False

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stopping.set()

    def ready(self) -> tuple[bool, str]:
        if not self._running or self._consumer is None:
            return False, "consumer not running"
        if not self._state.assigned:
            return False, "no partitions assigned yet"
        if self._state.blocked:
            since, error, letter = min(self._state.blocked.values(), key=lambda item: item[0])
            return False, (
                f"blocked for {time.monotonic() - since:.0f}s publishing the dead letter of "
                f"{letter.where} to {letter.dead_letter_topic}: {error}"
            )
        stalled_for = time.monotonic() - self._state.last_progress
        if stalled_for > self._settings.stall_timeout_seconds:
            return False, f"consumer stalled for {stalled_for:.0f}s"
        return True, f"assigned {len(self._state.assigned)} partitions"

    @property
    def drained(self) -> bool:
        """True once every assigned partition was read to its end and a poll found nothing
        more: the backlog that was there at start-up has been applied. Work that must not act
        on stale state (timers that a late event would cancel) waits for it."""
        return self._state.drained

    async def run(self) -> None:
        """Consume until ``stop()``, the only thing that ends it: whatever the Kafka consumer
        dies of, or if it stalls, a new one starts after a pause (with jitter, growing with
        each restart in a row, from zero again once one ran for a while)."""
        restarts = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            task = asyncio.create_task(self._consume(), name=f"consumer-{self.group_id}")
            stalled = await self._watch(task)
            if self._stopping.is_set() and not stalled:
                break
            if time.monotonic() - started > self._settings.stall_timeout_seconds:
                restarts = 0
            restarts += 1
            metrics.CONSUMER_RESTARTS.labels(self.group_id).inc()
            await pause(backoff(restarts, 0.5, self._settings.restart_max_seconds), self._stopping)

    async def _watch(self, task: asyncio.Task[None]) -> bool:
        """Wait for the consume task; cancel it if it stops making progress. True if stalled."""
        timeout = self._settings.stall_timeout_seconds
        while True:
            done, _ = await asyncio.wait({task}, timeout=min(5.0, timeout / 4))
            if done:
                error = task.exception()
                if error is not None:
                    self._crashes.failed(error, traceback=True)
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

    def _progress(self) -> None:
        self._state.last_progress = time.monotonic()

    async def _consume(self) -> None:
        consumer = new_consumer(
            bootstrap_servers=self._bootstrap,
            **self._security.client_options(),
            group_id=self.group_id,
            client_id=f"{self.group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset=self._settings.auto_offset_reset,
            max_poll_records=self._settings.max_poll_records,
            isolation_level="read_committed",
        )
        timeout = self._settings.dead_letter_publish_timeout_seconds
        dead_letters = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            **self._security.client_options(),
            client_id=f"{self.group_id}-deadletters",
            acks="all",
            # Not idempotent: an idempotent producer retries a batch until it succeeds, so a
            # publish the broker cannot take would never end, and a batch the broker refused
            # (too large) leaves its sequence numbers out of step for the next one. A retry
            # after a lost acknowledgement may then write a dead letter twice; the dead_letters
            # table still keeps a redelivered record from being published again.
            enable_idempotence=False,
            request_timeout_ms=int(attempt_seconds(timeout) * 1000),
        )
        consumer.subscribe(self._topics, listener=_CommitOnRevoke(self, consumer))
        self._progress()
        await dead_letters.start()
        try:
            await consumer.start()
            self._consumer = consumer
            self._dead_letter_publisher = DeadLetterPublisher(
                dead_letters,
                timeout_seconds=timeout,
                on_blocked=self._blocked,
                topology=self._topology,
            )
            self._running = True
            uncommitted: set[TopicPartition] = set()
            next_commit = 0.0
            while not self._stopping.is_set():
                error_point("consumer.poll")
                batches = await consumer.getmany(timeout_ms=500)
                self._progress()
                self._state.assigned = frozenset(consumer.assignment())
                if not batches and self._state.assigned and not self._state.drained:
                    self._state.drained = await _caught_up(consumer)
                if batches:
                    async with self._processing:
                        await self._process(batches)
                    uncommitted.update(batches)
                # Offsets are committed once per interval while records flow, and as soon as a
                # poll comes back empty: a commit is a broker round trip, and at a few records
                # per poll it cost as much as applying them. What a crash leaves uncommitted is
                # redelivered and skipped by the inbox.
                if uncommitted and (not batches or time.monotonic() >= next_commit):
                    await self._commit(consumer, uncommitted)
                    uncommitted = set()
                    next_commit = time.monotonic() + self._settings.offset_commit_interval_seconds
                self._update_lag(consumer)
                self._crashes.recovered()
            if uncommitted:  # stopping: leave nothing applied to be redelivered
                with contextlib.suppress(KafkaError, asyncio.TimeoutError):
                    await asyncio.wait_for(self._commit(consumer, uncommitted), timeout=10)
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
        error_point("consumer.commit")
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
    async def _process(self, batches: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply a poll's records: one lane per partition number, the lanes side by side.

        Within a lane, records go in partition order, ``batch_size`` per transaction. A lane holds
        the partition of that number of every topic: topics keyed by the same aggregate id with
        equal partition counts put one aggregate's events in one lane, and two lanes'
        transactions never touch the same aggregate's rows (rows locked in opposite orders by two
        batches would deadlock; should it happen anyway, PostgreSQL aborts one batch and it is
        applied again one event at a time).
        """
        lanes: dict[int, list[ConsumerRecord[Any, Any]]] = {}
        for tp, records in batches.items():
            lanes.setdefault(tp.partition, []).extend(records)
        await asyncio.gather(*(self._process_lane(records) for records in lanes.values()))

    async def _process_lane(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        size = max(1, self._settings.batch_size)
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            await self._process_chunk(chunk)
            for record in chunk:
                self._state.processed[TopicPartition(record.topic, record.partition)] = (
                    record.offset + 1
                )
            self._progress()

    async def _process_chunk(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        """Decode ``records``, then apply every handler of every event in one transaction.

        Poison records are dead-lettered while decoding, before the transaction, so they are
        dead-lettered once whatever happens to it. If any handler fails, the transaction rolls
        back and the chunk is applied again one event and handler at a time, each in its own
        transaction with its own retries: then a failing handler holds back no other effect, and
        its first failure counts as its first attempt.
        """
        work: list[_Record] = []
        try:
            for record in records:
                work.append(self._open(record))
                with trace.use_span(work[-1].span, end_on_exit=False):
                    work[-1].steps = await self._steps(work[-1])
            pending = [item for item in work if item.steps]
            failure = await self._apply_together(pending) if pending else None
            if failure is not None:
                for item in pending:
                    with trace.use_span(item.span, end_on_exit=False):
                        for step in item.steps:
                            first = failure.error if failure.step is step else None
                            await self._apply_with_retries(step, item.record, first_failure=first)
            for item in pending:
                metrics.CONSUMER_EVENTS.labels(self.group_id, item.record.topic, "applied").inc()
        finally:
            for item in work:
                item.span.end()

    def _open(self, record: ConsumerRecord[Any, Any]) -> _Record:
        headers = list(record.headers or ())
        # Child of the relay's per-hop span (``traceparent``), else of the origin (ce_traceparent).
        span = open_span(
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
        )
        return _Record(record, headers, span)

    async def _steps(self, item: _Record) -> list[_Step]:
        """What applying ``item`` takes: one step per subscribed handler. Dead-letters poison."""
        try:
            steps = self._classify(item)
        except Exception as error:  # no record may stop its partition
            log.exception("could not classify a record", extra=_log_fields(item.record, "-"))
            steps = _Poison(
                "undecodable", f"could not be processed: {type(error).__name__}: {error}"
            )
        if isinstance(steps, _Poison):
            await self._dead_letter(item.record, steps.kind, steps.reason)
            return []
        return steps

    def _classify(self, item: _Record) -> list[_Step] | _Poison:
        """Decode, look up and validate ``item``: its steps, or why it is poison."""
        record = item.record
        if record.value is None and self._tombstones.get(record.topic):
            return self._tombstone_steps(record, item.headers)
        try:
            envelope = decode(record.key, record.value, item.headers, self._settings.decode_limits)
        except UndecodableRecord as error:
            return _Poison("undecodable", f"undecodable: {error.reason}")
        attributes = _event_attributes(envelope)
        item.span.set_attributes(attributes)
        model = model_for(envelope.type)
        if model is None:
            return _Poison("unknown_type", f"unknown event type {envelope.type[:200]!r}")
        subscriptions = self._by_type.get(envelope.type)
        if not subscriptions:
            metrics.CONSUMER_EVENTS.labels(self.group_id, record.topic, "not_subscribed").inc()
            return []
        try:
            data = model.model_validate(envelope.data)
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(str(part) for part in issue['loc']) or '<data>'}: {issue['msg']}"
                for issue in error.errors(include_input=False, include_url=False)
            )
            return _Poison("schema_invalid", f"schema-invalid {envelope.type}: {reason}")
        event: ReceivedEvent[Any] = ReceivedEvent(
            data=data,
            envelope=envelope,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        return [
            _Step(
                name=subscription.name,
                event_id=event.id,
                event_type=envelope.type,
                apply=_bound(subscription.handler, event),
                attributes=attributes,
            )
            for subscription in subscriptions
        ]

    def _tombstone_steps(
        self, record: ConsumerRecord[Any, Any], headers: list[tuple[str, bytes | None]]
    ) -> list[_Step] | _Poison:
        if not record.key:
            return _Poison("undecodable", "undecodable: tombstone without a key")
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
        return [
            _Step(
                name=subscription.name,
                event_id=tombstone.id,
                event_type=TOMBSTONE_TYPE,
                apply=_bound(subscription.handler, tombstone),
                attributes={},
            )
            for subscription in self._tombstones[record.topic]
        ]

    def _handle_span(self, step: _Step) -> contextlib.AbstractContextManager[Span]:
        return start_span(
            f"handle {step.name}",
            attributes={
                "eventing.handler": step.name,
                "messaging.consumer.group.name": self.group_id,
                **step.attributes,
            },
        )

    async def _claim_and_apply(self, session: AsyncSession, step: _Step) -> bool:
        """Insert the inbox row and apply the step; False (nothing done) if it was applied."""
        error_point("consumer.apply")
        claimed = await session.execute(
            insert(inbox_table)
            .values(handler=step.name, event_id=step.event_id, event_type=step.event_type)
            .on_conflict_do_nothing()
            .returning(inbox_table.c.event_id)
        )
        if claimed.first() is None:
            trace.get_current_span().set_attribute("eventing.duplicate", True)
            return False
        started = time.perf_counter()
        await step.apply(session)
        step.seconds = time.perf_counter() - started
        return True

    async def _apply_claimed(
        self, session: AsyncSession, step: _Step, claimed: set[tuple[str, str]]
    ) -> bool:
        """Apply ``step`` if its inbox row is among those ``claimed`` for the batch (each claim
        is used once: a record delivered twice in one poll is applied once)."""
        error_point("consumer.apply")
        key = (step.name, step.event_id)
        if key not in claimed:
            trace.get_current_span().set_attribute("eventing.duplicate", True)
            return False
        claimed.discard(key)
        started = time.perf_counter()
        await step.apply(session)
        step.seconds = time.perf_counter() - started
        return True

    def _applied(self, step: _Step, applied: bool) -> None:
        """Count a step whose transaction committed."""
        self._database_outage.recovered()
        if applied:
            metrics.CONSUMER_HANDLER_SECONDS.labels(self.group_id, step.name).observe(step.seconds)
        else:
            metrics.CONSUMER_DUPLICATES.labels(self.group_id, step.name).inc()
        # The window a crash test aims at: effect committed, offset not yet committed.
        crash_point("after_handler_commit")

    async def _apply_together(self, work: list[_Record]) -> _Failure | None:
        """Every step of ``work`` in one transaction; the step that failed, if one did.

        The inbox rows of all the steps are claimed first, in one statement (one round trip for
        the batch instead of one per step); then each claimed step is applied, in order.
        """
        outcomes: list[tuple[_Step, bool]] = []
        current: _Step | None = None
        try:
            async with self._sessions() as session, session.begin():
                claimed = await _claim_all(session, [step for item in work for step in item.steps])
                for item in work:
                    with trace.use_span(item.span, end_on_exit=False):
                        for current in item.steps:
                            with self._handle_span(current):
                                outcomes.append(
                                    (current, await self._apply_claimed(session, current, claimed))
                                )
        except Exception as error:  # noqa: BLE001 - applied again one at a time, which decides
            if current is None:
                current = work[0].steps[0]
            log.info(
                "a batch of %d events for %s rolled back (%s: %r); applying them one at a time",
                len(work),
                self.group_id,
                current.name,
                error,
            )
            return _Failure(current, error)
        for step, applied in outcomes:
            self._applied(step, applied)
        return None

    async def _apply_with_retries(
        self,
        step: _Step,
        record: ConsumerRecord[Any, Any],
        *,
        first_failure: Exception | None = None,
    ) -> None:
        """Apply ``step`` in its own transaction, retrying; ``first_failure`` is attempt 1."""
        attempt = 0
        unavailable = 0
        while True:
            attempt += 1
            error = first_failure
            first_failure = None
            with self._handle_span(step):
                if error is None:
                    try:
                        async with self._sessions() as session, session.begin():
                            applied = await self._claim_and_apply(session, step)
                        self._applied(step, applied)
                        return
                    except Exception as raised:  # noqa: BLE001 - a handler bug must not kill us
                        error = raised
                if isinstance(error, EventingError) and not error.retriable:
                    metrics.CONSUMER_HANDLER_FAILURES.labels(self.group_id, step.name).inc()
                    await self._dead_letter(
                        record, "rejected", f"rejected by handler: {error}", handler=step.name
                    )
                    return
                if is_database_unavailable(error):
                    unavailable += 1
                    attempt -= 1  # not the event's fault: it does not use up the retry budget
                    self._database_outage.failed(error)
                    self._progress()
                    delay = backoff(unavailable, 0.5, self._settings.retry_max_seconds)
                else:
                    metrics.CONSUMER_HANDLER_FAILURES.labels(self.group_id, step.name).inc()
                    if attempt >= self._settings.max_attempts:
                        await self._dead_letter(
                            record,
                            "retries_exhausted",
                            f"handler failed {attempt} times; "
                            f"last error: {type(error).__name__}: {error}",
                            handler=step.name,
                        )
                        return
                    metrics.CONSUMER_RETRIES.labels(self.group_id, step.name).inc()
                    log.warning(
                        "handler %s failed on event %s (attempt %d): %r",
                        step.name,
                        step.event_id,
                        attempt,
                        error,
                        extra=_log_fields(record, step.name),
                    )
                    self._progress()
                    delay = backoff(
                        attempt, self._settings.retry_base_seconds, self._settings.retry_max_seconds
                    )
            await asyncio.sleep(delay)

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], kind: str, reason: str, *, handler: str = "-"
    ) -> None:
        """Dead-letter ``record`` for ``handler``, once: record it, publish it, mark it.

        Never raises for the record's sake (only CancelledError gets out): whatever happens, the
        partition moves on, and a dead letter that cannot be published is kept in the table.
        """
        reason = bounded_reason(reason)
        current = trace.get_current_span()
        current.set_attribute("eventing.dead_letter_reason", kind)
        current.set_status(Status(StatusCode.ERROR, reason))
        letter = DeadLetterRecord(
            group=self.group_id,
            handler=handler,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            dead_letter_topic=self._dead_letter_topics.get(record.topic)
            or self._topology.dead_letters_for(record.topic),
            kind=kind,
            reason=reason,
            key=record.key,
            value=record.value,
            headers=list(record.headers or ()),
        )
        try:
            await self._dead_letter_once(letter)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not stop the partition either
            log.exception(
                "could not dead-letter %s for %s/%s (%s); moving on",
                letter.where,
                self.group_id,
                handler,
                reason,
                extra=_log_fields(record, handler),
            )

    async def _dead_letter_once(self, letter: DeadLetterRecord) -> None:
        recorded = await self._in_own_transaction(
            "recording a dead letter", lambda session: record_dead_letter(session, letter)
        )
        if recorded is not None and recorded.status != DEAD_LETTER_PENDING:
            # Redelivered (a crash or a rebalance before the offset commit): already done.
            metrics.CONSUMER_DUPLICATES.labels(self.group_id, letter.handler).inc()
            log.info(
                "dead letter of %s for %s/%s already %s; not sent again",
                letter.where,
                self.group_id,
                letter.handler,
                recorded.status,
            )
            return
        published = None
        if recorded is not None and not recorded.first:
            published = await dead_letter_on_topic(
                self._bootstrap, letter, recorded.recorded_at, security=self._security
            )
        if published is not None:
            # Pending from an earlier delivery that died after the broker took it.
            truncated = published.truncated
            await self._in_own_transaction(
                "marking a dead letter published",
                lambda session: mark_dead_letter_published(session, letter, truncated=truncated),
            )
            metrics.CONSUMER_DUPLICATES.labels(self.group_id, letter.handler).inc()
            log.info(
                "dead letter of %s for %s/%s found on %s; not sent again",
                letter.where,
                self.group_id,
                letter.handler,
                letter.dead_letter_topic,
            )
            return
        if recorded is None:
            log.error(
                "the dead letter of %s for %s/%s could not be recorded; publishing it anyway",
                letter.where,
                self.group_id,
                letter.handler,
            )
        # The window a crash test aims at: recorded, not yet published.
        crash_point("after_dead_letter_recorded")
        outcome = await self._publish(letter, recorded)
        # The window a crash test aims at: the broker has the dead letter, the table says pending.
        crash_point("after_dead_letter_published")
        if outcome.published:
            await self._in_own_transaction(
                "marking a dead letter published",
                lambda session: mark_dead_letter_published(
                    session, letter, truncated=outcome.truncated
                ),
            )
            metrics.CONSUMER_DEAD_LETTERS.labels(self.group_id, letter.kind).inc()
            if outcome.truncated:
                metrics.CONSUMER_DEAD_LETTERS_TRUNCATED.labels(self.group_id).inc()
            metrics.CONSUMER_EVENTS.labels(self.group_id, letter.topic, "dead_lettered").inc()
            log.error(
                "dead-lettered %s for %s/%s to %s%s: %s",
                letter.where,
                self.group_id,
                letter.handler,
                letter.dead_letter_topic,
                " (a truncated copy)" if outcome.truncated else "",
                letter.reason,
                extra=_log_fields(letter, letter.handler),
            )
            return
        await self._in_own_transaction(
            "keeping a dead letter",
            lambda session: mark_dead_letter_kept(session, letter, outcome.error),
        )
        metrics.CONSUMER_DEAD_LETTERS_KEPT.labels(self.group_id, outcome.cause).inc()
        metrics.CONSUMER_EVENTS.labels(self.group_id, letter.topic, "dead_letter_kept").inc()
        log.error(
            "could not publish the dead letter of %s for %s/%s to %s (%s: %s); kept it in the "
            "dead_letters table and moved on: %s",
            letter.where,
            self.group_id,
            letter.handler,
            letter.dead_letter_topic,
            outcome.cause,
            outcome.error,
            letter.reason,
            extra=_log_fields(letter, letter.handler),
        )

    async def _publish(
        self, letter: DeadLetterRecord, recorded: RecordedDeadLetter | None
    ) -> PublishOutcome:
        publisher = self._dead_letter_publisher
        assert publisher is not None
        recorded_at = recorded.recorded_at if recorded is not None else datetime.now(UTC)
        if recorded is not None and not recorded.first:
            # Pending from an earlier delivery: publish it as it was recorded then.
            letter = dataclasses.replace(letter, reason=recorded.reason)
        return await publisher.publish(letter, recorded_at)

    def _blocked(self, letter: DeadLetterRecord, error: str | None) -> None:
        """Heard from the publisher: ``letter`` keeps failing (``error``), or is through."""
        identity = (letter.topic, letter.partition, letter.offset, letter.handler)
        if error is None:
            self._state.blocked.pop(identity, None)
            return
        since = self._state.blocked.get(identity, (time.monotonic(), "", letter))[0]
        self._state.blocked[identity] = (since, error, letter)
        log.warning(
            "publishing the dead letter of %s to %s failed (%s); retrying",
            letter.where,
            letter.dead_letter_topic,
            error,
        )
        # Waiting is all that helps (the watchdog restarting the consumer would not); readiness
        # reports the block instead.
        self._progress()

    async def _in_own_transaction(
        self, what: str, work: Callable[[AsyncSession], Awaitable[T]]
    ) -> T | None:
        """``work`` in a transaction of its own; waits while the database is unavailable.

        Any other failure is logged and gives None: the dead letter goes on without its row.
        """
        unavailable = 0
        while True:
            try:
                async with self._sessions() as session, session.begin():
                    done = await work(session)
                self._database_outage.recovered()
                return done
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - unavailable: wait; anything else: go on
                if not is_database_unavailable(error):
                    log.error("%s failed: %r", what, error)
                    return None
                unavailable += 1
                self._database_outage.failed(error)
                self._progress()
                await asyncio.sleep(backoff(unavailable, 0.5, self._settings.retry_max_seconds))


_CLAIM_ALL = text(
    "INSERT INTO inbox (handler, event_id, event_type)"
    " SELECT * FROM unnest(CAST(:handlers AS text[]), CAST(:event_ids AS text[]),"
    " CAST(:event_types AS text[]))"
    " ON CONFLICT DO NOTHING RETURNING handler, event_id"
)


async def _claim_all(session: AsyncSession, steps: list[_Step]) -> set[tuple[str, str]]:
    """Insert the inbox rows of ``steps``: the (handler, event id) pairs not applied before."""
    claimed = await session.execute(
        _CLAIM_ALL,
        {
            "handlers": [step.name for step in steps],
            "event_ids": [step.event_id for step in steps],
            "event_types": [step.event_type for step in steps],
        },
    )
    return {(handler, event_id) for handler, event_id in claimed}


def _log_fields(
    record: ConsumerRecord[Any, Any] | DeadLetterRecord, handler: str
) -> dict[str, str | None]:
    """What a JSON log line about an event carries besides its message (and trace id)."""
    headers = {name: value for name, value in record.headers or ()}
    event_id = headers.get("ce_id")
    return {
        "event_id": event_id.decode(errors="replace") if event_id else None,
        "record_key": record.key.decode(errors="replace") if record.key else None,
        "topic": record.topic,
        "handler": handler,
    }


def _event_attributes(envelope: Envelope) -> dict[str, str]:
    return {
        "cloudevents.event_id": envelope.id,
        "cloudevents.event_type": envelope.type,
        "cloudevents.event_source": envelope.source,
        "cloudevents.event_subject": envelope.subject or "",  # the aggregate's id
    }


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    """Every assigned partition has been read to its end (the last stable offset).

    An empty poll alone does not say so: right after an assignment (a start, a restart, a
    rebalance) a poll can time out before the first fetch has answered, with the backlog still
    on the broker.
    """
    assigned = list(consumer.assignment())
    try:
        ends = await consumer.end_offsets(assigned)
        positions = [await consumer.position(tp) for tp in assigned]
    except KafkaError:  # a rebalance took a partition, or the broker did not answer: not yet
        return False
    return all(position >= ends[tp] for tp, position in zip(assigned, positions, strict=True))


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
