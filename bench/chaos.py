"""``make chaos``: faults injected while orders flow, each followed by a reconciliation.

    uv run python -m bench.chaos [--rate 20] [--scenarios kafka orders-relay ...]

For every scenario: orders go through their whole life at a steady rate; after a warm-up the
fault is injected (a real SIGKILL, a broker or database restart, a consumer frozen until its
group expels it), the victim comes back, the flow goes on; then the flow stops, the system
settles and the scenario's orders are reconciled. Reported per scenario: orders accepted during
the fault, events lost (must be 0), effects doubled (must be 0), lifecycles that gave up, and
the time to recover (from the victim's return until every order placed before it finished its
life and every consumer group caught up). Results: ``bench/results/chaos.json`` and
``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from bench import reconcile
from bench.ceilings import new_topic
from bench.lifecycle import Clients, whole_life
from bench.load import Http, RunResult, Timing, fixed_rate
from bench.relay_drain import fill_outbox
from bench.report import write_reliability_doc
from eventing.admin import topic_partitions
from eventing.database import asyncpg_dsn
from eventing.kafka_security import KafkaSecurity
from tests.support.infra import ROOT, Infra
from tests.support.kafka import read_whole_topic
from tests.support.system import System

RESULTS = ROOT / "bench" / "results" / "chaos.json"
CONSUMER_GROUPS = ("orders", "kitchen", "notifications", "analytics")
# aiokafka's default session timeout is 10 s: a consumer frozen longer is expelled.
PAUSE_SECONDS = 25.0
BURST_EVENTS = 10_000
# The chaos stack's ports; the services reach PostgreSQL and Kafka through Toxiproxy.
PG_PORT, KAFKA_PORT = 25472, 29132
PG_PROXY_PORT, KAFKA_PROXIED_PORT, KAFKA_PROXY_PORT, TOXIPROXY_PORT = 25473, 29134, 29135, 28474


@dataclass
class Fault:
    name: str
    description: str
    inject: Callable[[System, Infra], Awaitable[None]]  # returns when the fault is in place
    heal: Callable[[System, Infra], Awaitable[None]]  # returns when the victim is back
    # How long the fault lasts before ``heal``: None is the scenario's ``fault_seconds``; 0 heals
    # at once (a killed process: ``heal`` only waits for its supervisor to bring it back).
    hold: float | None = None
    # Checks of its own after the system settled: figures to add to the scenario's.
    verify: Callable[[System, Infra], Awaitable[dict[str, int]]] | None = None


def _kill(process: str) -> Fault:
    async def inject(system: System, _: Infra) -> None:
        await asyncio.to_thread(system.processes[process].crash)

    async def heal(system: System, _: Infra) -> None:
        await system.processes[process].wait_ready(timeout=120)

    return Fault(process, f"{process}: SIGKILL, back by its supervisor", inject, heal, hold=0)


def _stack(*commands: str) -> Callable[[System, Infra], Awaitable[None]]:
    async def run(_: System, infra: Infra) -> None:
        for command in commands:
            await asyncio.to_thread(infra.stack, command)

    return run


def _pause(process: str) -> Fault:
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


def _postgres_restarted_mid_burst() -> Fault:
    """10,000 events committed to the orders outbox at once, PostgreSQL stopped while the
    relay publishes them; afterwards each must be on its topic exactly once (by event id)."""
    burst: dict[str, Any] = {}

    async def inject(system: System, infra: Infra) -> None:
        topic = await new_topic(infra.kafka_bootstrap, "chaos-burst")
        conn = await asyncpg.connect(asyncpg_dsn(system.databases["orders"]))
        try:
            ids = await fill_outbox(conn, BURST_EVENTS, topic)
            burst.update(topic=topic, ids={str(event_id) for event_id in ids})
            # Down when the relay is about half-way through (stopping takes a moment more).
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                left = await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topic)
                if left <= BURST_EVENTS * 0.6:
                    break
                await asyncio.sleep(0.01)
            burst["left_at_stop"] = left
        finally:
            await conn.close()
        await asyncio.to_thread(infra.stack, "pg-stop")

    async def heal(system: System, infra: Infra) -> None:
        await asyncio.to_thread(infra.stack, "pg-start")
        burst["left_after_restart"] = await _count(
            system.databases["orders"],
            "SELECT count(*) FROM outbox WHERE topic = $1",
            burst["topic"],
        )

    async def verify(_: System, infra: Infra) -> dict[str, int]:
        records = await read_whole_topic(infra.kafka_bootstrap, burst["topic"])
        ids = [dict(record.headers)["ce_id"].decode() for record in records]
        return {
            "events_lost": len(burst["ids"] - set(ids)),
            "wire_duplicates": len(ids) - len(set(ids)),
            "burst_left_at_stop": burst["left_at_stop"],
            "burst_left_after_restart": burst["left_after_restart"],
        }

    return Fault(
        "postgres-mid-burst",
        f"PostgreSQL: stopped (fast) while the orders relay publishes a burst of "
        f"{BURST_EVENTS:,} events, restarted",
        inject,
        heal,
        hold=3,
        verify=verify,
    )


class Toxiproxy:
    """Shopify's Toxiproxy through its HTTP API: proxies, and the toxics that make them faulty."""

    def __init__(self, port: int) -> None:
        self._api = f"http://127.0.0.1:{port}"

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self._api, timeout=10) as client:
            response = await client.request(method, path, json=body)
            response.raise_for_status()
            return response.json() if response.content else None

    async def create(self, name: str, listen: int, upstream: int) -> None:
        if name in await self._call("GET", "/proxies"):  # left by an earlier run
            await self._call("DELETE", f"/proxies/{name}")
        body = {"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}"}
        await self._call("POST", "/proxies", body)

    async def add(self, proxy: str, toxic: dict[str, Any]) -> None:
        for stream in ("upstream", "downstream"):
            name = f"{toxic['type']}-{stream}"
            await self._call(
                "POST", f"/proxies/{proxy}/toxics", {**toxic, "name": name, "stream": stream}
            )

    async def clear(self, proxy: str) -> None:
        for toxic in await self._call("GET", f"/proxies/{proxy}/toxics"):
            await self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic['name']}")


