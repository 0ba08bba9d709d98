"""The outbox relay: publishes committed outbox rows to Kafka, at least once, in order per key.

Design, and why:

* **Rows are deleted only after Kafka acknowledged them** (idempotent producer, ``acks=all``).
  A relay killed at any point leaves unacknowledged rows in place; the next owner publishes
  them again. Duplicates on the wire are possible and harmless (consumers have an inbox);
  losses are not.
* **No "id > last id" cursor.** Each poll reads the rows still present, in id order. Sequence
  values are handed out before commit, so a cursor would skip a row that commits late.
* **Per-key order** comes from the enqueueing side (a per-key advisory lock held to commit, see
  ``eventing.outbox``) plus publishing in id order with one in-flight batch per partition, and
  holding back a key's later events while an earlier one waits for a retry or is parked.
* **Several relays**: the outbox is split into ``SHARD_COUNT`` shards of the partition key. Each
  relay owns a fair share of the shards through session-level advisory locks, so each key has
  one publisher at a time; a relay that dies loses its session and its locks, and the others
  take its shards within one rebalance interval. Fair share = shards / live relays, where live
  relays are counted from ``pg_stat_activity`` by application name: no extra table to maintain.
  Even during a hand-over (old owner still publishing) order of first appearance holds, because
  each relay publishes a key's remaining rows in id order and rows vanish only after their ack.
* **Wake-ups**: LISTEN/NOTIFY is only a hint; the relay polls anyway. A busy relay holds its
  shards' busy locks so enqueuers skip NOTIFY (it serialises commits); an idle one releases
  them, polls once more, and sleeps until notified or ``idle_poll_seconds`` pass. Taking or
  releasing all of them, and that last poll (the first ready id, no columns), are one
  statement each: at a steady trickle the relay goes idle after nearly every batch.
* **Plans**: the fetch must stay an index walk in id order whatever the outbox's statistics
  say (analyzed while empty, as after a drain, or never analyzed, it looks tiny, and a planner
  left alone reads and sorts the whole backlog per batch). The worker sessions disable
  sequential scans, sorts and parallel workers and use generic plans (see
  ``WORKER_SESSION_SETTINGS``); they have nothing to reset between statements, so the pool
  sends no reset query.
* **Tombstones** (``Outbox.enqueue_tombstone``, ``event_type`` ``TOMBSTONE``) are rows like any
  other, in the same shard and id order, but go out as the key with no value and only a
  ``ce_id`` header: they are not CloudEvents.
* **Failures**: Kafka unreachable → the batch stays, the relay backs off and retries, nothing
  is counted against the rows. A row that fails while others get through (too large, unknown
  topic, unencodable) gets attempts and back-off, and is parked with its error after
  ``max_attempts`` (at once when the failure is permanent); it never blocks other keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTopicError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownProducerId,
)
from opentelemetry.trace import Span, SpanKind

from eventing import metrics
from eventing.backoff import backoff, pause
from eventing.cloudevents_kafka import AGGREGATE_VERSION, Envelope, encode
from eventing.errors import EventingError, UnencodableEvent
from eventing.failpoints import crash_point, error_point
from eventing.kafka_security import KafkaSecurity, kafka_security
from eventing.outage import Outage
from eventing.outbox import (
    LOCK_APPLICATION_PREFIX,
    NOTIFY_CHANNEL,
    SHARD_BUSY_LOCK,
    SHARD_COUNT,
    SHARD_OWNER_LOCK,
    TOMBSTONE,
)
from eventing.settings import RelaySettings
from eventing.tracing import (
    context_from_traceparent,
    end_span,
    exporting,
    format_traceparent,
    tracer,
    with_traceparent_header,
)

__all__ = [
    "OutboxRelay",
    "ProducerFactory",
    "kafka_producer_factory",
    "run_relay",
]

log = logging.getLogger("eventing.relay")


# The rows a relay may publish now: in its shards, neither parked nor waiting for a retry, and
# not behind an earlier row of their key that is (held back, to keep the key's order). The
# held-back check probes the partial index of failed rows, which is empty while nothing fails.
_READY_ROWS = """
FROM outbox AS o
WHERE o.shard = ANY($1::int[])
  AND o.parked_at IS NULL
  AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
  AND NOT EXISTS (
      SELECT 1 FROM outbox AS earlier
      WHERE earlier.attempts > 0 AND earlier.partition_key = o.partition_key AND earlier.id < o.id
        AND (earlier.parked_at IS NOT NULL OR earlier.next_attempt_at > now()))
