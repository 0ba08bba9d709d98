"""Faults under a steady flow of orders, each followed by a reconciliation: the scenario engine
of ``make chaos`` (bench/chaos.py, every fault) and of its short version in the suite
(tests/chaos, the faults that need nothing but the stack).

A scenario: orders go through their whole life at a steady rate; after a warm-up the fault is
injected, the victim comes back, the flow goes on; then the flow stops, the system settles and
the scenario's orders are reconciled against the topics and every service's database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from eventing.admin import topic_partitions
from eventing.database import asyncpg_dsn
from eventing.kafka_security import KafkaSecurity
from tests.support import reconcile
from tests.support.infra import Infra
from tests.support.lifecycle import Clients, whole_life
from tests.support.load import Http, RunResult, Timing, fixed_rate
from tests.support.polling import NotReached, eventually
from tests.support.processes import ServiceProcess, free_port, http_workers
from tests.support.system import System

CONSUMER_GROUPS = ("orders", "kitchen", "notifications", "analytics")
# aiokafka's default session timeout is 10 s: a consumer frozen longer is expelled.
PAUSE_SECONDS = 25.0


@dataclass
class Fault:
    """A fault of a scenario: how to inject it, how long it holds, how the victim comes back."""

    name: str
    description: str
    inject: Callable[[System, Infra], Awaitable[None]]  # returns when the fault is in place
    heal: Callable[[System, Infra], Awaitable[None]]  # returns when the victim is back
    # How long the fault lasts before ``heal``: None is the scenario's ``fault_seconds``; 0 heals
    # at once (a killed process: ``heal`` only waits for its supervisor to bring it back).
    hold: float | None = None
    # Checks of its own after the system settled: figures to add to the scenario's.
    verify: Callable[[System, Infra], Awaitable[dict[str, Any]]] | None = None


def killed(process: str) -> Fault:
    """``process`` SIGKILLed; its supervisor brings it back."""

    async def inject(system: System, _: Infra) -> None:
        await asyncio.to_thread(system.processes[process].crash)

    async def heal(system: System, _: Infra) -> None:
        await system.processes[process].wait_ready(timeout=120)

    return Fault(process, f"{process}: SIGKILL, back by its supervisor", inject, heal, hold=0)


def worker_killed(service: str) -> Fault:
    """One of the HTTP workers of ``service`` (serving with ``<PREFIX>_HTTP_WORKERS`` of 2 or
    more) SIGKILLed; the others serve on, and its supervisor, uvicorn's, replaces it."""
    killed: list[int] = []

    async def inject(system: System, _: Infra) -> None:
        process = system.processes[service]
        workers = http_workers(process)
        if len(workers) < 2:
            raise RuntimeError(f"{service} serves with {len(workers)} workers; this needs 2+")
        killed[:] = [workers[0]]
        process.signal_worker(workers[0], signal.SIGKILL)

    async def heal(system: System, _: Infra) -> None:
        process = system.processes[service]
        await eventually(
            lambda: http_workers(process),
            until=lambda now: len(now) >= 2 and killed[0] not in now,
            timeout=60,
            interval=0.1,
            what=f"{service}'s killed worker replaced",
        )
        await process.wait_ready(timeout=120)

    return Fault(
        f"{service}-worker",
        f"{service}: one of its two HTTP workers SIGKILLed, replaced by uvicorn",
        inject,
        heal,
        hold=0,
    )


def _stack(commands: tuple[str, ...]) -> Callable[[System, Infra], Awaitable[None]]:
    async def run(_: System, infra: Infra) -> None:
        for command in commands:
            await asyncio.to_thread(infra.stack, command)

    return run


def on_stack(name: str, description: str, inject: tuple[str, ...], heal: tuple[str, ...]) -> Fault:
    """A fault of the stack's PostgreSQL or Kafka: the ``stack.sh`` commands that inject it, and
    those that heal it."""
    return Fault(name, description, _stack(inject), _stack(heal))


def paused(process: str) -> Fault:
    """``process`` frozen long enough for its consumer group to expel it, then resumed."""

    async def inject(system: System, _: Infra) -> None:
        system.processes[process].signal_service(signal.SIGSTOP)

    async def heal(system: System, _: Infra) -> None:
        system.processes[process].signal_service(signal.SIGCONT)

    return Fault(
        f"{process}-paused",
        f"{process}: frozen (SIGSTOP) {PAUSE_SECONDS:.0f} s, expelled from its group, resumed",
        inject,
        heal,
        hold=PAUSE_SECONDS,
    )


