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
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench.ceilings import new_topic
from bench.relay_drain import fill_outbox
from bench.report import write_reliability_doc
from bench.stack import bench_infra, log_dir
from eventing.acls import Grant, Operation, ResourceType, ensure_acls
from eventing.database import asyncpg_dsn
from tests.support import processes
from tests.support.chaos import (
    Fault,
    broker_failover,
    broker_killed,
    fetch_count,
    killed,
    leader_moved,
    on_stack,
    paused,
    run_scenario,
    scaled,
    worker_killed,
)
from tests.support.infra import ROOT, Infra
from tests.support.kafka import read_whole_topic
from tests.support.polling import NotReached, eventually
from tests.support.system import System, start_system

RESULTS = ROOT / "bench" / "results" / "chaos.json"
CLUSTER_RESULTS = ROOT / "bench" / "results" / "chaos-cluster.json"
BURST_EVENTS = 10_000
# The chaos stack's ports; the services reach PostgreSQL and Kafka through Toxiproxy.
PG_PORT, KAFKA_PORT = 25472, 29132
PG_PROXY_PORT, KAFKA_PROXIED_PORT, KAFKA_PROXY_PORT, TOXIPROXY_PORT = 25473, 29134, 29135, 28474
# The three-broker cluster's stack (`--cluster`): brokers on 29162, 29172 and 29182, no proxy.
CLUSTER_PG_PORT, CLUSTER_KAFKA_PORT = 25492, 29162


