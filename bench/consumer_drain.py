"""Consumer drain rate: the events per second one process of a service's consumer applies, what
they cost it in CPU and memory, and the rate of a group of two processes.

    uv run --frozen python -m bench.consumer_drain [--orders 300] [--rate 20]
        [--services orders kitchen notifications analytics] [--processes 1 2]
        [--stack-ports 25562 29222]

What the consumers read is real: on its own stack (``.local/consumer-drain-stack``, PostgreSQL
25562, a fresh Kafka on 29222) the whole system runs ``--orders`` whole lives through the public
APIs (``tests.support.lifecycle.whole_life``, started at ``--rate`` a second), settles and stops.
The topics then hold every order, kitchen and customer-contact event of those lives.

Each measured service then drains them, once per process count: that many processes of it
(``python -m <service> serve``, as deployed, each as the service's own Kafka principal) on a
database of their own, in a consumer group of their own (``<service>-drain-<id>``: the ACLs
let a service commit only under groups named after it), reading from the earliest offset. No
relay runs, so what the handlers write to an outbox stays there and the topics do not grow.

* Start-up and the group's forming are left out. The processes reach Kafka through a gate (a
  TCP forwarder in this process, their bootstrap server) that opens once every one of them
  answers ``/healthz``, and the inbox of their database is locked against writes until the
  broker describes the group as stable with every member holding partitions: the window opens
  then. A member that joined first waits on the lock with its first batch until it has heard
  of the others (at its next heartbeat, within 3 s), then applies that batch (up to 500
  records, a poll) and commits before the group settles; those events are left out.
* The window closes at the group's last offset commit before the end, seen by polling its
  committed offsets every 20 ms. The consumer commits right after applying a poll, at most
  every 0.25 s while records flow; the commit that reaches the end offsets waits for a poll to
  come back empty (up to 0.5 s, the broker's fetch wait), which is no part of applying events.
  The whole drain, to that final commit, is reported beside it (``to_the_end``).
* Events: the records the group committed within the window (its committed offsets summed over
  the partitions), records no handler subscribes to included: a consumer reads them too, at a
  fraction of the cost. With two processes each commits on its own clock, so the sum trails
  what was applied by up to 0.25 s of one member's work.
* CPU: user + system seconds of the group's processes over the window (``bench.cpu``, from
  /proc), per 1,000 events and as cores; the stack's PostgreSQL and Kafka over the whole drain
  beside it. Memory: each process's peak resident set (``VmHWM``) at the end.

The databases: kitchen, notifications and analytics start empty (``migrated_database``), as a
new projection rebuilt from the topics would. The orders consumer applies the kitchen's events
to orders it already holds (an unknown order is dead-lettered), so its database is a copy of
the orders service's own, taken while every order was confirmed and none had been cooked: the
lifecycles are held at their first kitchen step until the copy is made. The order events thus
come in two runs (every placement and confirmation, then the cooking and delivery), not
interleaved as in a day's traffic; each consumer's mix of event types is the same.

Notifications also sends what it records: its dispatchers run in the same processes during the
drain, posting to the sinks of ``tests.support.sinks`` (a process of their own), and their CPU
is counted with the consumer's. Each drain reports the deliveries' states at its end.

Writes ``bench/results/consumer-drain.json``; not part of ``make test`` or CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.cpu import CpuMeter, process_cpu_seconds
from bench.lifecycles import lifecycle_system
from bench.run import machine
from bench.stack import bench_env, bench_infra, log_dir
from contracts.topics import CUSTOMER_CONTACTS, KITCHEN, ORDERS
from eventing.admin import topic_partitions
from eventing.database import asyncpg_dsn
from tests.support import processes
from tests.support.chaos import outbox_backlogs, settled
from tests.support.infra import ROOT, Infra
from tests.support.lifecycle import Clients, whole_life
from tests.support.load import Http, Reply, Timing
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, free_port, service_process
from tests.support.sinks import sinks_process
from tests.support.system import System, migrated_database

RESULTS = ROOT / "bench" / "results" / "consumer-drain.json"
SERVICES = ("orders", "kitchen", "notifications", "analytics")
# The topics each service's consumer subscribes to (its bootstrap.py); checked against the
# topics the group committed on after each drain.
GROUP_TOPICS = {
    "orders": (KITCHEN.name,),
    "kitchen": (ORDERS.name,),
    "notifications": (ORDERS.name, KITCHEN.name, CUSTOMER_CONTACTS.name),
    "analytics": (ORDERS.name, KITCHEN.name),
}
STACK_PORTS = (25562, 29222)  # clear of make bench's stack (25462/29122) and the tests'
# A lifecycle waits at the kitchen while all the others are placed and the orders database is
# copied: its patience covers that as well as its own steps.
LIFECYCLE_PATIENCE = 900.0
DRAIN_TIMEOUT = 1800.0
READY_TIMEOUT = 120.0
# aiokafka's heartbeat interval (3 s; the consumer runtime keeps it), and a margin: by then a
# member has heard that the group is rebalancing.
HEARD_OF_REBALANCE = 3.5


class HeldHttp(Http):
    """An API client whose requests wait until ``release()``: it holds each lifecycle at its
    first kitchen step, with its order confirmed and not yet cooking."""

    def __init__(self, base_url: str, connections: int = 256) -> None:
        super().__init__(base_url, connections)
        self._released = asyncio.Event()
        self.waiting = 0

    def release(self) -> None:
        self._released.set()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        if not self._released.is_set():
            self.waiting += 1
            try:
                await self._released.wait()
            finally:
                self.waiting -= 1
        return await super().request(method, path, json=json, headers=headers)


async def run_lifecycles(
    system: System, orders: int, rate: float, while_held: Callable[[], Awaitable[None]]
) -> dict[str, Any]:
    """``orders`` whole lives, started ``rate`` a second; once every one of them is held at the
    kitchen (or has given up), ``while_held()`` runs, then they go on to delivery."""
    orders_api = Http(system.url("orders"))
    kitchen_api = HeldHttp(system.url("kitchen"))
    clients = Clients(orders_api, kitchen_api)
    lives: list[asyncio.Task[str]] = []
    try:
        for _ in range(orders):
            timing = Timing(due=time.perf_counter())
            lives.append(
                asyncio.create_task(whole_life(clients, timing, patience=LIFECYCLE_PATIENCE))
            )
            await asyncio.sleep(1 / rate)
        await eventually(
            lambda: kitchen_api.waiting + sum(life.done() for life in lives),
            until=lambda accounted: accounted == len(lives),
            timeout=LIFECYCLE_PATIENCE,
            interval=0.2,
            what="every order confirmed and held at the kitchen",
        )
        await while_held()
        kitchen_api.release()
        outcomes = await asyncio.gather(*lives, return_exceptions=True)
    finally:
        for life in lives:
            life.cancel()
        await orders_api.close()
        await kitchen_api.close()
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    return {"completed": len(outcomes) - len(errors), "gave_up": len(errors), "errors": errors[:5]}


async def copied_database(infra: Infra, source_url: str, owner: str) -> str:
    """A new database made from ``source_url``'s as a template, belonging to ``owner``; its
    URL, the owner's. Nobody may be connected to the source meanwhile."""
    source = urlsplit(source_url).path.lstrip("/")
    name = f"t_{owner}_drain_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(infra.postgres_dsn)
    try:
        # A stopped service's sessions take a moment to end, and until they have the template
        # is "being accessed by other users".
        await eventually(
            lambda: conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}" OWNER "{owner}"'),
            retry=(asyncpg.ObjectInUseError,),
            timeout=60,
            interval=0.2,
            what=f"a copy of {source}",
        )
        await conn.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
    finally:
        await conn.close()
    return infra.role_url(name, owner)