def broker_killed() -> Fault:
    """The Kafka broker SIGKILLed, then started again."""
    return on_stack("kafka", "Kafka broker: SIGKILL, restarted", ("kafka-kill",), ("kafka-start",))


# The system's busy topics: the broker leading most of their partitions is the one to kill.
BUSY_TOPICS = ("pizzeria.orders", "pizzeria.kitchen")


@dataclass(frozen=True)
class PartitionState:
    """A partition as the cluster's metadata has it."""

    leader: int  # -1 while it has none
    replicas: tuple[int, ...]  # the first is its preferred leader
    in_sync: frozenset[int]


async def partition_states(
    infra: Infra, topics: tuple[str, ...]
) -> dict[tuple[str, int], PartitionState]:
    """(topic, partition) -> its leader, replicas and in-sync replicas."""
    admin = AIOKafkaAdminClient(**infra.kafka_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return {
        (topic["topic"], partition["partition"]): PartitionState(
            leader=partition["leader"],
            replicas=tuple(partition["replicas"]),
            in_sync=frozenset(partition["isr"]),
        )
        for topic in described
        for partition in topic["partitions"]
    }


async def partition_leaders(infra: Infra, topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the broker leading it (-1 while it has no leader)."""
    return {key: state.leader for key, state in (await partition_states(infra, topics)).items()}


def leaders_per_node(leaders: dict[tuple[str, int], int]) -> dict[str, int]:
    """How many of the partitions each broker leads ("-1": those without a leader)."""
    return {str(node): n for node, n in sorted(Counter(leaders.values()).items())}


def broker_failover(hold: float = 10, leadership_patience: float = 120) -> Fault:
    """On a three-broker cluster: the broker leading most of the busy topics' partitions
    SIGKILLed, started again after ``hold`` seconds. Its partitions' leadership moves to the
    others at once (their copies are in sync); once it has caught up, the controller's
    preferred-leader election moves leadership back to it while orders flow: a second move of
    leaders mid-run. ``verify`` reports which node and how long after its restart it led
    again."""
    state: dict[str, Any] = {}

    async def inject(_: System, infra: Infra) -> None:
        leaders = await partition_leaders(infra, BUSY_TOPICS)
        state["node"] = Counter(leaders.values()).most_common(1)[0][0]
        state["led"] = sum(1 for leader in leaders.values() if leader == state["node"])
        await asyncio.to_thread(infra.kafka_kill, state["node"])

    async def leads_again(infra: Infra, restarted: float) -> float | None:
        try:
            await eventually(
                lambda: partition_leaders(infra, BUSY_TOPICS),
                until=lambda leaders: state["node"] in leaders.values(),
                timeout=leadership_patience,
                interval=0.5,
                what=f"broker {state['node']} leading again",
            )
        except NotReached:
            return None
        return round(time.monotonic() - restarted, 1)

    async def heal(_: System, infra: Infra) -> None:
        await asyncio.to_thread(infra.kafka_start, state["node"])
        state["leads_again"] = asyncio.create_task(leads_again(infra, time.monotonic()))

    async def verify(_: System, __: Infra) -> dict[str, Any]:
        return {
            "killed_broker": state["node"],
            "partitions_it_led": state["led"],
            "seconds_until_it_led_again": await state["leads_again"],
        }

    return Fault(
        "broker-failover",
        "Kafka, three brokers: the one leading most partitions SIGKILLed, restarted after "
        f"{hold:g} s; leadership moves away, then back by the preferred-leader election",
        inject,
        heal,
        hold=hold,
        verify=verify,
    )


def rotated_past_leader(partition: PartitionState) -> tuple[int, ...]:
    """The partition's replicas in the same cyclic order, starting with the one after its leader
    (after its preferred leader while it has none): a preferred leader other than the one
    leading, on the same brokers."""
    replicas = partition.replicas
    if len(replicas) < 2:
        raise ValueError(f"one replica ({replicas}): there is no other broker to lead it")
    position = replicas.index(partition.leader) if partition.leader in replicas else 0
    start = (position + 1) % len(replicas)
    return replicas[start:] + replicas[:start]


def leader_moved(hold: float = 10, leadership_patience: float = 120) -> Fault:
    """On a three-broker cluster: every partition of the busy topics gets another leader while
    orders flow, by Kafka's own tools. ``kafka-reassign-partitions`` gives each the same
    replicas in a rotated order, so its preferred leader (the first) is a broker that does not
    lead it and no data moves; ``kafka-leader-election`` then elects the preferred leaders.
    Clients learn the new leaders from their requests' NOT_LEADER_OR_FOLLOWER answers.

    Nothing is moved back: the rotated assignment is as balanced as the one before it, and the
    controller's own preferred-leader election (every 20 s on the local cluster) agrees with
    it, so it is a state the cluster stays in, not damage to repair; moving back would be this
    same fault again. Each run rotates from wherever the leaders are, and a scenario after it
    (broker-failover picks the broker leading most partitions then) starts from a healthy
    cluster. ``verify`` reports the partitions moved, the seconds from the reassignment's start
    until every one was led by its new preferred leader, the leaders per node before and just
    after, and how many were led by another broker at the end."""
    state: dict[str, Any] = {}

    async def all_in_sync(infra: Infra) -> dict[tuple[str, int], PartitionState]:
        # A preferred replica out of sync could not be elected: a broker back from a failover
        # catches up first.
        return await eventually(
            lambda: partition_states(infra, BUSY_TOPICS),
            until=lambda partitions: all(
                p.leader in p.replicas and p.in_sync == set(p.replicas) for p in partitions.values()
            ),
            timeout=leadership_patience,
            interval=0.5,
            what="every busy partition led, with all its replicas in sync",
        )

    async def inject(_: System, infra: Infra) -> None:
        before = await all_in_sync(infra)
        targets = {key: rotated_past_leader(partition) for key, partition in before.items()}
        state["targets"] = targets
        state["before"] = leaders_per_node({key: p.leader for key, p in before.items()})
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="leader-moved-") as directory:
            reassignment = Path(directory) / "reassignment.json"
            reassignment.write_text(
                json.dumps(
                    {
                        "version": 1,
                        "partitions": [
                            {"topic": topic, "partition": partition, "replicas": list(replicas)}
                            for (topic, partition), replicas in targets.items()
                        ],
                    }
                )
            )
            elections = Path(directory) / "elections.json"
            elections.write_text(
                json.dumps(
                    {
                        "partitions": [
                            {"topic": topic, "partition": partition} for topic, partition in targets
                        ]
                    }
                )
            )
            await asyncio.to_thread(
                infra.kafka_tool,
                "reassign-partitions",
                "--reassignment-json-file",
                str(reassignment),
                "--execute",
            )
            # Same replicas: the controller completes the reassignment at once, but the
            # election needs the new order in place.
            await eventually(
                lambda: partition_states(infra, BUSY_TOPICS),
                until=lambda partitions: all(
                    partitions[key].replicas == replicas for key, replicas in targets.items()
                ),
                timeout=leadership_patience,
                interval=0.25,
                what="the rotated replica order in the metadata",
            )
            await asyncio.to_thread(
                infra.kafka_tool,
                "leader-election",
                "--election-type",
                "PREFERRED",
                "--path-to-json-file",
                str(elections),
            )
        try:
            after = await eventually(
                lambda: partition_leaders(infra, BUSY_TOPICS),
                until=lambda leaders: all(
                    leaders[key] == replicas[0] for key, replicas in targets.items()
                ),
                timeout=leadership_patience,
                interval=0.25,
                what="every moved partition led by its new preferred leader",
            )
            state["seconds"] = round(time.monotonic() - started, 1)
        except NotReached as late:
            after = late.last
            state["seconds"] = None
        state["after"] = leaders_per_node(after)

    async def heal(_: System, __: Infra) -> None:
        """Nothing to restore: the cluster stays as moved (see above)."""

    async def verify(_: System, infra: Infra) -> dict[str, Any]:
        targets: dict[tuple[str, int], tuple[int, ...]] = state["targets"]
        leaders = await partition_leaders(infra, BUSY_TOPICS)
        return {
            "partitions_moved": len(targets),
            "seconds_until_led_by_new_leaders": state["seconds"],
            "leaders_per_node_before": state["before"],
            "leaders_per_node_after": state["after"],
            "partitions_led_by_another_at_end": sum(
                1 for key, replicas in targets.items() if leaders[key] != replicas[0]
            ),
        }

    return Fault(
        "leader-moved",
        "Kafka, three brokers: every partition of the orders and kitchen topics given another "
        "preferred leader (kafka-reassign-partitions, same replicas rotated) and elected to it "
        f"(kafka-leader-election) while orders flow, held {hold:g} s",
        inject,
        heal,
        hold=hold,
        verify=verify,
    )


def another_instance(process: ServiceProcess, number: int) -> ServiceProcess:
    """One more process like ``process`` (same database, principal and consumer group), on an
    HTTP port of its own, unsupervised."""
    port = free_port()
    return ServiceProcess(
        name=f"{process.name}-{number}",
        module=process.module,
        command=process.command,
        env={**process.env, f"{process.module.upper()}_HTTP_PORT": str(port)},
        ready_url=f"http://127.0.0.1:{port}/readyz",
        log_dir=process.log_dir,
    )


def scaled(service: str, to: int = 3, hold: float = 20) -> Fault:
    """``service``'s consumer group scaled from its one process to ``to`` while orders flow
    (each joining is a rebalance), held ``hold`` seconds, then back to one (each leaving, with
    SIGTERM, is another)."""
    extra: list[ServiceProcess] = []

    async def inject(system: System, _: Infra) -> None:
        extra[:] = [another_instance(system.processes[service], n) for n in range(2, to + 1)]
        for process in extra:
            process.start()
        await asyncio.gather(*(process.wait_ready() for process in extra))

    async def heal(_: System, __: Infra) -> None:
        await asyncio.gather(*(asyncio.to_thread(process.terminate) for process in extra))

    return Fault(
        f"{service}-scaled",
        f"{service}: its group scaled from one process to {to} while orders flow, held "
        f"{hold:g} s, and back to one",
        inject,
        heal,
        hold=hold,
    )


async def group_lags(bootstrap: str) -> dict[str, int]:
    """Records not yet committed by each of the services' consumer groups, over their topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **KafkaSecurity().client_options())
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, **KafkaSecurity().client_options(), group_id=None
    )
    await admin.start()
    await reader.start()
    try:
        lags = {}
        for group in CONSUMER_GROUPS:
            committed = await admin.list_consumer_group_offsets(group)
            lag = 0
            # A group's topics are those it has committed on; all of their partitions count.
            for topic in {partition.topic for partition in committed}:
                partitions = await topic_partitions(reader, topic)
                ends = await reader.end_offsets(partitions)
                for partition in partitions:
                    meta = committed.get(partition)
                    lag += ends[partition] - (meta.offset if meta is not None else 0)
            lags[group] = lag
        return lags
    finally:
        await reader.stop()
        await admin.close()


async def fetch_count(url: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        return int(await conn.fetchval(sql, *args, timeout=5))
    finally:
        await conn.close()


async def outbox_backlogs(system: System) -> dict[str, int]:
    return {
        service: await fetch_count(
            system.databases[service], "SELECT count(*) FROM outbox WHERE parked_at IS NULL"
        )
        for service in ("orders", "kitchen")
    }


async def pending_deliveries(system: System) -> int:
    """Notifications waiting to be sent (its dispatchers work behind the consumer)."""
    return await fetch_count(
        system.databases["notifications"],
        "SELECT count(*) FROM deliveries WHERE status = 'pending'",
    )


async def processes_down(system: System) -> list[str]:
    """The processes not answering their readiness check (dead, or not yet back)."""
    down = []
    async with httpx.AsyncClient(timeout=3) as client:
        for name, process in system.processes.items():
            try:
                ready = (await client.get(process.ready_url)).status_code == 200
            except httpx.HTTPError:
                ready = False
            if not ready:
                down.append(name)
    return down


async def waiting_work(system: System, infra: Infra) -> dict[str, int] | None:
    """Events in each outbox and records behind each consumer group; None if not answerable."""
    try:
        outboxes = await outbox_backlogs(system)
        lags = await group_lags(infra.kafka_bootstrap)
    except Exception:  # whatever fails, it has not recovered yet
        return None
    return {
        **{f"outbox {service}": n for service, n in outboxes.items()},
        **{f"lag {group}": n for group, n in lags.items()},
    }


def _within(work: dict[str, int] | None, slack: int) -> bool:
    """No more than ``slack`` events in the outboxes together, nor behind the groups together."""
    return work is not None and all(
        sum(n for name, n in work.items() if name.startswith(kind)) <= slack
        for kind in ("outbox", "lag")
    )


async def caught_up(system: System, infra: Infra, *, slack: int = 0) -> bool:
    return _within(await waiting_work(system, infra), slack)


async def settled(system: System, infra: Infra) -> bool:
    """Nothing left to do anywhere: outboxes empty, groups caught up, notifications sent."""
    try:
        return await caught_up(system, infra) and await pending_deliveries(system) == 0
    except Exception:  # whatever fails, it has not settled yet
        return False


async def wait_settled(
    system: System, infra: Infra, *, timeout: float, interval: float = 1
) -> bool:
    """Whether the system settled (see ``settled``) within ``timeout`` seconds."""
    try:
        await eventually(
            lambda: settled(system, infra),
            timeout=timeout,
            interval=interval,
            what="the system settled",
        )
    except NotReached:
        return False
    return True


async def what_is_stuck(system: System, infra: Infra) -> dict[str, Any]:
    """Where the work is waiting: per outbox, per consumer group, deliveries, processes."""
    report: dict[str, Any] = {}
    probes: dict[str, Callable[[], Awaitable[Any]]] = {
        "outbox_backlog": lambda: outbox_backlogs(system),
        "group_lag": lambda: group_lags(infra.kafka_bootstrap),
        "pending_deliveries": lambda: pending_deliveries(system),
        "processes_down": lambda: processes_down(system),
    }
    for name, probe in probes.items():
        try:
            report[name] = await asyncio.wait_for(probe(), 15)
        except Exception as error:  # what could not be asked is part of the answer
            report[name] = f"unknown ({type(error).__name__}: {error})"
    return report


async def run_scenario(
    system: System,
    infra: Infra,
    fault: Fault,
    *,
    rate: float,
    warm_seconds: float = 3,
    fault_seconds: float = 8,
    after_seconds: float = 10,
    stuck_after: float = 120,
    patience: float = 300,
) -> dict[str, Any]:
    """One fault under a steady flow of orders; returns the scenario's figures.

    A scenario that has not recovered ``stuck_after`` seconds after the heal is reported as
    stuck at once, with what is stuck; the flow stops, the system gets as long again to settle,
    and the next scenario begins. An order's lifecycle gives up after ``patience`` seconds.
    """
    started_at = datetime.now(UTC)
    resends_before = _resends(system)
    marks: dict[str, float] = {}
    stuck: dict[str, Any] | None = None
    recovery_trace: list[dict[str, Any]] = []
    stop_flow = asyncio.Event()
    async with (
        Http(system.url("orders"), timeout=10) as orders,
        Http(system.url("kitchen"), timeout=10) as kitchen,
    ):
        clients = Clients(orders, kitchen)

        async def operation(_: Http, timing: Timing) -> str:
            return await whole_life(clients, timing, patience=patience)

        flow = asyncio.create_task(
            fixed_rate(orders, operation, rate=rate, seconds=24 * 3600, stop=stop_flow)
        )
        try:
            await asyncio.sleep(warm_seconds)
            marks["fault"] = time.time()
            await fault.inject(system, infra)
            await asyncio.sleep(fault_seconds if fault.hold is None else fault.hold)
            await fault.heal(system, infra)
            marks["healed"] = time.time()
            recovered_at = await _recovery(
                system, infra, rate, timeout=stuck_after, trace=recovery_trace
            )
            if recovered_at is None:
                stuck = await what_is_stuck(system, infra)
                print(f"chaos: {fault.name} stuck: {json.dumps(stuck)}", file=sys.stderr)
            else:
                await asyncio.sleep(max(0.0, marks["healed"] + after_seconds - time.time()))
            stop_flow.set()
            run: RunResult = await flow
        finally:
            flow.cancel()  # a scenario cut short leaves no orders flowing into the next one
    now_settled = await wait_settled(system, infra, timeout=stuck_after, interval=0.5)
    finished_at = datetime.now(UTC)
    if not now_settled and stuck is None:
        stuck = await what_is_stuck(system, infra)
        print(f"chaos: {fault.name} did not settle: {json.dumps(stuck)}", file=sys.stderr)
    report = await reconcile.reconcile(
        _urls(system), infra.kafka_bootstrap, started_at - timedelta(seconds=1), finished_at
    )
    extra = await fault.verify(system, infra) if fault.verify is not None else {}
    accepted_during = sum(
        1 for t in run.timings if marks["fault"] <= t.responses.get("placed", 0) < marks["healed"]
    )
    return {
        "scenario": fault.name,
        "fault": fault.description,
        "started_at": started_at.isoformat(timespec="seconds"),
        "orders": len(run.timings) + len(run.errors),
        "completed_lifecycles": len(run.timings),
        "gave_up": len(run.errors),
        "first_gave_up": run.errors[:3],
        "accepted_during_fault": accepted_during,
        "victim_down_seconds": round(marks["healed"] - marks["fault"], 1),
        "recovery_seconds": round(recovered_at - marks["healed"], 1)
        if recovered_at is not None
        else None,
        "events_lost": len(report.missing) + extra.pop("events_lost", 0),
        "effects_doubled": len(report.doubled),
        "wire_duplicates": report.wire_duplicates + extra.pop("wire_duplicates", 0),
        # The documented window of the notifications service (crash after the provider
        # accepted, before the commit): the message goes again with the same Message-ID /
        # idempotency key. The SMS provider drops such a resend; an SMTP server cannot.
        **{
            name: after - before
            for (name, after), before in zip(
                _resends(system).items(), resends_before.values(), strict=True
            )
        },
        "processes_left_down": await _left_down(system),
        "restarts": {name: process.restarts for name, process in system.processes.items()},
        "stuck": stuck,
        "recovery_trace": recovery_trace,
        "reconciled_orders": report.orders,
        "findings": [str(f) for f in (report.missing + report.doubled)[:20]],
        "longest_gaps_seconds": _longest_gaps(run),
        "placement_failures": _failures(run, "place"),
        **extra,
    }


# Steps whose answers stop when a part of the system does: placement (the orders API takes
# orders), starting to cook (the kitchen applied the confirmation) and the departure (the orders
# service applied the kitchen's ready).
GAP_STEPS = {
    "accepted": "placed",
    "kitchen applied": "cooking",
    "orders applied": "out_for_delivery",
}


def _longest_gaps(run: RunResult) -> dict[str, float | None]:
    """For each of ``GAP_STEPS``, the longest time without an answer to that step, in seconds."""
    gaps: dict[str, float | None] = {}
    for name, step in GAP_STEPS.items():
        answered = sorted(t.responses[step] for t in run.timings if step in t.responses)
        gaps[name] = (
            round(max(later - earlier for earlier, later in itertools.pairwise(answered)), 1)
            if len(answered) > 1
            else None
        )
    return gaps


def _failures(run: RunResult, step: str) -> dict[str, int]:
    """The failed attempts of ``step`` that the lifecycles retried, by kind (see
    ``tests.support.load.failure_kind``)."""
    kinds: Counter[str] = Counter()
    for timing in run.timings:
        for (failed_step, kind), n in timing.failures.items():
            if failed_step == step:
                kinds[kind] += n
    return dict(sorted(kinds.items()))


async def _left_down(system: System, patience: float = 30) -> list[str]:
    """Processes still not serving ``patience`` seconds after everything settled."""
    try:
        return await eventually(
            lambda: processes_down(system),
            until=lambda down: not down,
            timeout=patience,
            interval=1,
            what="every process serving",
        )
    except NotReached as late:
        down: list[str] = late.last
        return down


async def _recovery(
    system: System, infra: Infra, rate: float, *, timeout: float, trace: list[dict[str, Any]]
) -> float | None:
    """When the work that piled up during the fault is done, with orders still flowing.

    With orders flowing, "caught up" means no more waiting than about a second of orders makes.
    What is waiting is added to ``trace`` every 5 s, so a slow recovery says what held it up.
    """
    slack = int(rate * 6)  # events per order
    started = time.monotonic()
    next_sample = started

    async def sampled() -> dict[str, int] | None:
        nonlocal next_sample
        work = await waiting_work(system, infra)
        if not _within(work, slack) and time.monotonic() >= next_sample:
            trace.append({"after_seconds": round(time.monotonic() - started, 1), "waiting": work})
            next_sample += 5
        return work

    try:
        await eventually(
            sampled,
            until=lambda work: _within(work, slack),
            timeout=timeout,
            interval=0.25,
            what="the work of the fault done",
        )
    except NotReached:
        return None
    return time.time()


def _resends(system: System) -> dict[str, int]:
    if system.sinks is None:
        return {"email_resends_same_message_id": 0, "sms_resends_dropped_by_provider": 0}
    emails = system.sinks.smtp.by_message_id().values()
    sms = system.sinks.sms
    return {
        "email_resends_same_message_id": sum(len(copies) - 1 for copies in emails),
        "sms_resends_dropped_by_provider": sms.posts - len(sms.delivered),
    }


def _urls(system: System) -> dict[str, str]:
    return {service: system.databases[service] for service in system.databases}
