"""The outbox relay beside its peer, Debezium, on the same PostgreSQL, broker and rows.

    uv run python -m bench.run --sections peer

Each side publishes one database's outbox to a topic of its own: the relay as ``orders relay``
(the process the other sections start, with its default settings), Debezium as its embedded
engine (bench/debezium_peer.py: pgoutput, the outbox event router onto our columns, 10 ms poll,
a plain idempotent ``acks=all`` producer). Both connect as the stack's administrator, the role
that may replicate (Debezium needs it; the relay would run as well as the service's role).

In each of three states of the outbox table (``STATES``), for each side, alternating which goes
first, ``runs`` times, each measurement on a new database and a publisher started for it:

* **streaming**: the publisher running and idle, ``events`` rows (OrderPlaced payloads over
  1,000 order ids) are committed as fast as one connection can, in transactions of
  ``STREAM_TRANSACTION`` events written as ``Outbox.enqueue`` writes them (per-key locks and
  the wake-up first); timed from the first commit until the topic's end offsets hold them all;
* **steady**: one event per transaction (an order placed) at ``rate`` events/s for ``seconds``,
  latency from each commit's return to the record's arrival at a consumer of the topic, and the
  CPU seconds per 100,000 events of the publisher, PostgreSQL, Kafka and this load generator
  (their processes only, not the other users of the machine).

And for the relay alone, a backlog left by a broker outage: the relay idle, the broker stopped,
``events`` rows committed, the broker started again; the drain timed from the first record on
the topic to the last, as a ratio to the relay's streaming rate on a fresh table in this run.

Debezium leaves its rows in the table (nothing deletes them); the relay deletes each batch once
acknowledged, which is part of its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from bench.ceilings import new_topic
from bench.cpu import CpuMeter, machine_busy_seconds
from bench.debezium_peer import MAIN_CLASS, DebeziumPeer, PeerConfig, build
from bench.debezium_peer import VERSION as DEBEZIUM_VERSION
from bench.profile import commit as commit_measured
from bench.relay_drain import OUTBOX_COLUMNS, Row, outbox_rows
from bench.stack import log_dir, with_pg_settings
from bench.stats import percentile
from eventing import outbox as outbox_module
from eventing.database import asyncpg_dsn, eventing_metadata, new_engine
from eventing.kafka_security import KafkaSecurity
from eventing.outbox import KEY_SEQUENCE_LOCK, NOTIFY_CHANNEL, SHARD_BUSY_LOCK, shard_of
from eventing.tap import TopicReader
from tests.support.infra import Infra
from tests.support.processes import ServiceProcess, relay_process

# Debezium reads the write-ahead log through a logical replication slot.
PG_SETTINGS = {"wal_level": "logical"}
SIDES = ("relay", "debezium")
STREAM_TRANSACTION = 100  # events per transaction while streaming
STEADY_CONNECTIONS = 8  # the steady load's committing connections (an API's pool)
IDLE_SECONDS = 1.0  # the publisher idle on the empty table before rows come
STREAM_TIMEOUT = 30.0  # a publisher slower than events / STREAM_TIMEOUT: measured this long
DRAIN_TIMEOUT = 30.0  # for the last records of a steady run
WARMUP_EVENTS = 10_000  # through Debezium before it is measured (see DebeziumPublisher)
WARMUP_TABLE = "outbox_warmup"
_LOG_DIR = log_dir("bench")


async def _fresh(conn: asyncpg.Connection) -> None:
    """The table just created: no statistics; autovacuum may analyze it once rows come."""


async def _analyzed_while_empty(conn: asyncpg.Connection) -> None:
    """Statistics that say the table is empty, as after a deploy's ANALYZE or an idle night."""
    await conn.execute("ANALYZE outbox")


async def _never_analyzed(conn: asyncpg.Connection) -> None:
    """No statistics, and none to come while it fills: autovacuum off for the table."""
    await conn.execute(
        "ALTER TABLE outbox SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
    )
    await conn.execute("SELECT pg_stat_reset_single_table_counters('outbox'::regclass)")


STATES: dict[str, Callable[[asyncpg.Connection], Awaitable[None]]] = {
    "fresh": _fresh,
    "analyzed_while_empty": _analyzed_while_empty,
    "never_analyzed": _never_analyzed,
}

# The statement ``Outbox.enqueue`` runs before its INSERT (per-key locks, the relay's wake-up),
# taken from eventing.outbox itself so that the load stays what the services do.
_LOCK_AND_WAKE = outbox_module._LOCK_KEYS_AND_WAKE.compile(
    dialect=asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
)
_PAYLOAD = len(OUTBOX_COLUMNS)  # the last column, jsonb
_INSERT = (
    f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, _PAYLOAD))}, ${_PAYLOAD}::jsonb)"
)