"""
# $3: the ids of the batch in flight, which a prefetch must not read again, from $4 to $5. A
# generic plan compares a row with the array element by element, so only rows in that range are
# compared: the batch's own rows, and rows that committed late between them.
_FETCH = (
    """
SELECT id, event_id, topic, partition_key, event_type, source, subject, payload::text AS payload,
       traceparent, created_at, attempts, aggregate_version
"""
    + _READY_ROWS
    + """
  AND (o.id < $4 OR o.id > $5 OR o.id <> ALL($3::bigint[]))
ORDER BY o.id
LIMIT $2
"""
)
# The first ready row's id, if any: whether a fetch would return anything, without reading
# the rows' columns. Ordered, so that it walks the primary key as the fetch does (unordered, the
# only plan left is a sequential scan, through every dead row a drain leaves before vacuum).
_HAS_WORK = "SELECT o.id " + _READY_ROWS + " ORDER BY o.id LIMIT 1"
# The relay's worker sessions (fetch, delete, failures) plan with these settings. The fetch has
# one good plan in every state of the table: walk the primary key in id order and stop after
# ``LIMIT`` rows. Left to its statistics the planner drops it exactly when it matters: an outbox
# analyzed while empty (what autovacuum leaves after a drain) or never analyzed looks like a
# table of a few rows, and it reads and sorts the whole backlog instead (measured: 100 ms at an
# 8,000-row backlog, seconds under load, where the walk takes 1-3 ms), and a custom plan for a
# backlog estimated large starts parallel workers for a 500-row read (60 ms). With sequential
# scans and sorts disabled the walk is the only plan left; every statement of these sessions
# looks rows up by id, so none needs either. A generic plan then costs no planning per fetch.
WORKER_SESSION_SETTINGS = {
    "enable_seqscan": "off",
    "enable_sort": "off",
    "max_parallel_workers_per_gather": "0",
    "plan_cache_mode": "force_generic_plan",
}
_DELETE_PUBLISHED = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"
_RECORD_FAILURE = """
UPDATE outbox
SET attempts = attempts + 1,
    last_error = $2,
    next_attempt_at = now() + make_interval(secs => $3),
    parked_at = CASE WHEN $4 OR attempts + 1 >= $5 THEN now() END
WHERE id = $1
"""
# Shard locks for a set of shards in one round trip each (the idle/wake cycle takes and releases
# every busy lock). The function scan feeds the filter one shard at a time, so LIMIT stops taking
# locks once it has enough.
_TRY_LOCKS = """
SELECT coalesce(array_agg(s), '{}') FROM (
    SELECT s FROM unnest($2::int[]) AS s WHERE pg_try_advisory_lock($1, s) LIMIT $3) AS taken
"""
_UNLOCK = "SELECT count(*) FILTER (WHERE pg_advisory_unlock($1, s)) FROM unnest($2::int[]) AS s"
_LIVE_RELAYS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE $1
"""
_BACKLOG = """
SELECT count(*) FILTER (WHERE parked_at IS NULL) AS backlog,
       count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,
       EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL)) AS oldest_age
FROM outbox
"""


# The row itself can never be published: park it at once.
_ROW_FAULTS: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
    TopicAuthorizationFailedError,
)
# The producer's idempotence state is broken (seen after a broker restart: the broker lost the
# producer's sequence): no row is at fault; a new producer (new producer id) fixes it.
_PRODUCER_FAULTS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    ProducerFenced,
)


@dataclass(frozen=True)
class _Failure:
    row_id: int
    error: str
    permanent: bool


