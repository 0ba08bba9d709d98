"""``make bench``: every figure of docs/performance.md, measured in one run on this machine.

    uv run python -m bench.run [--quick] [--sections ceilings relay placement e2e]

Runs on its own stack (``.local/bench-stack``, PostgreSQL 25462 with ``track_commit_timestamp``,
a fresh Kafka on 29122), so a ``make up`` stack and the tests are left alone. Writes
``bench/results/latest.json`` and the table in ``docs/performance.md``.
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

import asyncpg

from bench import ceilings, orders_load, relay_drain
from bench.report import write_performance_doc
from tests.support import processes
from tests.support.infra import ROOT, Infra, start_infra
from tests.support.system import start_system

RESULTS = ROOT / "bench" / "results" / "latest.json"
BENCH_STACK = {
    "STACK_DIR": str(ROOT / ".local" / "bench-stack"),
    "PG_PORT": "25462",
    "KAFKA_PORT": "29122",
    "KAFKA_CONTROLLER_PORT": "29123",
    "PG_EXTRA_OPTIONS": "-c track_commit_timestamp=on",
}
SECTIONS = ("ceilings", "relay", "placement", "e2e")


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


async def bench_infra() -> Infra:
    infra = start_infra(BENCH_STACK)
    conn = await asyncpg.connect(infra.postgres_dsn)
    try:
        tracked = await conn.fetchval("SHOW track_commit_timestamp")
    finally:
        await conn.close()
    if tracked != "on":  # started earlier without it: restart with the bench's settings
        infra.stack("pg-stop")
        infra.stack("infra-up")
    return infra


async def run(quick: bool, sections: list[str]) -> dict[str, Any]:
    events = 20_000 if quick else 100_000
    seconds = 5 if quick else 20
    processes.LOG_DIR = ROOT / ".local" / "bench-logs"
    infra = await bench_infra()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
    }
    try:
        if "ceilings" in sections or "relay" in sections:
            print(f"produce ceiling: {events} events", file=sys.stderr)
            produce = await ceilings.produce_ceiling(infra.kafka_bootstrap, events)
            results["produce_ceiling_events_per_second"] = round(produce)
        if "ceilings" in sections or "placement" in sections:
            print("commit ceiling", file=sys.stderr)
            dsn = (await infra.create_database("commit")).replace("+asyncpg", "")
            commit = await ceilings.commit_ceiling(dsn, concurrency=32, seconds=seconds)
            results["commit_ceiling_transactions_per_second"] = round(commit)
        if "relay" in sections:
            drains = {}
            for relays in (1, 2, 4):
                print(f"relay drain: {relays} relay(s)", file=sys.stderr)
                rate = await relay_drain.drain_rate(infra, events, relays)
                drains[str(relays)] = {
                    "events_per_second": round(rate),
                    "ratio_to_produce_ceiling": round(rate / produce, 3),
                }
            results["relay_drain"] = {"events": events, "relays": drains}
        if "placement" in sections or "e2e" in sections:
            system = await start_system(infra)
            try:
                if "placement" in sections:
                    print("order placement at fixed concurrency", file=sys.stderr)
                    placement = await orders_load.placement_throughput(
                        system, workers=32, seconds=seconds
                    )
                    placement["ratio_to_commit_ceiling"] = round(
                        placement["orders_per_second"] / commit, 3
                    )
                    results["placement"] = placement
                if "e2e" in sections:
                    print("end-to-end latency at 200 orders/s", file=sys.stderr)
                    results["end_to_end"] = await orders_load.end_to_end_latency(
                        system, infra.kafka_bootstrap, rate=200, seconds=10 if quick else 30
                    )
            finally:
                system.stop()
    finally:
        infra.stop()
        processes.kill_leftovers()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--sections", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    args = parser.parse_args()
    results = asyncio.run(run(args.quick, args.sections))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if set(args.sections) == set(SECTIONS) and not args.quick:
        write_performance_doc(results)


if __name__ == "__main__":
    main()