async def confirmed_orders_copy(system: System, infra: Infra) -> str:
    """A copy of the orders database as it is now, with the orders service and its relay
    stopped for the copy and started again; its URL."""
    await eventually(
        lambda: outbox_backlogs(system),
        until=lambda backlogs: backlogs["orders"] == 0,
        timeout=300,
        interval=0.5,
        what="the orders outbox published",
    )
    stopped = [system.processes["orders"], system.processes["orders-relay"]]
    for process in stopped:
        process.terminate()
    try:
        return await copied_database(infra, system.databases["orders"], "orders")
    finally:
        for process in stopped:
            process.start()
        await asyncio.gather(*(process.wait_ready(READY_TIMEOUT) for process in stopped))


async def fill_topics(
    infra: Infra, sinks_env: Mapping[str, str], orders: int, rate: float
) -> dict[str, Any]:
    """Runs the whole system through ``orders`` lives and stops it once it settled; the
    lifecycles' outcome, and the URL of the confirmed orders' copy (``orders_copy``)."""
    system = await lifecycle_system(infra, sinks_env, log_dir("consumer-drain"))
    copies: list[str] = []

    async def copy_orders() -> None:
        copies.append(await confirmed_orders_copy(system, infra))

    try:
        started = time.perf_counter()
        outcome = await run_lifecycles(system, orders, rate, copy_orders)
        await eventually(
            lambda: settled(system, infra),
            timeout=900,
            interval=1,
            what="the system settled",
        )
        outcome["seconds"] = round(time.perf_counter() - started, 1)
    finally:
        system.stop()
    return {**outcome, "orders_copy": copies[0]}