@dataclass
class _Batch:
    """One poll's rows on their way through the producer, and what became of each."""

    rows: list[asyncpg.Record]
    in_flight: list[tuple[asyncpg.Record, asyncio.Future[Any]]] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    held_back_keys: set[str] = field(default_factory=set)
    # A PRODUCER span per traced row, from send to ack; none at all while nothing exports.
    spans: dict[int, Span] = field(default_factory=dict)
    published: list[int] = field(default_factory=list)
    published_per_topic: Counter[str] = field(default_factory=Counter)
    producer_broken: bool = False

    def failed(
        self, row: asyncpg.Record, error: str, raised: BaseException, *, permanent: bool
    ) -> None:
        """``row`` could not be sent: it fails, and its key's later rows wait for the next poll."""
        self.failures.append(_Failure(row["id"], error, permanent))
        self.held_back_keys.add(row["partition_key"])
        _end_publish_span(self.spans, row["id"], raised)

    @property
    def kafka_unreachable(self) -> bool:
        """Nothing got through and nothing is the rows' fault."""
        return (
            bool(self.failures)
            and not self.published
            and not any(failure.permanent for failure in self.failures)
        )


ProducerFactory = Callable[[], AIOKafkaProducer]


def kafka_producer_factory(
    bootstrap_servers: str,
    *,
    linger_ms: int,
    client_id: str,
    security: KafkaSecurity | None = None,
) -> ProducerFactory:
    options = kafka_security(security).client_options()

    def build() -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            **options,
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=15_000,
            retry_backoff_ms=200,
        )

    return build