TOXIPROXY = Toxiproxy(TOXIPROXY_PORT)
PROXIES = ("postgres", "kafka")


def _network(name: str, description: str, toxic: dict[str, Any], hold: float) -> Fault:
    """``toxic`` on every connection from the services to PostgreSQL and to Kafka, both ways."""

    async def inject(_: System, __: Infra) -> None:
        for proxy in PROXIES:
            await TOXIPROXY.add(proxy, toxic)

    async def heal(_: System, __: Infra) -> None:
        for proxy in PROXIES:
            await TOXIPROXY.clear(proxy)

    return Fault(name, description, inject, heal, hold=hold)


FAULTS: dict[str, Fault] = {
    "kafka": Fault(
        "kafka", "Kafka broker: SIGKILL, restarted", _stack("kafka-kill"), _stack("kafka-start")
    ),
    **{
        name: _kill(name)
        for name in (
            "orders-relay",
            "kitchen-relay",
            "kitchen",
            "notifications",
            "analytics",
            "orders",
        )
    },
    "postgres": Fault(
        "postgres", "PostgreSQL: stopped (fast), restarted", _stack("pg-stop"), _stack("pg-start")
    ),
    "postgres-killed": Fault(
        "postgres-killed",
        "PostgreSQL: SIGKILL (postmaster and backends), restarted (crash recovery)",
        _stack("pg-kill"),
        _stack("pg-start"),
    ),
    "postgres-mid-burst": _postgres_restarted_mid_burst(),
    "kafka-while-postgres-down": Fault(
        "kafka-while-postgres-down",
        "Kafka broker SIGKILLed and restarted while PostgreSQL is stopped; then PostgreSQL",
        _stack("pg-stop", "kafka-kill"),
        _stack("kafka-start", "pg-start"),
    ),
    "notifications-paused": _pause("notifications"),
    "network-latency": _network(
        "network-latency",
        "Network to PostgreSQL and Kafka: +250 ms (±100 ms) each way for 15 s",
        {"type": "latency", "attributes": {"latency": 250, "jitter": 100}},
        hold=15,
    ),
    "network-blackhole": _network(
        "network-blackhole",
        "Network to PostgreSQL and Kafka: a black hole (nothing passes, nothing closes) for 10 s",
        {"type": "timeout", "attributes": {"timeout": 0}},
        hold=10,
    ),
    "network-reset": _network(
        "network-reset",
        "Network to PostgreSQL and Kafka: every connection reset (TCP RST) for 8 s",
        {"type": "reset_peer", "attributes": {"timeout": 0}},
        hold=8,
    ),
}


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