def drain_processes(
    infra: Infra, service: str, database_url: str, group: str, count: int, env: Mapping[str, str]
) -> list[ServiceProcess]:
    """``count`` processes of ``service`` in consumer group ``group``, each on a port of its
    own, as the service's Kafka principal."""
    prefix = service.upper()
    variables = {
        **env,
        **infra.principal_env(service),
        f"{prefix}_CONSUMER_GROUP": group,
        f"{prefix}_CONSUMER_AUTO_OFFSET_RESET": "earliest",
    }
    logs = log_dir("consumer-drain")
    return [
        replace(
            service_process(infra, service, database_url, variables, log_dir=logs),
            name=f"drain-{service}-{number}-of-{count}",
        )
        for number in range(1, count + 1)
    ]


class BootstrapGate:
    """A TCP forwarder to the broker that accepts connections only once opened. Processes given
    it as their bootstrap server cannot reach Kafka before (their consumer fails to start and
    tries again); once they have the cluster's metadata they talk to the broker directly."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self._broker = (host, int(port))
        self._port = free_port()
        self.address = f"127.0.0.1:{self._port}"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self._port)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _forward(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        try:
            broker, to_broker = await asyncio.open_connection(*self._broker)
        except OSError:
            to_client.close()
            return
        self._writers.update((to_client, to_broker))
        try:
            await asyncio.gather(_pipe(client, to_broker), _pipe(broker, to_client))
        finally:
            self._writers.difference_update((to_client, to_broker))


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass  # either side went away: the connection is over
    finally:
        sink.close()


async def every_one_serving(group: list[ServiceProcess], timeout: float = READY_TIMEOUT) -> None:
    """Until each process answers ``/healthz``: started up, its app built, serving."""
    await asyncio.gather(*(process.wait_ready(timeout, path="/healthz") for process in group))


async def group_members(admin: AIOKafkaAdminClient, group: str) -> tuple[str, int, int]:
    """``group``'s state, its members, and how many of them hold partitions."""
    [response] = await admin.describe_consumer_groups([group])
    [described] = response.to_object()["groups"]
    members = described["members"]
    holding = sum(1 for member in members if member["member_assignment"])
    return described["state"], len(members), holding


class InboxLock:
    """The drained database's inbox locked against writes. Every batch a consumer applies
    claims its inbox rows first, so it waits on the lock; reads (the readiness checks) go on."""

    def __init__(self, infra: Infra, database_url: str) -> None:
        name = urlsplit(database_url).path.lstrip("/")
        self._dsn = asyncpg_dsn(infra.database_url(name))  # as the administrator
        self._conn: asyncpg.Connection | None = None

    async def hold(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)
        await self._conn.execute("BEGIN")
        await self._conn.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.execute("ROLLBACK")
            await conn.close()


