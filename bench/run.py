"""``make bench``: every figure of docs/performance.md, measured in one run on this machine.

    uv run python -m bench.run [--quick] [--sections ceilings relay placement e2e capacity peer]

Runs on its own stack (``.local/bench-stack``, PostgreSQL 25462 with ``track_commit_timestamp``,
a fresh Kafka on 29122), so a ``make up`` stack and the tests are left alone. Writes
``bench/results/latest.json`` and the table in ``docs/performance.md``. ``peer`` (the relay
beside Debezium, bench.peer) runs last: it restarts PostgreSQL with ``wal_level=logical``, which
the other sections do not run with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import capacity, ceilings, orders_load, peer, relay_drain
from bench.profile import commit as commit_measured
from bench.report import write_performance_doc
from bench.stack import bench_env, bench_infra, log_dir
from eventing.database import asyncpg_dsn
from tests.support import processes
from tests.support.chaos import settled
from tests.support.infra import ROOT, Infra
from tests.support.polling import eventually
from tests.support.sinks import sinks_process
from tests.support.system import System, start_system

RESULTS = ROOT / "bench" / "results" / "latest.json"
SECTIONS = ("ceilings", "relay", "placement", "e2e", "capacity", "peer")
FIGURES = {  # result key -> how the report names it
    "produce_ceiling_events_per_second": "produce ceiling",
    "commit_ceiling_transactions_per_second": "commit ceiling",
    "relay_drain": "relay drain",
    "placement": "placement",
    "end_to_end_20": "end to end",
    "lifecycle_capacity": "capacity",
    "relay_vs_debezium": "relay vs Debezium",
}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    kafka = (ROOT / "deploy" / "kafka" / "pom.xml").read_text().split("<kafka.version>")[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka": kafka.split("<", 1)[0],
        "postgresql": subprocess.run(
            ["bash", "-c", "ls /usr/lib/postgresql | sort -n | tail -1"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
    }


async def run(
    quick: bool, sections: list[str], stack_ports: tuple[int, int] | None = None
) -> dict[str, Any]:
    events = 20_000 if quick else 100_000
    seconds = 5 if quick else 20
    infra = await (
        bench_infra()
        if stack_ports is None
        else bench_infra(pg_port=stack_ports[0], kafka_port=stack_ports[1])
    )
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
    }
    try:
        if "ceilings" in sections or "relay" in sections:
            produce = await ceilings.produce_ceiling(infra.kafka_bootstrap, events)
            results["produce_ceiling_events_per_second"] = _progress(
                f"produce ceiling ({events} events)", round(produce)
            )
        commit: float | None = None  # measured with placement, which compares with it
        if "ceilings" in sections or "placement" in sections:
            dsn = asyncpg_dsn(await infra.create_database("commit"))
            commit = await ceilings.commit_ceiling(dsn, concurrency=32, seconds=seconds)
            results["commit_ceiling_transactions_per_second"] = _progress(
                "commit ceiling", round(commit)
            )
        if "relay" in sections:
            drains = {}
            for relays in (1, 2, 4):
                rate = await relay_drain.drain_rate(infra, events, relays)
                drains[str(relays)] = _progress(
                    f"relay drain, {relays} relay(s)",
                    {
                        "events_per_second": round(rate),
                        "ratio_to_produce_ceiling": round(rate / produce, 3),
                    },
                )
            healthy = drains["1"]["events_per_second"]
            states = {}
            for state in relay_drain.TABLE_STATES:
                rate = await relay_drain.drain_rate(infra, events, 1, state)
                states[state] = _progress(
                    f"relay drain, table {state}",
                    {
                        "events_per_second": round(rate),
                        "ratio_to_produce_ceiling": round(rate / produce, 3),
                    },
                )
            outage = await relay_drain.outage_drain(infra, events)
            after_outage = _progress(
                "relay drain after a broker outage",
                {
                    "events_per_second": round(outage.events_per_second),
                    "ratio_to_healthy": round(outage.events_per_second / healthy, 3),
                    "seconds_to_first_batch": round(outage.seconds_to_first_batch, 1),
                },
            )
            results["relay_drain"] = {
                "events": events,
                "relays": drains,
                # One relay; the key says how stale the outbox's statistics were.
                "table_states": states,
                # One relay, the backlog filled while Kafka was down; ratio to "relays"["1"].
                "after_broker_outage": after_outage,
            }
        if {"placement", "e2e", "capacity"} & set(sections):
            results.update(await _through_the_system(infra, sections, seconds, quick, commit))
        if "peer" in sections:
            results["relay_vs_debezium"] = await peer.relay_vs_debezium(
                infra,
                events=events,
                seconds=5 if quick else 10,
                runs=1 if quick else 3,
                progress=_progress,
            )
    finally:
        infra.stop()
        processes.kill_leftovers()
    return results


async def _through_the_system(
    infra: Infra, sections: list[str], seconds: float, quick: bool, commit: float | None
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    sinks = ROOT / ".local" / "bench-stack" / "sinks"
    with sinks_process(sinks, sinks / "sinks.log") as sinks_env:
        env = bench_env({"notifications": sinks_env})
        if {"e2e", "placement"} & set(sections):
            system = await start_system(infra, env=env, log_dir=log_dir("bench"))
            try:
                # Latency first, on a fresh system: placement leaves work behind (thousands of
                # notifications to send) that would otherwise be measured with it.
                if "e2e" in sections:
                    e2e_seconds = 10 if quick else 30
                    for rate in (20, 200):  # well within what the machine can do, and the target
                        _progress(f"end-to-end latency at {rate} orders/s")
                        results[f"end_to_end_{rate}"] = _progress(
                            f"end to end at {rate}/s",
                            await orders_load.end_to_end_latency(
                                system,
                                infra.kafka_bootstrap,
                                rate=rate,
                                seconds=e2e_seconds,
                                infra=infra,
                                sinks=sinks,
                            ),
                        )
                        await _settle(system, infra)
                if "placement" in sections:
                    assert commit is not None
                    results["placement"] = await _placement(system, infra, seconds, commit)
            finally:
                system.stop()
        if "capacity" in sections:
            # On a system of its own, fresh databases and all: the runs above leave thousands
            # of notifications to send and fuller tables, which would be measured with it.
            system = await start_system(infra, env=env, log_dir=log_dir("bench"))
            try:
                results["lifecycle_capacity"] = _progress(
                    "lifecycle capacity",
                    {
                        "commit": commit_measured(),
                        **await capacity.step_test(system, infra, seconds=10 if quick else 30),
                    },
                )
            finally:
                system.stop()
    return results


async def _placement(system: System, infra: Infra, seconds: float, commit: float) -> dict[str, Any]:
    """Placement throughput with the whole system reacting, then with the orders API alone
    (consumers and relays stopped: the outbox fills and drains afterwards), which is what the
    commit ceiling, measured alone, compares with."""
    figures: dict[str, Any] = {}
    _progress("order placement at fixed concurrency, whole system running")
    figures["whole_system"] = await orders_load.placement_throughput(
        system, workers=32, seconds=seconds, infra=infra
    )
    await _settle(system, infra)
    others = [name for name in system.processes if name != "orders"]
    for name in others:
        system.processes[name].terminate()
    _progress("order placement at fixed concurrency, orders API alone")
    figures["orders_api_alone"] = await orders_load.placement_throughput(
        system, workers=32, seconds=seconds, infra=infra
    )
    # The same with the API scaled out on this machine: two workers behind its port.
    orders = system.processes["orders"]
    orders.terminate()
    orders.env["ORDERS_HTTP_WORKERS"] = "2"
    orders.start()
    await orders.wait_ready(120)
    _progress("order placement at fixed concurrency, orders API alone, two workers")
    figures["orders_api_alone_two_workers"] = await orders_load.placement_throughput(
        system, workers=32, seconds=seconds, infra=infra
    )
    orders.terminate()
    del orders.env["ORDERS_HTTP_WORKERS"]
    orders.start()
    await orders.wait_ready(120)
    for name in others:
        system.processes[name].start()
    await asyncio.gather(*(system.processes[name].wait_ready(120) for name in others))
    await _settle(system, infra)
    for variant in figures.values():
        variant["ratio_to_commit_ceiling"] = round(variant["orders_per_second"] / commit, 3)
    _progress("placement", figures)
    return figures


async def _settle(system: System, infra: Infra, timeout: float = 600) -> None:
    await eventually(
        lambda: settled(system, infra), timeout=timeout, interval=1, what="the system settled"
    )


def _progress(what: str, figures: Any = None) -> Any:
    """Say how far the run got (each figure as soon as it is measured)."""
    print(what if figures is None else f"{what}: {json.dumps(figures)}", file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--sections", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--stack-ports",
        nargs=2,
        type=int,
        metavar=("PG_PORT", "KAFKA_PORT"),
        help="the bench stack's ports, for a run beside another one (controller: KAFKA_PORT+1)",
    )
    args = parser.parse_args()
    ports = tuple(args.stack_ports) if args.stack_ports else None
    results = asyncio.run(run(args.quick, args.sections, ports))
    results["measured_at"] = {
        FIGURES[key]: results["when"] for key in results if key in FIGURES
    }  # which figures this run measured
    if set(args.sections) != set(SECTIONS) and RESULTS.exists() and not args.quick:
        # A partial run updates its sections of the last full run; the machine must match.
        # Each ratio still compares figures of one run: a section re-measures its ceiling.
        previous = json.loads(RESULTS.read_text())
        if previous.get("machine") == results["machine"]:
            measured_at = {**previous.get("measured_at", {}), **results["measured_at"]}
            results = {**previous, **results, "measured_at": measured_at}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if not args.quick:
        write_performance_doc(results)


if __name__ == "__main__":
    main()