async def _count(url: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        return int(await conn.fetchval(sql, *args, timeout=5))
    finally:
        await conn.close()


async def outbox_backlogs(system: System) -> dict[str, int]:
    return {
        service: await _count(
            system.databases[service], "SELECT count(*) FROM outbox WHERE parked_at IS NULL"
        )
        for service in ("orders", "kitchen")
    }


async def pending_deliveries(system: System) -> int:
    """Notifications waiting to be sent (its dispatchers work behind the consumer)."""
    return await _count(
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
    except Exception:  # noqa: BLE001 - whatever fails, it has not recovered yet
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
    except Exception:  # noqa: BLE001 - whatever fails, it has not settled yet
        return False


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
        except Exception as error:  # noqa: BLE001 - what could not be asked is part of the answer
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
    deadline = time.monotonic() + stuck_after
    while not await settled(system, infra) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    finished_at = datetime.now(UTC)
    if not await settled(system, infra) and stuck is None:
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
        **extra,
    }


async def _left_down(system: System, patience: float = 30) -> list[str]:
    """Processes still not serving ``patience`` seconds after everything settled."""
    deadline = time.monotonic() + patience
    while (down := await processes_down(system)) and time.monotonic() < deadline:
        await asyncio.sleep(1)
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
    deadline = started + timeout
    next_sample = started
    while time.monotonic() < deadline:
        work = await waiting_work(system, infra)
        if _within(work, slack):
            return time.time()
        if time.monotonic() >= next_sample:
            trace.append({"after_seconds": round(time.monotonic() - started, 1), "waiting": work})
            next_sample += 5
        await asyncio.sleep(0.25)
    return None


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


def clean(run: dict[str, Any]) -> bool:
    """Nothing lost, nothing doubled, no lifecycle given up, nothing left down or stuck."""
    return (
        run["events_lost"] == 0
        and run["effects_doubled"] == 0
        and run["gave_up"] == 0
        and not run["processes_left_down"]
        and run["stuck"] is None
    )


def worst(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The worst of a scenario's runs: the most lost or doubled, then given up, then left down,
    then stuck, then the slowest recovery."""

    def badness(run: dict[str, Any]) -> tuple[int, int, int, bool, float]:
        recovery = run["recovery_seconds"]
        return (
            run["events_lost"] + run["effects_doubled"],
            run["gave_up"],
            len(run["processes_left_down"]),
            run["stuck"] is not None,
            float("inf") if recovery is None else recovery,
        )

    worst_run: dict[str, Any] = max(runs, key=badness)
    return {
        **worst_run,
        "runs": len(runs),
        "recoveries_seconds": [run["recovery_seconds"] for run in runs],
        "clean_runs": sum(clean(run) for run in runs),
    }


async def main_async(
    scenarios: list[str], rate: float, repeat: int, seed: int
) -> list[dict[str, Any]]:
    from bench.run import bench_infra  # the benchmarks' own stack
    from tests.support import processes
    from tests.support.system import start_system

    processes.LOG_DIR = ROOT / ".local" / "chaos-logs"
    infra = await bench_infra(
        "chaos",
        pg_port=PG_PORT,
        kafka_port=KAFKA_PORT,
        extra_env={
            "KAFKA_PROXIED_PORT": str(KAFKA_PROXIED_PORT),
            "KAFKA_PROXY_PORT": str(KAFKA_PROXY_PORT),
            "TOXIPROXY_PORT": str(TOXIPROXY_PORT),
        },
    )
    order = [name for name in scenarios for _ in range(repeat)]
    random.Random(seed).shuffle(order)
    runs = []
    try:
        infra.stack("toxiproxy-up")
        await TOXIPROXY.create("postgres", PG_PROXY_PORT, PG_PORT)
        await TOXIPROXY.create("kafka", KAFKA_PROXY_PORT, KAFKA_PROXIED_PORT)
        system = await start_system(
            infra,
            env={"kitchen": {"KITCHEN_CAPACITY": "100000"}},
            database_port=PG_PROXY_PORT,
            kafka_bootstrap=f"127.0.0.1:{KAFKA_PROXY_PORT}",
        )
        try:
            for i, name in enumerate(order, 1):
                print(f"chaos {i}/{len(order)}: {FAULTS[name].description}", file=sys.stderr)
                result = await run_scenario(system, infra, FAULTS[name], rate=rate)
                print(json.dumps(result), file=sys.stderr)
                runs.append(result)
        finally:
            system.stop()
    finally:
        infra.stack("toxiproxy-down", check=False)
        infra.stop()
        processes.kill_leftovers()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(prog="chaos")
    # 4, not 5: a 2-core machine carries about 5 whole lifecycles a second with nothing to spare,
    # and the services' traffic through the fault proxy costs about a fifth of a core more.
    parser.add_argument("--rate", type=float, default=4.0, help="orders per second")
    parser.add_argument("--scenarios", nargs="*", choices=list(FAULTS), default=list(FAULTS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each scenario")
    parser.add_argument("--seed", type=int, default=None, help="of the shuffled order")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    runs = asyncio.run(main_async(args.scenarios, args.rate, args.repeat, seed))
    by_scenario = {name: [r for r in runs if r["scenario"] == name] for name in args.scenarios}
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "rate_orders_per_second": args.rate,
        "repeat": args.repeat,
        "seed": seed,
        "order": [r["scenario"] for r in runs],
        "scenarios": [
            worst(scenario_runs) for scenario_runs in by_scenario.values() if scenario_runs
        ],
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["scenarios"], indent=2))
    if set(args.scenarios) == set(FAULTS):
        write_reliability_doc(chaos=document)
    sys.exit(0 if runs and all(clean(r) for r in runs) else 1)


def _commit() -> str:
    import subprocess

    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return described.stdout.strip()


if __name__ == "__main__":
    main()