async def joined_together(
    admin: AIOKafkaAdminClient, group: str, count: int, inbox: InboxLock
) -> None:
    """Returns once ``group`` is stable with its ``count`` members holding partitions, and
    ``inbox`` released; what a member applied before that, it has committed.

    The members cannot apply anything while the inbox is locked. The first to join gets every
    partition and waits on the lock with its first batch; when the others join, it hears of the
    rebalance at its next heartbeat, and the lock is released after that, so that it finishes
    the batch, commits and rejoins.
    """
    deadline = time.monotonic() + READY_TIMEOUT
    everyone_joined: float | None = None
    while True:
        state, members, holding = await group_members(admin, group)
        if state == "Stable" and holding == count:
            await inbox.release()
            return
        if members == count and everyone_joined is None:
            everyone_joined = time.monotonic()
        if everyone_joined is not None and time.monotonic() - everyone_joined > HEARD_OF_REBALANCE:
            await inbox.release()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{group}: {holding} of {count} members hold partitions ({state})")
        await asyncio.sleep(0.02)


async def group_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets (none for a partition it has not committed on)."""
    committed = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}


def peak_rss_mib(pid: int) -> float | None:
    """The most memory ``pid`` has held resident since it started."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return None
    return None


def stack_pids(infra: Infra) -> list[int]:
    """The stack's PostgreSQL server (its backends are its children) and Kafka brokers."""
    stack = Path(infra.local_env["STACK_DIR"])
    files = [stack / "postgres" / "data" / "postmaster.pid", *(stack / "pids").glob("kafka*.pid")]
    pids = []
    for file in files:
        try:
            pids.append(int(file.read_text().split("\n", 1)[0].strip()))
        except (FileNotFoundError, ValueError):
            continue
    return pids


async def applied_in_database(infra: Infra, database_url: str) -> dict[str, Any]:
    """What the drained database holds: its inbox rows, its dead letters, and (notifications)
    its deliveries by state."""
    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(asyncpg_dsn(infra.database_url(name)))  # as the administrator
    try:
        figures: dict[str, Any] = {
            "inbox_rows": int(await conn.fetchval("SELECT count(*) FROM inbox")),
            "dead_letters": int(await conn.fetchval("SELECT count(*) FROM dead_letters")),
        }
        if await conn.fetchval("SELECT to_regclass('deliveries') IS NOT NULL"):
            states = await conn.fetch("SELECT status, count(*) FROM deliveries GROUP BY status")
            figures["deliveries"] = {row["status"]: int(row["count"]) for row in states}
    finally:
        await conn.close()
    return figures


@dataclass(frozen=True)
class Commit:
    """The group's committed offsets, first seen at ``at`` (``time.perf_counter``) covering
    ``events`` records, its processes having spent ``cpu`` seconds each by then."""

    at: float
    events: int
    cpu: list[float]


def committed_events(
    offsets: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int]
) -> int:
    return sum(min(offsets.get(tp, 0), end) for tp, end in ends.items())


def cpu_of(pids: list[int]) -> list[float]:
    spent = [process_cpu_seconds(pid) for pid in pids]
    if any(seconds is None for seconds in spent):
        raise RuntimeError(f"a process of the group exited during the drain: {pids}")
    return [seconds for seconds in spent if seconds is not None]


async def commits_until_the_end(
    admin: AIOKafkaAdminClient, group: str, ends: Mapping[TopicPartition, int], pids: list[int]
) -> list[Commit]:
    """The group's committed offsets now, then each new value of them, polled every 20 ms,
    until they reach ``ends``."""
    total = sum(ends.values())
    seen: list[Commit] = []
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while not seen or seen[-1].events < total:
        events = committed_events(await group_offsets(admin, group), ends)
        if not seen or events != seen[-1].events:
            seen.append(Commit(time.perf_counter(), events, cpu_of(pids)))
        if time.monotonic() > deadline:
            raise RuntimeError(f"{group}: {seen[-1].events} of {total} records committed")
        await asyncio.sleep(0.02)
    return seen