def _lock_and_wake_args(keys: Sequence[str]) -> list[Any]:
    values = {
        "key_namespace": KEY_SEQUENCE_LOCK,
        "keys": sorted(set(keys)),
        "channel": NOTIFY_CHANNEL,
        "busy_namespace": SHARD_BUSY_LOCK,
        "shards": sorted({shard_of(key) for key in keys}),
    }
    return [values[name] for name in _LOCK_AND_WAKE.positiontup or ()]


# ---------------------------------------------------------------- the two publishers


class Publisher(Protocol):
    @property
    def pid(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class RelayPublisher:
    """``orders relay`` on the database, as the other sections start it."""

    def __init__(self, infra: Infra, url: str) -> None:
        self._process: ServiceProcess = relay_process(
            infra,
            url,
            name="peer-relay",
            extra_env={"ORDERS_LOG_LEVEL": "WARNING"},
            log_dir=_LOG_DIR,
        )

    @property
    def pid(self) -> int:
        pid = self._process.service_pid()
        assert pid is not None, "the relay is not running"
        return pid

    async def start(self) -> None:
        self._process.start()
        await self._process.wait_ready(60)

    async def stop(self) -> None:
        # Measured already: a relay deep in a slow fetch need not be waited for.
        await asyncio.to_thread(self._process.terminate, 5)


class DebeziumPublisher:
    """The Debezium peer on the database, with a slot and a publication named for this run.

    Started, it is warmed up before it counts as running: ``WARMUP_EVENTS`` rows through a
    second table of the outbox's shape (``WARMUP_TABLE``, in its publication too) to a topic of
    their own, so that the JVM has compiled its hot paths, as in a Debezium that has been running
    for a while, and the outbox itself stays in its state."""

    def __init__(self, infra: Infra, url: str, classpath: str) -> None:
        self._infra = infra
        self._url = url
        name = f"peer_{uuid.uuid4().hex[:10]}"
        config = PeerConfig(
            database_url=url,
            bootstrap_servers=infra.kafka_bootstrap,
            security=KafkaSecurity(),
            name=name,
            offsets_file=_LOG_DIR / "debezium" / f"{name}.offsets",
            tables=("public.outbox", f"public.{WARMUP_TABLE}"),
        )
        self._peer = DebeziumPeer(classpath, config, _LOG_DIR / "debezium" / f"{name}.log")

    @property
    def pid(self) -> int:
        return self._peer.pid

    async def start(self) -> None:
        await self._peer.start()
        topic = await new_topic(self._infra.kafka_bootstrap, "peer-warmup")
        conn = await asyncpg.connect(asyncpg_dsn(self._url))
        try:
            chunks = await _staged(conn, outbox_rows(WARMUP_EVENTS, topic), "warmup_staged")
            async with TopicReader(self._infra.kafka_bootstrap, [topic]) as reader:
                await _commit_staged(conn, chunks, table=WARMUP_TABLE, staged="warmup_staged")
                started = time.perf_counter()
                if await _wait_for_offsets(reader, WARMUP_EVENTS, started, 120) < WARMUP_EVENTS:
                    raise RuntimeError(f"Debezium did not warm up; see {self._peer.log}")
        finally:
            await conn.close()

    async def stop(self) -> None:
        await self._peer.stop()


# ---------------------------------------------------------------- one measurement


@dataclass
class Bench:
    infra: Infra
    classpath: str  # the Debezium peer's, built once

    def publisher(self, side: str, url: str) -> Publisher:
        if side == "relay":
            return RelayPublisher(self.infra, url)
        return DebeziumPublisher(self.infra, url, self.classpath)

    async def outbox_database(self, side: str, state: str) -> str:
        """A new database with an empty outbox in ``state`` (and Debezium's warm-up table for
        its side); its URL (the administrator's)."""
        url = await self.infra.create_database("peer")
        engine = new_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(eventing_metadata.create_all)
        await engine.dispose()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            if side == "debezium":
                await conn.execute(f"CREATE TABLE {WARMUP_TABLE} (LIKE outbox INCLUDING ALL)")
            await STATES[state](conn)
        finally:
            await conn.close()
        return url

    async def drop_database(self, url: str) -> None:
        """Its slot (left if Debezium could not drop it) and the database: runs leave nothing."""
        name = url.rsplit("/", 1)[1]
        conn = await asyncpg.connect(self.infra.postgres_dsn)
        try:
            await conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = $1 AND NOT active",
                name,
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def cpu_meter(self, publisher: Publisher) -> CpuMeter:
        """The publisher, this stack's PostgreSQL and Kafka, and this load generator (its
        consumer included): their processes only, not the other users of the machine."""
        stack_dir = Path(self.infra.local_env["STACK_DIR"])
        postmaster = (stack_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0]
        kafka = (stack_dir / "pids" / "kafka.pid").read_text().strip()
        names = {MAIN_CLASS: "publisher", "-m orders relay": "publisher"}
        names[" ".join(sys.orig_argv)] = "load generator"
        return CpuMeter(names, roots=(publisher.pid, int(postmaster), int(kafka), os.getpid()))

    async def stream(self, side: str, state: str, events: int) -> dict[str, Any]:
        """Events per second from the first commit until all ``events`` are on the topic."""
        topic = await new_topic(self.infra.kafka_bootstrap, f"peer-{side}")
        url = await self.outbox_database(side, state)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        publisher = self.publisher(side, url)
        try:
            # Staged while the publisher starts: nothing is measured yet.
            staging = asyncio.create_task(_staged(conn, outbox_rows(events, topic)))
            await publisher.start()
            chunks = await staging
            await asyncio.sleep(IDLE_SECONDS)
            async with TopicReader(self.infra.kafka_bootstrap, [topic]) as reader:
                started = time.perf_counter()
                filling = asyncio.create_task(_commit_staged(conn, chunks))
                on_topic = await _wait_for_offsets(reader, events, started, STREAM_TIMEOUT)
                elapsed = time.perf_counter() - started
                filled = await filling
        finally:
            await publisher.stop()
            await conn.close()
            await self.drop_database(url)
        return {
            "events_per_second": round(min(on_topic, events) / elapsed),
            "complete": on_topic >= events,
            "seconds": round(elapsed, 2),
            # How long the committing took, meanwhile: a publisher on the topic soon after the
            # last commit kept pace with the commits, and its rate is theirs (a lower bound).
            "commit_seconds": round(filled, 2),
            "seconds_after_last_commit": round(elapsed - filled, 2),
        }

    async def steady(self, side: str, state: str, rate: float, seconds: float) -> dict[str, Any]:
        """Latency commit -> consumer at ``rate`` events/s, and the CPU it all cost."""
        events = round(rate * seconds)
        topic = await new_topic(self.infra.kafka_bootstrap, f"peer-{side}")
        url = await self.outbox_database(side, state)
        pool = await asyncpg.create_pool(
            asyncpg_dsn(url), min_size=STEADY_CONNECTIONS, max_size=STEADY_CONNECTIONS
        )
        assert pool is not None
        publisher = self.publisher(side, url)
        rows = outbox_rows(events, topic)
        committed: dict[str, float] = {}
        arrived: dict[str, float] = {}
        try:
            await publisher.start()
            await asyncio.sleep(IDLE_SECONDS)
            async with TopicReader(self.infra.kafka_bootstrap, [topic]) as reader:
                await reader.start_at(beginning=True)
                consuming = asyncio.create_task(_arrivals(reader, arrived))
                meter = self.cpu_meter(publisher)
                busy_before = machine_busy_seconds()
                meter.start()
                started = time.perf_counter()
                load_seconds = await _steady_load(pool, rows, rate, committed)
                deadline = time.perf_counter() + DRAIN_TIMEOUT
                while len(arrived.keys() & committed.keys()) < events:
                    if time.perf_counter() > deadline:
                        break
                    await asyncio.sleep(0.05)
                wall = time.perf_counter() - started
                cpu = meter.seconds()
                busy = machine_busy_seconds() - busy_before
                consuming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consuming
        finally:
            await publisher.stop()
            await pool.close()
            await self.drop_database(url)
        latencies = [arrived.get(event, float("inf")) - at for event, at in committed.items()]
        per_100k = {name: round(spent * 100_000 / events, 1) for name, spent in cpu.items()}
        return {
            "events": events,
            "achieved_events_per_second": round(events / load_seconds, 1),
            "arrived": sum(latency != float("inf") for latency in latencies),
            "p50_ms": _ms(percentile(latencies, 0.50)),
            "p99_ms": _ms(percentile(latencies, 0.99)),
            "max_ms": _ms(max(latencies)),
            "cpu_seconds_per_100k_events": {
                "total": round(sum(cpu.values()) * 100_000 / events, 1),
                **per_100k,
            },
            # Everything the machine did meanwhile (other users included), for context.
            "machine_busy_cores": round(busy / wall, 2),
        }

    async def outage_backlog(self, events: int) -> dict[str, Any]:
        """The relay idle, the broker stopped, ``events`` committed, the broker back: the drain."""
        topic = await new_topic(self.infra.kafka_bootstrap, "peer-outage")
        url = await self.outbox_database("relay", "fresh")
        conn = await asyncpg.connect(asyncpg_dsn(url))
        publisher = self.publisher("relay", url)
        try:
            chunks = await _staged(conn, outbox_rows(events, topic))
            await publisher.start()
            await asyncio.sleep(IDLE_SECONDS)
            await asyncio.to_thread(self.infra.kafka_stop)
            try:
                await _commit_staged(conn, chunks)
            finally:
                await asyncio.to_thread(self.infra.kafka_start)
            back = time.perf_counter()
            async with TopicReader(self.infra.kafka_bootstrap, [topic]) as reader:
                first = await _wait_for_offsets(reader, 1, back, STREAM_TIMEOUT)
                resumed = time.perf_counter()
                on_topic = await _wait_for_offsets(reader, events, resumed, STREAM_TIMEOUT)
                drained = time.perf_counter()
        finally:
            await publisher.stop()
            await conn.close()
            await self.drop_database(url)
        # From the first records seen on the topic to the last: the drain, not the reconnecting.
        drained_events = min(on_topic, events) - first
        return {
            "events_per_second": round(drained_events / (drained - resumed))
            if drained_events > 0
            else None,
            "complete": on_topic >= events,
            "resumed_after_seconds": round(resumed - back, 2),  # broker listening -> first record
            "seconds_from_broker_back": round(drained - back, 2),
        }


def _ms(seconds: float) -> float | None:
    """Milliseconds; None for an event that never arrived (a percentile that fell on one)."""
    return None if seconds == float("inf") else round(seconds * 1000, 1)


async def _staged(
    conn: asyncpg.Connection, rows: list[Row], staged: str = "staged"
) -> list[tuple[int, list[str]]]:
    """The rows in a session's table, numbered; each transaction's first number and its keys."""
    # COPY has no binary encoder for jsonb: the payload is staged as text, cast when inserted.
    await conn.execute(
        f"CREATE TEMP TABLE {staged} (n int PRIMARY KEY, event_id uuid, topic text, "
        "partition_key text, shard smallint, aggregate_type text, aggregate_id text, "
        "aggregate_version int, event_type text, source text, subject text, payload text)"
    )
    await conn.copy_records_to_table(
        staged, records=[(n, *row) for n, row in enumerate(rows)], columns=("n", *OUTBOX_COLUMNS)
    )
    return [
        (start, [row[2] for row in rows[start : start + STREAM_TRANSACTION]])
        for start in range(0, len(rows), STREAM_TRANSACTION)
    ]


async def _commit_staged(
    conn: asyncpg.Connection,
    chunks: list[tuple[int, list[str]]],
    *,
    table: str = "outbox",
    staged: str = "staged",
) -> float:
    """Each chunk in a transaction of its own, as Outbox.enqueue writes; the seconds it took."""
    names = ", ".join(OUTBOX_COLUMNS)
    insert = await conn.prepare(
        f"INSERT INTO {table} ({names}) SELECT {names.replace('payload', 'payload::jsonb')} "
        f"FROM {staged} WHERE n >= $1 AND n < $2 ORDER BY n"
    )
    lock_and_wake = await conn.prepare(_LOCK_AND_WAKE.string)
    started = time.perf_counter()
    for start, keys in chunks:
        async with conn.transaction():
            await lock_and_wake.fetchrow(*_lock_and_wake_args(keys))
            await insert.fetch(start, start + len(keys))
    return time.perf_counter() - started


async def _wait_for_offsets(
    reader: TopicReader, records: int, started: float, timeout: float
) -> int:
    """Until the topic holds ``records`` (or ``timeout`` after ``started``); how many it holds."""
    while True:
        on_topic = sum((await reader.end_offsets()).values())
        if on_topic >= records or time.perf_counter() - started > timeout:
            return on_topic
        await asyncio.sleep(0.01)


async def _arrivals(reader: TopicReader, arrived: dict[str, float]) -> None:
    async for batch in reader.read(batch=2000):
        now = time.perf_counter()
        for record in batch:
            for name, value in record.headers:
                if name == "ce_id":
                    arrived.setdefault(value.decode(), now)
                    break


async def _steady_load(
    pool: asyncpg.Pool, rows: list[Row], rate: float, committed: dict[str, float]
) -> float:
    """One event per transaction, each due at ``i / rate``: open loop, several connections."""
    upcoming = iter(enumerate(rows))
    started = time.perf_counter()

    async def commit_events() -> None:
        async with pool.acquire() as conn:
            lock_and_wake = await conn.prepare(_LOCK_AND_WAKE.string)
            insert = await conn.prepare(_INSERT)
            for i, row in upcoming:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                async with conn.transaction():
                    await lock_and_wake.fetchrow(*_lock_and_wake_args([row[2]]))
                    await insert.fetch(*row)
                committed[str(row[0])] = time.perf_counter()

    await asyncio.gather(*(commit_events() for _ in range(STEADY_CONNECTIONS)))
    return time.perf_counter() - started


# ---------------------------------------------------------------- the section


def _median(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    if len(known) < len(values):
        return None  # some run lost events: no median to claim
    return round(statistics.median(known), 1)


async def relay_vs_debezium(
    infra: Infra,
    *,
    events: int = 100_000,
    rate: float = 1000,
    seconds: float = 10,
    runs: int = 3,
    outage_runs: int = 1,
    progress: Callable[[str, Any], Any] = lambda what, figures: print(what, figures),
) -> dict[str, Any]:
    """Every figure of the section; ``progress`` is told each measurement as it is made."""
    await with_pg_settings(infra, PG_SETTINGS)
    bench = Bench(infra, await asyncio.to_thread(build))
    streams: dict[tuple[str, str], list[dict[str, Any]]] = {}
    steadies: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in range(runs):
        for state in STATES:
            sides = SIDES if run % 2 == 0 else SIDES[::-1]
            for side in sides:
                result = await bench.stream(side, state, events)
                streams.setdefault((state, side), []).append(result)
                progress(f"peer {state}, {side}, streaming, run {run + 1}", result)
            for side in sides:
                result = await bench.steady(side, state, rate, seconds)
                steadies.setdefault((state, side), []).append(result)
                progress(f"peer {state}, {side}, {rate:g} events/s, run {run + 1}", result)
    outages = []
    for run in range(outage_runs):
        outages.append(await bench.outage_backlog(events))
        progress(f"peer outage backlog, relay, run {run + 1}", outages[-1])

    states: dict[str, Any] = {}
    for state in STATES:
        figures: dict[str, Any] = {}
        for side in SIDES:
            stream, steady = streams[(state, side)], steadies[(state, side)]
            figures[f"{side}_events_per_second"] = _median([r["events_per_second"] for r in stream])
            figures[f"{side}_seconds_after_last_commit"] = _median(
                [r["seconds_after_last_commit"] for r in stream]
            )
            for name in ("p50_ms", "p99_ms"):
                figures[f"{side}_{name}"] = _median([r[name] for r in steady])
            figures[f"{side}_cpu_seconds_per_100k_events"] = _median(
                [r["cpu_seconds_per_100k_events"]["total"] for r in steady]
            )
        relay, debezium = figures["relay_events_per_second"], figures["debezium_events_per_second"]
        figures["ratio"] = round(relay / debezium, 3) if relay and debezium else None
        states[state] = figures
    cpu = {}
    for side in SIDES:
        every = [r["cpu_seconds_per_100k_events"] for s in STATES for r in steadies[(s, side)]]
        cpu[side] = {name: _median([r.get(name, 0.0) for r in every]) for name in every[0]}
    healthy = states["fresh"]["relay_events_per_second"]
    drain = _median([r["events_per_second"] for r in outages]) if outages else None
    resumed = _median([r["resumed_after_seconds"] for r in outages]) if outages else None
    return {
        "commit": commit_measured(),
        "debezium": f"{DEBEZIUM_VERSION} embedded, pgoutput, outbox event router, 10 ms poll",
        "events": events,
        "steady_events_per_second": rate,
        "steady_seconds": seconds,
        "runs": runs,
        "states": states,
        "cpu_seconds_per_100k_events": {
            **cpu,
            "ratio": round(cpu["relay"]["total"] / cpu["debezium"]["total"], 2)
            if cpu["relay"]["total"] and cpu["debezium"]["total"]
            else None,
        },
        "outage_backlog": {
            "events": events,
            "runs": outage_runs,
            "relay_events_per_second": drain,
            "healthy_events_per_second": healthy,
            "ratio_to_healthy": round(drain / healthy, 2) if drain and healthy else None,
            "resumed_after_seconds": resumed,
        },
        "measurements": {
            "streaming": {f"{state}/{side}": runs for (state, side), runs in streams.items()},
            "steady": {f"{state}/{side}": runs for (state, side), runs in steadies.items()},
            "outage_backlog": outages,
        },
    }


def _print_progress(what: str, figures: Any) -> None:
    print(f"{what}: {json.dumps(figures)}", file=sys.stderr)
