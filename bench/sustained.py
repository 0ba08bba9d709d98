"""The sustained run: orders through their whole life at a steady rate for minutes, reconciled,
with the memory of every process sampled from start to end.

    uv run python -m bench.sustained [--rate 100] [--minutes 10]

Results: ``bench/results/sustained.json`` and the table in ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import write_reliability_doc
from bench.stack import bench_env, bench_infra, log_dir
from bench.stats import latency_summary_ms
from tests.support import processes, reconcile
from tests.support.chaos import wait_settled
from tests.support.infra import ROOT, Infra
from tests.support.lifecycle import Clients, whole_life
from tests.support.load import Http, Timing, fixed_rate
from tests.support.system import System, start_system

RESULTS = ROOT / "bench" / "results" / "sustained.json"


def rss_mib(pid: int) -> float | None:
    """The resident memory of ``pid``, or of the service a supervisor (supervise.sh) runs as
    its child: the supervisor's own few MiB say nothing of the service."""
    pid = _supervised_child(pid) or pid
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return None
    return None


def _supervised_child(pid: int) -> int | None:
    try:
        if b"supervise.sh" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def process_ids(system: System, infra: Infra) -> dict[str, int]:
    pids = {
        name: process.process.pid
        for name, process in system.processes.items()
        if process.process is not None
    }
    kafka_pid = Path(infra.local_env["STACK_DIR"]) / "pids" / "kafka.pid"
    if kafka_pid.exists():
        pids["kafka"] = int(kafka_pid.read_text().strip())
    return pids


async def sustained(
    system: System, infra: Infra, *, rate: float, seconds: float, sample_every: float = 10
) -> dict[str, Any]:
    pids = process_ids(system, infra)
    samples: list[dict[str, Any]] = []
    started_at = datetime.now(UTC)
    done = asyncio.Event()

    async def sample_memory() -> None:
        began = time.monotonic()
        while not done.is_set():
            samples.append(
                {"t": round(time.monotonic() - began)}
                | {name: rss_mib(pid) for name, pid in pids.items()}
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=sample_every)

    async with (
        Http(system.url("orders"), connections=256) as orders,
        Http(system.url("kitchen"), connections=128) as kitchen,
    ):
        clients = Clients(orders, kitchen)

        async def operation(_: Http, timing: Timing) -> str:
            return await whole_life(clients, timing, patience=300)

        sampler = asyncio.create_task(sample_memory())
        run = await fixed_rate(orders, operation, rate=rate, seconds=seconds)
        done.set()
        await sampler
    # Reconciled whether or not it settled: what is missing then is in the report.
    await wait_settled(system, infra, timeout=300)
    report = await reconcile.reconcile(
        {service: system.databases[service] for service in system.databases},
        infra.kafka_bootstrap,
        started_at - timedelta(seconds=1),
        datetime.now(UTC),
    )
    first, last = samples[0], samples[-1]
    return {
        "target_orders_per_second": rate,
        "seconds": round(run.elapsed),
        "lifecycles_completed": len(run.timings),
        "lifecycles_gave_up": len(run.errors),
        "first_errors": run.errors[:3],
        "achieved_orders_per_second": round(len(run.timings) / run.elapsed, 1),
        "lifecycle_latency": latency_summary_ms([t.latency for t in run.timings]),
        "reconciled_orders": report.orders,
        "events": report.events,
        "events_lost": len(report.missing),
        "effects_doubled": len(report.doubled),
        "findings": [str(f) for f in (report.missing + report.doubled)[:20]],
        "rss_mib": {
            name: {
                "start": first.get(name),
                "end": last.get(name),
                "max": max((s[name] for s in samples if s.get(name) is not None), default=None),
            }
            for name in pids
        },
        "rss_samples": samples,
    }


async def main_async(rate: float, minutes: float) -> dict[str, Any]:
    infra = await bench_infra("sustained", pg_port=25482, kafka_port=29142)
    try:
        system = await start_system(
            infra,
            env=bench_env({"orders": {"ORDERS_LOG_LEVEL": "WARNING"}}),
            log_dir=log_dir("sustained"),
        )
        try:
            return await sustained(system, infra, rate=rate, seconds=minutes * 60)
        finally:
            system.stop()
    finally:
        infra.stop()
        processes.kill_leftovers()


def main() -> None:
    parser = argparse.ArgumentParser(prog="sustained")
    parser.add_argument("--rate", type=float, default=100.0, help="orders per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.rate, args.minutes))
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))
    write_reliability_doc(sustained=result)
    sys.exit(0 if result["events_lost"] == 0 and result["effects_doubled"] == 0 else 1)


if __name__ == "__main__":
    main()