def between(start: Commit, end: Commit) -> dict[str, Any]:
    """What the group applied from ``start`` to ``end``, and what it cost."""
    events, seconds = end.events - start.events, end.at - start.at
    cpu = [after - before for before, after in zip(start.cpu, end.cpu, strict=True)]
    measured = events > 0 and seconds > 0
    return {
        "events": events,
        "seconds": round(seconds, 2) if measured else None,
        "events_per_second": round(events / seconds) if measured else None,
        "cpu_seconds": round(sum(cpu), 2),
        "cpu_seconds_per_process": [round(spent, 2) for spent in cpu],
        "cpu_seconds_per_1000_events": round(1000 * sum(cpu) / events, 3) if measured else None,
        "cores": round(sum(cpu) / seconds, 2) if measured else None,
    }


async def drain(
    infra: Infra, service: str, count: int, database_url: str, env: Mapping[str, str]
) -> dict[str, Any]:
    """``count`` processes of ``service`` drain the topics from the start, on ``database_url``
    (a database nobody else uses); the figures of the drain."""
    group = f"{service}-drain-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    reader = AIOKafkaConsumer(**infra.kafka_options(), group_id=None)
    await admin.start()
    await reader.start()
    try:
        partitions = [
            tp for topic in GROUP_TOPICS[service] for tp in await topic_partitions(reader, topic)
        ]
        ends: dict[TopicPartition, int] = await reader.end_offsets(partitions)
        gate = BootstrapGate(infra.kafka_bootstrap)
        prefix = service.upper()
        through_the_gate = {
            **env,
            "KAFKA_BOOTSTRAP_SERVERS": gate.address,
            # A consumer that could not reach the broker tries again within this, so the
            # processes join within a fraction of a second of the gate's opening.
            f"{prefix}_CONSUMER_RESTART_MAX_SECONDS": "0.25",
        }
        group_processes = drain_processes(
            infra, service, database_url, group, count, through_the_gate
        )
        inbox = InboxLock(infra, database_url)
        await inbox.hold()
        load_before = os.getloadavg()
        launched = time.perf_counter()
        for process in group_processes:
            process.start()
        try:
            await every_one_serving(group_processes)
            await gate.open()
            gate_opened = time.perf_counter()
            await joined_together(admin, group, count, inbox)
            pids = [pid for process in group_processes if (pid := process.service_pid())]
            stack_meter = CpuMeter({}, roots=stack_pids(infra))
            stack_meter.start()
            commits = await commits_until_the_end(admin, group, ends, pids)
            stack_cpu = stack_meter.seconds()
            peak_rss = [peak_rss_mib(pid) for pid in pids]
            load_after = os.getloadavg()
            read = {tp.topic for tp in await group_offsets(admin, group)}
        finally:
            await inbox.release()
            for process in group_processes:
                process.terminate()
            await gate.close()
    finally:
        await reader.stop()
        await admin.close()
    if read != set(GROUP_TOPICS[service]):
        raise RuntimeError(f"{group} committed on {sorted(read)}, not {GROUP_TOPICS[service]}")
    opening, final = commits[0], commits[-1]
    # The commit that reaches the end waits for an empty poll; the one before it does not.
    flowing = commits[-2] if len(commits) > 2 else final
    return {
        "processes": count,
        "group": group,
        "records": sum(ends.values()),
        "applied_before_the_window": opening.events,
        **between(opening, flowing),
        "to_the_end": between(opening, final),
        "rss_peak_mib": max((rss for rss in peak_rss if rss is not None), default=None),
        "rss_peak_mib_per_process": peak_rss,
        "seconds_to_serving": round(gate_opened - launched, 2),
        "seconds_to_group_assigned": round(opening.at - gate_opened, 2),
        "stack_cpu_seconds_to_the_end": {
            name: round(spent, 2) for name, spent in stack_cpu.items()
        },
        "load_average": {"before": _rounded(load_before), "after": _rounded(load_after)},
        **await applied_in_database(infra, database_url),
    }


def _rounded(load: tuple[float, float, float]) -> list[float]:
    return [round(value, 2) for value in load]