class OutboxRelay:
    """Publishes one database's outbox to Kafka until ``stop()`` is called."""

    def __init__(
        self,
        dsn: str,
        producer_factory: ProducerFactory,
        settings: RelaySettings | None = None,
        *,
        instance_id: str | None = None,
        rebalance_interval: float = 2.0,
    ) -> None:
        self._dsn = dsn
        self._producer_factory = producer_factory
        self._settings = settings or RelaySettings()
        self.instance_id = instance_id or f"{socket.gethostname()}-{os.getpid()}"
        self._rebalance_interval = rebalance_interval
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._owned: set[int] = set()
        self._busy_locks: set[int] = set()
        self._lock_conn: asyncpg.Connection | None = None
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._broker_ok = False
        self._idle_polls = 0
        # The next batch, read while the previous one waited for its acks (see _publish_once).
        self._prefetched: list[asyncpg.Record] | None = None
        self._prefetching: asyncio.Task[list[asyncpg.Record]] | None = None
        self.published = 0
        self._outage = Outage(log, "outbox relay")

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def ready(self) -> tuple[bool, str]:
        if self._lock_conn is None or self._lock_conn.is_closed():
            return False, "no database session"
        if not self._broker_ok:
            return False, "Kafka not reachable"
        return True, f"ready; owns shards {sorted(self._owned)}"

    async def run(self) -> None:
        """Publish until ``stop()``, which is the only thing that ends it.

        Any error that escapes the loop (a database or broker outage, and just as much a driver
        whose own state went wrong, such as asyncpg's "cannot switch to state 15" when
        PostgreSQL went away mid-release) drops the database session and the producer, backs off
        with jitter and begins again. Deciding by a list of exception types which failures to
        survive once ended both relays for good. What is wrong with one row is that row's
        (``_publish_once`` parks it) and never gets here.
        """
        try:
            while not self._stopping.is_set():
                try:
                    await self._connect_database()
                    await self._loop()
                except Exception as error:  # noqa: BLE001 - see above: nothing but stop() ends it
                    metrics.RELAY_RECONNECTS.labels(type(error).__name__).inc()
                    failures = self._outage.failed(error)
                    await self._close_database()
                    await self._restart_producer()
                    await pause(
                        backoff(failures, cap=self._settings.reconnect_max_seconds),
                        self._stopping,
                    )
        finally:
            await self._restart_producer()
            await self._close_database()

    async def _loop(self) -> None:
        next_rebalance = 0.0
        next_gauges = 0.0
        failures_in_a_row = 0
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_rebalance:
                await self._rebalance()
                next_rebalance = now + self._rebalance_interval
            if now >= next_gauges:
                await self._update_gauges()
                next_gauges = now + 5.0
            if self._producer is None and not await self._start_producer():
                failures_in_a_row += 1
                await pause(backoff(failures_in_a_row), self._stopping)
                continue
            if not self._owned:
                await pause(self._rebalance_interval, self._stopping)
                continue
            published_any = await self._publish_once()
            if published_any is None:  # Kafka unreachable
                failures_in_a_row += 1
                await pause(backoff(failures_in_a_row), self._stopping)
                if failures_in_a_row % 5 == 0:
                    await self._restart_producer()
                continue
            failures_in_a_row = 0
            self._outage.recovered()
            if published_any:
                self._idle_polls = 0
            else:
                await self._idle()

    async def _connect_database(self) -> None:
        error_point("relay.connect")
        self._lock_conn = await asyncpg.connect(
            self._dsn,
            server_settings={"application_name": f"{LOCK_APPLICATION_PREFIX}{self.instance_id}"},
        )
        await self._lock_conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=2,
            # The workers take no locks, LISTEN to nothing and change no settings: the default
            # reset (unlock all, close cursors, unlisten, reset settings) would be a round trip
            # per statement for nothing. An open transaction is still rolled back on release.
            reset=_keep_session,
            server_settings={
                "application_name": f"outbox-relay-worker:{self.instance_id}",
                **WORKER_SESSION_SETTINGS,
            },
        )

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _start_producer(self) -> bool:
        producer = self._producer_factory()
        try:
            await producer.start()
        except KafkaError as error:
            log.warning("Kafka not reachable (%s); retrying", error)
            self._broker_ok = False
            with contextlib.suppress(KafkaError):
                await producer.stop()
            return False
        self._producer = producer
        self._broker_ok = True
        return True

    async def _restart_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # A producer being dropped may fail to stop in any way: it is dropped regardless.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=10)

    async def _close_database(self) -> None:
        pool, self._pool = self._pool, None
        conn, self._lock_conn = self._lock_conn, None
        self._owned.clear()
        self._busy_locks.clear()
        self._prefetched = None
        prefetching, self._prefetching = self._prefetching, None
        if prefetching is not None:  # a batch that failed half-way left its read of the next
            prefetching.cancel()
            await asyncio.wait({prefetching})
            if not prefetching.cancelled():
                prefetching.exception()  # its failure is this one's: seen, not to be logged
        metrics.RELAY_SHARDS_OWNED.set(0)
        if pool is not None:
            pool.terminate()  # the loop has ended: no query is in flight
        if conn is not None and not conn.is_closed():
            # Closing the session releases every advisory lock it holds.
            with contextlib.suppress(Exception):  # a session being dropped is dropped anyway
                await asyncio.wait_for(conn.close(), timeout=5)

    # ------------------------------------------------------------------ shards
    async def _rebalance(self) -> None:
        conn = self._lock_conn
        assert conn is not None
        error_point("relay.rebalance")
        live = await conn.fetchval(_LIVE_RELAYS, f"{LOCK_APPLICATION_PREFIX}%")
        fair_share = math.ceil(SHARD_COUNT / max(1, live))
        if len(self._owned) > fair_share:
            self._prefetched = None  # it may hold rows of the shards going away
            surplus = sorted(self._owned)[fair_share:]
            await self._release_busy(surplus)
            await conn.fetchval(_UNLOCK, SHARD_OWNER_LOCK, surplus)
            self._owned.difference_update(surplus)
            log.info("relay %s released shards %s", self.instance_id, surplus)
        if len(self._owned) < fair_share:
            candidates = [shard for shard in range(SHARD_COUNT) if shard not in self._owned]
            random.shuffle(candidates)
            taken = await conn.fetchval(
                _TRY_LOCKS, SHARD_OWNER_LOCK, candidates, fair_share - len(self._owned)
            )
            if taken:
                self._owned.update(taken)
                await self._take_busy(taken)
                log.info("relay %s took shards %s", self.instance_id, sorted(taken))
        metrics.RELAY_SHARDS_OWNED.set(len(self._owned))

    async def _take_busy(self, shards: list[int]) -> None:
        assert self._lock_conn is not None
        wanted = [shard for shard in shards if shard not in self._busy_locks]
        if wanted:
            self._busy_locks.update(
                await self._lock_conn.fetchval(_TRY_LOCKS, SHARD_BUSY_LOCK, wanted, len(wanted))
            )

    async def _release_busy(self, shards: list[int]) -> None:
        assert self._lock_conn is not None
        held = [shard for shard in shards if shard in self._busy_locks]
        if held:
            await self._lock_conn.fetchval(_UNLOCK, SHARD_BUSY_LOCK, held)
            self._busy_locks.difference_update(held)

    async def _idle(self) -> None:
        """Nothing to publish: let enqueuers wake us, check once more, then wait."""
        await self._release_busy(sorted(self._busy_locks))
        self._wake.clear()
        # A row committed between the empty poll and the release sent no wake-up; look again.
        error_point("relay.idle")
        if await self._has_work():
            await self._mark_busy()
            return
        # Polling is only the fallback for a lost wake-up: back off while nothing happens.
        self._idle_polls += 1
        timeout = min(self._settings.idle_poll_seconds, 0.05 * 2 ** min(self._idle_polls, 10))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        if self._wake.is_set():
            self._idle_polls = 0
        await self._mark_busy()

    async def _mark_busy(self) -> None:
        await self._take_busy(sorted(self._owned))

    async def _has_work(self) -> bool:
        assert self._pool is not None
        return await self._pool.fetchval(_HAS_WORK, sorted(self._owned)) is not None

    async def _update_gauges(self) -> None:
        # On the lock session, planned as usual: counting the whole outbox is a sequential scan.
        assert self._lock_conn is not None
        row = await self._lock_conn.fetchrow(_BACKLOG)
        if row is not None:
            metrics.OUTBOX_BACKLOG.set(row["backlog"])
            metrics.OUTBOX_PARKED.set(row["parked"])
            metrics.OUTBOX_OLDEST_AGE.set(float(row["oldest_age"] or 0))

    # ------------------------------------------------------------------ publishing
    async def _publish_once(self) -> bool | None:
        """Publish one batch. True: published something; False: nothing to do; None: outage."""
        rows = await self._next_rows()
        if not rows:
            return False
        metrics.OUTBOX_BATCH_SIZE.observe(len(rows))
        batch = _Batch(rows)
        await self._send_rows(batch)
        prefetch = self._prefetch_after(batch)
        await self._collect_acks(batch)
        # The window a crash test aims at: Kafka has the batch, the outbox still has it too.
        crash_point("relay_after_ack")
        await self._delete_published(batch)
        if prefetch is not None:
            next_rows = await prefetch
            self._prefetching = None
            if not batch.failures and not batch.producer_broken:
                self._prefetched = next_rows
        if batch.producer_broken:
            await self._replace_broken_producer()
            return True
        if batch.kafka_unreachable:
            self._report_outage(batch.failures)
            return None
        await self._record_failures(batch.failures)
        return True

    async def _next_rows(self) -> list[asyncpg.Record]:
        """The batch read ahead while the previous one waited for its acks, else a fresh read."""
        rows, self._prefetched = self._prefetched, None
        if rows is None:
            error_point("relay.fetch")
            rows = await self._fetch([])
        return rows

    async def _fetch(self, in_flight: list[int]) -> list[asyncpg.Record]:
        """The next batch of ready rows in id order, leaving out ``in_flight`` (ascending ids)."""
        assert self._pool is not None
        lowest, highest = (in_flight[0], in_flight[-1]) if in_flight else (0, -1)
        rows: list[asyncpg.Record] = await self._pool.fetch(
            _FETCH, sorted(self._owned), self._settings.batch_size, in_flight, lowest, highest
        )
        return rows

    async def _send_rows(self, batch: _Batch) -> None:
        """Hand the rows to the producer in id order; a key's rows after one that failed wait."""
        traced = exporting()
        error_point("relay.send")
        for row in batch.rows:
            if row["partition_key"] in batch.held_back_keys:
                continue  # an earlier event of this key failed: keep the order, try later
            try:
                future = await self._send_row(row, batch.spans if traced else None)
            except _ROW_FAULTS as error:
                batch.failed(row, f"cannot be published: {error!r}", error, permanent=True)
            except KafkaTimeoutError as error:
                # send() waits for the topic's metadata; a timeout means the broker is down or
                # the topic does not exist. Decided later from whether anything else got out.
                batch.failed(row, f"{type(error).__name__}: {error}", error, permanent=False)
            except EventingError as error:
                batch.failed(row, str(error), error, permanent=not error.retriable)
            else:
                batch.in_flight.append((row, future))

    async def _send_row(
        self, row: asyncpg.Record, spans: dict[int, Span] | None
    ) -> asyncio.Future[Any]:
        """Hand one row to the producer (with a PRODUCER span in ``spans`` when tracing); the
        future is its ack. Raises ``UnencodableEvent`` for a row that cannot become a record,
        and what the producer raises for one it refuses."""
        assert self._producer is not None
        try:
            key, value, headers = _record(row)
            if spans is not None and row["traceparent"]:
                span = spans[row["id"]] = _publish_span(row)
                # ce_traceparent keeps the origin; the per-hop header names this span.
                with_traceparent_header(headers, format_traceparent(span.get_span_context()))
            future: asyncio.Future[Any] = await self._producer.send(
                row["topic"], value=value, key=key, headers=headers
            )
        except (ValueError, TypeError, UnicodeError) as error:
            raise UnencodableEvent(f"cannot encode: {error}") from error
        return future

    def _prefetch_after(self, batch: _Batch) -> asyncio.Task[list[asyncpg.Record]] | None:
        """Under load (a full batch), read the next batch while this one waits for its acks.

        The database round trip then costs no time. The read excludes this batch's rows, is used
        only if all of them got through (a failed key's later events must wait), and cannot miss
        a key's earlier event: a key's events commit in id order (see eventing.outbox).
        """
        if len(batch.rows) != self._settings.batch_size or batch.failures:
            return None
        self._prefetching = asyncio.create_task(self._fetch([row["id"] for row in batch.rows]))
        return self._prefetching

    async def _collect_acks(self, batch: _Batch) -> None:
        """Wait for every row in flight: each is published, failed, or (the producer's fault)
        left for a new producer."""
        error_point("relay.acks")
        results = await asyncio.gather(
            *(future for _, future in batch.in_flight), return_exceptions=True
        )
        acked_at = time.time()
        for (row, _), result in zip(batch.in_flight, results, strict=True):
            error = result if isinstance(result, BaseException) else None
            if batch.spans:
                _end_publish_span(batch.spans, row["id"], error)
            if isinstance(error, _PRODUCER_FAULTS):
                batch.producer_broken = True
            elif error is not None:
                permanent = isinstance(error, _ROW_FAULTS)
                batch.failures.append(
                    _Failure(row["id"], f"{type(error).__name__}: {error}", permanent)
                )
            else:
                batch.published.append(row["id"])
                batch.published_per_topic[row["topic"]] += 1
                metrics.OUTBOX_PUBLISH_LATENCY.observe(
                    max(0.0, acked_at - row["created_at"].timestamp())
                )

    async def _delete_published(self, batch: _Batch) -> None:
        """Count the rows Kafka acknowledged and delete them from the outbox."""
        assert self._pool is not None
        for topic, count in batch.published_per_topic.items():
            metrics.OUTBOX_PUBLISHED.labels(topic).inc(count)
        if not batch.published:
            return
        error_point("relay.delete")
        await self._pool.execute(_DELETE_PUBLISHED, batch.published)
        error_point("relay.deleted")  # as when the pool failed to reset the connection after
        self.published += len(batch.published)
        self._broker_ok = True

    async def _replace_broken_producer(self) -> None:
        # Rows that did not get through stay as they are and go out with a new producer.
        log.warning("Kafka rejected the producer's sequence; starting a new producer")
        metrics.OUTBOX_PUBLISH_FAILURES.labels("producer_reset").inc()
        await self._restart_producer()

    def _report_outage(self, failures: list[_Failure]) -> None:
        self._broker_ok = False
        metrics.RELAY_OUTAGES.inc()
        metrics.OUTBOX_PUBLISH_FAILURES.labels("broker_unavailable").inc(len(failures))
        log.warning("Kafka unreachable, %d events held back: %s", len(failures), failures[0].error)

    async def _record_failures(self, failures: list[_Failure]) -> None:
        """Count an attempt against each failed row, with back-off; park those out of attempts
        (and at once those that can never be published)."""
        assert self._pool is not None
        for failure in failures:
            metrics.OUTBOX_PUBLISH_FAILURES.labels(
                "permanent" if failure.permanent else "transient"
            ).inc()
            parked = await self._pool.fetchrow(
                _RECORD_FAILURE + " RETURNING parked_at, attempts",
                failure.row_id,
                failure.error[:2000],
                backoff(1),
                failure.permanent,
                self._settings.max_attempts,
            )
            if parked is not None and parked["parked_at"] is not None:
                metrics.OUTBOX_PARKINGS.inc()
                log.error(
                    "outbox row %d parked after %d attempts: %s",
                    failure.row_id,
                    parked["attempts"],
                    failure.error,
                )