def _postgres_restarted_mid_burst() -> Fault:
    """10,000 events committed to the orders outbox at once, PostgreSQL stopped while the
    relay publishes them; afterwards each must be on its topic exactly once (by event id)."""
    burst: dict[str, Any] = {}

    async def inject(system: System, infra: Infra) -> None:
        topic = await new_topic(infra.kafka_bootstrap, "chaos-burst")
        # The system's relay publishes as its own principal, which may write only the topics
        # contracts.access names: this one is the bench's, so it is granted here.
        await ensure_acls(
            infra.kafka_bootstrap,
            [Grant("orders-relay", Operation.WRITE, ResourceType.TOPIC, topic)],
        )
        conn = await asyncpg.connect(asyncpg_dsn(system.databases["orders"]))
        try:
            ids = await fill_outbox(conn, BURST_EVENTS, topic)
            burst.update(topic=topic, ids={str(event_id) for event_id in ids})

            async def left() -> int:
                return int(
                    await conn.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", topic)
                )

            # Down when the relay is about half-way through (stopping takes a moment more).
            try:
                burst["left_at_stop"] = await eventually(
                    left,
                    until=lambda n: n <= BURST_EVENTS * 0.6,
                    timeout=30,
                    interval=0.01,
                    what="the relay half-way through the burst",
                )
            except NotReached as late:  # stopped all the same: the figures say where it was
                burst["left_at_stop"] = late.last
        finally:
            await conn.close()
        await asyncio.to_thread(infra.stack, "pg-stop")

    async def heal(system: System, infra: Infra) -> None:
        await asyncio.to_thread(infra.stack, "pg-start")
        burst["left_after_restart"] = await fetch_count(
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
    "kafka": broker_killed(),
    **{
        name: killed(name)
        for name in (
            "orders-relay",
            "kitchen-relay",
            "kitchen",
            "notifications",
            "analytics",
            "orders",
        )
    },
    "postgres": on_stack(
        "postgres", "PostgreSQL: stopped (fast), restarted", ("pg-stop",), ("pg-start",)
    ),
    "postgres-killed": on_stack(
        "postgres-killed",
        "PostgreSQL: SIGKILL (postmaster and backends), restarted (crash recovery)",
        ("pg-kill",),
        ("pg-start",),
    ),
    "postgres-mid-burst": _postgres_restarted_mid_burst(),
    "kafka-while-postgres-down": on_stack(
        "kafka-while-postgres-down",
        "Kafka broker SIGKILLed and restarted while PostgreSQL is stopped; then PostgreSQL",
        ("pg-stop", "kafka-kill"),
        ("kafka-start", "pg-start"),
    ),
    "notifications-paused": paused("notifications"),
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


# On the three-broker cluster (`make chaos-cluster`): a broker's failure is a failover, and
# leaders move while every broker is up.
CLUSTER_FAULTS: dict[str, Fault] = {
    "broker-failover": broker_failover(),
    "kitchen-scaled": scaled("kitchen"),
    "leader-moved": leader_moved(),
    "orders-worker": worker_killed("orders"),
}


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


async def _cluster_system() -> tuple[Infra, System]:
    """The three-broker stack and the system on it, straight to the brokers and the database."""
    infra = await bench_infra(
        "chaos-cluster",
        pg_port=CLUSTER_PG_PORT,
        kafka_port=CLUSTER_KAFKA_PORT,
        extra_env={"KAFKA_BROKERS": "3", "KAFKA_HEAP": "-Xms128m -Xmx512m"},
    )
    try:
        # The orders API as it scales out: two workers behind its port.
        system = await start_system(
            infra,
            env={"kitchen": {"KITCHEN_CAPACITY": "100000"}, "orders": {"ORDERS_HTTP_WORKERS": "2"}},
            log_dir=log_dir("chaos"),
        )
    except BaseException:
        infra.stop()
        raise
    return infra, system


async def _proxied_system() -> tuple[Infra, System]:
    """The one-broker stack and the system on it, through Toxiproxy to Kafka and PostgreSQL."""
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
    try:
        infra.stack("toxiproxy-up")
        await TOXIPROXY.create("postgres", PG_PROXY_PORT, PG_PORT)
        await TOXIPROXY.create("kafka", KAFKA_PROXY_PORT, KAFKA_PROXIED_PORT)
        system = await start_system(
            infra,
            env={"kitchen": {"KITCHEN_CAPACITY": "100000"}},
            database_port=PG_PROXY_PORT,
            kafka_bootstrap=f"127.0.0.1:{KAFKA_PROXY_PORT}",
            log_dir=log_dir("chaos"),
        )
    except BaseException:
        infra.stack("toxiproxy-down", check=False)
        infra.stop()
        raise
    return infra, system


async def main_async(
    scenarios: list[str], rate: float, repeat: int, seed: int, *, cluster: bool = False
) -> list[dict[str, Any]]:
    order = [name for name in scenarios for _ in range(repeat)]
    random.Random(seed).shuffle(order)
    faults = CLUSTER_FAULTS if cluster else FAULTS
    infra, system = await (_cluster_system() if cluster else _proxied_system())
    runs = []
    try:
        for i, name in enumerate(order, 1):
            print(f"chaos {i}/{len(order)}: {faults[name].description}", file=sys.stderr)
            result = await run_scenario(system, infra, faults[name], rate=rate)
            print(json.dumps(result), file=sys.stderr)
            runs.append(result)
    finally:
        system.stop()
        infra.stack("toxiproxy-down", check=False)  # nothing to stop on the cluster
        infra.stop()
        processes.kill_leftovers()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(prog="chaos")
    # 4, not 5: a 2-core machine carries about 5 whole lifecycles a second with nothing to spare,
    # and the services' traffic through the fault proxy costs about a fifth of a core more.
    parser.add_argument("--rate", type=float, default=4.0, help="orders per second")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="on a three-broker Kafka cluster, its scenarios (results: chaos-cluster.json)",
    )
    parser.add_argument("--scenarios", nargs="*", choices=[*FAULTS, *CLUSTER_FAULTS], default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each scenario")
    parser.add_argument("--seed", type=int, default=None, help="of the shuffled order")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    every = list(CLUSTER_FAULTS if args.cluster else FAULTS)
    scenarios = args.scenarios or every
    if not set(scenarios) <= set(every):
        parser.error(f"{'--cluster runs' if args.cluster else 'without --cluster, runs'}: {every}")
    runs = asyncio.run(main_async(scenarios, args.rate, args.repeat, seed, cluster=args.cluster))
    by_scenario = {name: [r for r in runs if r["scenario"] == name] for name in scenarios}
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
    results = CLUSTER_RESULTS if args.cluster else RESULTS
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document["scenarios"], indent=2))
    if set(scenarios) == set(every):
        write_reliability_doc(**{"cluster_chaos" if args.cluster else "chaos": document})
    sys.exit(0 if runs and all(clean(r) for r in runs) else 1)


def _commit() -> str:
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return described.stdout.strip()


if __name__ == "__main__":
    main()