async def run(
    orders: int,
    rate: float,
    services: list[str],
    process_counts: list[int],
    stack_ports: tuple[int, int],
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "commit": described_commit(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_at_start": _rounded(os.getloadavg()),
        "orders": orders,
        "lifecycles_per_second": rate,
    }
    infra = await bench_infra("consumer-drain", pg_port=stack_ports[0], kafka_port=stack_ports[1])
    sinks = ROOT / ".local" / "consumer-drain-stack" / "sinks"
    try:
        with sinks_process(sinks, sinks / "sinks.log") as sinks_env:
            _progress(f"{orders} whole lives through the system, {rate:g} a second")
            filled = await fill_topics(infra, sinks_env, orders, rate)
            orders_copy = filled.pop("orders_copy")
            results["lifecycles"] = _progress("lifecycles", filled)
            results["topics"] = _progress("records per topic", await topic_sizes(infra))
            env = bench_env({"notifications": sinks_env})
            drains: dict[str, dict[str, Any]] = {}
            for service in services:
                for count in process_counts:
                    database = (
                        await copied_database(infra, orders_copy, "orders")
                        if service == "orders"
                        else await migrated_database(infra, service)
                    )
                    figures = await drain(infra, service, count, database, env.get(service, {}))
                    drains.setdefault(service, {})[str(count)] = _progress(
                        f"{service}, {count} process(es)", figures
                    )
            results["drains"] = drains
    finally:
        infra.stop()
        processes.kill_leftovers()
    results["load_average_at_end"] = _rounded(os.getloadavg())
    return results


async def topic_sizes(infra: Infra) -> dict[str, int]:
    """The records of each topic a measured consumer reads."""
    reader = AIOKafkaConsumer(**infra.kafka_options(), group_id=None)
    await reader.start()
    try:
        sizes = {}
        for topic in (ORDERS.name, KITCHEN.name, CUSTOMER_CONTACTS.name):
            ends = await reader.end_offsets(await topic_partitions(reader, topic))
            sizes[topic] = sum(ends.values())
        return sizes
    finally:
        await reader.stop()


def described_commit() -> str:
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return described.stdout.strip()


def table(results: dict[str, Any]) -> str:
    header = (
        f"{'service':<14}{'procs':>6}{'events':>8}{'seconds':>9}{'events/s':>10}"
        f"{'CPU s/1k':>10}{'cores':>7}{'RSS MiB':>9}{'to end s':>10}{'dead':>6}"
    )
    lines = [header, "-" * len(header)]
    for service, by_count in results.get("drains", {}).items():
        for count, drained in by_count.items():
            lines.append(
                f"{service:<14}{count:>6}{drained['events']:>8}"
                f"{_cell(drained['seconds'], 9, '.2f')}{_cell(drained['events_per_second'], 10)}"
                f"{_cell(drained['cpu_seconds_per_1000_events'], 10, '.3f')}"
                f"{_cell(drained['cores'], 7, '.2f')}{_cell(drained['rss_peak_mib'], 9, '.1f')}"
                f"{_cell(drained['to_the_end']['seconds'], 10, '.2f')}{drained['dead_letters']:>6}"
            )
    return "\n".join(lines)


def _cell(value: float | None, width: int, spec: str = "") -> str:
    """A right-aligned figure, or a dash where there is none."""
    return f"{'-' if value is None else format(value, spec):>{width}}"


def _progress(what: str, figures: Any = None) -> Any:
    print(what if figures is None else f"{what}: {json.dumps(figures)}", file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="consumer_drain")
    parser.add_argument("--orders", type=int, default=300, help="whole lives run to fill topics")
    parser.add_argument("--rate", type=float, default=20.0, help="lives started per second")
    parser.add_argument("--services", nargs="+", choices=SERVICES, default=list(SERVICES))
    parser.add_argument("--processes", nargs="+", type=int, default=[1, 2])
    parser.add_argument(
        "--stack-ports",
        nargs=2,
        type=int,
        default=STACK_PORTS,
        metavar=("PG_PORT", "KAFKA_PORT"),
        help="the stack's ports (the controller on KAFKA_PORT+1)",
    )
    args = parser.parse_args()
    if args.orders < 1 or args.rate <= 0 or min(args.processes) < 1:
        parser.error("--orders, --rate and --processes must be positive")
    ports = (args.stack_ports[0], args.stack_ports[1])
    results = asyncio.run(run(args.orders, args.rate, args.services, args.processes, ports))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