async def _keep_session(_: asyncpg.Connection) -> None:
    """The worker pool's reset: nothing to undo (see ``_connect_database``)."""


def _record(row: asyncpg.Record) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """Key, value and headers of an outbox row's record: a binary-mode CloudEvent or a tombstone."""
    key = row["partition_key"]
    if row["event_type"] == TOMBSTONE:
        # The key and no value: compaction forgets the key. The id only traces the record.
        return key.encode(), None, [("ce_id", str(row["event_id"]).encode())]
    record = encode(
        Envelope(
            id=str(row["event_id"]),
            type=row["event_type"],
            source=row["source"],
            subject=row["subject"],
            time=row["created_at"],
            data={},
            partition_key=key,
            traceparent=row["traceparent"],
            extensions=_version_extension(row["aggregate_version"]),
        ),
        data_json=row["payload"].encode(),
    )
    return record.key, record.value, record.headers


def _publish_span(row: asyncpg.Record) -> Span:
    """A PRODUCER span "publish <topic>", child of the row's stored traceparent (not current)."""
    return tracer().start_span(
        f"publish {row['topic']}",
        context=context_from_traceparent(row["traceparent"]),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": row["topic"],
            "messaging.message.id": str(row["event_id"]),
            "messaging.kafka.message.key": row["partition_key"],
            "cloudevents.event_id": str(row["event_id"]),
            "cloudevents.event_type": row["event_type"],
            "cloudevents.event_subject": row["subject"] or "",
            "outbox.row_id": row["id"],
            "outbox.attempts": row["attempts"],
        },
    )


def _end_publish_span(spans: dict[int, Span], row_id: int, error: BaseException | None) -> None:
    span = spans.pop(row_id, None)
    if span is not None:
        end_span(span, error)


def _version_extension(version: int | None) -> dict[str, str]:
    # Lets consumers see the order of an aggregate's events, and detect a gap or a repeat.
    return {} if version is None else {AGGREGATE_VERSION: str(version)}


async def run_relay(
    dsn: str,
    bootstrap_servers: str,
    settings: RelaySettings,
    *,
    service_name: str,
    security: KafkaSecurity | None = None,
) -> None:
    """Run a relay with its health endpoint until SIGTERM or SIGINT.

    Raises ``OSError`` when the health endpoint cannot listen on its port; once it runs, no
    failure ends it (see ``OutboxRelay.run``).
    """
    import signal

    relay = OutboxRelay(
        dsn,
        kafka_producer_factory(
            bootstrap_servers,
            linger_ms=settings.linger_ms,
            client_id=f"{service_name}-relay",
            security=security,
        ),
        settings,
    )
    from eventing.health_server import serve_health

    server = await serve_health(settings.metrics_host, settings.metrics_port, relay.ready)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, relay.stop)
    log.info("outbox relay %s for %s started", relay.instance_id, service_name)
    try:
        await relay.run()
    finally:
        server.close()
        await server.wait_closed()
        log.info(
            "outbox relay %s stopped after publishing %d events", relay.instance_id, relay.published
        )
